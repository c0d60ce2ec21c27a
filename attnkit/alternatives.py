"""Softmax is a choice: other functions that turn scores into attention weights.

Every function here maps masked scores ``(..., L, S)`` to weights ``(..., L, S)``:

* :func:`softmax_weights` — ``exp(s_j) / Σ_j exp(s_j)``: positive, rows sum to 1;
* :func:`~attnkit.masking.softmax_one` — the same with ``1 +`` in the denominator:
  rows sum to less than 1 (a query may abstain);
* :func:`relu_weights` — ``relu(s_j)``, optionally times a ``scale``: exact zeros
  wherever a score is negative, rows sum to anything;
* :func:`sigmoid_weights` — ``σ(s_j + b)``: each weight in (0, 1) on its own, no
  competition between the keys of a row.

Masks follow the course's convention (boolean, ``True`` = allowed, broadcast to the
scores) and go through :func:`~attnkit.masking.apply_mask`, which writes ``-inf`` at
masked positions; every function maps ``-inf`` to an exact 0, so a fully masked row
gives zeros, never NaN.
"""

from __future__ import annotations

import torch

from ._checks import check_softmax_inputs, check_weight_function_inputs
from .masking import apply_mask, masked_softmax, softmax_one

__all__ = [
    "softmax_weights",
    "relu_weights",
    "sigmoid_weights",
    "WEIGHT_FUNCTIONS",
    "weight_summary",
]


def softmax_weights(scores: torch.Tensor, *, mask=None) -> torch.Tensor:
    """Masked softmax along the last axis (:func:`~attnkit.masking.masked_softmax`).

    ``scores (..., L, S)``, ``mask`` boolean broadcastable to it → ``(..., L, S)``.
    """
    return masked_softmax(scores, mask=mask)


def relu_weights(scores: torch.Tensor, *, mask=None, scale: float = 1.0):
    """ReLU attention weights ``scale · max(s, 0)``, zero where masked.

    ``scores (..., L, S)``, ``mask`` boolean broadcastable to it → ``(..., L, S)``.
    No normalisation: a row sums to whatever its positive scores add up to
    (``scale = 1/S`` is a common choice to keep that sum from growing with ``S``).
    """
    check_weight_function_inputs(scores, mask, scale=scale)
    return scale * torch.relu(apply_mask(scores, mask))  # (..., L, S); relu(-inf) = 0


def sigmoid_weights(scores: torch.Tensor, *, mask=None, bias: float = 0.0):
    """Sigmoid attention weights ``σ(s + bias)``, zero where masked.

    ``scores (..., L, S)``, ``mask`` boolean broadcastable to it → ``(..., L, S)``.
    Each weight lies in (0, 1) independently of the other keys; a negative ``bias``
    (e.g. ``-log S``) keeps row sums near 1 at the start of training.
    """
    check_weight_function_inputs(scores, mask, bias=bias)
    return torch.sigmoid(apply_mask(scores, mask) + bias)  # (..., L, S); σ(-inf) = 0


WEIGHT_FUNCTIONS = {
    "softmax": softmax_weights,
    "softmax_one": softmax_one,
    "relu": relu_weights,
    "sigmoid": sigmoid_weights,
}


def weight_summary(weights: torch.Tensor, *, mask=None) -> dict:
    """What a weight function did to a batch of rows ``weights (..., L, S)``.

    Returns a dict of floats: ``row_sum_min``/``row_sum_max`` over rows with at least
    one allowed key, ``zero_fraction`` (exact zeros among the *allowed* entries), and
    ``empty_rows_zero`` (1.0 if every fully masked row is all zeros and NaN-free).
    """
    check_softmax_inputs(weights, mask=mask, name="weights")
    allowed = torch.ones_like(weights, dtype=torch.bool)
    if mask is not None:
        allowed = allowed & mask  # (..., L, S)
    has_key = allowed.any(dim=-1)  # (..., L)
    sums = weights.sum(dim=-1)[has_key]  # (rows with a key,)
    empty = weights[~has_key]  # (empty rows, S)
    return {
        "row_sum_min": sums.min().item() if sums.numel() else float("nan"),
        "row_sum_max": sums.max().item() if sums.numel() else float("nan"),
        "zero_fraction": (weights[allowed] == 0).double().mean().item(),
        "empty_rows_zero": float(bool((empty == 0).all())),
    }
