"""Scoring functions a(q, k): how well each query matches each key.

Two classic choices, as pure functions of tensors (the modules in
:mod:`attnkit.attention` only own the parameters and call these):

* scaled dot product ``a(q, k) = q·k / √D`` — needs ``q`` and ``k`` of the same size D;
* additive ``a(q, k) = w_vᵀ tanh(W_q q + W_k k)`` — an MLP with one hidden layer of
  size h, so queries and keys may have different sizes. Its ``(..., L, S, h)``
  hidden tensor is what makes it costly in memory.
"""
from __future__ import annotations

import math

import torch

from ._checks import check_dim, check_floating, check_min_rank, check_rank, check_same_device, check_same_dtype

__all__ = ["dot_product_scores", "additive_scores", "check_batch_dims"]


def check_batch_dims(**tensors: torch.Tensor) -> None:
    """Raise ``ValueError`` unless all tensors share their leading (batch) dimensions.

    Leading dimensions are everything but the last two; they must be equal, not
    merely broadcastable, so a batch-size mistake never broadcasts silently.
    """
    items = list(tensors.items())
    first_name, first = items[0]
    for name, t in items[1:]:
        if t.shape[:-2] != first.shape[:-2]:
            raise ValueError(
                f"{name} has leading (batch) shape {tuple(t.shape[:-2])} but {first_name} has "
                f"{tuple(first.shape[:-2])} (shapes {tuple(t.shape)} and {tuple(first.shape)})"
            )


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
    check_min_rank("queries", queries, 2, "(..., L, D)")
    check_min_rank("keys", keys, 2, "(..., S, D)")
    check_floating("queries", queries)
    check_floating("keys", keys)
    check_same_device(queries=queries, keys=keys)
    check_same_dtype(queries=queries, keys=keys)
    check_dim("keys", keys, -1, queries.shape[-1], "the queries' feature size D")
    check_batch_dims(queries=queries, keys=keys)
    if scale is None:
        scale = 1.0 / math.sqrt(queries.shape[-1])
    return (queries @ keys.transpose(-2, -1)) * scale  # (..., L, S)


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
    check_min_rank("queries", queries, 2, "(..., L, Dq)")
    check_min_rank("keys", keys, 2, "(..., S, Dk)")
    check_batch_dims(queries=queries, keys=keys)
    check_rank("W_q", W_q, 2, "(h, Dq)")
    check_rank("W_k", W_k, 2, "(h, Dk)")
    check_rank("w_v", w_v, (1, 2), "(h,) or (1, h)")
    for name, t in (("queries", queries), ("keys", keys), ("W_q", W_q), ("W_k", W_k), ("w_v", w_v)):
        check_floating(name, t)
    check_same_device(queries=queries, keys=keys, W_q=W_q, W_k=W_k, w_v=w_v)
    check_same_dtype(queries=queries, keys=keys, W_q=W_q, W_k=W_k, w_v=w_v)
    check_dim("W_q", W_q, 1, queries.shape[-1], "the queries' feature size Dq")
    check_dim("W_k", W_k, 1, keys.shape[-1], "the keys' feature size Dk")
    check_dim("W_k", W_k, 0, W_q.shape[0], "W_q's hidden size h")
    w_v = w_v.reshape(-1)
    check_dim("w_v", w_v, 0, W_q.shape[0], "W_q's hidden size h")
    q = queries @ W_q.T  # (..., L, h)
    k = keys @ W_k.T  # (..., S, h)
    features = torch.tanh(q.unsqueeze(-2) + k.unsqueeze(-3))  # (..., L, S, h)
    return features @ w_v  # (..., L, S)
