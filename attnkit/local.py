"""Blocked local (sliding-window) attention: O(n·w) scores, never the n × n matrix.

Query ``i`` sees keys ``j`` with ``|i − j| ≤ window`` (one-sided width, as in
:func:`attnkit.sparse.local_pattern`), plus optional *global* tokens that see and are
seen by every position (Longformer). The idea, written as a loop over query blocks in
:func:`local_attention_teaching`:

1. cut the queries into blocks of ``b = window`` positions;
2. every key within ``window`` of a query lies in the query's own block or a neighbour,
   so each query block scores only ``3b`` keys (``2b`` when causal: no look-forward);
3. mask, inside those ``b × 3b`` tiles, the keys that are too far, in the padding,
   padded out by the caller, in the future (causal) or global (own columns).

:func:`local_attention` does the same for all blocks at once, in four named steps
(:func:`to_blocks`, :func:`tile_masks`, :func:`attend_in_groups`, :func:`global_rows`).
Scores cost ``n · 3b = O(n·w)`` time instead of ``n²``, and are never all stored (the
masked softmax and weighted sum run fused, tile by tile); global rows are computed
densely, ``G × n``. :func:`local_attention_naive` is the same maths on the full
masked matrix, the reference the tests compare against.
"""

from __future__ import annotations

from itertools import groupby

import torch
import torch.nn.functional as F

from ._checks import (
    check_block_inputs,
    check_bool,
    check_global_tokens,
    check_int_in_range,
    check_local_inputs,
)
from .masking import masked_softmax
from .mechanisms import Mechanism, key_padding_from_mask
from .scoring import dot_product_scores
from .sparse import longformer_pattern, sparse_attention_naive

__all__ = [
    "block_attention",
    "local_attention_teaching",
    "local_attention",
    "local_attention_naive",
    "LocalAttention",
]

# numbers in flight at once, at most (a few MB): blocks that need their own masks are
# processed in groups this big
CHUNK_ELEMENTS = 2**20


def local_attention_teaching(
    q, k, v, *, window, key_padding=None, causal=False, scale=None
):
    """Sliding-window attention, one block of queries at a time (the teaching version).

    A block of ``b = window`` queries starting at ``i0`` needs only the keys within
    ``window`` of it: positions ``i0 − window`` to ``i0 + b − 1 + window``. Each block
    scores that slice, masks the pairs farther apart than ``window`` (and the future
    when causal), and takes an ordinary masked softmax. Same maths as
    :func:`local_attention`, without global tokens; ``(B, H, L, D)`` in,
    ``(B, H, L, Dv)`` out.
    """
    check_local_inputs(q, k, v, window, None, key_padding)
    L, S = q.shape[-2], k.shape[-2]
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    b = max(1, window)  # queries per block
    pos = torch.arange(max(L, S), device=q.device)
    outs = [v.new_zeros(*q.shape[:-2], 0, v.shape[-1])]
    for i0 in range(0, L, b):
        i1 = min(i0 + b, L)  # queries i0 .. i1 - 1
        j0 = max(0, i0 - window)  # keys j0 .. j1 - 1
        j1 = min(S, i1 if causal else i1 + window)
        dist = pos[i0:i1, None] - pos[None, j0:j1]  # (b, W)
        allowed = dist.abs() <= window
        if causal:
            allowed = allowed & (dist >= 0)
        if key_padding is not None:
            allowed = allowed & key_padding[:, None, None, j0:j1]  # (B, 1, b, W)
        scores = dot_product_scores(q[..., i0:i1, :], k[..., j0:j1, :], scale=scale)
        weights = masked_softmax(scores, mask=allowed)  # (B, H, b, W)
        outs.append(weights @ v[..., j0:j1, :])  # (B, H, b, Dv)
    return torch.cat(outs, dim=-2)  # (B, H, L, Dv)


def _windows(
    x: torch.Tensor, num_blocks: int, b: int, look_forward: int
) -> torch.Tensor:
    """Each block's keys with its neighbours', a view (no copy) along the positions.

    Args:
        x: ``(..., (num_blocks + 2)·b, E)``: the keys padded by one block on each side.

    Returns:
        ``(..., num_blocks, (2 + look_forward)·b, E)``: for block ``c`` the keys of
        blocks ``c − 1, c`` (and ``c + 1`` when ``look_forward`` is 1); overlapping
        windows of ``x``, so its storage is shared, not copied.
    """
    W = (2 + look_forward) * b
    x = x[..., : (num_blocks + 1 + look_forward) * b, :]  # (..., (nb+1+f)·b, E)
    return x.unfold(-2, W, b).transpose(-2, -1)  # (..., nb, (2+f)·b, E)


def block_attention(
    q_blk, k_win, v_win, tile_mask, k_glob=None, v_glob=None, glob_mask=None
):
    """Attention inside query blocks, each against its own window of keys.

    One softmax per query row, over its window and the global keys together. The
    masked softmax and the weighted sum run as PyTorch's fused
    ``scaled_dot_product_attention`` (scores a tile at a time, never all stored; a row
    with no allowed key gives zeros, as :func:`~attnkit.masking.masked_softmax` does).

    Args:
        q_blk: ``(B, H, C, b, D)``, already multiplied by the scale: ``C`` blocks
            of ``b`` queries.
        k_win: ``(B, H, C, W, D)``; v_win: ``(B, H, C, W, Dv)``: each block's ``W``
            keys and values.
        tile_mask: boolean, broadcastable to ``(B, H, C, b, W)`` (``True`` = allowed).
        k_glob, v_glob: ``(B, H, G, D)``, ``(B, H, G, Dv)``: keys every query sees,
            or ``None``.
        glob_mask: boolean, broadcastable to ``(B, H, C, b, G)``.

    Returns:
        ``(B, H, C, b, Dv)``.
    """
    check_block_inputs(q_blk, k_win, v_win, tile_mask, k_glob, v_glob, glob_mask)
    B, H, C, b, D = q_blk.shape
    if k_glob is not None:  # the global keys join every block's window
        k_win = torch.cat([k_win, k_glob[:, :, None].expand(-1, -1, C, -1, -1)], -2)
        v_win = torch.cat([v_win, v_glob[:, :, None].expand(-1, -1, C, -1, -1)], -2)
        lead = torch.broadcast_shapes(tile_mask.shape[:-1], glob_mask.shape[:-1])
        tile_mask = torch.cat(
            [tile_mask.expand(*lead, -1), glob_mask.expand(*lead, -1)], dim=-1
        )  # (B|1, H|1, C|1, b|1, W + G)
    W, Dv = v_win.shape[-2:]
    mask = tile_mask.reshape((1,) * (5 - tile_mask.dim()) + tile_mask.shape)
    if mask.shape[0] == mask.shape[1] == 1:
        mask = mask[0]  # (1, C|1, b|1, W), the same for every (batch, head)
    else:
        mask = mask.expand(B, H, *mask.shape[2:]).reshape(B * H, *mask.shape[2:])
    out = F.scaled_dot_product_attention(
        q_blk.reshape(B * H, C, b, D),
        k_win.reshape(B * H, C, W, D),
        v_win.reshape(B * H, C, W, Dv),
        attn_mask=mask,
        scale=1.0,
    )  # (B·H, C, b, Dv)
    return out.reshape(B, H, C, b, Dv)  # (B, H, C, b, Dv)


def local_attention(
    q, k, v, *, window, global_tokens=None, key_padding=None, causal=False, scale=None
):
    """Blocked sliding-window attention (optionally with global tokens).

    The same attention as :func:`local_attention_teaching`, vectorised over blocks in
    four named steps: :func:`to_blocks`, :func:`tile_masks`, :func:`attend_in_groups`
    and, for global tokens, :func:`global_rows`.

    Args:
        q: ``(B, H, L, D)``; k: ``(B, H, S, D)``; v: ``(B, H, S, Dv)``.
        window: one-sided width ``w ≥ 0``: query ``i`` sees keys ``|i − j| ≤ w``.
        global_tokens: positions that see all keys and are seen by all queries,
            or ``None``.
        key_padding: boolean ``(B, S)``, ``True`` = real key, or ``None``.
        causal: also forbid keys ``j > i``.
        scale: score multiplier, default ``1/√D``.

    Returns:
        ``(B, H, L, Dv)``; a query with no allowed key gets zeros (so does every query
        when ``S = 0``); ``L = 0`` or ``B = 0`` gives an empty output.
    """
    g = check_local_inputs(q, k, v, window, global_tokens, key_padding)  # (G,)
    L, S, D = q.shape[2], k.shape[2], q.shape[3]
    scale = D**-0.5 if scale is None else scale
    # block size: every key within `window` of a query is in a neighbouring block
    b = max(1, min(window, max(L, S, 1)))
    f = 0 if causal else 1  # look-forward blocks
    qb, kw, vw = to_blocks(q * scale, k, v, b, f)  # (B, H, nb, b, D), (B, H, nb, W, .)
    band, key_ok, g_mask = tile_masks(qb.shape[2], b, window, S, g, key_padding, causal)
    kg, vg = k[:, :, g], v[:, :, g]  # (B, H, G, D), (B, H, G, Dv)
    if not g.numel():
        kg = vg = g_mask = None
    out = attend_in_groups(qb, kw, vw, band, key_ok, kg, vg, g_mask)  # (B, H, P, Dv)
    out = out[:, :, :L]  # (B, H, L, Dv)
    if not g.numel():
        return out
    return out.index_copy(2, g, global_rows(q, k, v, g, key_padding, causal, scale))


def to_blocks(q, k, v, b, look_forward):
    """Step 1: cut the queries into blocks and stack each block's window of keys.

    Args:
        q: ``(B, H, L, D)`` (already scaled); k: ``(B, H, S, D)``; v: ``(B, H, S, Dv)``.
        b: block size; look_forward: 1 to include the next block's keys, 0 when causal.

    Returns:
        ``q (B, H, nb, b, D)``, ``k (B, H, nb, W, D)``, ``v (B, H, nb, W, Dv)`` with
        ``nb = ⌈max(L, S, 1) / b⌉`` and ``W = (2 + look_forward)·b``; the padding is
        zeros.
    """
    B, H, L, D = q.shape
    S = k.shape[2]
    nb = -(-max(L, S, 1) // b)  # number of blocks
    P = nb * b  # padded length
    qb = F.pad(q, (0, 0, 0, P - L)).reshape(B, H, nb, b, D)  # (B, H, nb, b, D)
    # one block of padding before the first block and after the last
    kw = _windows(
        F.pad(k, (0, 0, b, P - S + b)), nb, b, look_forward
    )  # (B, H, nb, W, D)
    vw = _windows(
        F.pad(v, (0, 0, b, P - S + b)), nb, b, look_forward
    )  # (B, H, nb, W, Dv)
    return qb, kw, vw


def tile_masks(nb, b, window, S, g, key_padding, causal):
    """Step 2: which (query, key) pairs of each ``b × W`` tile are allowed.

    Inside tile ``c``, query ``c·b + r`` and key ``(c − 1)·b + s`` are ``b + r − s``
    apart whatever ``c`` is: one ``(b, W)`` band serves every tile. Only which keys
    exist (not padding, not global, not padded out) depends on the tile.

    Returns:
        ``band (b, W)``, ``key_ok (B or 1, 1, nb, 1, W)`` and the global keys' mask
        ``(B or 1, 1, nb, b, G)``.
    """
    dev, f = g.device, 0 if causal else 1
    P = nb * b
    W = (2 + f) * b
    dist = (
        b + torch.arange(b, device=dev)[:, None] - torch.arange(W, device=dev)
    )  # (b, W)
    band = dist.abs() <= window  # (b, W)
    if causal:
        band = band & (dist >= 0)
    exists = torch.zeros(P + 2 * b, dtype=torch.bool, device=dev)
    exists[b : b + S] = True  # padded positions are no keys
    exists[g + b] = False  # global keys get their own columns
    exists = exists[None, :]  # (1, P + 2b)
    if key_padding is not None:
        padded = torch.zeros(len(key_padding), P + 2 * b, dtype=torch.bool, device=dev)
        padded[:, b : b + S] = key_padding
        exists = exists & padded  # (B, P + 2b)
    key_ok = _windows(exists[..., None], nb, b, f)[..., 0]  # (B or 1, nb, W)
    key_ok = key_ok[:, None, :, None, :]  # (B or 1, 1, nb, 1, W)
    q_pos = torch.arange(P, device=dev).reshape(nb, b, 1)  # (nb, b, 1)
    g_mask = (q_pos >= g) | (not causal)  # (nb, b, G)
    g_mask = g_mask[None, None]  # (1, 1, nb, b, G)
    if key_padding is not None:
        g_mask = g_mask & key_padding[:, g][:, None, None, None, :]  # (B, 1, nb, b, G)
    return band, key_ok, g_mask


def attend_in_groups(qb, kw, vw, band, key_ok, kg, vg, g_mask):
    """Step 3: :func:`block_attention` over groups of blocks.

    A block whose keys all exist needs only the ``(b, W)`` band, the same for every
    such block: a run of them goes in one call. The other blocks (at the ends, next to
    padding, or with global keys) carry their own masks, a few blocks per call, so the
    masks in flight stay about ``CHUNK_ELEMENTS`` numbers (a few MB) whatever the
    length. Shapes as returned by :func:`to_blocks` and :func:`tile_masks`; returns
    ``(B, H, nb·b, Dv)``.
    """
    B, H, nb, b, _ = qb.shape
    G = 0 if kg is None else kg.shape[2]
    per_block = max(1, B * H * b * (kw.shape[-2] + G))
    step = max(1, CHUNK_ELEMENTS // per_block)  # blocks per group with their own mask
    plain = key_ok.all(-1).all(0).flatten().tolist()  # (nb,) every key exists
    groups = []  # (number of blocks, whether they need only the band)
    for is_plain, run in groupby(plain if kg is None else [False] * nb):
        size = len(list(run))
        cut = size if is_plain else step
        groups += [(min(cut, size - s), is_plain) for s in range(0, size, cut)]
    sizes = [size for size, _ in groups]
    parts = zip(
        qb.split(sizes, 2),
        kw.split(sizes, 2),
        vw.split(sizes, 2),
        key_ok.split(sizes, 2),
        [None] * len(sizes) if kg is None else g_mask.split(sizes, 2),
    )  # one backward step for all groups (slicing would cost one per group)
    outs = []
    for (_, is_plain), (q_c, k_c, v_c, ok_c, g_c) in zip(groups, parts):
        tile = band if is_plain else ok_c & band  # (b, W) or (B or 1, 1, C, b, W)
        outs.append(block_attention(q_c, k_c, v_c, tile, kg, vg, g_c))  # (B,H,C,b,Dv)
    return torch.cat(outs, dim=2).reshape(B, H, nb * b, vw.shape[-1])  # (B, H, P, Dv)


def global_rows(q, k, v, g, key_padding, causal, scale):
    """Step 4: the rows of the global queries, which see every key (``G × S`` scores).

    Returns:
        ``(B, H, G, Dv)``.
    """
    S = k.shape[2]
    row_mask = torch.ones(g.numel(), S, dtype=torch.bool, device=g.device)  # (G, S)
    if causal:
        row_mask = torch.arange(S, device=g.device)[None, :] <= g[:, None]
    row_mask = row_mask[None, None]  # (1, 1, G, S)
    if key_padding is not None:
        row_mask = row_mask & key_padding[:, None, None, :]  # (B, 1, G, S)
    scores = dot_product_scores(q[:, :, g], k, scale=scale)  # (B, H, G, S)
    return masked_softmax(scores, mask=row_mask) @ v  # (B, H, G, Dv)


def local_attention_naive(
    q, k, v, *, window, global_tokens=None, key_padding=None, causal=False, scale=None
):
    """The same attention as :func:`local_attention`, on the full masked matrix.

    Builds :func:`~attnkit.sparse.longformer_pattern` (a plain local window when there
    are no global tokens) and calls :func:`~attnkit.sparse.sparse_attention_naive`.

    Returns:
        ``(out (B, H, L, Dv), weights (B, H, L, S))``, like every ``*_naive`` reference.
    """
    g = check_local_inputs(
        q, k, v, window, global_tokens, key_padding
    )  # (G,) global positions
    L, S = q.shape[2], k.shape[2]
    pattern = longformer_pattern(max(L, S), window, g.tolist(), device=q.device)[
        :L, :S
    ]  # (L, S)
    mask = (
        None if key_padding is None else key_padding[:, None, None, :]
    )  # (B, 1, 1, S)
    return sparse_attention_naive(
        q, k, v, pattern, mask=mask, causal=causal, scale=scale
    )


class LocalAttention(Mechanism):
    """Sliding-window attention as a mechanism (registered as ``"local"``).

    Args (keyword-only):
        window: one-sided width: query ``i`` sees keys ``|i − j| ≤ window``.
        global_tokens: positions with global attention (Longformer), or ``None``.
        blocked: ``True`` runs :func:`local_attention` (O(n·w)); ``False`` runs the
            dense masked reference :func:`local_attention_naive` (O(n²), to compare).

    ``mask`` may only be a key-padding mask ``(B, 1, 1, S)`` or ``(B, S)``.
    """

    def __init__(self, *, window: int = 64, global_tokens=None, blocked: bool = True):
        super().__init__()
        check_int_in_range("window", window, 0)
        check_bool("blocked", blocked)
        # positions are checked against the sequence length at each call
        self.global_tokens = (
            None
            if global_tokens is None
            else check_global_tokens(global_tokens, 2**62).tolist()
        )
        self.window, self.blocked = window, blocked

    def forward(self, q, k, v, *, mask=None, causal=False):
        key_padding = key_padding_from_mask(
            mask, q.shape[0], k.shape[2], "local"
        )  # (B, S) or None
        settings = dict(
            window=self.window,
            global_tokens=self.global_tokens,
            key_padding=key_padding,
            causal=causal,
        )
        if self.blocked:
            return local_attention(q, k, v, **settings)  # (B, H, L, Dv)
        out, _ = local_attention_naive(q, k, v, **settings)
        return out  # (B, H, L, Dv)
