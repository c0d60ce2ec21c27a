"""The gated attention unit (GAU) and FLASH's mixed-chunk attention (Hua et al., 2022).

A GAU replaces a Transformer's attention *and* feed-forward layers by one unit. From
the input ``x (B, L, E)`` it computes

    U = silu(x W_uᵀ)        V = silu(x W_vᵀ)        (B, L, Dh)  gate and values
    Z = silu(x W_zᵀ)                                (B, L, D)   one shared projection
    Q = Z ⊙ γ_0 + β_0       K = Z ⊙ γ_1 + β_1       (B, L, D)   scale and offset
    A = relu(Q Kᵀ / n)²                             (B, L, L)   squared-ReLU attention
    O = (U ⊙ A V) W_oᵀ                              (B, L, E)   gate, then project

with ``n`` the sequence length. The paper's text writes ``relu²(Q Kᵀ + b)`` (``b`` a
relative-position bias); its appendix pseudo-code divides the scores by the sequence
length inside the ReLU, so the square scales ``A`` by ``1/n²``. We implement that
pseudo-code form, without the bias ``b`` (pass ``bias=`` to
:func:`squared_relu_attention` to add one) and without biases in the projections.

FLASH makes the unit linear in ``n`` with *mixed-chunk attention*: split the sequence
into chunks of ``c`` tokens; inside a chunk, squared-ReLU attention with scores divided
by ``c``; across chunks, *unnormalised* linear attention ``Q_lin (K_linᵀ V) / n`` over
all chunks — or, causally, over the strictly earlier chunks only (an exclusive prefix
sum of the chunks' ``K_linᵀ V``). Four scale/offset pairs of the same ``Z`` give the
quadratic and linear queries and keys.

Shapes use the legend: ``E`` model width (``W_o``'s rows), ``Dh`` the expanded width of
``U`` and ``V`` (the values, so ``Dv = Dh``), ``D`` the width of ``Z``, ``C`` chunks of
``c`` positions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import (
    check_gau_inputs,
    check_mixed_chunk_inputs,
    check_positive_int,
    check_real_or_none,
    check_scale_offset,
    check_squared_relu_inputs,
)
from .masking import build_mask
from .mechanisms import Mechanism

__all__ = [
    "scale_offset",
    "squared_relu_attention",
    "SquaredReLUAttention",
    "gated_attention_unit",
    "gau_naive",
    "mixed_chunk_attention_naive",
    "mixed_chunk_attention",
    "GatedAttentionUnit",
]


# ------------------------------------------------------------------------ attention
def scale_offset(z: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor):
    """Per-dimension scale and offset, ``z ⊙ γ + β``: ``z (..., L, D)``, ``γ, β (D,)``
    → ``(..., L, D)``. The GAU's only difference between its queries and keys."""
    check_scale_offset(z, gamma, beta)
    return z * gamma + beta


def squared_relu_attention(q, k, v, *, mask=None, causal=False, scale=None, bias=None):
    """Squared-ReLU attention ``A = relu(scale · q kᵀ + bias)²``, zero where masked.

    Args:
        q: ``(..., L, D)``; k: ``(..., S, D)``; v: ``(..., S, Dv)``.
        mask: boolean broadcastable to ``(..., L, S)``, ``True`` = allowed.
        causal: query ``i`` sees keys ``j ≤ i`` (top-left aligned).
        scale: multiplies the scores; ``None`` means ``1/S`` (the GAU's choice).
        bias: optional floating tensor broadcastable to ``(..., L, S)``.

    Returns:
        ``(out (..., L, Dv), weights (..., L, S))``. No normalisation: rows do not sum
        to 1, and a row with no allowed key is all zeros.
    """
    check_squared_relu_inputs(q, k, v, mask, scale, bias)
    S = k.shape[-2]
    scale = 1.0 / max(S, 1) if scale is None else scale
    scores = scale * (q @ k.transpose(-2, -1))  # (..., L, S)
    if bias is not None:
        scores = scores + bias  # (..., L, S)
    allowed = build_mask(q.shape[-2], S, mask=mask, causal=causal, device=q.device)
    weights = torch.relu(scores).square()  # (..., L, S)
    if allowed is not None:
        weights = weights.masked_fill(~allowed, 0.0)
    return weights @ v, weights  # (..., L, Dv), (..., L, S)


class SquaredReLUAttention(Mechanism):
    """Squared-ReLU attention as a mechanism (the GAU's attention, one head per call).

    ``forward(q (B, H, L, D), k (B, H, S, D), v (B, H, S, Dv), *, mask=None,
    causal=False)`` → ``(B, H, L, Dv)``; any boolean mask broadcastable to
    ``(B, H, L, S)``. Keyword-only setting: ``scale`` (``None`` = ``1/S``).
    """

    def __init__(self, *, scale: float | None = None):
        super().__init__()
        check_real_or_none("scale", scale)
        self.scale = scale
        self.attention_weights: torch.Tensor | None = None

    def forward(self, q, k, v, *, mask=None, causal=False):
        out, weights = squared_relu_attention(
            q, k, v, mask=mask, causal=causal, scale=self.scale
        )  # (B, H, L, Dv)
        self.attention_weights = weights  # (B, H, L, S)
        return out


# ---------------------------------------------------------------------------- FLASH
def mixed_chunk_attention_naive(
    q_quad, k_quad, q_lin, k_lin, v, *, chunk_size, causal=False, key_padding=None
):
    """FLASH's mixed-chunk attention with its ``n × n`` weight matrix written out.

    Shapes: four ``(..., n, D)`` tensors, ``v (..., n, Dv)``, ``key_padding (B, n)``.
    ``W = relu(Q_quad K_quadᵀ / c)²`` on pairs in the same chunk (``j ≤ i`` if causal)
    plus ``Q_lin K_linᵀ / n`` on pairs in other chunks (earlier chunks only if causal;
    all chunks, its own included, if not).

    Returns ``(out (..., n, Dv), W (..., n, n))``.
    """
    check_mixed_chunk_inputs(q_quad, k_quad, q_lin, k_lin, v, chunk_size, key_padding)
    n, c = v.shape[-2], chunk_size
    chunk = torch.arange(n, device=v.device) // c  # (n,) chunk of each position
    same = chunk[:, None] == chunk[None, :]  # (n, n)
    if causal:
        same = same & torch.ones(n, n, dtype=torch.bool, device=v.device).tril()
        across = chunk[None, :] < chunk[:, None]  # (n, n) strictly earlier chunks
    else:
        across = torch.ones(n, n, dtype=torch.bool, device=v.device)
    quad = torch.relu(q_quad @ k_quad.transpose(-2, -1) / c).square()  # (..., n, n)
    lin = q_lin @ k_lin.transpose(-2, -1) / n  # (..., n, n)
    weights = quad * same + lin * across  # (..., n, n)
    if key_padding is not None:
        keep = key_padding.reshape(key_padding.shape[0], *[1] * (v.dim() - 3), 1, n)
        weights = weights * keep  # (..., n, n): padded keys get weight 0
    return weights @ v, weights  # (..., n, Dv), (..., n, n)


def mixed_chunk_attention(
    q_quad, k_quad, q_lin, k_lin, v, *, chunk_size=64, causal=False, key_padding=None
):
    """FLASH's mixed-chunk attention in ``O(n·c·(D + Dv) + n·D·Dv)`` time.

    Same arguments and maths as :func:`mixed_chunk_attention_naive`; returns
    ``(..., n, Dv)``. ``n`` is padded up to a multiple of ``c`` with zero values (which
    add nothing: there is no normaliser), and padded keys have their values zeroed.
    """
    check_mixed_chunk_inputs(q_quad, k_quad, q_lin, k_lin, v, chunk_size, key_padding)
    n, c = v.shape[-2], chunk_size
    if key_padding is not None:
        keep = key_padding.reshape(key_padding.shape[0], *[1] * (v.dim() - 3), n, 1)
        v = v * keep  # (..., n, Dv): without a normaliser, zero values remove a key
    pad = (-n) % c

    def chunks(x):  # (..., n, F) -> (..., C, c, F)
        x = F.pad(x, (0, 0, 0, pad))
        return x.reshape(*x.shape[:-2], -1, c, x.shape[-1])

    qq, kq, ql, kl, vc = (chunks(x) for x in (q_quad, k_quad, q_lin, k_lin, v))
    quad = torch.relu(qq @ kq.transpose(-2, -1) / c).square()  # (..., C, c, c)
    if causal:
        quad = quad.tril()  # inside a chunk: j <= i
    kv = kl.transpose(-2, -1) @ vc / n  # (..., C, D, Dv) each chunk's K_lin^T V
    if causal:
        kv = torch.cumsum(F.pad(kv[..., :-1, :, :], (0, 0, 0, 0, 1, 0)), dim=-3)
        # (..., C, D, Dv) exclusive prefix: chunk g reads chunks 0 .. g-1
    else:
        kv = kv.sum(dim=-3, keepdim=True)  # (..., 1, D, Dv) all chunks
    out = quad @ vc + ql @ kv  # (..., C, c, Dv)
    return out.reshape(*out.shape[:-3], -1, out.shape[-1])[..., :n, :]  # (..., n, Dv)


# ------------------------------------------------------------------------- the unit
def gated_attention_unit(
    x,
    w_u,
    w_v,
    w_z,
    gamma,
    beta,
    w_o,
    *,
    causal=False,
    key_padding=None,
    chunk_size=None,
):
    """The GAU, ``O = (U ⊙ A V) W_oᵀ`` (see the module docstring).

    Args:
        x: ``(B, L, E)``; w_u, w_v: ``(Dh, E)``; w_z: ``(D, E)``; w_o: ``(E, Dh)``.
        gamma, beta: ``(2, D)`` (queries, keys) for squared-ReLU attention over the
            whole sequence, or ``(4, D)`` (quadratic q, k, linear q, k) with
            ``chunk_size`` for FLASH's mixed-chunk attention.
        key_padding: boolean ``(B, L)``, ``True`` = a real token.

    Returns:
        ``(B, L, E)``.
    """
    weights = {
        "w_u": w_u,
        "w_v": w_v,
        "w_z": w_z,
        "gamma": gamma,
        "beta": beta,
        "w_o": w_o,
    }
    check_gau_inputs(x, weights, 2 if chunk_size is None else 4, key_padding)
    u = F.silu(x @ w_u.T)  # (B, L, Dh) gate
    v = F.silu(x @ w_v.T)  # (B, L, Dh) values
    z = F.silu(x @ w_z.T)  # (B, L, D) shared by queries and keys
    av = _gau_attend(z, v, gamma, beta, causal, key_padding, chunk_size)  # (B, L, Dh)
    return (u * av) @ w_o.T  # (B, L, E)


def _gau_attend(z, v, gamma, beta, causal, key_padding, chunk_size):
    """The GAU's attention step ``A V``: queries and keys scale-and-offset ``z``.

    ``z (B, L, D)``, ``v (B, L, Dh)`` → ``(B, L, Dh)``: squared-ReLU attention over
    the whole sequence (``chunk_size=None``, two pairs in ``gamma``/``beta``) or FLASH's
    mixed-chunk attention (four pairs: quadratic q, k, then linear q, k).
    """
    q, k = (scale_offset(z, gamma[i], beta[i]) for i in (0, 1))  # (B, L, D) each
    if chunk_size is None:
        mask = None if key_padding is None else key_padding[:, None, :]  # (B, 1, L)
        av, _ = squared_relu_attention(q, k, v, mask=mask, causal=causal)  # (B, L, Dh)
        return av
    q_lin, k_lin = (scale_offset(z, gamma[i], beta[i]) for i in (2, 3))  # (B, L, D)
    return mixed_chunk_attention(
        q,
        k,
        q_lin,
        k_lin,
        v,
        chunk_size=chunk_size,
        causal=causal,
        key_padding=key_padding,
    )  # (B, L, Dh)


def gau_naive(x, w_u, w_v, w_z, gamma, beta, w_o, *, causal=False, key_padding=None):
    """The quadratic GAU written out, one output position at a time (the reference).

    Shapes as in :func:`gated_attention_unit`; ``gamma`` and ``beta`` are ``(2, D)``.
    """
    weights = {
        "w_u": w_u,
        "w_v": w_v,
        "w_z": w_z,
        "gamma": gamma,
        "beta": beta,
        "w_o": w_o,
    }
    check_gau_inputs(x, weights, 2, key_padding)
    n = x.shape[1]
    u, v, z = F.silu(x @ w_u.T), F.silu(x @ w_v.T), F.silu(x @ w_z.T)  # (B, L, Dh|Dh|D)
    k = z * gamma[1] + beta[1]  # (B, L, D)
    outs = []
    for i in range(n):
        q_i = z[:, i] * gamma[0] + beta[0]  # (B, D)
        a_i = torch.relu((k * q_i[:, None, :]).sum(-1) / n).square()  # (B, L)
        if causal:
            a_i = a_i * (torch.arange(n, device=x.device) <= i)  # (B, L)
        if key_padding is not None:
            a_i = a_i * key_padding  # (B, L)
        av_i = (a_i[:, :, None] * v).sum(dim=1)  # (B, Dh)
        outs.append((u[:, i] * av_i) @ w_o.T)  # (B, E)
    return torch.stack(outs, dim=1) if outs else x.new_zeros(x.shape)  # (B, L, E)


class GatedAttentionUnit(nn.Module):
    """A GAU layer that owns its weights and calls :func:`gated_attention_unit`.

    Args:
        dim: the model width ``E``.
        hidden (keyword): ``Dh``, default ``2 · E``; qk_dim: ``D``, default 128;
        chunk_size: ``None`` for squared-ReLU attention over the whole sequence
            (FLASH-Quad), or ``c`` for FLASH's mixed-chunk attention;
        seed: draws the initial weights.

    ``forward(x (B, L, E), *, causal=False, key_padding=None)`` → ``(B, L, E)``; add the
    residual and a normalisation outside, as the block around it chooses.
    """

    def __init__(
        self,
        dim: int,
        *,
        hidden: int | None = None,
        qk_dim: int = 128,
        chunk_size: int | None = None,
        seed: int = 0,
    ):
        super().__init__()
        check_positive_int("dim", dim)
        hidden = 2 * dim if hidden is None else hidden
        check_positive_int("hidden", hidden)
        check_positive_int("qk_dim", qk_dim)
        if chunk_size is not None:
            check_positive_int("chunk_size", chunk_size)
        self.chunk_size = chunk_size
        g = torch.Generator().manual_seed(seed)
        pairs = 2 if chunk_size is None else 4

        def init(*shape, fan_in):
            return nn.Parameter(torch.randn(*shape, generator=g) / fan_in**0.5)

        self.w_u = init(hidden, dim, fan_in=dim)  # (Dh, E)
        self.w_v = init(hidden, dim, fan_in=dim)  # (Dh, E)
        self.w_z = init(qk_dim, dim, fan_in=dim)  # (D, E)
        self.w_o = init(dim, hidden, fan_in=hidden)  # (E, Dh)
        self.gamma = nn.Parameter(1.0 + 0.1 * torch.randn(pairs, qk_dim, generator=g))
        self.beta = nn.Parameter(torch.zeros(pairs, qk_dim))

    def forward(self, x, *, causal=False, key_padding=None):
        return gated_attention_unit(
            x,
            self.w_u,
            self.w_v,
            self.w_z,
            self.gamma,
            self.beta,
            self.w_o,
            causal=causal,
            key_padding=key_padding,
            chunk_size=self.chunk_size,
        )
