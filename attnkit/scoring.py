"""Scoring functions a(q, k): how well each query matches each key.

Two classic choices, as pure functions of tensors (the modules in
:mod:`attnkit.attention` only own the parameters and call these):

* scaled dot product ``a(q, k) = q·k / √D`` — needs ``q`` and ``k`` of the same size D;
* additive ``a(q, k) = w_vᵀ tanh(W_q q + W_k k)`` — an MLP with one hidden layer of
  size h, so queries and keys may have different sizes. Its ``(..., L, S, h)``
  hidden tensor is what makes it costly in memory;
* bilinear ("general") ``a(q, k) = qᵀ W k`` — one learned matrix between the two, so
  queries and keys may differ in size, yet the scores are two matrix products.
"""

from __future__ import annotations

import math

import torch

from ._checks import check_additive_inputs, check_bilinear_inputs, check_query_key

__all__ = ["dot_product_scores", "additive_scores", "bilinear_scores"]


def dot_product_scores(
    queries: torch.Tensor, keys: torch.Tensor, *, scale: float | None = None
) -> torch.Tensor:
    """Scaled dot-product scores ``q·k * scale``.

    Args:
        queries: ``(..., L, D)``.
        keys: ``(..., S, D)`` with the same leading dimensions.
        scale: multiplier; default ``1/√D``. Pass ``1.0`` for the unscaled dot product.

    Returns:
        ``(..., L, S)``.
    """
    check_query_key(queries, keys)
    if scale is None:
        scale = 1.0 / math.sqrt(queries.shape[-1])
    # scaling the (L, D) queries, not the (L, S) scores: one L×S tensor, not two
    return (queries * scale) @ keys.transpose(-2, -1)  # (..., L, S)


def additive_scores(
    queries: torch.Tensor,
    keys: torch.Tensor,
    W_q: torch.Tensor,
    W_k: torch.Tensor,
    w_v: torch.Tensor,
) -> torch.Tensor:
    """Additive (Bahdanau) scores ``w_vᵀ tanh(W_q q + W_k k)``.

    Args:
        queries: ``(..., L, Dq)``.
        keys: ``(..., S, Dk)`` with the same leading dimensions.
        W_q: ``(h, Dq)``, as stored by ``nn.Linear(Dq, h)``.
        W_k: ``(h, Dk)``.
        w_v: ``(h,)`` or ``(1, h)``.

    Returns:
        ``(..., L, S)``.
    """
    check_additive_inputs(queries, keys, W_q, W_k, w_v)
    q = queries @ W_q.T  # (..., L, h)
    k = keys @ W_k.T  # (..., S, h)
    features = torch.tanh(q.unsqueeze(-2) + k.unsqueeze(-3))  # (..., L, S, h)
    return features @ w_v.reshape(-1)  # (..., L, S)


def bilinear_scores(
    queries: torch.Tensor, keys: torch.Tensor, W: torch.Tensor
) -> torch.Tensor:
    """Bilinear ("general") scores ``qᵀ W k`` (Luong, Pham & Manning, 2015).

    ``W`` maps a key into the queries' space, ``W k``, and the score is a dot product
    there: one ``(Dq, Dk)`` matrix instead of additive scoring's MLP.

    Args:
        queries: ``(..., L, Dq)``.
        keys: ``(..., S, Dk)`` with the same leading dimensions.
        W: ``(Dq, Dk)``.

    Returns:
        ``(..., L, S)``.
    """
    check_bilinear_inputs(queries, keys, W)
    projected = keys @ W.T  # (..., S, Dq): W k for every key
    return queries @ projected.transpose(-2, -1)  # (..., L, S)
