"""The one interface every attention mechanism implements, and the registry of names.

A *mechanism* is an ``nn.Module`` that maps per-head queries, keys and values to
outputs::

    out = mechanism(q, k, v, *, mask=None, causal=False)
    # q (B, H, L, D), k (B, H, S, D), v (B, H, S, Dv)  ->  out (B, H, L, Dv)

* ``mask``: boolean, ``True`` = allowed, broadcastable to ``(B, H, L, S)``.
  Mechanisms that never build the ``L × S`` matrix (local, LSH, linear, …) accept only
  **key-padding** masks, shape ``(B, 1, 1, S)`` (or ``(B, S)``), and say so clearly
  otherwise: see :func:`key_padding_from_mask`.
* ``causal``: query ``i`` may only see keys ``j ≤ i`` (top-left aligned, as in
  PyTorch's ``is_causal``).
* Settings are keyword-only constructor arguments (``window=``, ``bucket_size=``,
  ``n_features=`` …); every mechanism can be built with no arguments at all.
* Randomness (projections, rotations) is drawn from an explicit ``seed=``.

Every registered mechanism is checked by one contract test (``tests/test_contract.py``):
output shape (``Dv ≠ D`` included), batch independence, causality, masked keys having no
effect, fully masked rows giving zeros (not NaN), awkward sizes (odd ``L``, ``D`` not a
power of two). A mechanism whose maths cannot honour one of these declares it with a
class (or instance) attribute; leaving an attribute out means the default:

* ``supports_causal = True`` — ``False`` if ``causal=True`` is not implemented at all
  (the mechanism must then raise ``ValueError`` when asked for it).
* ``content_dependent_grouping = False`` — ``True`` if the mechanism groups positions
  by the content of the whole sequence (LSH buckets and chunks), so changing *any*
  query or key, even a future or masked one, may move group boundaries. The contract
  test then perturbs only the **values** at future or masked positions.
* ``max_len = None`` — the longest ``L`` and ``S`` accepted (e.g. a Synthesizer's fixed
  ``(N, N)`` matrix); the contract test keeps its lengths within it.

The registry of names lives in :mod:`attnkit.registry` (``MECHANISMS``, a plain dict,
and :func:`~attnkit.registry.make_mechanism`); this module holds what every mechanism
shares: the base class, key-padding masks, and exact softmax attention. (The input
checks, :func:`~attnkit._checks.check_mechanism_inputs`, live in :mod:`attnkit._checks`.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_mechanism_inputs, check_tensor
from .attention import attend
from .masking import build_mask, masked_softmax
from .scoring import dot_product_scores

__all__ = [
    "Mechanism",
    "key_padding_from_mask",
    "softmax_attention_naive",
    "SoftmaxAttention",
]


class Mechanism(nn.Module):
    """What every attention mechanism shares: the call and the capability flags.

    Subclasses implement ``forward(q, k, v, *, mask=None, causal=False)`` on
    ``q (B, H, L, D)``, ``k (B, H, S, D)``, ``v (B, H, S, Dv)`` → ``(B, H, L, Dv)`` and
    override a flag (as a class or instance attribute) only where their maths differs:

    * ``supports_causal`` — ``False`` when ``causal=True`` is not implemented (then
      ``forward`` raises ``ValueError`` when asked for it);
    * ``content_dependent_grouping`` — ``True`` when positions are grouped by the content
      of the whole sequence (LSH buckets), so a future query or key may move group borders;
    * ``max_len`` — the longest ``L`` and ``S`` accepted, or ``None`` for no limit.
    """

    supports_causal: bool = True
    content_dependent_grouping: bool = False
    max_len: int | None = None

    def forward(
        self, q, k, v, *, mask=None, causal=False
    ):  # pragma: no cover - abstract
        raise NotImplementedError(
            f"{type(self).__name__} must implement forward(q, k, v, *, mask, causal)"
        )


def key_padding_from_mask(
    mask, batch: int, num_keys: int, mechanism: str
) -> torch.Tensor | None:
    """Reduce a mask to a key-padding vector ``(B, S)`` (``True`` = real key), or fail clearly.

    Accepts ``None``, ``(B, S)``, or anything broadcastable to ``(B, H, L, S)`` whose
    head and query axes have size 1 (e.g. ``(B, 1, 1, S)``). Mechanisms that never
    build the ``L × S`` score matrix call this: they cannot honour a per-query mask.
    """
    if mask is None:
        return None
    check_tensor("mask", mask)
    if mask.dtype != torch.bool:
        raise TypeError(
            f"mask must be a boolean tensor (True = attend), got dtype {mask.dtype}"
        )
    if mask.dim() == 2:
        m = mask  # (B, S) or (1, S)
    elif mask.dim() == 4 and mask.shape[1] == 1 and mask.shape[2] == 1:
        m = mask[:, 0, 0, :]  # (B, S)
    else:
        raise ValueError(
            f"the {mechanism!r} mechanism supports only key-padding masks of shape (B, 1, 1, S) "
            f"or (B, S), got mask of shape {tuple(mask.shape)}; use causal=True for causal masking"
        )
    if m.shape[0] not in (1, batch) or m.shape[1] != num_keys:
        raise ValueError(
            f"key-padding mask of shape {tuple(mask.shape)} does not match batch {batch} "
            f"and {num_keys} keys"
        )
    return m.expand(batch, num_keys)  # (B, S)


def softmax_attention_naive(
    q, k, v, *, mask=None, causal=False, scale=None, dropout=0.0
):
    """Exact softmax attention, written out: the reference for every mechanism.

    Args:
        q: ``(B, H, L, D)``; k: ``(B, H, S, D)``; v: ``(B, H, S, Dv)``.
        mask: boolean broadcastable to ``(B, H, L, S)``; causal: top-left aligned.
        dropout: probability of dropping each weight before the sum (``0.0`` outside training).

    Returns:
        ``(out (B, H, L, Dv), weights (B, H, L, S))``, the weights before dropout.
        With no keys (``S = 0``) the output is zeros.
    """
    check_mechanism_inputs(q, k, v, mask)
    scores = dot_product_scores(q, k, scale=scale)  # (B, H, L, S)
    weights = masked_softmax(
        scores, mask=mask, causal=causal, inplace=True
    )  # (B, H, L, S); masked in place: no second L×S tensor
    dropped = F.dropout(weights, p=dropout) if dropout > 0 else weights  # (B, H, L, S)
    return attend(dropped, v), weights  # (B, H, L, Dv)


class SoftmaxAttention(Mechanism):
    """Exact scaled dot-product (softmax) attention as a mechanism.

    With ``fast=True`` (default) and no weights requested it calls PyTorch's fused
    ``scaled_dot_product_attention``; with ``fast=False`` or ``need_weights=True`` it runs
    :func:`softmax_attention_naive` and keeps the weights ``(B, H, L, S)`` in
    ``attention_weights``. Both paths give zeros for fully masked rows.

    Args (keyword-only):
        dropout: dropout on the attention weights (training only).
        fast: use the fused kernel when possible.
        need_weights: always take the explicit path and store the weights.
    """

    def __init__(
        self, *, dropout: float = 0.0, fast: bool = True, need_weights: bool = False
    ):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.dropout = dropout
        self.fast = fast
        self.need_weights = need_weights
        self.attention_weights: torch.Tensor | None = None

    def forward(self, q, k, v, *, mask=None, causal=False):
        p = self.dropout if self.training else 0.0
        if not self.fast or self.need_weights:
            self.attention_weights = None  # free the last call's (L, S) weights first
            out, self.attention_weights = softmax_attention_naive(
                q, k, v, mask=mask, causal=causal, dropout=p
            )
            return out  # (B, H, L, Dv)
        # the fused kernel stands for softmax_attention_naive:
        # the same validator, before it
        check_mechanism_inputs(q, k, v, mask)
        self.attention_weights = None
        if mask is None:
            # no L×S mask at all: the fused kernel skips the masked blocks
            # (is_causal is top-left aligned)
            return F.scaled_dot_product_attention(
                q, k, v, is_causal=causal, dropout_p=p
            )  # (B, H, L, Dv)
        full = build_mask(
            q.shape[2], k.shape[2], mask=mask, causal=causal, device=q.device
        )
        return F.scaled_dot_product_attention(
            q, k, v, attn_mask=full, dropout_p=p
        )  # (B, H, L, Dv)
