"""Attention pooling: scores → masked softmax → weighted sum of values.

Functions return ``(output, weights)`` explicitly; the d2l-compatible modules
:class:`DotProductAttention` and :class:`AdditiveAttention` keep the last weights
in ``attention_weights`` for plotting, as d2l's do, and so does
:class:`BilinearAttention` (Luong's "general" score, which d2l does not have).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import (
    check_additive_inputs,
    check_attend_inputs,
    check_attention_inputs,
    check_bilinear_inputs,
)
from .masking import masked_softmax
from .scoring import additive_scores, bilinear_scores, dot_product_scores

__all__ = [
    "attend",
    "dot_product_attention",
    "additive_attention",
    "bilinear_attention",
    "DotProductAttention",
    "AdditiveAttention",
    "BilinearAttention",
]


def attend(weights: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Weighted sum of values: ``(..., L, S) @ (..., S, Dv) -> (..., L, Dv)``.

    The leading (batch) dimensions of ``weights`` and ``values`` must be equal.
    """
    check_attend_inputs(weights, values)
    return weights @ values  # (..., L, Dv)


def dot_product_attention(
    queries: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    *,
    mask: torch.Tensor | None = None,
    valid_lens: torch.Tensor | None = None,
    causal: bool = False,
    scale: float | None = None,
    dropout: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled dot-product attention, written out step by step.

    ``softmax(Q Kᵀ / √D) V`` with masking. This is the reference every faster
    mechanism in attnkit is compared with.

    Args:
        queries: ``(..., L, D)``.
        keys: ``(..., S, D)``.
        values: ``(..., S, Dv)``.
        mask: boolean broadcastable to ``(..., L, S)``, ``True`` = allowed.
        valid_lens: ``(B,)`` or ``(B, L)`` (d2l style; inputs must then be 3-D).
        causal: forbid keys after the query's position (top-left aligned).
        scale: score multiplier, default ``1/√D``.
        dropout: probability of dropping each weight before the values are summed (pass
            ``0.0`` outside training); the returned weights are those before dropout.

    Returns:
        ``(output (..., L, Dv), weights (..., L, S))``. With no keys (``S = 0``) the
        output is zeros, as for any query with nothing to attend to.
    """
    check_attention_inputs(queries, keys, values, valid_lens=valid_lens, mask=mask)
    scores = dot_product_scores(queries, keys, scale=scale)  # (..., L, S)
    weights = masked_softmax(
        scores, valid_lens, mask=mask, causal=causal
    )  # (..., L, S)
    return attend(F.dropout(weights, p=dropout), values), weights


def additive_attention(
    queries: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    W_q: torch.Tensor,
    W_k: torch.Tensor,
    w_v: torch.Tensor,
    *,
    mask: torch.Tensor | None = None,
    valid_lens: torch.Tensor | None = None,
    dropout: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Additive attention: ``softmax(w_vᵀ tanh(W_q q + W_k k)) V`` with masking.

    Shapes as in :func:`dot_product_attention`, except that queries ``(..., L, Dq)``
    and keys ``(..., S, Dk)`` may differ in size; see :func:`additive_scores` for
    the weights. ``dropout`` as in :func:`dot_product_attention`.
    """
    check_additive_inputs(queries, keys, W_q, W_k, w_v, values)
    scores = additive_scores(queries, keys, W_q, W_k, w_v)  # (..., L, S)
    weights = masked_softmax(scores, valid_lens, mask=mask)  # (..., L, S)
    return attend(F.dropout(weights, p=dropout), values), weights


def bilinear_attention(
    queries: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    W: torch.Tensor,
    *,
    mask: torch.Tensor | None = None,
    valid_lens: torch.Tensor | None = None,
    dropout: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bilinear attention: ``softmax(Q W Kᵀ) V`` with masking.

    Shapes as in :func:`additive_attention`, with ``W (Dq, Dk)`` (see
    :func:`bilinear_scores`). ``dropout`` as in :func:`dot_product_attention`.
    """
    check_bilinear_inputs(queries, keys, W, values)
    scores = bilinear_scores(queries, keys, W)  # (..., L, S)
    weights = masked_softmax(scores, valid_lens, mask=mask)  # (..., L, S)
    return attend(F.dropout(weights, p=dropout), values), weights


class DotProductAttention(nn.Module):
    """Scaled dot-product attention with dropout on the weights (d2l's signature).

    ``forward(queries (B, L, D), keys (B, S, D), values (B, S, Dv), valid_lens=None)``
    returns ``(B, L, Dv)`` and stores the weights ``(B, L, S)`` in
    ``attention_weights``.
    """

    def __init__(self, dropout: float = 0.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.attention_weights: torch.Tensor | None = None

    def forward(
        self, queries, keys, values, valid_lens=None, *, mask=None, causal=False
    ):
        p = self.dropout.p if self.training else 0.0
        out, self.attention_weights = dot_product_attention(
            queries,
            keys,
            values,
            valid_lens=valid_lens,
            mask=mask,
            causal=causal,
            dropout=p,
        )
        return out  # (B, L, Dv)


class AdditiveAttention(nn.Module):
    """Additive attention (d2l's signature).

    ``AdditiveAttention(num_hiddens, dropout)`` as in d2l 1.0.3 (input sizes inferred
    on the first call), or with ``key_size=`` and ``query_size=`` as in the older d2l,
    which creates the parameters at once.

    ``forward(queries (B, L, Dq), keys (B, S, Dk), values (B, S, Dv), valid_lens)``
    returns ``(B, L, Dv)`` and stores the weights ``(B, L, S)`` in
    ``attention_weights``.
    """

    def __init__(
        self,
        num_hiddens: int,
        dropout: float = 0.0,
        *,
        key_size: int | None = None,
        query_size: int | None = None,
    ):
        super().__init__()
        if num_hiddens < 1:
            raise ValueError(f"num_hiddens must be ≥ 1, got {num_hiddens}")
        for name, size in (("key_size", key_size), ("query_size", query_size)):
            if size is not None and size < 1:
                raise ValueError(
                    f"{name} must be ≥ 1 (or None to infer it), got {size}"
                )
        # a given size creates the weight now; None leaves it to be inferred on the
        # first call
        if key_size is None:
            self.W_k = nn.LazyLinear(num_hiddens, bias=False)
        else:
            self.W_k = nn.Linear(key_size, num_hiddens, bias=False)  # weight (h, Dk)
        if query_size is None:
            self.W_q = nn.LazyLinear(num_hiddens, bias=False)
        else:
            self.W_q = nn.Linear(query_size, num_hiddens, bias=False)  # weight (h, Dq)
        self.w_v = nn.Linear(num_hiddens, 1, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.attention_weights: torch.Tensor | None = None

    def forward(self, queries, keys, values, valid_lens=None, *, mask=None):
        if isinstance(self.W_q, nn.LazyLinear) or isinstance(self.W_k, nn.LazyLinear):
            # the inputs size the lazy weights, so they are checked before they do
            check_attention_inputs(
                queries, keys, values, valid_lens=valid_lens, mask=mask, same_size=False
            )
            self.W_q(queries[..., :1, :])  # sets W_q.weight to (h, Dq)
            self.W_k(keys[..., :1, :])  # sets W_k.weight to (h, Dk)
        p = self.dropout.p if self.training else 0.0
        out, self.attention_weights = additive_attention(
            queries,
            keys,
            values,
            self.W_q.weight,
            self.W_k.weight,
            self.w_v.weight,
            mask=mask,
            valid_lens=valid_lens,
            dropout=p,
        )
        return out  # (B, L, Dv)


class BilinearAttention(nn.Module):
    """Bilinear ("general") attention, ``softmax(qᵀ W k) v``, with d2l's signature.

    ``BilinearAttention(query_size, key_size, dropout)`` owns ``W (Dq, Dk)``, drawn
    uniformly in ``±1/√Dk`` (``nn.Linear``'s range) from ``generator`` if given.
    ``forward(queries (B, L, Dq), keys (B, S, Dk), values (B, S, Dv), valid_lens)``
    returns ``(B, L, Dv)`` and stores the weights ``(B, L, S)`` in
    ``attention_weights``.
    """

    def __init__(
        self,
        query_size: int,
        key_size: int,
        dropout: float = 0.0,
        *,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        for name, size in (("query_size", query_size), ("key_size", key_size)):
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise ValueError(f"{name} must be an int ≥ 1, got {size!r}")
        bound = 1.0 / key_size**0.5
        W = torch.empty(query_size, key_size).uniform_(
            -bound, bound, generator=generator
        )
        self.W = nn.Parameter(W)  # (Dq, Dk)
        self.dropout = nn.Dropout(dropout)
        self.attention_weights: torch.Tensor | None = None

    def forward(self, queries, keys, values, valid_lens=None, *, mask=None):
        p = self.dropout.p if self.training else 0.0
        out, self.attention_weights = bilinear_attention(
            queries, keys, values, self.W, mask=mask, valid_lens=valid_lens, dropout=p
        )
        return out  # (B, L, Dv)
