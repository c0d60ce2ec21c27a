"""Linear attention: drop the softmax, keep a kernel, reorder the products.

With a feature map φ, the similarity of query ``i`` and key ``j`` is ``φ(q_i)·φ(k_j)``
and the output is

    out_i = Σ_j (φ(q_i)·φ(k_j)) v_j / Σ_j φ(q_i)·φ(k_j).

Because there is no softmax, the sums can be regrouped (associativity):
``φ(Q) (φ(K)ᵀ V)`` costs O(n·M·Dv) instead of O(n²). Causal attention becomes an RNN
whose state is ``S_i = Σ_{j≤i} φ(k_j) v_jᵀ`` (M × Dv) and ``z_i = Σ_{j≤i} φ(k_j)`` (M),
computed here three ways that agree: a recurrence (with a step API for decoding), a
cumulative sum of outer products, and a chunked form.

Every form takes the **already-mapped features** ``φ(Q)``, ``φ(K)`` so that random
feature maps (chapter 8) reuse them unchanged. Shapes: ``phi_q (..., L, M)``,
``phi_k (..., S, M)``, ``v (..., S, Dv)`` → ``(..., L, Dv)``; ``key_padding`` is a boolean
``(B, S)`` tensor (``True`` = real key) with ``B = phi_k.shape[0]``, broadcast over the other
leading axes (e.g. the heads of ``(B, H, S, M)`` features) — no other shape is accepted.

Numerics: the denominator is ``φ(q_i)·z_i + eps`` (``eps`` keeps it away from 0, so a
query that sees no key gets exactly 0); states are accumulated in at least float32
even for half-precision inputs, and the result is cast back.

Bad input: each public function validates its arguments in one call to
:mod:`attnkit._checks` (real floating tensors on one device, matching sizes; integer,
boolean and complex tensors raise ``TypeError``). Empty sizes are fine: ``L = 0`` or an
empty batch gives an empty ``(..., L, Dv)`` output, ``S = 0`` (no key) gives zeros.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F

from ._checks import (
    LINEAR_CAUSAL_FORMS,
    check_feature_inputs,
    check_floating,
    check_key_features,
    check_linear_inputs,
    check_positive_int,
    check_positive_real,
    check_state_settings,
    check_step_inputs,
)
from .mechanisms import Mechanism, key_padding_from_mask

__all__ = [
    "elu_feature_map",
    "relu_feature_map",
    "FEATURE_MAPS",
    "accumulation_dtype",
    "key_padding_view",
    "align_causal",
    "mask_key_features",
    "linear_attention_naive",
    "linear_attention_noncausal",
    "NoncausalLinearFunction",
    "LinearState",
    "linear_attention_init_state",
    "linear_attention_step",
    "linear_attention_recurrent",
    "linear_attention_cumsum",
    "linear_attention_chunked_teaching",
    "linear_attention_chunked",
    "exclusive_chunk_states",
    "chunk_outputs",
    "linear_attention",
    "LinearAttention",
]

CAUSAL_FORMS = LINEAR_CAUSAL_FORMS  # ("chunked", "cumsum", "recurrent")


def elu_feature_map(x: torch.Tensor) -> torch.Tensor:
    """φ(x) = elu(x) + 1, positive everywhere (Katharopoulos et al., 2020).

    ``(..., D) → (..., D)``, computed in at least float32 (see
    :func:`accumulation_dtype`).
    """
    check_floating("x", x)
    return F.elu(x.to(accumulation_dtype(x.dtype))).add_(1.0)  # in place: one buffer


def relu_feature_map(x: torch.Tensor) -> torch.Tensor:
    """φ(x) = max(x, 0): non-negative, may be all zero (then ``eps`` gives a zero output).
    ``(..., D) → (..., D)`` in at least float32."""
    check_floating("x", x)
    return F.relu(x.to(accumulation_dtype(x.dtype)))


FEATURE_MAPS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "elu": elu_feature_map,
    "relu": relu_feature_map,
}


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype sums are accumulated in: at least float32 (half-precision inputs accumulate
    their states and normalisers in float32; float64 stays float64)."""
    return torch.promote_types(dtype, torch.float32)


def key_padding_view(
    key_padding: torch.Tensor | None, ndim: int
) -> torch.Tensor | None:
    """A ``(B, S)`` key-padding mask viewed as ``(B, 1, …, 1, S)`` with ``ndim − 1`` axes, so it
    broadcasts against the ``(B, …, S)`` leading-and-key axes of an ``ndim``-axis key tensor
    (e.g. ``(B, 1, S)`` for ``(B, H, S, M)`` features). ``None`` stays ``None``."""
    if key_padding is None:
        return None
    B, S = key_padding.shape
    return key_padding.reshape(B, *([1] * (ndim - 3)), S)  # (B, 1, ..., 1, S)


def mask_key_features(
    phi_k: torch.Tensor, key_padding: torch.Tensor | None
) -> torch.Tensor:
    """Zero the feature rows of padded keys: ``phi_k (B, ..., S, M)``, ``key_padding (B, S)``
    (True = real key) → ``(B, ..., S, M)``.

    A masked key must leave the numerator *and* the denominator; zeroing ``v`` alone
    would keep it in the denominator ``Σ_j φ(q)·φ(k_j)``.
    """
    check_key_features(phi_k, key_padding)
    if key_padding is None:
        return phi_k
    keep = key_padding_view(key_padding, phi_k.dim())  # (B, 1, ..., 1, S)
    return torch.where(
        keep[..., None], phi_k, torch.zeros((), dtype=phi_k.dtype, device=phi_k.device)
    )


def _prepare(phi_q, phi_k, v, key_padding):
    """Accumulation dtype, masked key features (arguments already checked)."""
    acc = accumulation_dtype(phi_q.dtype)
    phi_k = mask_key_features(phi_k.to(acc), key_padding)  # (B, ..., S, M)
    return phi_q.to(acc), phi_k, v.to(acc), v.dtype


def align_causal(phi_k: torch.Tensor, v: torch.Tensor, num_queries: int):
    """Top-left causal alignment for the prefix forms: query ``i`` sees keys ``0..i``.

    ``phi_k (..., S, M)``, ``v (..., S, Dv)`` → ``(..., L, M)``, ``(..., L, Dv)``: keys past
    the last query are never seen (dropped); when there are fewer keys than queries, zero
    feature rows are appended (they add nothing to the states ``S`` or ``z``).
    """
    s = phi_k.shape[-2]
    if s >= num_queries:
        return phi_k[..., :num_queries, :], v[
            ..., :num_queries, :
        ]  # (..., L, M), (..., L, Dv)
    pad = num_queries - s
    phi_k = F.pad(phi_k, (0, 0, 0, pad))  # (..., L, M)
    v = F.pad(v, (0, 0, 0, pad))  # (..., L, Dv)
    return phi_k, v


def linear_attention_naive(
    phi_q, phi_k, v, *, key_padding=None, causal=False, eps=1e-6
):
    """The dense reference: build the ``L × S`` similarities and normalise their rows.

    Args:
        phi_q: ``(..., L, M)``; phi_k: ``(..., S, M)``; v: ``(..., S, Dv)``.
        key_padding: boolean ``(B, S)``, ``B = phi_k.shape[0]``, True = real key.
        causal: query ``i`` sees keys ``j ≤ i`` (top-left aligned).

    Returns:
        ``(out (..., L, Dv), weights (..., L, S))``, ``weights = sim / (Σ_j sim + eps)``
        (rows sum to 1 up to ``eps``; a row that sees no key is zero), in ``v``'s dtype.
    """
    check_feature_inputs(phi_q, phi_k, v, key_padding=key_padding, eps=eps)
    phi_q, phi_k, v, out_dtype = _prepare(phi_q, phi_k, v, key_padding)
    sim = phi_q @ phi_k.transpose(-2, -1)  # (..., L, S)
    if causal:
        L, S = sim.shape[-2], sim.shape[-1]
        allowed = torch.ones(L, S, dtype=torch.bool, device=sim.device).tril()  # (L, S)
        sim = sim.masked_fill(~allowed, 0.0)
    weights = sim / (sim.sum(dim=-1, keepdim=True) + eps)  # (..., L, S)
    return (weights @ v).to(out_dtype), weights.to(
        out_dtype
    )  # (..., L, Dv), (..., L, S)


def linear_attention_noncausal(phi_q, phi_k, v, *, key_padding=None, eps=1e-6):
    """Associativity: ``φ(Q) (φ(K)ᵀ V)``, O(n·M·Dv) time, O(M·Dv) extra memory.

    Shapes as in :func:`linear_attention_naive`. Returns ``(..., L, Dv)``.
    The products are in :class:`NoncausalLinearFunction` (its ``forward``), which also
    writes their gradient by hand: autograd's own backward of the division makes several
    ``(..., L, Dv)`` temporaries and keeps the numerator.
    """
    check_feature_inputs(phi_q, phi_k, v, key_padding=key_padding, eps=eps)
    phi_q, phi_k, v, out_dtype = _prepare(phi_q, phi_k, v, key_padding)
    return NoncausalLinearFunction.apply(phi_q, phi_k, v, eps).to(out_dtype)


class NoncausalLinearFunction(torch.autograd.Function):
    """``out = φ(Q) S / (φ(Q) z + eps)`` with ``S = φ(K)ᵀ V``, ``z = φ(K)ᵀ 1``, and its
    gradient written out (features already masked, in the accumulation dtype).

    ``phi_q (..., L, M)``, ``phi_k (..., S, M)``, ``v (..., S, Dv)`` → ``(..., L, Dv)``.
    Saved for backward: the inputs, ``S``, ``z`` and the ``(..., L, 1)`` inverse
    denominators ``r = 1 / (φ(Q) z + eps)`` — no ``(..., L, Dv)`` tensor.
    """

    @staticmethod
    def forward(ctx, phi_q, phi_k, v, eps):
        kv = phi_k.transpose(-2, -1) @ v  # (..., M, Dv)
        z = phi_k.sum(dim=-2, keepdim=True)  # (..., 1, M)
        r = (phi_q @ z.transpose(-2, -1)).add_(eps).reciprocal_()  # (..., L, 1)
        ctx.save_for_backward(phi_q, phi_k, v, kv, z, r)
        return (phi_q @ kv).mul_(r)  # (..., L, Dv), in place: one buffer

    @staticmethod
    def backward(ctx, grad):
        """With ``g = grad · r``: ``∂φ(Q) = g Sᵀ + d zᵀ``, where ``d = −r (φ(Q)·g Sᵀ)`` is
        the gradient of the denominator; ``∂S = φ(Q)ᵀ g``, ``∂z = φ(Q)ᵀ d``;
        ``∂φ(K) = V ∂Sᵀ + 1 ∂zᵀ``, ``∂V = φ(K) ∂S``."""
        phi_q, phi_k, v, kv, z, r = ctx.saved_tensors
        g = grad * r  # (..., L, Dv)
        g_q = g @ kv.transpose(-2, -1)  # (..., L, M)
        d = (phi_q * g_q).sum(dim=-1, keepdim=True).mul_(r).neg_()  # (..., L, 1)
        g_q.addcmul_(d, z)  # (..., L, M)
        g_kv = phi_q.transpose(-2, -1) @ g  # (..., M, Dv)
        g_z = (phi_q.transpose(-2, -1) @ d).transpose(-2, -1)  # (..., 1, M)
        g_k = (v @ g_kv.transpose(-2, -1)).add_(g_z)  # (..., S, M)
        g_v = phi_k @ g_kv  # (..., S, Dv)
        return (
            g_q.sum_to_size(phi_q.shape),
            g_k.sum_to_size(phi_k.shape),
            g_v.sum_to_size(v.shape),
            None,
        )


class LinearState(NamedTuple):
    """The RNN state of causal linear attention after some tokens.

    ``kv``: ``S = Σ_j φ(k_j) v_jᵀ``, shape ``(..., M, Dv)``;
    ``z``: ``Σ_j φ(k_j)``, shape ``(..., M)``. Kept in float32 (or float64).
    """

    kv: torch.Tensor
    z: torch.Tensor


def linear_attention_init_state(
    batch_shape, num_features: int, value_dim: int, *, dtype=torch.float32, device=None
) -> LinearState:
    """An empty state: zeros ``(*batch_shape, M, Dv)`` and ``(*batch_shape, M)``, in
    ``accumulation_dtype(dtype)``."""
    check_state_settings(batch_shape, num_features, value_dim, dtype)
    acc = accumulation_dtype(dtype)
    kv = torch.zeros(
        *batch_shape, num_features, value_dim, dtype=acc, device=device
    )  # (..., M, Dv)
    z = torch.zeros(*batch_shape, num_features, dtype=acc, device=device)  # (..., M)
    return LinearState(kv, z)


def linear_attention_step(
    state: LinearState, phi_q_i, phi_k_i, v_i, *, key_allowed=None, eps=1e-6
):
    """One decoding step: add token ``i`` to the state, then read it with query ``i``.

    Args:
        state: :class:`LinearState` with ``kv (..., M, Dv)``, ``z (..., M)``.
        phi_q_i, phi_k_i: ``(..., M)``; v_i: ``(..., Dv)``.
        key_allowed: optional boolean ``(...)``; False = this key is padding
            (not added).

    Returns:
        ``(out_i (..., Dv), new_state)``; ``out_i`` has ``v_i``'s dtype.
    """
    check_step_inputs(state, phi_q_i, phi_k_i, v_i, key_allowed, eps)
    acc = state.kv.dtype
    phi_q_i, phi_k_i, v_i_acc = phi_q_i.to(acc), phi_k_i.to(acc), v_i.to(acc)
    if key_allowed is not None:
        phi_k_i = torch.where(
            key_allowed[..., None],
            phi_k_i,
            torch.zeros((), dtype=acc, device=phi_k_i.device),
        )
    kv = state.kv + phi_k_i.unsqueeze(-1) * v_i_acc.unsqueeze(-2)  # (..., M, Dv)
    z = state.z + phi_k_i  # (..., M)
    num = (phi_q_i.unsqueeze(-2) @ kv).squeeze(-2)  # (..., Dv)
    den = (phi_q_i * z).sum(dim=-1, keepdim=True) + eps  # (..., 1)
    return (num / den).to(v_i.dtype), LinearState(kv, z)


def linear_attention_recurrent(phi_q, phi_k, v, *, key_padding=None, eps=1e-6):
    """Causal form (a): the recurrence, one token at a time. O(n) steps, O(M·Dv) state.

    Shapes as in :func:`linear_attention_naive`. Returns ``(..., L, Dv)``.
    """
    check_feature_inputs(phi_q, phi_k, v, key_padding=key_padding, eps=eps)
    phi_q, phi_k, v, out_dtype = _prepare(phi_q, phi_k, v, key_padding)
    L = phi_q.shape[-2]
    phi_k, v = align_causal(phi_k, v, L)  # (..., L, M), (..., L, Dv)
    batch = torch.broadcast_shapes(phi_q.shape[:-2], phi_k.shape[:-2], v.shape[:-2])
    state = linear_attention_init_state(
        batch, phi_q.shape[-1], v.shape[-1], dtype=phi_q.dtype, device=phi_q.device
    )
    outs = []
    for i in range(L):
        out_i, state = linear_attention_step(
            state, phi_q[..., i, :], phi_k[..., i, :], v[..., i, :], eps=eps
        )
        outs.append(out_i)
    if not outs:
        return v.new_zeros(*batch, 0, v.shape[-1]).to(out_dtype)
    return torch.stack(outs, dim=-2).to(out_dtype)  # (..., L, Dv)


def linear_attention_cumsum(phi_q, phi_k, v, *, key_padding=None, eps=1e-6):
    """Causal form (b): inclusive cumulative sum of the outer products ``φ(k_j) v_jᵀ``.

    Fast (parallel) but stores every prefix state: O(L·M·Dv) memory.
    Shapes as in :func:`linear_attention_naive`. Returns ``(..., L, Dv)``.
    """
    check_feature_inputs(phi_q, phi_k, v, key_padding=key_padding, eps=eps)
    phi_q, phi_k, v, out_dtype = _prepare(phi_q, phi_k, v, key_padding)
    phi_k, v = align_causal(phi_k, v, phi_q.shape[-2])  # (..., L, M), (..., L, Dv)
    kv = torch.cumsum(phi_k.unsqueeze(-1) * v.unsqueeze(-2), dim=-3)  # (..., L, M, Dv)
    z = torch.cumsum(phi_k, dim=-2)  # (..., L, M)
    num = (phi_q.unsqueeze(-2) @ kv).squeeze(-2)  # (..., L, Dv)
    den = (phi_q * z).sum(dim=-1, keepdim=True) + eps  # (..., L, 1)
    return (num / den).to(out_dtype)


# chunk states computed at once by the chunked form (a few MB, so they stay in cache)
GROUP_STATE_BYTES = 2**22


def _split_chunks(x, chunk_size: int):
    """``(..., L, F) → (..., N, C, F)``.

    ``L`` is zero-padded up to a multiple of ``C`` only when needed.
    """
    pad = (-x.shape[-2]) % chunk_size
    if pad:
        x = F.pad(x, (0, 0, 0, pad))  # (..., N·C, F)
    return x.reshape(*x.shape[:-2], -1, chunk_size, x.shape[-1])  # (..., N, C, F)


def linear_attention_chunked_teaching(
    phi_q, phi_k, v, *, key_padding=None, chunk_size=64, eps=1e-6
):
    """Causal linear attention, one chunk of ``C`` tokens at a time (teaching version).

    The state ``S = Σ φ(k_j) v_jᵀ`` and normaliser ``z = Σ φ(k_j)`` of all earlier
    chunks are carried from chunk to chunk; inside a chunk, query ``i`` also sees the
    chunk's keys ``j ≤ i`` through the masked similarities ``φ(q_i)·φ(k_j)``. Same
    maths and shapes as :func:`linear_attention_chunked`, which vectorises it over
    chunks.
    """
    check_feature_inputs(
        phi_q, phi_k, v, key_padding=key_padding, eps=eps, chunk_size=chunk_size
    )
    phi_q, phi_k, v, out_dtype = _prepare(phi_q, phi_k, v, key_padding)
    L = phi_q.shape[-2]
    phi_k, v = align_causal(phi_k, v, L)  # (..., L, M), (..., L, Dv)
    S = phi_k.new_zeros(*phi_k.shape[:-2], phi_k.shape[-1], v.shape[-1])  # (..., M, Dv)
    z = phi_k.new_zeros(*phi_k.shape[:-2], 1, phi_k.shape[-1])  # (..., 1, M)
    batch = torch.broadcast_shapes(phi_q.shape[:-2], phi_k.shape[:-2], v.shape[:-2])
    outs = [v.new_zeros(*batch, 0, v.shape[-1])]
    for i0 in range(0, L, chunk_size):
        q, k, vc = (x[..., i0 : i0 + chunk_size, :] for x in (phi_q, phi_k, v))
        sim = (q @ k.transpose(-2, -1)).tril()  # (..., C, C): keys j <= i of the chunk
        num = q @ S + sim @ vc  # (..., C, Dv)
        den = q @ z.transpose(-2, -1) + sim.sum(-1, keepdim=True) + eps  # (..., C, 1)
        outs.append(num / den)  # (..., C, Dv)
        S = S + k.transpose(-2, -1) @ vc  # the chunk joins the state
        z = z + k.sum(-2, keepdim=True)
    return torch.cat(outs, dim=-2).to(out_dtype)  # (..., L, Dv)


def linear_attention_chunked(
    phi_q, phi_k, v, *, key_padding=None, chunk_size=64, eps=1e-6
):
    """Causal form (c): exact (masked) attention inside each chunk of ``C`` tokens plus
    the state carried from all *earlier* chunks.

    :func:`linear_attention_chunked_teaching` vectorised over a group of ``G`` chunks at
    a time (about ``GROUP_STATE_BYTES`` of chunk states, so they stay in cache), in two
    named steps: :func:`exclusive_chunk_states` (across chunks the prefix of chunk
    states is **exclusive**: chunk ``c`` sees chunks ``< c``) and :func:`chunk_outputs`
    (inside a chunk the mask is the **inclusive** lower triangle, ``j ≤ i``). The
    running state is carried from group to group. O(L·C + G·M·Dv) extra memory. Shapes
    as in :func:`linear_attention_naive`.
    """
    check_feature_inputs(
        phi_q, phi_k, v, key_padding=key_padding, eps=eps, chunk_size=chunk_size
    )
    phi_q, phi_k, v, out_dtype = _prepare(phi_q, phi_k, v, key_padding)
    L, M, Dv = phi_q.shape[-2], phi_q.shape[-1], v.shape[-1]
    phi_k, v = align_causal(phi_k, v, L)  # (..., L, M), (..., L, Dv)
    batch = torch.broadcast_shapes(phi_q.shape[:-2], phi_k.shape[:-2], v.shape[:-2])
    if L == 0 or batch.numel() == 0:  # nothing to compute: an empty (..., L, Dv) output
        return v.new_zeros(*batch, L, Dv).to(out_dtype)
    C = min(chunk_size, L)
    q_c, k_c, v_c = (
        _split_chunks(x.expand(*batch, L, x.shape[-1]), C) for x in (phi_q, phi_k, v)
    )  # (..., N, C, M), (..., N, C, M), (..., N, C, Dv)
    state_bytes = batch.numel() * M * Dv * phi_q.element_size()
    G = max(1, GROUP_STATE_BYTES // state_bytes)  # chunks per group
    kv_carry = phi_q.new_zeros(*batch, 1, M, Dv)  # (..., 1, M, Dv): all earlier groups
    z_carry = phi_q.new_zeros(*batch, 1, M)  # (..., 1, M)
    outs = []
    for start in range(0, q_c.shape[-3], G):
        q_g, k_g, v_g = (x[..., start : start + G, :, :] for x in (q_c, k_c, v_c))
        kv_prev, z_prev, kv_carry, z_carry = exclusive_chunk_states(
            k_g, v_g, kv_carry, z_carry
        )  # (..., G, M, Dv), (..., G, M), (..., 1, M, Dv), (..., 1, M)
        outs.append(
            chunk_outputs(q_g, k_g, v_g, kv_prev, z_prev, eps)
        )  # (..., G, C, Dv)
    out = torch.cat(outs, dim=-3).reshape(*batch, -1, Dv)[..., :L, :]  # (..., L, Dv)
    return out.to(out_dtype)


def exclusive_chunk_states(k_g, v_g, kv_carry, z_carry):
    """Step 1 of the chunked form: what each chunk of a group reads from earlier chunks.

    Args:
        k_g: ``(..., G, C, M)``; v_g: ``(..., G, C, Dv)``: a group of ``G`` chunks.
        kv_carry: ``(..., 1, M, Dv)``; z_carry: ``(..., 1, M)``: the state of all
            earlier groups.

    Returns:
        ``kv_prev (..., G, M, Dv)`` and ``z_prev (..., G, M)``, chunk ``c``'s state of
        chunks ``< c`` (an exclusive prefix sum), and the carries for the next group.
    """
    kv = k_g.transpose(-2, -1) @ v_g  # (..., G, M, Dv) one state per chunk
    kv_prev = torch.cumsum(F.pad(kv[..., :-1, :, :], (0, 0, 0, 0, 1, 0)), dim=-3)
    kv_prev = kv_prev.add_(kv_carry)  # (..., G, M, Dv)
    z = k_g.sum(dim=-2)  # (..., G, M)
    z_prev = torch.cumsum(F.pad(z[..., :-1, :], (0, 0, 1, 0)), dim=-2).add_(z_carry)
    kv_next = kv_prev[..., -1:, :, :] + kv[..., -1:, :, :]  # (..., 1, M, Dv)
    z_next = z_prev[..., -1:, :] + z[..., -1:, :]  # (..., 1, M)
    return kv_prev, z_prev, kv_next, z_next


def chunk_outputs(q_g, k_g, v_g, kv_prev, z_prev, eps):
    """Step 2 of the chunked form: each chunk's outputs from its state and its own keys.

    Inside a chunk, dense similarities with the inclusive lower triangle (``j ≤ i``).
    Shapes as in :func:`exclusive_chunk_states`, ``q_g (..., G, C, M)``; returns
    ``(..., G, C, Dv)``.
    """
    C = q_g.shape[-2]
    tril = torch.ones(C, C, dtype=torch.bool, device=q_g.device).tril()  # (C, C)
    sim = q_g @ k_g.transpose(-2, -1)  # (..., G, C, C), a fresh tensor
    sim = sim.masked_fill_(~tril, 0.0)
    den = (
        q_g @ z_prev.unsqueeze(-1) + sim.sum(dim=-1, keepdim=True) + eps
    )  # (..., G, C, 1)
    return (q_g @ kv_prev).add_(sim @ v_g).div_(den)  # (..., G, C, Dv)


def linear_attention(
    phi_q,
    phi_k,
    v,
    *,
    key_padding=None,
    causal=False,
    causal_form="chunked",
    chunk_size=64,
    eps=1e-6,
):
    """Linear attention on mapped features, choosing the fast form.

    Non-causal: :func:`linear_attention_noncausal`. Causal: ``causal_form`` picks
    ``"chunked"`` (default), ``"cumsum"`` or ``"recurrent"``. Shapes as in
    :func:`linear_attention_naive`; returns ``(..., L, Dv)``.
    """
    check_linear_inputs(
        phi_q,
        phi_k,
        v,
        key_padding=key_padding,
        causal_form=causal_form,
        chunk_size=chunk_size,
        eps=eps,
    )
    if not causal:
        return linear_attention_noncausal(
            phi_q, phi_k, v, key_padding=key_padding, eps=eps
        )
    if causal_form == "chunked":
        return linear_attention_chunked(
            phi_q, phi_k, v, key_padding=key_padding, chunk_size=chunk_size, eps=eps
        )
    if causal_form == "cumsum":
        return linear_attention_cumsum(
            phi_q, phi_k, v, key_padding=key_padding, eps=eps
        )
    return linear_attention_recurrent(phi_q, phi_k, v, key_padding=key_padding, eps=eps)


class LinearAttention(Mechanism):
    """Linear attention as a mechanism (Katharopoulos et al., 2020).

    Args (keyword-only):
        feature_map: ``"elu"`` (elu + 1, default), ``"relu"``, or a callable
            ``(..., D) → (..., M)``.
        chunk_size: chunk length ``C`` of the chunked causal form.
        causal_form: ``"chunked"`` (default), ``"cumsum"`` or ``"recurrent"``.
        eps: added to the denominator.

    ``forward(q (B, H, L, D), k (B, H, S, D), v (B, H, S, Dv), *, mask=None, causal=False)``
    → ``(B, H, L, Dv)``; ``mask`` must be a key-padding mask ``(B, 1, 1, S)`` or ``(B, S)``.
    The constructor checks its settings; ``forward`` leaves the inputs to the functions it calls.
    """

    def __init__(
        self,
        *,
        feature_map="elu",
        chunk_size: int = 64,
        causal_form: str = "chunked",
        eps: float = 1e-6,
    ):
        super().__init__()
        if isinstance(feature_map, str):
            if feature_map not in FEATURE_MAPS:
                raise ValueError(
                    f"feature_map must be one of {sorted(FEATURE_MAPS)} or a callable, "
                    f"got {feature_map!r}"
                )
            self.feature_map = FEATURE_MAPS[feature_map]
        elif callable(feature_map):
            self.feature_map = feature_map
        else:
            raise TypeError(
                f"feature_map must be a name or a callable, got {type(feature_map).__name__}"
            )
        if causal_form not in CAUSAL_FORMS:
            raise ValueError(
                f"causal_form must be one of {CAUSAL_FORMS}, got {causal_form!r}"
            )
        check_positive_int("chunk_size", chunk_size)
        check_positive_real("eps", eps)
        self.chunk_size = chunk_size
        self.causal_form = causal_form
        self.eps = eps

    def forward(self, q, k, v, *, mask=None, causal=False):
        kp = (
            None
            if mask is None
            else key_padding_from_mask(mask, k.shape[0], k.shape[-2], "linear")
        )
        phi_q = self.feature_map(q)  # (B, H, L, M)
        phi_k = self.feature_map(k)  # (B, H, S, M)
        return linear_attention(
            phi_q,
            phi_k,
            v,
            key_padding=kp,
            causal=causal,
            causal_form=self.causal_form,
            chunk_size=self.chunk_size,
            eps=self.eps,
        )  # (B, H, L, Dv)
