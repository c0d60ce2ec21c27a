"""Causal linear attention as a linear time-varying state-space model (SSM).

A discrete linear time-varying SSM reads inputs ``x_t`` and keeps a state ``h_t``:

    h_t = A_t h_{t-1} + B_t x_t,        y_t = C_t h_t,        h_0 = 0.

Here ``A_t`` is diagonal (a vector ``a_t`` of ``M`` decays), ``B_t`` is an ``M × 1``
column ``b_t`` and ``C_t`` a ``1 × M`` row ``c_tᵀ``, and the same ``a_t, b_t, c_t``
drive ``Dv`` input channels at once, so the state is a matrix ``H_t (M, Dv)``:

    H_t = diag(a_t) H_{t-1} + b_t x_tᵀ,        y_t = H_tᵀ c_t.

Causal linear attention is this recurrence with ``H_t = S_t = Σ_{j≤t} φ(k_j) v_jᵀ``:
``a_t = 1`` (nothing is forgotten), ``b_t = φ(k_t)``, ``c_t = φ(q_t)``, ``x_t = v_t``.
Its normaliser ``z_t = Σ_{j≤t} φ(k_j)`` is one more channel with input ``x_t = 1``.
Gated RFA (Peng et al., 2021) sets ``a_t = g_t·1`` and ``b_t = (1 − g_t) φ(k_t)``.

Unrolling the recurrence gives ``y_t = Σ_{j≤t} (c_tᵀ diag(a_{j+1} ⋯ a_t) b_j) x_j``: the
SSM is also a causal "attention" with an ``L × L`` matrix (:func:`ssm_matrix`).

Shapes: ``a``, ``b``, ``c`` ``(..., L, M)``; ``x (..., L, Dv)`` → ``y (..., L, Dv)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._checks import check_ssm_attention_inputs, check_ssm_inputs

__all__ = [
    "ssm_scan",
    "ssm_matrix",
    "linear_attention_ssm",
    "gated_rfa_ssm",
]


def ssm_scan(a, b, c, x):
    """Run ``H_t = diag(a_t) H_{t-1} + b_t x_tᵀ``, ``y_t = H_tᵀ c_t`` over ``t``.

    ``a``, ``b``, ``c`` ``(..., L, M)``, ``x (..., L, Dv)`` → ``y (..., L, Dv)``.
    O(L·M·Dv) time, one ``(..., M, Dv)`` state: the sequential scan.
    """
    check_ssm_inputs(a, b, c, x)
    batch = torch.broadcast_shapes(*(t.shape[:-2] for t in (a, b, c, x)))
    h = x.new_zeros(*batch, a.shape[-1], x.shape[-1])  # (..., M, Dv)
    ys = [x.new_zeros(*batch, 0, x.shape[-1])]  # L = 0 gives an empty output
    for t in range(x.shape[-2]):
        h = a[..., t, :, None] * h + b[..., t, :, None] * x[..., t, None, :]  # (.,M,Dv)
        ys.append((c[..., t, :, None] * h).sum(dim=-2, keepdim=True))  # (..., 1, Dv)
    return torch.cat(ys, dim=-2)  # (..., L, Dv)


def ssm_matrix(a, b, c):
    """The SSM's causal ``L × L`` matrix ``W[t, j] = c_tᵀ diag(a_{j+1} ⋯ a_t) b_j``
    (``j ≤ t``, zero above the diagonal), so that ``y = W x``.

    ``a``, ``b``, ``c`` ``(..., L, M)`` → ``(..., L, L)``. O(L²·M): for reading and
    testing.
    """
    check_ssm_inputs(a, b, c)
    L = a.shape[-2]
    rows = []
    for t in range(L):
        # decay[j] = a_{j+1} ⋯ a_t for j = 0 .. t (an empty product, 1, at j = t)
        tail = a[..., 1 : t + 1, :].flip(-2).cumprod(dim=-2).flip(-2)  # (..., t, M)
        one = torch.ones_like(a[..., :1, :])  # (..., 1, M)
        decay = torch.cat([tail, one], dim=-2)  # (..., t+1, M)
        w_t = (c[..., t, None, :] * decay * b[..., : t + 1, :]).sum(dim=-1)  # (.., t+1)
        rows.append(F.pad(w_t, (0, L - t - 1)))  # (..., L)
    batch = torch.broadcast_shapes(a.shape[:-2], b.shape[:-2], c.shape[:-2])
    if not rows:
        return a.new_zeros(*batch, 0, 0)
    return torch.stack(rows, dim=-2).expand(*batch, L, L)  # (..., L, L)


def _with_normaliser(v):
    """``v (..., L, Dv)`` → ``(..., L, Dv + 1)``: a channel of ones carries ``z_t``."""
    return torch.cat([v, torch.ones_like(v[..., :1])], dim=-1)


def linear_attention_ssm(phi_q, phi_k, v, *, eps=1e-6):
    """Causal linear attention run as an SSM: ``a_t = 1``, ``b_t = φ(k_t)``,
    ``c_t = φ(q_t)``, inputs ``[v_t, 1]``.

    ``phi_q``, ``phi_k (..., L, M)``, ``v (..., L, Dv)`` → ``(..., L, Dv)``, equal to
    :func:`~attnkit.linear.linear_attention_recurrent` (denominator
    ``φ(q_t)·z_t + eps``).
    """
    check_ssm_attention_inputs(phi_q, phi_k, v, eps=eps)
    a = torch.ones_like(phi_k)  # (..., L, M): A_t = I
    y = ssm_scan(a, phi_k, phi_q, _with_normaliser(v))  # (..., L, Dv + 1)
    return y[..., :-1] / (y[..., -1:] + eps)  # (..., L, Dv)


def gated_rfa_ssm(phi_q, phi_k, v, gate, *, eps=1e-6):
    """Gated RFA run as an SSM: ``a_t = g_t·1``, ``b_t = (1 − g_t) φ(k_t)``,
    ``c_t = φ(q_t)``, inputs ``[v_t, 1]``.

    ``phi_q``, ``phi_k (..., L, M)``, ``v (..., L, Dv)``, ``gate (..., L)`` in (0, 1)
    →
    ``(..., L, Dv)``, equal to :func:`~attnkit.random_features.rfa_attention` with
    ``causal=True`` (normaliser clamped at ``eps``).
    """
    check_ssm_attention_inputs(phi_q, phi_k, v, eps=eps, gate=gate)
    g = gate.unsqueeze(-1)  # (..., L, 1)
    a = g.expand(*g.shape[:-1], phi_k.shape[-1])  # (..., L, M): A_t = g_t I
    y = ssm_scan(a, (1 - g) * phi_k, phi_q, _with_normaliser(v))  # (..., L, Dv + 1)
    return y[..., :-1] / y[..., -1:].clamp(min=eps)  # (..., L, Dv)
