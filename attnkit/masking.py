"""Masks and the masked softmax.

Convention (as in PyTorch's ``scaled_dot_product_attention``): a boolean mask is
``True`` where attention is **allowed** and broadcasts to the scores, ``(B, H, L, S)``
for mechanisms or ``(B, L, S)`` for single-head code. :func:`apply_mask` is the one
place a mask meets the scores; every mechanism in attnkit goes through it (or
through :func:`masked_softmax`, which calls it).

d2l-style ``valid_lens`` — shape ``(B,)`` (one length per sequence) or ``(B, L)``
(one length per query) — are converted by :func:`lengths_to_mask`.

A row with nothing to attend to gets all-zero weights, never NaN.
"""

from __future__ import annotations

import torch

from ._checks import (
    check_build_mask_args,
    check_causal_mask_args,
    check_combine_masks,
    check_lengths,
    check_mask,
    check_sequence_mask_inputs,
    check_softmax_inputs,
)

__all__ = [
    "sequence_mask",
    "lengths_to_mask",
    "causal_mask",
    "combine_masks",
    "check_mask",
    "build_mask",
    "apply_mask",
    "masked_softmax",
    "softmax_one",
]


def sequence_mask(
    X: torch.Tensor, valid_len: torch.Tensor, value: float = 0.0
) -> torch.Tensor:
    """Replace the entries of each row of ``X`` past its valid length by ``value``.

    d2l's ``sequence_mask``, except that ``X`` is not modified in place.

    Args:
        X: ``(N, S)``.
        valid_len: ``(N,)`` integer lengths in ``[0, S]``.
        value: what to write past the valid length.

    Returns:
        ``(N, S)``, a new tensor.
    """
    lens = check_sequence_mask_inputs(X, valid_len)  # (N,) int64
    keep = torch.arange(X.shape[1], device=X.device)[None, :] < lens[:, None]  # (N, S)
    return X.masked_fill(~keep, value)


def lengths_to_mask(
    valid_lens: torch.Tensor, num_queries: int, num_keys: int
) -> torch.Tensor:
    """Turn d2l-style valid lengths into a boolean mask (``True`` = allowed).

    Args:
        valid_lens: ``(B,)`` — query rows of sequence ``b`` see keys
            ``0 … valid_lens[b]-1`` — or ``(B, L)`` — query ``i`` of sequence ``b`` sees
            keys ``0 … valid_lens[b, i]-1``.
        num_queries: L.
        num_keys: S.

    Returns:
        ``(B, L, S)`` boolean.
    """
    lens = check_lengths(valid_lens, num_keys, num_queries)  # (B,) or (B, L) int64
    if lens.dim() == 1:
        lens = lens[:, None].expand(-1, num_queries)  # (B, L)
    positions = torch.arange(num_keys, device=lens.device)
    return positions[None, None, :] < lens[:, :, None]  # (B, L, S)


def causal_mask(
    num_queries: int,
    num_keys: int | None = None,
    *,
    align: str = "top-left",
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Boolean ``(L, S)`` mask that lets query ``i`` see keys at positions ``≤ i``.

    When ``L ≠ S`` the two sequences must be aligned somehow:

    * ``"top-left"`` (PyTorch's ``is_causal``): query ``i`` sits at position ``i``.
    * ``"bottom-right"`` (decoding with a cache of earlier keys): the last query
      sits at the last key, so query ``i`` sits at position ``i + S - L``.
    """
    num_keys = num_queries if num_keys is None else num_keys
    check_causal_mask_args(num_queries, num_keys, align)
    offset = 0 if align == "top-left" else num_keys - num_queries
    q_pos = torch.arange(num_queries, device=device)[:, None] + offset  # (L, 1)
    k_pos = torch.arange(num_keys, device=device)[None, :]  # (1, S)
    return k_pos <= q_pos  # (L, S)


def combine_masks(*masks: torch.Tensor | None) -> torch.Tensor | None:
    """Logical AND of the given masks, skipping ``None``; ``None`` if all are ``None``.

    The masks are boolean, on one device, and broadcast together.
    """
    check_combine_masks(masks)
    out = None
    for m in masks:
        if m is None:
            continue
        out = m if out is None else (out & m)
    return out


def build_mask(
    num_queries: int,
    num_keys: int,
    *,
    mask: torch.Tensor | None = None,
    valid_lens: torch.Tensor | None = None,
    causal: bool = False,
    device: torch.device | str | None = None,
) -> torch.Tensor | None:
    """Combine a boolean ``mask``, d2l ``valid_lens`` and a causal flag into one mask.

    Returns a boolean tensor that broadcasts to ``(B, L, S)`` (or ``(B, H, L, S)`` after
    the caller adds a head axis), or ``None`` when nothing is masked. ``mask`` must
    broadcast to ``(..., L, S)`` (to ``(B, L, S)`` with ``valid_lens``) and lie on
    ``device``.
    """
    check_build_mask_args(num_queries, num_keys, mask, valid_lens, causal, device)
    parts = []
    if mask is not None:
        parts.append(mask)
    if valid_lens is not None:
        parts.append(lengths_to_mask(valid_lens, num_queries, num_keys).to(device))
    if causal:
        parts.append(causal_mask(num_queries, num_keys, device=device))
    return combine_masks(*parts)


def apply_mask(
    scores: torch.Tensor, mask: torch.Tensor | None, *, inplace: bool = False
) -> torch.Tensor:
    """Set the scores where ``mask`` is ``False`` to ``-inf``.

    Args:
        scores: ``(..., L, S)``.
        mask: boolean, broadcastable to ``scores`` (``True`` = allowed), or ``None``.
        inplace: overwrite ``scores`` instead of copying it (for a caller that owns the
            tensor and needs it no more: no second ``(..., L, S)`` buffer).

    Returns:
        ``(..., L, S)``; ``scores`` itself when ``mask`` is ``None`` or ``inplace``.
    """
    check_softmax_inputs(scores, mask=mask, name="scores")
    if mask is None:
        return scores
    if inplace:
        return scores.masked_fill_(~mask, float("-inf"))
    return scores.masked_fill(~mask, float("-inf"))


def _softmax_with_empty_rows(scores: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Softmax along ``dim`` where rows that are entirely ``-inf`` give zeros (not NaN).

    Half-precision inputs are computed in float32 and cast back. With no positions at
    all (size 0 along ``dim``) the result is that empty tensor.
    """
    if scores.shape[dim] == 0:
        return scores.clone()
    x = scores.float() if scores.dtype in (torch.float16, torch.bfloat16) else scores
    row_max = x.amax(dim=dim, keepdim=True)
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    e = torch.exp(x - row_max.detach())  # the shift cancels, so detaching it is exact
    total = e.sum(dim=dim, keepdim=True)
    # an empty row has e == 0 everywhere; divide by 1 there so the output (and its
    # gradient) is 0
    out = e / torch.where(total > 0, total, torch.ones_like(total))
    return out.to(scores.dtype)


def masked_softmax(
    X: torch.Tensor,
    valid_lens: torch.Tensor | None = None,
    *,
    mask: torch.Tensor | None = None,
    causal: bool = False,
    inplace: bool = False,
) -> torch.Tensor:
    """Softmax over the last axis that gives masked positions exactly zero weight.

    d2l-compatible: ``masked_softmax(X, valid_lens)`` with ``X`` of shape ``(B, L, S)``
    and ``valid_lens`` of shape ``(B,)`` or ``(B, L)``. Unlike d2l, masked scores are
    set to ``-inf`` (not ``-1e6``), so a fully masked row gives zeros instead of a
    uniform average, in every dtype.

    Args:
        X: scores, ``(B, L, S)`` when ``valid_lens`` is given, otherwise
            ``(..., L, S)``.
        valid_lens: ``(B,)`` or ``(B, L)`` integer lengths in ``[0, S]``, or ``None``.
        mask: boolean, broadcastable to ``X`` (``True`` = allowed), or ``None``.
        causal: also forbid key positions after the query position (top-left aligned).
        inplace: the mask may overwrite ``X`` (for a caller that owns the scores and
            needs them no more: one ``(..., L, S)`` tensor fewer).

    Returns:
        Weights with the shape of ``X``; each row sums to 1 over its allowed
        positions, or is all zeros if none is allowed.
    """
    check_softmax_inputs(X, valid_lens, mask, causal)
    L = X.shape[-2] if X.dim() >= 2 else 1
    full = build_mask(
        L, X.shape[-1], mask=mask, valid_lens=valid_lens, causal=causal, device=X.device
    )
    wide = torch.float32 if X.dtype in (torch.float16, torch.bfloat16) else X.dtype
    if full is None:
        # nothing is masked: the plain softmax, with no masking temporaries
        # (half precision is computed in float32 and cast back)
        return torch.softmax(X, dim=-1, dtype=wide).to(X.dtype)
    masked = apply_mask(X, full, inplace=inplace)  # -inf where not allowed
    if full.device.type != "meta" and full.any(dim=-1).all():
        # every row keeps a key (a causal mask): no NaN possible, the fused softmax
        # (a meta tensor has no values to look at: the general path below)
        return torch.softmax(masked, dim=-1, dtype=wide).to(X.dtype)
    return _softmax_with_empty_rows(masked)


def softmax_one(X: torch.Tensor, *, mask: torch.Tensor | None = None) -> torch.Tensor:
    """ "Softmax off by one": ``exp(x_i) / (1 + Σ_j exp(x_j))`` along the last axis.

    The extra 1 acts as an invisible key with score 0 and a zero value, so a query
    can put (almost) no weight anywhere; rows then sum to less than 1. Masked
    positions get zero weight. Computed stably (shifted by ``max(0, max_j x_j)``).

    Args:
        X: ``(..., S)`` scores.
        mask: boolean, broadcastable to ``X``, or ``None``.

    Returns:
        ``(..., S)`` weights with row sums in ``[0, 1)``.
    """
    check_softmax_inputs(X, mask=mask)
    if X.shape[-1] == 0:
        return X.clone()  # no positions: nothing to weigh
    x = apply_mask(X.float() if X.dtype in (torch.float16, torch.bfloat16) else X, mask)
    shift = (
        x.amax(dim=-1, keepdim=True).clamp_min(0.0).detach()
    )  # (..., 1); ≥ 0, so finite
    e = torch.exp(x - shift)
    out = e / (torch.exp(-shift) + e.sum(dim=-1, keepdim=True))
    return out.to(X.dtype)
