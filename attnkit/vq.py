"""Quantised keys: softmax attention over ``M`` codewords instead of ``S`` keys.

Transformer-VQ (Lingle, 2023) replaces every key ``k_j`` by its nearest codeword
``ê_{z_j}`` from a codebook ``E (M, D)``. Softmax attention over the *quantised* keys
then only sees ``M`` distinct scores per query, so the sum over keys regroups by
codeword (exactly, no approximation beyond the quantisation itself):

    out_i = Σ_j exp(q_i·ê_{z_j}) v_j / Σ_j exp(q_i·ê_{z_j})
          = Σ_m exp(q_i·e_m) U_m  /  Σ_m exp(q_i·e_m) n_m,

with ``n_m`` the number of keys quantised to codeword ``m`` and ``U_m`` the sum of their
values. That is softmax attention over the ``M`` codewords with scores
``q_i·e_m + log n_m`` and values ``U_m / n_m``: O(S·M) work to collect the counts and
sums, O(L·M·D) to attend — linear in the sequence length. Causally, query ``i`` uses
*running* counts and sums over keys ``j ≤ i``.

Shapes: ``q (..., L, D)``, ``k (..., S, D)``, ``v (..., S, Dv)``, ``codebook (M, D)``
(``M`` codewords; the paper calls their number ``C``), ``key_padding (B, S)`` with
``True`` = a real key. How the codebook is learned (k-means-like updates, a
straight-through estimator for the keys) is outside this module: the argmin gives
the keys no gradient, the codebook gets the gradient of the quantised keys.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._checks import check_vq_inputs, check_vq_quantize_inputs
from .linear import key_padding_view
from .masking import masked_softmax

__all__ = [
    "vq_quantize",
    "codeword_stats",
    "vq_attention_naive",
    "vq_attention",
]


def vq_quantize(k: torch.Tensor, codebook: torch.Tensor):
    """The nearest codeword of each key (squared distance; ties → the lower index).

    ``k (..., S, D)``, ``codebook (M, D)`` → ``(codes (..., S)`` int64,
    ``k_hat (..., S, D))``
    with ``k_hat = codebook[codes]``.
    """
    check_vq_quantize_inputs(k, codebook)
    sq_k = (k * k).sum(dim=-1, keepdim=True)  # (..., S, 1)
    dist = sq_k - 2 * k @ codebook.T + (codebook * codebook).sum(dim=-1)  # (..., S, M)
    codes = dist.argmin(dim=-1)  # (..., S)
    return codes, codebook[codes]  # (..., S), (..., S, D)


def codeword_stats(codes, v, num_codes: int, *, key_padding=None, causal=False):
    """Counts ``n_m`` and value sums ``U_m`` per codeword.

    ``codes (..., S)`` int64, ``v (..., S, Dv)``, ``key_padding (B, S)``. Returns
    ``(counts (..., M), sums (..., M, Dv))``, or causally the running versions over keys
    ``j ≤ i``: ``(counts (..., S, M), sums (..., S, M, Dv))``.
    """
    onehot = F.one_hot(codes, num_codes).to(v.dtype)  # (..., S, M)
    if key_padding is not None:
        keep = key_padding_view(key_padding, onehot.dim())  # (B, 1, ..., 1, S)
        onehot = onehot * keep[..., None]  # padded keys count for nothing
    if not causal:
        return onehot.sum(dim=-2), onehot.transpose(-2, -1) @ v  # (.., M), (.., M, Dv)
    counts = onehot.cumsum(dim=-2)  # (..., S, M)
    sums = (onehot.unsqueeze(-1) * v.unsqueeze(-2)).cumsum(dim=-3)  # (..., S, M, Dv)
    return counts, sums


def vq_attention_naive(
    q, k, v, codebook, *, key_padding=None, causal=False, scale=None
):
    """The reference: softmax attention over the quantised keys, with its ``L × S``
    matrix.

    Shapes in the module docstring; ``scale`` defaults to ``1/√D``. Returns
    ``(out (..., L, Dv), weights (..., L, S))``; a query with no allowed key gets zeros.
    """
    check_vq_inputs(q, k, v, codebook, key_padding=key_padding, causal=causal)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    _, k_hat = vq_quantize(k, codebook)  # (..., S, D)
    scores = scale * (q @ k_hat.transpose(-2, -1))  # (..., L, S)
    mask = key_padding_view(key_padding, scores.dim())  # (B, 1, ..., 1, S) or None
    mask = None if mask is None else mask.unsqueeze(-2)  # (B, 1, ..., 1, 1, S)
    weights = masked_softmax(scores, mask=mask, causal=causal)  # (..., L, S)
    return weights @ v, weights  # (..., L, Dv), (..., L, S)


def vq_attention(q, k, v, codebook, *, key_padding=None, causal=False, scale=None):
    """Softmax attention over quantised keys computed through the ``M`` codewords.

    Equal to :func:`vq_attention_naive` (up to rounding) in ``O((L + S)·M·(D + Dv))``
    time; never builds an ``L × S`` tensor. Causal memory is ``O(S·M·Dv)`` (the running
    sums). Shapes in the module docstring; returns ``(..., L, Dv)``.
    """
    check_vq_inputs(q, k, v, codebook, key_padding=key_padding, causal=causal)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    codes, _ = vq_quantize(k, codebook)  # (..., S)
    counts, sums = codeword_stats(
        codes, v, codebook.shape[0], key_padding=key_padding, causal=causal
    )  # (..., [S,] M), (..., [S,] M, Dv)
    present = counts > 0  # (..., [L,] M) codewords that some allowed key uses
    n_safe = torch.where(present, counts, torch.ones_like(counts))  # (..., [L,] M)
    means = sums / n_safe.unsqueeze(-1)  # (..., [L,] M, Dv) mean value per codeword
    if not causal:  # one row of counts for every query
        present, n_safe = present.unsqueeze(-2), n_safe.unsqueeze(-2)  # (..., 1, M)
    scores = scale * (q @ codebook.T) + n_safe.log()  # (..., L, M): q·e_m + log n_m
    w = masked_softmax(scores, mask=present)  # (..., L, M) weight of each codeword
    if not causal:
        return w @ means  # (..., L, Dv)
    return (w.unsqueeze(-2) @ means).squeeze(-2)  # (..., L, Dv)
