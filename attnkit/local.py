"""Blocked local (sliding-window) attention: O(n·w) scores, never the n × n matrix.

Query ``i`` sees keys ``j`` with ``|i − j| ≤ window`` (one-sided width, as in
:func:`attnkit.sparse.local_pattern`), plus optional *global* tokens that see and are seen
by every position (Longformer). The trick that makes it fast:

1. cut the sequence into blocks of ``b = window`` positions (padding the end to a whole block);
2. every key within ``window`` of a query lies in the query's own block or a neighbour,
   so each query block scores only ``3b`` keys (``2b`` when causal: no look-forward);
3. mask, inside those ``b × 3b`` tiles, the keys that are too far, in the padding, padded
   out by the caller, in the future (causal) or global (they get their own columns).

Scores cost ``n · 3b = O(n·w)`` time and memory instead of ``n²``. Global rows are
computed densely, ``G × n``. :func:`local_attention_naive` is the same maths on the full
masked matrix, the reference the tests compare against.
"""

from __future__ import annotations

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
    "local_attention",
    "local_attention_naive",
    "LocalAttention",
]

# scores computed at once, at most (a few MB): blocks are processed in groups of this size
CHUNK_ELEMENTS = 2**20


def _windows(
    x: torch.Tensor, num_blocks: int, b: int, look_forward: int
) -> torch.Tensor:
    """Stack each block's keys with its neighbours' along the position axis.

    Args:
        x: ``(..., (num_blocks + 2)·b, E)``: the keys padded by one block on each side.

    Returns:
        ``(..., num_blocks, (2 + look_forward)·b, E)``: for block ``c`` the keys of
        blocks ``c − 1, c`` (and ``c + 1`` when ``look_forward`` is 1).
    """
    blocks = x.reshape(
        *x.shape[:-2], num_blocks + 2, b, x.shape[-1]
    )  # (..., nb+2, b, E)
    parts = [blocks[..., s : s + num_blocks, :, :] for s in range(2 + look_forward)]
    return torch.cat(parts, dim=-2)  # (..., nb, (2+f)·b, E)


def block_attention(
    q_blk, k_win, v_win, tile_mask, k_glob=None, v_glob=None, glob_mask=None
):
    """Attention inside query blocks, each against its own window of keys (one softmax per row).

    Args:
        q_blk: ``(B, H, C, b, D)``, already multiplied by the scale: ``C`` blocks of ``b`` queries.
        k_win: ``(B, H, C, W, D)``; v_win: ``(B, H, C, W, Dv)``: each block's ``W`` keys and values.
        tile_mask: boolean, broadcastable to ``(B, H, C, b, W)`` (``True`` = allowed).
        k_glob, v_glob: ``(B, H, G, D)``, ``(B, H, G, Dv)``: keys every query sees, or ``None``.
        glob_mask: boolean, broadcastable to ``(B, H, C, b, G)``.

    Returns:
        ``(B, H, C, b, Dv)``.
    """
    check_block_inputs(q_blk, k_win, v_win, tile_mask, k_glob, v_glob, glob_mask)
    scores = q_blk @ k_win.transpose(-2, -1)  # (B, H, C, b, W)
    if k_glob is None:
        return masked_softmax(scores, mask=tile_mask) @ v_win  # (B, H, C, b, Dv)
    g_scores = q_blk @ k_glob.transpose(-2, -1)[:, :, None]  # (B, H, C, b, G)
    both = torch.cat([scores, g_scores], dim=-1)  # (B, H, C, b, W + G)
    weights = masked_softmax(
        both, mask=torch.cat([tile_mask, glob_mask], dim=-1)
    )  # (B, H, C, b, W + G)
    W = k_win.shape[-2]
    return (
        weights[..., :W] @ v_win + weights[..., W:] @ v_glob[:, :, None]
    )  # (B, H, C, b, Dv)


def local_attention(
    q, k, v, *, window, global_tokens=None, key_padding=None, causal=False, scale=None
):
    """Blocked sliding-window attention (optionally with global tokens).

    Args:
        q: ``(B, H, L, D)``; k: ``(B, H, S, D)``; v: ``(B, H, S, Dv)``.
        window: one-sided width ``w ≥ 0``: query ``i`` sees keys ``|i − j| ≤ w``.
        global_tokens: positions that see all keys and are seen by all queries, or ``None``.
        key_padding: boolean ``(B, S)``, ``True`` = real key, or ``None``.
        causal: also forbid keys ``j > i``.
        scale: score multiplier, default ``1/√D``.

    Returns:
        ``(B, H, L, Dv)``; a query with no allowed key gets zeros (so does every query
        when ``S = 0``); ``L = 0`` or ``B = 0`` gives an empty output.
    """
    g = check_local_inputs(
        q, k, v, window, global_tokens, key_padding
    )  # (G,) global positions
    B, H, L, D = q.shape
    S = k.shape[2]
    scale = D**-0.5 if scale is None else scale
    n = max(L, S, 1)  # at least one block, so empty sequences give empty outputs
    b = max(
        1, min(window, n)
    )  # block size: every key within `window` is in a neighbour block
    nb = -(-n // b)  # number of blocks
    P = nb * b  # padded length
    f = 0 if causal else 1  # look-forward blocks
    dev = q.device

    qb = (F.pad(q, (0, 0, 0, P - L)) * scale).reshape(
        B, H, nb, b, D
    )  # (B, H, nb, b, D)
    kw = _windows(
        F.pad(k, (0, 0, b, P - S + b)), nb, b, f
    )  # (B, H, nb, W, D), W = (2+f)·b
    vw = _windows(F.pad(v, (0, 0, b, P - S + b)), nb, b, f)  # (B, H, nb, W, Dv)

    # which (query, key) pairs of each tile are allowed. Inside tile c, query c·b + r and key
    # (c − 1)·b + s are b + r − s apart whatever c is: one (b, W) band serves every tile, and
    # only which keys exist (not padding, not global, not padded out) depends on the tile.
    q_pos = torch.arange(P, device=dev).reshape(nb, b)  # (nb, b)
    k_pos = _windows(torch.arange(-b, P + b, device=dev)[:, None], nb, b, f)[
        ..., 0
    ]  # (nb, W)
    dist = (
        b
        + torch.arange(b, device=dev)[:, None]
        - torch.arange(k_pos.shape[1], device=dev)[None, :]
    )  # (b, W)
    band = dist.abs() <= window  # (b, W)
    if causal:
        band = band & (dist >= 0)
    key_ok = (k_pos >= 0) & (k_pos < S)  # (nb, W)
    if g.numel():
        is_global = torch.zeros(P + 2 * b, dtype=torch.bool, device=dev)
        is_global[g + b] = True
        key_ok = (
            key_ok & ~_windows(is_global[:, None], nb, b, f)[..., 0]
        )  # global keys get their own columns
    key_ok = key_ok[None, None, :, None, :]  # (1, 1, nb, 1, W)
    if key_padding is not None:
        kp = torch.zeros(B, P + 2 * b, dtype=torch.bool, device=dev)
        kp[:, b : b + S] = key_padding
        kp_w = _windows(kp[:, :, None], nb, b, f)[..., 0]  # (B, nb, W)
        key_ok = key_ok & kp_w[:, None, :, None, :]  # (B, 1, nb, 1, W)

    kg = vg = g_mask = None
    if g.numel():  # every query also scores the global keys, in the same softmax
        kg, vg = k[:, :, g], v[:, :, g]  # (B, H, G, D), (B, H, G, Dv)
        g_mask = torch.ones(
            nb, b, g.numel(), dtype=torch.bool, device=dev
        )  # (nb, b, G)
        if causal:
            g_mask = q_pos[:, :, None] >= g[None, None, :]
        g_mask = g_mask[None, None]  # (1, 1, nb, b, G)
        if key_padding is not None:
            g_mask = (
                g_mask & key_padding[:, g][:, None, None, None, :]
            )  # (B, 1, nb, b, G)

    # a few blocks at a time, so the scores in flight stay small (and in cache)
    per_block = max(1, B * H * b * (kw.shape[-2] + g.numel()))
    step = max(1, CHUNK_ELEMENTS // per_block)
    outs = []
    for c in range(0, nb, step):
        blocks = slice(c, c + step)
        outs.append(
            block_attention(
                qb[:, :, blocks],
                kw[:, :, blocks],
                vw[:, :, blocks],
                key_ok[:, :, blocks] & band,  # (., 1, C, b, W)
                kg,
                vg,
                None if g_mask is None else g_mask[:, :, blocks],
            )
        )  # (B, H, C, b, Dv)
    out = torch.cat(outs, dim=2).reshape(B, H, P, v.shape[-1])[
        :, :, :L
    ]  # (B, H, L, Dv)
    if not g.numel():
        return out

    # global queries see every key: G dense rows
    row_mask = torch.ones(g.numel(), S, dtype=torch.bool, device=dev)  # (G, S)
    if causal:
        row_mask = torch.arange(S, device=dev)[None, :] <= g[:, None]
    row_mask = row_mask[None, None]  # (1, 1, G, S)
    if key_padding is not None:
        row_mask = row_mask & key_padding[:, None, None, :]  # (B, 1, G, S)
    g_rows = (
        masked_softmax(dot_product_scores(q[:, :, g], k, scale=scale), mask=row_mask)
        @ v
    )  # (B, H, G, Dv)
    return out.index_copy(2, g, g_rows)  # (B, H, L, Dv)


def local_attention_naive(
    q, k, v, *, window, global_tokens=None, key_padding=None, causal=False, scale=None
):
    """The same attention as :func:`local_attention`, on the full masked ``L × S`` matrix.

    Builds :func:`~attnkit.sparse.longformer_pattern` (a plain local window when there are
    no global tokens) and calls :func:`~attnkit.sparse.sparse_attention_naive`.

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
        blocked: ``True`` runs :func:`local_attention` (O(n·w)); ``False`` runs the dense
            masked reference :func:`local_attention_naive` (O(n²), for comparison).

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
