"""LSH attention (the Reformer, Kitaev et al. 2020): attend only to keys in the same hash bucket.

For each of ``R`` hash rounds:

1. hash queries and keys into ``M`` buckets with angular LSH (:mod:`attnkit.hashing`);
2. sort queries and keys by ``(bucket, position)`` — a permutation per round;
3. cut both sorted sequences into ``C`` chunks and let each query chunk see its own key chunk
   and the one before it, keeping only pairs in the same bucket (plus causal / padding masks);
4. undo the sort with the inverse permutation.

The rounds are combined with their log-sum-exp normalisers, and a pair found in ``N_ij``
rounds has ``log N_ij`` subtracted from its score in each, so the result is *exactly* softmax
attention over the union of the pairs the rounds allow — which :func:`lsh_attention_naive`
computes densely from the same buckets, as the reference. Each chunk costs ``O(c²)``, so the
whole layer costs ``O(R · L · c)`` after an ``O(L log L)`` sort.

Shared-QK mode (the Reformer's): keys are the *normalised* queries (queries are not normalised),
queries and keys share their buckets, and a position's score with itself is replaced by a
large *finite* negative number, so it attends to itself only when nothing else is allowed.
Lengths that are not a multiple of the chunk are padded and the padding masked.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from ._checks import (
    check_counts,
    check_lsh_inputs,
    check_lsh_settings,
    check_mechanism_inputs,
    check_sort_inputs,
)
from .hashing import angular_hash, random_rotations
from .masking import apply_mask, masked_softmax
from .mechanisms import Mechanism, key_padding_from_mask

__all__ = [
    "SELF_PENALTY",
    "chunk_layout",
    "default_n_buckets",
    "sort_by_bucket",
    "lsh_attention",
    "lsh_attention_loop",
    "lsh_attention_naive",
    "LSHAttention",
]

SELF_PENALTY = 1e5
"""Shared-QK: a position's score with itself becomes ``-SELF_PENALTY`` (finite, not ``-inf``)."""


def chunk_layout(
    num_queries: int, num_keys: int, bucket_size: int
) -> tuple[int, int, int]:
    """Chunks ``C``, queries per chunk and keys per chunk: ``C = ⌈L / bucket_size⌉``.

    Queries are cut into ``C`` chunks of ``⌈L/C⌉`` and keys into ``C`` chunks of ``⌈S/C⌉``
    (equal when ``L = S``); the last chunk is padded.
    """
    check_counts(
        num_queries=(num_queries, 1),
        num_keys=(num_keys, 1),
        bucket_size=(bucket_size, 1),
    )
    n_chunks = math.ceil(num_queries / bucket_size)
    return n_chunks, math.ceil(num_queries / n_chunks), math.ceil(num_keys / n_chunks)


def default_n_buckets(num_queries: int, num_keys: int, bucket_size: int) -> int:
    """About one bucket per ``bucket_size`` positions, rounded up to an even number ≥ 2."""
    check_counts(
        num_queries=(num_queries, 1),
        num_keys=(num_keys, 1),
        bucket_size=(bucket_size, 1),
    )
    return max(2, 2 * math.ceil(max(num_queries, num_keys) / (2 * bucket_size)))


def sort_by_bucket(
    buckets: torch.Tensor, padded_len: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sort positions by ``(bucket, position)``; padding positions go last.

    Args:
        buckets: int64 ``(..., N)``.
        padded_len: ``Np ≥ N``; positions ``N … Np-1`` are padding (default ``N``).

    Returns:
        ``(order, rank)``, int64 ``(..., Np)``: ``order[r]`` is the position in
        sorted slot ``r``, and ``rank`` is the inverse permutation
        (``rank[order[r]] = r``).
    """
    check_sort_inputs(buckets, padded_len)
    n = buckets.shape[-1]
    padded_len = n if padded_len is None else padded_len
    pos = torch.arange(padded_len, device=buckets.device)  # (Np,)
    key = (2**62 + pos).expand(*buckets.shape[:-1], padded_len).clone()  # (..., Np)
    key[..., :n] = (
        buckets * padded_len + pos[:n]
    )  # unique keys: bucket first, then position
    order = key.argsort(dim=-1)  # (..., Np)
    rank = torch.empty_like(order).scatter_(
        -1, order, pos.expand_as(order)
    )  # (..., Np)
    return order, rank


def _take(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows of ``x (B, H, N, F)`` picked per round at ``index (B, H, R, ...)``.

    Returns ``(B, H, R, ..., F)``.

    One flat row lookup (``index_select``: on a CPU about 1.6× quicker than indexing
    with the same index tensor) instead of a gather over a broadcast copy.
    """
    B, H, N, Fx = x.shape
    row = (
        torch.arange(B * H, device=x.device).reshape(B, H, *([1] * (index.dim() - 2)))
        * N
    )  # (B, H, 1, ...)
    rows = x.reshape(B * H * N, Fx).index_select(0, (index + row).flatten())
    return rows.view(*index.shape, Fx)  # (B, H, R, ..., F)


def _with_previous(x: torch.Tensor) -> torch.Tensor:
    """Each chunk preceded by the chunk before it: ``(B, H, R, C, c) → (B, H, R, C, 2c)``.

    Used on *indices* (and other small per-position tensors) only, so the big key and value
    blocks are gathered once, directly in this layout. Chunk 0's "predecessor" is chunk C-1
    (wrapped around); callers mask it out.
    """
    return torch.cat([torch.roll(x, 1, dims=3), x], dim=4)


class SortRows(torch.autograd.Function):
    """``x (B, H, N, F)`` with its rows in each round's order ``order (B, H, R, N)`` (a
    permutation of ``0..N-1`` per round): ``(B, H, R, N, F)``.

    ``rank`` is the inverse permutation, so the backward is a gather too (row ``n``
    of the gradient is row ``rank[r, n]`` of each round's, summed over rounds), not
    the scatter-add autograd would use for an index.
    """

    @staticmethod
    def forward(ctx, x, order, rank):
        ctx.save_for_backward(rank)
        return _take(x, order)  # (B, H, R, N, F)

    @staticmethod
    def backward(ctx, grad):
        (rank,) = ctx.saved_tensors  # (B, H, R, N)
        B, H, R, N, Fx = grad.shape
        offset = N * torch.arange(R, device=grad.device)[:, None]  # (R, 1)
        g = _take(grad.reshape(B, H, R * N, Fx), rank + offset)  # (B, H, R, N, F)
        return g.sum(dim=2), None, None


def lsh_attention_loop(
    q,
    k,
    v,
    q_buckets,
    k_buckets,
    *,
    bucket_size: int = 64,
    causal: bool = False,
    key_padding: torch.Tensor | None = None,
    not_self: bool = False,
    scale: float | None = None,
):
    """Teaching version of :func:`lsh_attention`: a loop over rounds and sorted chunks.

    Same arguments and result as :func:`lsh_attention`; it never builds the ``L × S``
    matrix either, but it runs one chunk at a time, so it is slow.
    """
    check_lsh_inputs(q, k, v, q_buckets, k_buckets, bucket_size, key_padding)
    L, S, R = q.shape[2], k.shape[2], q_buckets.shape[2]
    n_chunks, qc, kc = chunk_layout(L, S, bucket_size)
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    q_chunk = _sorted_ranks(q_buckets) // qc  # (B, H, R, L): chunk, per round
    k_chunk = _sorted_ranks(k_buckets) // kc  # (B, H, R, S)
    real = torch.ones_like(k[..., 0], dtype=torch.bool)  # (B, H, S)
    real = real if key_padding is None else real & key_padding[:, None, :]
    outs, lses = [], []
    for r in range(R):
        q_order = q_buckets[:, :, r].sort(stable=True).indices  # (B, H, L)
        k_order = k_buckets[:, :, r].sort(stable=True).indices  # (B, H, S)
        out_r, lse_r = [], []
        for c in range(n_chunks):  # queries of chunk c see keys of chunks c-1 and c
            i = q_order[..., c * qc : (c + 1) * qc]  # (B, H, qc) positions
            j = k_order[..., max(c - 1, 0) * kc : (c + 1) * kc]  # (B, H, ≤ 2kc)
            hashes = (q_buckets, k_buckets, q_chunk, k_chunk)
            s, ok = _chunk_scores(q, k, i, j, r, hashes, real, causal, not_self, scale)
            out_r.append(masked_softmax(s, mask=ok) @ _rows(v, j))  # (B, H, qc, Dv)
            lse_r.append(_logsumexp_or_minus_inf(s, ok))  # (B, H, qc)
        rank = q_order.argsort(-1)  # (B, H, L): undo the sort
        outs.append(_rows(torch.cat(out_r, dim=2), rank))  # (B, H, L, Dv)
        lses.append(torch.cat(lse_r, dim=2).gather(2, rank))  # (B, H, L)
    lse = torch.stack(lses, dim=-1)  # (B, H, L, R): combine rounds by their normalisers
    round_weights = masked_softmax(lse, mask=torch.isfinite(lse))  # (B, H, L, R)
    return torch.einsum("bhlr,rbhld->bhld", round_weights, torch.stack(outs))


def _chunk_scores(q, k, i, j, r, hashes, real, causal, not_self, scale):
    """Scores and allowed pairs of one sorted chunk of :func:`lsh_attention_loop`.

    Queries at positions ``i (B, H, qc)``, keys at ``j (B, H, ≤ 2kc)``, round ``r``;
    ``hashes = (q_buckets, k_buckets, q_chunk, k_chunk)`` of every round. A pair that
    meets (same bucket, key chunk = query chunk or the one before) in ``N`` rounds has
    ``log N`` subtracted from its score; ``ok`` keeps the pairs round ``r`` allows.
    Returns ``(s, ok)``, both ``(B, H, qc, 2kc)``.
    """
    q_buckets, k_buckets, q_chunk, k_chunk = hashes
    s = _rows(q, i) @ _rows(k, j).transpose(-1, -2) * scale  # (B, H, qc, 2kc)
    if not_self:
        s = s.masked_fill(i[..., :, None] == j[..., None, :], -SELF_PENALTY)
    gap = _pick(q_chunk, i)[..., :, None] - _pick(k_chunk, j)[..., None, :]
    qb, kb = _pick(q_buckets, i), _pick(k_buckets, j)  # (B, H, R, ·) each
    same = qb[..., :, None] == kb[..., None, :]
    meet = same & (gap >= 0) & (gap <= 1)  # (B, H, R, qc, 2kc), per round
    s = s - meet.sum(2).clamp_min(1).to(s.dtype).log()  # met N times: once
    ok = meet[:, :, r] & _rows(real[..., None], j).transpose(-1, -2)
    if causal:
        ok &= j[..., None, :] <= i[..., :, None]  # (B, H, qc, 2kc)
    return s, ok


def _rows(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x (B, H, N, F)`` at positions ``index (B, H, n)`` → ``(B, H, n, F)``."""
    return x.gather(2, index[..., None].expand(-1, -1, -1, x.shape[-1]))


def _pick(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Per-round ``x (B, H, R, N)`` at ``index (B, H, n)`` → ``(B, H, R, n)``."""
    return x.gather(3, index[:, :, None].expand(-1, -1, x.shape[2], -1))


def _logsumexp_or_minus_inf(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``log Σ exp`` over the allowed scores of each row, ``-inf`` for an empty row.

    ``(..., L, S)`` → ``(..., L)``; empty rows never pass ``-inf`` to ``logsumexp``, so
    no NaN reaches the gradient.
    """
    empty = ~mask.any(-1, keepdim=True)  # (..., L, 1)
    lse = torch.logsumexp(apply_mask(scores, mask | empty), dim=-1)  # (..., L)
    return torch.where(empty[..., 0], -math.inf, lse)


def lsh_attention(
    q,
    k,
    v,
    q_buckets,
    k_buckets,
    *,
    bucket_size: int = 64,
    causal: bool = False,
    key_padding: torch.Tensor | None = None,
    not_self: bool = False,
    scale: float | None = None,
):
    """Chunked LSH attention for given buckets: never builds the ``L × S`` matrix.

    The fast form of :func:`lsh_attention_loop`: all chunks of a round at once, in four
    steps (:func:`_sort_and_chunk`, :func:`_duplicate_tags`, :func:`_attend_round`,
    :func:`_unsort_and_combine`).

    Args:
        q: ``(B, H, L, D)``; k: ``(B, H, S, D)``; v: ``(B, H, S, Dv)``.
        q_buckets: integer ``(B, H, R, L)``; k_buckets: integer ``(B, H, R, S)``
            (one row per round, ``R ≥ 1``), bucket ids ``≥ 0``; ``L, S ≥ 1``.
        bucket_size: positions per chunk (see :func:`chunk_layout`).
        causal: key ``j`` allowed for query ``i`` only if ``j ≤ i``.
        key_padding: bool ``(B, S)``, ``True`` = real key, or ``None``.
        not_self: shared-QK: score of ``i`` with ``j = i`` becomes ``-SELF_PENALTY``.
        scale: score multiplier, default ``1/√D``.

    Returns:
        ``(B, H, L, Dv)``; a query with no allowed key gets zeros.
    """
    check_lsh_inputs(q, k, v, q_buckets, k_buckets, bucket_size, key_padding)
    L, S = q.shape[2], k.shape[2]
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    n_chunks, qc, kc = chunk_layout(L, S, bucket_size)
    Lp, Sp = n_chunks * qc, n_chunks * kc
    layout = _sort_and_chunk(q_buckets, k_buckets, key_padding, L, S, n_chunks, qc, kc)
    other_tags = _duplicate_tags(q_buckets, k_buckets, layout, n_chunks, qc, kc)
    q_rows = F.pad(q * scale, (0, 0, 0, Lp - L))  # (B, H, Lp, D), scaled once here
    k_rows = k if Sp == S else F.pad(k, (0, 0, 0, Sp - S))  # (B, H, Sp, D)
    v_rows = v if Sp == S else F.pad(v, (0, 0, 0, Sp - S))  # (B, H, Sp, Dv)
    rounds = [  # one round at a time: the big (qc × 2kc) blocks live for one round
        _attend_round(q_rows, k_rows, v_rows, layout, other_tags, r, causal, not_self)
        for r in range(q_buckets.shape[2])
    ]
    return _unsort_and_combine(
        rounds, layout["q_rank"], layout["q_order"], L
    )  # (B, H, L, Dv)


def _sort_and_chunk(q_buckets, k_buckets, key_padding, L, S, n_chunks, qc, kc) -> dict:
    """Step 1: sort by bucket, cut into chunks, put each key chunk after the one before.

    Returns a dict of ``(B, H, R, …)`` tensors: ``q_rank``/``k_rank`` (inverse sorts),
    ``q_order``/``k_order``, ``q_pos (…, C, qc)`` and ``k_pos (…, C, 2kc)`` (original
    positions in each sorted slot), ``qb``/``kb`` (their buckets; ``-3`` for a key
    nobody may see: padding, a masked key, chunk 0's wrapped-around predecessor).
    """
    B, H, R = q_buckets.shape[:3]
    Lp, Sp = n_chunks * qc, n_chunks * kc
    q_order, q_rank = sort_by_bucket(q_buckets, Lp)  # (B, H, R, Lp) each
    k_order, k_rank = sort_by_bucket(k_buckets, Sp)  # (B, H, R, Sp) each
    q_pos = q_order.reshape(B, H, R, n_chunks, qc)  # (B, H, R, C, qc)
    k_pos = _with_previous(k_order.reshape(B, H, R, n_chunks, kc))  # (…, C, 2kc)
    qb = F.pad(q_buckets, (0, Lp - L), value=-1).gather(-1, q_order)  # (B, H, R, Lp)
    kb = F.pad(k_buckets, (0, Sp - S), value=-2).gather(-1, k_order)  # (B, H, R, Sp)
    kb = _with_previous(kb.reshape(B, H, R, n_chunks, kc))  # (B, H, R, C, 2kc)
    key_ok = k_pos < S  # (B, H, R, C, 2kc)
    if key_padding is not None:
        padded = F.pad(key_padding, (0, Sp - S), value=False)[:, None, None, :]
        padded = padded.expand(B, H, R, Sp).gather(-1, k_order)  # (B, H, R, Sp)
        key_ok = key_ok & _with_previous(padded.reshape(B, H, R, n_chunks, kc))
    key_ok[..., 0, :kc] = False  # chunk 0 has no predecessor
    return {
        "q_order": q_order,
        "q_rank": q_rank,
        "k_order": k_order,
        "k_rank": k_rank,
        "q_pos": q_pos,
        "k_pos": k_pos,
        "qb": qb.reshape(B, H, R, n_chunks, qc),
        "kb": torch.where(key_ok, kb, -3),
    }


def _duplicate_tags(q_buckets, k_buckets, layout, n_chunks, qc, kc) -> list:
    """Step 2: what each sorted slot looked like in the *other* rounds.

    In a round, query and key meet iff same bucket and key chunk ∈ {query chunk − 1,
    query chunk}; with ``tag = bucket · (C + 1) + chunk`` that is exactly
    ``tag_q − tag_k ∈ {0, 1}``. Item ``s - 1`` of the list holds, in round ``r``'s
    sorted layout, the tags the same positions got in round ``(r + s) mod R``:
    ``((B, H, R, C, qc, 1), (B, H, R, C, 1, 2kc))``.
    """
    B, H, R, L = q_buckets.shape
    S = k_buckets.shape[3]
    Lp, Sp = n_chunks * qc, n_chunks * kc
    q_tag = F.pad(q_buckets, (0, Lp - L), value=-1) * (n_chunks + 1)
    q_tag = (q_tag + layout["q_rank"] // qc).int()  # (B, H, R, Lp)
    k_tag = F.pad(k_buckets, (0, Sp - S), value=-2) * (n_chunks + 1)
    k_tag = (k_tag + layout["k_rank"] // kc).int()  # (B, H, R, Sp)
    tags = []
    for s in range(1, R):
        q_other = q_tag.roll(-s, dims=2).gather(-1, layout["q_order"])  # (B, H, R, Lp)
        k_other = k_tag.roll(-s, dims=2).gather(-1, layout["k_order"])  # (B, H, R, Sp)
        q_other = q_other.reshape(B, H, R, n_chunks, qc)[..., :, None]
        k_other = _with_previous(k_other.reshape(B, H, R, n_chunks, kc))[..., None, :]
        tags.append((q_other, k_other))
    return tags


def _attend_round(q_rows, k_rows, v_rows, layout, other_tags, r, causal, not_self):
    """Step 3: round ``r``, every chunk at once: ``(out (B, H, 1, C, qc, Dv), lse)``.

    ``lse (B, H, 1, C, qc, 1)`` is each row's log-sum-exp, ``-inf`` for an empty row.
    The in-place edits are autograd-safe: the products do not need their results.
    """
    rd = slice(r, r + 1)  # keeps the round axis, with size 1
    qp, kp = (
        layout["q_pos"][:, :, rd],
        layout["k_pos"][:, :, rd],
    )  # (…, C, qc), (…, 2kc)
    allowed = layout["qb"][:, :, rd, ..., None] == layout["kb"][:, :, rd, ..., None, :]
    if causal:
        allowed &= kp[..., None, :] <= qp[..., :, None]  # (B, H, 1, C, qc, 2kc)
    scores = _sorted_blocks(q_rows, layout, rd, "q") @ _sorted_blocks(
        k_rows, layout, rd, "k"
    ).transpose(-1, -2)  # (B, H, 1, C, qc, 2kc)
    if not_self:
        scores.masked_fill_(kp[..., None, :] == qp[..., :, None], -SELF_PENALTY)
    if other_tags:  # a pair met in N rounds: subtract log N in each, so it counts once
        counts = torch.ones_like(scores)  # round r itself
        for q_other, k_other in other_tags:
            q_other, k_other = q_other[:, :, rd], k_other[:, :, rd]
            counts += (q_other == k_other) | (q_other == k_other + 1)
        scores.sub_(counts.log_())
        del counts
    masked = apply_mask(scores, allowed, inplace=True)  # -inf where not allowed
    del scores, allowed  # (B, H, 1, C, qc, 2kc): one big block from here on
    top = masked.detach().amax(dim=-1, keepdim=True)  # (B, H, 1, C, qc, 1)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    e = masked.sub_(top).exp_()  # in place: one big block, not three
    total = e.sum(dim=-1, keepdim=True)  # (B, H, 1, C, qc, 1)
    safe = torch.where(total > 0, total, torch.ones_like(total))
    out = (
        e @ _sorted_blocks(v_rows, layout, rd, "k")
    ) / safe  # (B, H, 1, C, qc, Dv): normalised after
    lse = torch.where(total > 0, top + safe.log(), torch.full_like(total, -math.inf))
    return out, lse


def _sorted_blocks(x, layout, rd, name):
    """Round ``rd``'s rows of ``x (B, H, N, F)`` in sorted chunks: queries
    (``name="q"``) ``(B, H, 1, C, qc, F)``, keys or values (``"k"``) each chunk after
    the one before, ``(B, H, 1, C, 2kc, F)``. For a backward, the rows are put in
    sorted order once (:class:`SortRows`), then chunked; without one, one gather
    straight into that layout (no sorted copy)."""
    pos = layout[name + "_pos"][:, :, rd]  # (B, H, 1, C, qc) or (B, H, 1, C, 2kc)
    if not (torch.is_grad_enabled() and x.requires_grad):
        return _take(x, pos)
    order, rank = layout[name + "_order"][:, :, rd], layout[name + "_rank"][:, :, rd]
    rows = SortRows.apply(x, order, rank)  # (B, H, 1, N, F)
    C, c = pos.shape[-2], pos.shape[-1] // (1 if name == "q" else 2)
    blocks = rows.reshape(*rows.shape[:3], C, c, x.shape[-1])  # (B, H, 1, C, c, F)
    return blocks if name == "q" else _with_previous(blocks)


def _unsort_and_combine(rounds, q_rank, q_order, L):
    """Step 4: put outputs back in the original order, combine rounds by their ``lse``.

    ``rounds``: list of ``(out (B, H, 1, C, qc, Dv), lse (B, H, 1, C, qc, 1))``;
    ``q_rank``, ``q_order``: ``(B, H, R, Lp)``. Returns ``(B, H, L, Dv)``.
    """
    out = torch.cat([o for o, _ in rounds], dim=2)  # (B, H, R, C, qc, Dv)
    lse = torch.cat([s for _, s in rounds], dim=2)  # (B, H, R, C, qc, 1)
    B, H, R, Lp = q_rank.shape
    Dv = out.shape[-1]
    # the output of position i sits in sorted slot rank[i]: undo each round's sort,
    # one permutation of the R·Lp slots (its inverse: the sort order)
    offset = Lp * torch.arange(R, device=out.device)[:, None]  # (R, 1)
    rank, order = ((x + offset).reshape(B, H, 1, R * Lp) for x in (q_rank, q_order))
    out = SortRows.apply(out.reshape(B, H, R * Lp, Dv), rank, order)
    out = out.reshape(B, H, R, Lp, Dv)[..., :L, :]  # (B, H, R, L, Dv)
    lse = lse.reshape(B, H, R, Lp).gather(3, q_rank[..., :L]).transpose(2, 3)
    round_weights = masked_softmax(lse, mask=torch.isfinite(lse))  # (B, H, L, R)
    return torch.einsum("bhlr,bhrld->bhld", round_weights, out)  # (B, H, L, Dv)


def _sorted_ranks(buckets: torch.Tensor) -> torch.Tensor:
    """Rank of each position when sorted by (bucket, position): a stable sort, then its inverse."""
    order = torch.sort(buckets, dim=-1, stable=True).indices  # (..., N)
    return torch.argsort(order, dim=-1)  # (..., N)


def lsh_attention_naive(
    q,
    k,
    v,
    q_buckets,
    k_buckets,
    *,
    bucket_size: int = 64,
    causal: bool = False,
    key_padding: torch.Tensor | None = None,
    not_self: bool = False,
    scale: float | None = None,
):
    """Reference: dense softmax attention restricted to the pairs the same buckets allow.

    Query ``i`` may attend to key ``j`` when, in at least one round, they share a bucket and
    ``j``'s chunk (of the keys sorted by bucket, then position) is ``i``'s chunk or the one
    before — plus the causal and key-padding masks. Same arguments as :func:`lsh_attention`.

    Returns:
        ``(out (B, H, L, Dv), weights (B, H, L, S))``.
    """
    check_lsh_inputs(q, k, v, q_buckets, k_buckets, bucket_size, key_padding)
    L, S = q.shape[2], k.shape[2]
    _, qc, kc = chunk_layout(L, S, bucket_size)
    q_chunk = _sorted_ranks(q_buckets) // qc  # (B, H, R, L)
    k_chunk = _sorted_ranks(k_buckets) // kc  # (B, H, R, S)
    gap = q_chunk[..., :, None] - k_chunk[..., None, :]  # (B, H, R, L, S)
    same = q_buckets[..., :, None] == k_buckets[..., None, :]  # (B, H, R, L, S)
    allowed = (same & (gap >= 0) & (gap <= 1)).any(
        dim=2
    )  # (B, H, L, S): union over rounds
    if key_padding is not None:
        allowed = allowed & key_padding[:, None, None, :]
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    scores = (q @ k.transpose(-1, -2)) * scale  # (B, H, L, S)
    if not_self:
        eye = torch.eye(L, S, dtype=torch.bool, device=q.device)  # (L, S)
        scores = torch.where(eye, torch.full_like(scores, -SELF_PENALTY), scores)
    weights = masked_softmax(scores, mask=allowed, causal=causal)  # (B, H, L, S)
    return weights @ v, weights  # (B, H, L, Dv)


class LSHAttention(Mechanism):
    """LSH attention as a mechanism (registered as ``"lsh"``).

    Args (keyword-only):
        bucket_size: positions per chunk (the Reformer's 64).
        n_hashes: hash rounds ``R``; more rounds miss fewer neighbours and cost more.
        n_buckets: buckets ``M`` (even, or 1 for "no hashing"); default about ``L / bucket_size``.
        shared_qk: the Reformer's shared-QK attention: keys are the normalised *queries*
            (the ``k`` argument is ignored, so ``S`` must equal ``L``), and a position attends
            to itself only when nothing else is allowed.
        redraw: in training mode, draw fresh rotations at every call (from a generator seeded
            with ``seed + 1``); in eval mode the rotations always come from ``seed``.
        seed: seed of the random rotations.

    Only key-padding masks (``(B, 1, 1, S)`` or ``(B, S)``) are accepted;
    ``causal=True`` for causal.
    No query ever gets weight on a later (causal) or masked key. The *grouping* depends on the
    whole sequence, though: buckets are sorted and chunked together, so a later query or key can
    shift chunk boundaries and change which earlier keys share a chunk
    (``content_dependent_grouping``).
    Masked keys are moved to a bucket of their own (non-shared mode), so they never shift them.
    The last buckets are kept in ``last_buckets`` (``(q_buckets, k_buckets)``, each
    ``(B, H, R, ·)``).
    """

    content_dependent_grouping = True

    def __init__(
        self,
        *,
        bucket_size: int = 64,
        n_hashes: int = 2,
        n_buckets: int | None = None,
        shared_qk: bool = False,
        redraw: bool = False,
        seed: int = 0,
    ):
        super().__init__()
        check_lsh_settings(bucket_size, n_hashes, n_buckets, seed, shared_qk, redraw)
        self.bucket_size, self.n_hashes, self.n_buckets = (
            bucket_size,
            n_hashes,
            n_buckets,
        )
        self.shared_qk, self.redraw, self.seed = shared_qk, redraw, seed
        self._train_generator = torch.Generator().manual_seed(seed + 1)
        self.last_buckets = None

    def rotations(self, dim: int, n_buckets: int) -> torch.Tensor:
        """The ``(R, D, M/2)`` rotations for this call.

        Fixed by ``seed``, unless redrawing in training.
        """
        if self.training and self.redraw:
            return random_rotations(
                dim, n_buckets, self.n_hashes, generator=self._train_generator
            )
        return random_rotations(dim, n_buckets, self.n_hashes, seed=self.seed)

    def forward(self, q, k, v, *, mask=None, causal=False):
        # q and k are hashed before lsh_attention sees them: the mechanism validator comes first
        check_mechanism_inputs(q, k, v, mask)
        B, H, L, D = q.shape
        S = k.shape[2]
        key_padding = key_padding_from_mask(mask, B, S, "lsh")  # (B, S) or None
        if self.shared_qk and L != S:
            raise ValueError(
                f"shared_qk needs as many queries as keys, got q {tuple(q.shape)} "
                f"and k {tuple(k.shape)}"
            )
        n_buckets = self.n_buckets or default_n_buckets(L, S, self.bucket_size)
        if n_buckets == 1:
            q_buckets = torch.zeros(
                B, H, self.n_hashes, L, dtype=torch.long, device=q.device
            )  # (B, H, R, L)
            k_buckets = torch.zeros(
                B, H, self.n_hashes, S, dtype=torch.long, device=q.device
            )  # (B, H, R, S)
        else:
            rot = self.rotations(D, n_buckets).to(q.device)  # (R, D, M/2)
            q_buckets = angular_hash(q.detach(), rot)  # (B, H, R, L)
            k_buckets = (
                q_buckets if self.shared_qk else angular_hash(k.detach(), rot)
            )  # (B, H, R, S)
        if (
            key_padding is not None and not self.shared_qk
        ):  # masked keys: a bucket no query has
            k_buckets = torch.where(
                key_padding[:, None, None, :], k_buckets, n_buckets
            )  # (B, H, R, S)
        if self.shared_qk:
            k = F.normalize(
                q, dim=-1
            )  # keys are the unit-length queries; queries stay as they are
        self.last_buckets = (q_buckets, k_buckets)
        return lsh_attention(
            q,
            k,
            v,
            q_buckets,
            k_buckets,
            bucket_size=self.bucket_size,
            causal=causal,
            key_padding=key_padding,
            not_self=self.shared_qk,
        )  # (B, H, L, Dv)
