"""Hand-chosen sparse attention patterns, and dense masked attention over any of them.

A *pattern* says which keys each query may look at. Every builder here returns a
boolean ``(L, L)`` mask (``True`` = allowed, attnkit's mask convention) for a sequence
of length ``n = L``; with ``causal=True`` it is also cut to keys ``j ≤ i``.

Conventions (one for all builders, so patterns compose):

* ``window`` is the **one-sided** width: query ``i`` sees keys ``j`` with ``|i − j| ≤ window``,
  i.e. ``2·window + 1`` keys in the middle of the sequence. Longformer's "window w" is the
  total width, ``w/2`` on each side, so Longformer's ``w`` is ``2 * window`` here.
* Every pattern contains the diagonal (a query always sees itself), so no row is empty
  unless a padding mask empties it.

:func:`sparse_attention_naive` runs exact softmax attention restricted to any pattern by
building the full ``L × L`` scores and masking them through :mod:`attnkit.masking`. It costs
as much as full attention: the sparse *implementation* of window patterns, which never
builds the ``L × L`` matrix, is in :mod:`attnkit.local`.
"""

from __future__ import annotations

import torch

from ._checks import (
    check_counts,
    check_global_tokens,
    check_nonempty_bool,
    check_pattern_inputs,
)
from .masking import causal_mask, combine_masks
from .mechanisms import softmax_attention_naive

__all__ = [
    "local_pattern",
    "atrous_pattern",
    "strided_pattern",
    "fixed_pattern",
    "longformer_pattern",
    "dilated_pattern",
    "bigbird_random_blocks",
    "bigbird_pattern",
    "density",
    "sparse_attention_naive",
]


def _distances(n: int, device) -> torch.Tensor:
    """``(L, L)`` signed distances ``i − j`` (query minus key)."""
    pos = torch.arange(n, device=device)
    return pos[:, None] - pos[None, :]  # (L, L)


def _cut(pattern: torch.Tensor, causal: bool) -> torch.Tensor:
    """AND the pattern with the causal mask when ``causal``."""
    if not causal:
        return pattern
    return combine_masks(pattern, causal_mask(pattern.shape[0], device=pattern.device))


def local_pattern(
    n: int, window: int, *, causal: bool = False, device=None
) -> torch.Tensor:
    """Local window: query ``i`` sees keys ``j`` with ``|i − j| ≤ window`` (and itself).

    Row ``i`` has ``min(i, window) + min(n − 1 − i, window) + 1`` allowed keys
    (``min(i, window) + 1`` when causal).

    Returns:
        ``(L, L)`` boolean, ``L = n``.
    """
    check_counts(n=(n, 0), window=(window, 0))
    return _cut(_distances(n, device).abs() <= window, causal)  # (L, L)


def atrous_pattern(
    n: int, step: int, *, limit: int | None = None, causal: bool = False, device=None
) -> torch.Tensor:
    """Atrous (dilated) pattern: keys at distance ``0, step, 2·step, …`` to ``limit``.

    Query ``i`` sees ``j`` when ``|i − j|`` is a multiple of ``step`` and
    ``|i − j| ≤ limit`` (no limit when ``limit`` is ``None``). Row ``i`` has
    ``⌊min(i, limit)/step⌋ + ⌊min(n − 1 − i, limit)/step⌋ + 1`` keys (the second term
    drops when causal).

    Returns:
        ``(L, L)`` boolean.
    """
    check_counts(n=(n, 0), step=(step, 1), limit=(0 if limit is None else limit, 0))
    d = _distances(n, device).abs()  # (L, L)
    allowed = d % step == 0
    if limit is not None:
        allowed = allowed & (d <= limit)
    return _cut(allowed, causal)


def strided_pattern(
    n: int, stride: int, *, causal: bool = True, device=None
) -> torch.Tensor:
    """Strided Sparse Transformer pattern (Child et al., 2019).

    The local window ∪ every ``stride``-th key.

    With ``causal=True`` (the paper's setting) query ``i`` sees
    ``A¹ = {max(0, i − l), …, i}`` and ``A² = {j ≤ i : (i − j) mod l = 0}`` with
    ``l = stride``; row ``i`` then has ``min(i, l) + ⌊i/l⌋ + 1 − [i ≥ l]`` keys
    (``i − l`` lies in both sets). Without causality both sets extend to the right as
    well. ``l ≈ √n`` makes every row hold about ``2√n`` keys.

    Returns:
        ``(L, L)`` boolean.
    """
    check_counts(n=(n, 0), stride=(stride, 1))
    return local_pattern(n, stride, causal=causal, device=device) | atrous_pattern(
        n, stride, causal=causal, device=device
    )


def fixed_pattern(
    n: int, stride: int, *, summary: int = 1, causal: bool = True, device=None
) -> torch.Tensor:
    """Fixed Sparse Transformer pattern (Child et al., 2019): own block ∪ every block's summary.

    The sequence is cut into blocks of ``l = stride``. Query ``i`` sees
    ``A¹ = {j : ⌊j/l⌋ = ⌊i/l⌋}`` (its own block) and ``A² = {j : j mod l ≥ l − c}``
    (the last ``c = summary`` positions of every block), cut to ``j ≤ i`` when ``causal``.

    Returns:
        ``(L, L)`` boolean.
    """
    check_counts(n=(n, 0), stride=(stride, 1), summary=(summary, 1))
    pos = torch.arange(n, device=device)
    same_block = pos[:, None] // stride == pos[None, :] // stride  # (L, L)
    is_summary = pos % stride >= stride - summary  # (L,) the keys every query sees
    return _cut(same_block | is_summary[None, :], causal)


def longformer_pattern(
    n: int, window: int, global_tokens=(), *, causal: bool = False, device=None
) -> torch.Tensor:
    """Longformer-style: local window plus a few *global* tokens.

    A global token sees every key and every query sees it (global attention is
    symmetric). ``window`` is one-sided here (Longformer's ``w`` is ``2 * window``).

    Args:
        global_tokens: positions in ``[0, n)`` (a list, tuple or 1-D tensor).

    Returns:
        ``(L, L)`` boolean.
    """
    allowed = local_pattern(n, window, device=device)  # (L, L)
    g = check_global_tokens(global_tokens, n, allowed.device)  # (G,)
    allowed[g, :] = True  # global rows see everything
    allowed[:, g] = True  # and everything sees the global columns
    return _cut(allowed, causal)


def dilated_pattern(
    n: int,
    window: int,
    dilation: int,
    global_tokens=(),
    *,
    causal: bool = False,
    device=None,
) -> torch.Tensor:
    """Longformer's dilated sliding window: ``window`` keys each side, ``dilation`` apart.

    Query ``i`` sees ``j = i + t·d`` for ``|t| ≤ window`` (``d = dilation``; the atrous
    pattern with limit ``window·d``), plus Longformer's symmetric global tokens. With
    ``d = 1`` it is :func:`longformer_pattern`.

    Returns:
        ``(L, L)`` boolean.
    """
    check_counts(window=(window, 0), dilation=(dilation, 1))
    allowed = atrous_pattern(
        n, dilation, limit=window * dilation, device=device
    )  # (L, L)
    g = check_global_tokens(global_tokens, n, allowed.device)  # (G,)
    allowed[g, :] = True
    allowed[:, g] = True
    return _cut(allowed, causal)


def bigbird_random_blocks(num_blocks: int, num_random: int, seed: int) -> torch.Tensor:
    """The random key blocks of every query block: ``(C, r)`` block ids, ``r = min(num_random, C)``.

    Row ``c`` is ``torch.randperm(C)[:r]`` drawn in turn from one ``torch.Generator``
    seeded with ``seed`` (distinct blocks in a row; the same seed gives the same draw).
    """
    check_counts(
        num_blocks=(num_blocks, 0), num_random=(num_random, 0), seed=(seed, -(2**63))
    )
    gen = torch.Generator().manual_seed(seed)
    r = min(num_random, num_blocks)
    rows = [torch.randperm(num_blocks, generator=gen)[:r] for _ in range(num_blocks)]
    return torch.stack(rows) if rows else torch.zeros(0, r, dtype=torch.long)  # (C, r)


def bigbird_pattern(
    n: int,
    window: int,
    global_tokens=(),
    *,
    num_random: int = 3,
    block_size: int = 1,
    seed: int = 0,
    causal: bool = False,
    device=None,
) -> torch.Tensor:
    """BigBird-style: Longformer's window + global tokens, plus random key blocks.

    The queries are cut into blocks of ``block_size``; every query block gets
    ``num_random`` key blocks drawn at random (without replacement) and sees all their
    keys. With ``block_size=1`` that is ``num_random`` random keys per query. The draw
    uses a ``torch.Generator`` seeded with ``seed``: the same seed gives the same pattern.
    With ``causal=True`` random keys in the future are dropped.

    Returns:
        ``(L, L)`` boolean.
    """
    check_counts(
        num_random=(num_random, 0), block_size=(block_size, 1), seed=(seed, -(2**63))
    )
    allowed = longformer_pattern(n, window, global_tokens, device=device)  # (L, L)
    picks = bigbird_random_blocks(
        -(-n // block_size), num_random, seed
    )  # (C, r) key blocks
    for qb, row in enumerate(picks.tolist()):
        q_rows = slice(qb * block_size, (qb + 1) * block_size)
        for kb in row:
            allowed[q_rows, kb * block_size : (kb + 1) * block_size] = True
    return _cut(allowed, causal)


def density(mask: torch.Tensor) -> float:
    """Fraction of allowed entries of a pattern: 1.0 is full attention.

    Args:
        mask: boolean ``(..., L, S)``.

    Returns:
        ``float`` in ``[0, 1]``: allowed entries / all entries.
    """
    check_nonempty_bool("mask", mask)  # an empty pattern has no density
    return mask.sum().item() / mask.numel()  # exact: an integer count over the size


def sparse_attention_naive(q, k, v, pattern, *, mask=None, causal=False, scale=None):
    """Exact softmax attention restricted to ``pattern``, by masking the full scores.

    The literal reference for every sparse mechanism: it builds all ``L × S`` scores and
    masks the ones the pattern forbids, so it is exactly as slow as full attention.

    Args:
        q: ``(B, H, L, D)``; k: ``(B, H, S, D)``; v: ``(B, H, S, Dv)``.
        pattern: boolean ``(L, S)`` (True = allowed), on ``q``'s device.
        mask: extra boolean mask broadcastable to ``(B, H, L, S)`` (e.g. key padding
            ``(B, 1, 1, S)``).
        causal: also forbid keys after the query (top-left aligned).

    Returns:
        ``(out (B, H, L, Dv), weights (B, H, L, S))``; empty rows give zeros.
    """
    check_pattern_inputs(q, k, v, pattern, mask)
    full = combine_masks(pattern, mask)  # broadcasts to (B, H, L, S)
    return softmax_attention_naive(q, k, v, mask=full, causal=causal, scale=scale)
