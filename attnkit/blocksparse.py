"""Block-sparse attention: gather the keys each query block needs, never n × n scores.

A *layout* describes a sparse pattern block by block:

* ``q_pos (C, b)``: the positions of the ``b`` queries of each of ``C`` query blocks;
* ``k_pos (C, W)``: the positions of the ``W`` keys that block gathers;
* ``allowed (C, b, W)``: which of those (query, key) pairs the pattern allows.

``−1`` in ``q_pos`` or ``k_pos`` is an empty slot (padding to a whole block). Every
query position appears once in ``q_pos``; a key appears at most once in a row of
``k_pos``, so no key is counted twice. The scores cost ``C·b·W`` instead of ``L·S``.
:func:`block_sparse_attention` gathers, masks (causal, padding, empty slots) and runs a
softmax per row; :func:`block_sparse_loop` is the same maths as a loop over blocks.
Global tokens (Longformer, BigBird) are keys every query sees in the same softmax, and
their own rows are dense (``G × S``).

Two patterns are built here as layouts: BigBird (window + random blocks + global tokens,
Zaheer et al., 2020) and Longformer's dilated window (Beltagy et al., 2020), whose
dilation ``d`` is a local window over the ``d`` interleaved sub-sequences
``r, r + d, r + 2d, …``. Each has a ``*_naive`` reference on the dense masked matrix.
"""

from __future__ import annotations

import functools

import torch

from ._checks import (
    check_block_sparse_inputs,
    check_bool,
    check_counts,
    check_global_tokens,
    check_sparse_settings,
)
from .local import CHUNK_ELEMENTS, block_attention
from .masking import masked_softmax
from .mechanisms import Mechanism, key_padding_from_mask
from .sparse import (
    bigbird_pattern,
    bigbird_random_blocks,
    dilated_pattern,
    sparse_attention_naive,
)

__all__ = [
    "block_sparse_attention",
    "block_sparse_loop",
    "cached_layout",
    "bigbird_layout",
    "bigbird_attention",
    "bigbird_attention_naive",
    "dilated_layout",
    "dilated_attention",
    "dilated_attention_naive",
    "BigBirdAttention",
    "LongformerAttention",
]


def _tile_mask(q_pos, k_pos, allowed, S, is_global, key_padding, causal):
    """``allowed`` cut to real, non-global, unpadded (past, if causal) keys.

    Returns ``(B|1, 1, C, b, W)``.
    """
    k_at = k_pos.clamp(0, S - 1)  # (C, W) safe indices; empty slots are masked below
    ok = (
        allowed & ((k_pos >= 0) & (k_pos < S) & ~is_global[k_at])[:, None, :]
    )  # (C, b, W)
    if causal:
        ok = ok & (k_pos[:, None, :] <= q_pos[:, :, None])
    ok = ok[None, None]  # (1, 1, C, b, W)
    if key_padding is not None:
        ok = ok & key_padding[:, k_at][:, None, :, None, :]  # (B, 1, C, b, W)
    return ok


def _global_mask(q_pos, g, key_padding, causal):
    """Which global keys ``g (G,)`` each query of the blocks may see.

    Returns ``(B|1, 1, C, b, G)``.
    """
    ok = torch.ones(
        *q_pos.shape, g.numel(), dtype=torch.bool, device=g.device
    )  # (C, b, G)
    if causal:
        ok = g[None, None, :] <= q_pos[:, :, None]
    ok = ok[None, None]  # (1, 1, C, b, G)
    if key_padding is not None:
        ok = ok & key_padding[:, g][:, None, None, None, :]  # (B, 1, C, b, G)
    return ok


def _global_rows(out, q, k, v, g, key_padding, causal, scale):
    """Overwrite the rows of the global queries ``g (G,)``: each sees all ``S`` keys."""
    S = k.shape[2]
    row_mask = torch.ones(g.numel(), S, dtype=torch.bool, device=q.device)  # (G, S)
    if causal:
        row_mask = torch.arange(S, device=q.device)[None, :] <= g[:, None]
    row_mask = row_mask[None, None]  # (1, 1, G, S)
    if key_padding is not None:
        row_mask = row_mask & key_padding[:, None, None, :]  # (B, 1, G, S)
    scores = q[:, :, g] @ k.transpose(-2, -1) * scale  # (B, H, G, S)
    return out.index_copy(
        2, g, masked_softmax(scores, mask=row_mask) @ v
    )  # (B, H, L, Dv)


def gather_groups(x, pos, step):
    """``x (B, H, N, E)`` at the positions ``pos (C, m)``, ``step`` rows of ``pos`` at a
    time: pieces ``(B, H, step, m, E)`` (the last may be shorter).

    Without autograd each piece is gathered when it is needed, so one is in memory at a
    time. With autograd the pieces are kept for the backward pass anyway: they are
    gathered at once and split, so the backward pass scatters their gradients into one
    ``(B, H, N, E)`` tensor, not into one such tensor per piece (``O(N · C/step)``).
    """
    if torch.is_grad_enabled() and x.requires_grad:
        return x[:, :, pos].split(step, dim=2)  # each (B, H, step, m, E)
    return (x[:, :, p] for p in pos.split(step))  # each (B, H, step, m, E)


def block_sparse_attention(
    q,
    k,
    v,
    q_pos,
    k_pos,
    allowed,
    *,
    global_tokens=None,
    key_padding=None,
    causal=False,
    scale=None,
):
    """Softmax attention over a block layout, a few query blocks at a time.

    ``q (B, H, L, D)``, ``k (B, H, S, D)``, ``v (B, H, S, Dv)``; the layout
    ``q_pos (C, b)``, ``k_pos (C, W)``, ``allowed (C, b, W)``; global tokens (each sees
    all keys, all queries see it); ``key_padding (B, S)``. Returns ``(B, H, L, Dv)``,
    zeros for a query with no allowed key.
    """
    g = check_block_sparse_inputs(
        q, k, v, q_pos, k_pos, allowed, global_tokens, key_padding
    )
    (B, H, L, D), S, (C, b) = q.shape, k.shape[2], q_pos.shape
    scale = D**-0.5 if scale is None else scale
    out = q.new_zeros(B, H, L, v.shape[-1])  # (B, H, L, Dv)
    if L == 0 or S == 0:
        return out
    is_global = torch.isin(torch.arange(S, device=q.device), g)  # (S,)
    kg, vg = (k[:, :, g], v[:, :, g]) if g.numel() else (None, None)  # (B, H, G, D|Dv)
    step = max(1, CHUNK_ELEMENTS // max(1, B * H * b * (k_pos.shape[1] + g.numel())))
    rows, outs = [], []  # outputs and their positions: one copy to `out`, not C/step
    qp, kp = q_pos.clamp(0, L - 1), k_pos.clamp(0, S - 1)  # empty slots: masked anyway
    groups = zip(*(gather_groups(x, p, step) for x, p in ((q, qp), (k, kp), (v, kp))))
    for c, (qb, kb, vb) in zip(range(0, C, step), groups):  # 1. a few blocks at once,
        # 3. their queries, keys and values gathered: (B, H, c, b|W, D|Dv)
        qp, kp = q_pos[c : c + step], k_pos[c : c + step]  # (c, b), (c, W)
        ok = allowed[c : c + step]  # (c, b, W) 2. which gathered pairs may attend
        tile = _tile_mask(qp, kp, ok, S, is_global, key_padding, causal)
        g_mask = _global_mask(qp, g, key_padding, causal) if g.numel() else None
        ob = block_attention(qb * scale, kb, vb, tile, kg, vg, g_mask)  # (B,H,c,b,Dv)
        keep = (qp >= 0) & (qp < L)  # (c, b) the real queries
        rows, outs = rows + [qp[keep]], outs + [ob[:, :, keep]]  # (k,), (B, H, k, Dv)
    out = out.index_copy(2, torch.cat(rows), torch.cat(outs, 2))  # 4. (B, H, L, Dv)
    if g.numel():  # global queries: dense rows
        out = _global_rows(out, q, k, v, g, key_padding, causal, scale)
    return out  # (B, H, L, Dv)


def block_sparse_loop(
    q,
    k,
    v,
    q_pos,
    k_pos,
    allowed,
    *,
    global_tokens=None,
    key_padding=None,
    causal=False,
    scale=None,
):
    """Teaching version of :func:`block_sparse_attention`: one query block at a time.

    Same arguments and result; tested equal to the fast version. Block ``c`` keeps
    the real keys of its row of ``k_pos`` that are not global (empty slots and padding
    are masked), then appends the global keys, so each appears once in the softmax.
    """
    g = check_block_sparse_inputs(
        q, k, v, q_pos, k_pos, allowed, global_tokens, key_padding
    )
    L, S, D = q.shape[2], k.shape[2], q.shape[3]
    scale = D**-0.5 if scale is None else scale
    out = q.new_zeros(*q.shape[:3], v.shape[-1])  # (B, H, L, Dv)
    if L == 0 or S == 0:
        return out
    for c in range(q_pos.shape[0]):
        rows, keys = q_pos[c], k_pos[c]  # (b,) query and (W,) key positions of block c
        ok = allowed[c] & ((keys >= 0) & (keys < S) & ~torch.isin(keys, g))[None, :]
        keys = keys.clamp(0, S - 1)
        keys = torch.cat([keys, g])  # (W + G,)
        ok = torch.cat([ok, ok.new_ones(len(rows), len(g))], dim=1)  # (b, W + G)
        if causal:
            ok = ok & (keys[None, :] <= rows[:, None])
        mask = ok[None, None]  # (1, 1, b, W + G)
        if key_padding is not None:
            mask = mask & key_padding[:, keys][:, None, None, :]  # (B, 1, b, W + G)
        keep = (rows >= 0) & (rows < L)
        qc, kc = q[:, :, rows[keep]] * scale, k[:, :, keys]  # (B,H,b,D), (B,H,W+G,D)
        scores = qc @ kc.transpose(-2, -1)  # (B, H, b, W + G)
        weights = masked_softmax(scores, mask=mask[:, :, keep])  # (B, H, b, W + G)
        out[:, :, rows[keep]] = weights @ v[:, :, keys]  # (B, H, b, Dv)
    if g.numel():  # global queries: dense rows
        out = _global_rows(out, q, k, v, g, key_padding, causal, scale)
    return out  # (B, H, L, Dv)


@functools.lru_cache(maxsize=8)
def cached_layout(build, *settings, device):
    """``build(*settings)`` (a layout function and its arguments) on ``device``, built
    once and kept for later calls with the same settings: a mechanism called again at
    the same length does not redraw its layout. The tensors are shared: read them only.
    """
    return tuple(t.to(device) for t in build(*settings))  # (C, b), (C, W), (C, b, W)


# --- BigBird: window + random blocks (+ global tokens)


def bigbird_layout(n: int, window: int, block_size: int, num_random: int, seed: int):
    """BigBird as a block layout over ``n`` positions, blocks of ``b = block_size``.

    Query block ``c`` gathers the blocks ``c − h … c + h`` that its window reaches
    (``h = ⌈window / b⌉``) and its ``r`` random blocks
    (:func:`~attnkit.sparse.bigbird_random_blocks`); a random block already among the
    window blocks is not gathered twice. A pair is allowed when ``|i − j| ≤ window`` or
    ``j`` lies in one of the block's random blocks.

    Returns:
        ``q_pos (C, b)``, ``k_pos (C, W)``, ``allowed (C, b, W)``; ``W = (2h+1+r)·b``.
    """
    check_counts(n=(n, 0), window=(window, 0), block_size=(block_size, 1))
    b, h = block_size, -(-window // block_size)
    C = -(-n // b)
    q_pos = torch.arange(C * b).reshape(C, b)  # (C, b)
    near = torch.arange(C)[:, None] + torch.arange(-h, h + 1)  # (C, 2h + 1) blocks
    rand = bigbird_random_blocks(C, num_random, seed)  # (C, r)
    seen = (rand[:, :, None] == near[:, None, :]).any(-1)  # (C, r) a window block too
    blocks = torch.cat([near, torch.where(seen, -1, rand)], dim=1)  # (C, R)
    near_is_rand = (near[:, :, None] == rand[:, None, :]).any(-1)  # (C, 2h + 1)
    whole = torch.cat([near_is_rand, ~seen], dim=1)  # (C, R) random: all its keys count
    k_pos = blocks[:, :, None] * b + torch.arange(b)  # (C, R, b)
    missing = ((blocks < 0) | (blocks >= C))[:, :, None]  # (C, R, 1) no such block
    k_pos = torch.where(missing, -1, k_pos)
    k_pos, whole = k_pos.flatten(1), whole.repeat_interleave(b, dim=1)  # (C, W), (C, W)
    near_enough = (q_pos[:, :, None] - k_pos[:, None, :]).abs() <= window  # (C, b, W)
    return q_pos, k_pos, near_enough | whole[:, None, :]


def bigbird_attention(
    q,
    k,
    v,
    *,
    window,
    block_size,
    num_random,
    seed=0,
    global_tokens=None,
    key_padding=None,
    causal=False,
    scale=None,
):
    """BigBird attention: :func:`bigbird_layout` through :func:`block_sparse_attention`.

    Args:
        q: ``(B, H, L, D)``; k: ``(B, H, S, D)``; v: ``(B, H, S, Dv)``.
        window: one-sided width; block_size, num_random, seed: the random key blocks.
        global_tokens, key_padding ``(B, S)``, causal, scale: as in
            :func:`block_sparse_attention`.

    Returns:
        ``(B, H, L, Dv)``, equal to :func:`bigbird_attention_naive`.
    """
    g = check_sparse_settings(
        q,
        k,
        v,
        key_padding,
        global_tokens,
        window=(window, 0),
        block_size=(block_size, 1),
        num_random=(num_random, 0),
    )
    n = max(q.shape[2], k.shape[2])
    layout = cached_layout(
        bigbird_layout, n, window, block_size, num_random, seed, device=q.device
    )
    return block_sparse_attention(
        q,
        k,
        v,
        *layout,
        global_tokens=g,
        key_padding=key_padding,
        causal=causal,
        scale=scale,
    )  # (B, H, L, Dv)


def bigbird_attention_naive(
    q,
    k,
    v,
    *,
    window,
    block_size,
    num_random,
    seed=0,
    global_tokens=None,
    key_padding=None,
    causal=False,
    scale=None,
):
    """:func:`~attnkit.sparse.bigbird_pattern` on the dense masked ``L × S`` matrix.

    Returns:
        ``(out (B, H, L, Dv), weights (B, H, L, S))``.
    """
    g = check_sparse_settings(
        q,
        k,
        v,
        key_padding,
        global_tokens,
        window=(window, 0),
        block_size=(block_size, 1),
        num_random=(num_random, 0),
    )
    L, S = q.shape[2], k.shape[2]
    pattern = bigbird_pattern(
        max(L, S),
        window,
        g.tolist(),
        num_random=num_random,
        block_size=block_size,
        seed=seed,
        device=q.device,
    )[:L, :S]
    mask = (
        None if key_padding is None else key_padding[:, None, None, :]
    )  # (B, 1, 1, S)
    return sparse_attention_naive(
        q, k, v, pattern, mask=mask, causal=causal, scale=scale
    )


# --- Longformer: a dilated window (+ global tokens)


def dilated_layout(n: int, window: int, dilation: int):
    """The dilated window as a block layout: a local window over ``d`` interleaved
    sub-sequences.

    Sub-sequence ``r`` holds positions ``r, r + d, r + 2d, …``; query ``i`` sees
    ``i + t·d`` for ``|t| ≤ window``: a plain window inside its sub-sequence. Each
    sub-sequence is cut into blocks of ``b = max(1, window)`` members; a block gathers
    its own members and those of the blocks before and after it.

    Returns:
        ``q_pos (C, b)``, ``k_pos (C, 3b)``, ``allowed (C, b, 3b)``.
    """
    check_counts(n=(n, 0), window=(window, 0), dilation=(dilation, 1))
    d, b = dilation, max(1, window)
    m = -(-n // d)  # members per sub-sequence (at most)
    nb = -(-m // b)  # blocks per sub-sequence
    t = torch.arange(-b, (nb + 1) * b)  # member index, one empty block each side
    members = torch.arange(d)[:, None] + d * t[None, :]  # (d, (nb + 2)·b) positions
    members = torch.where((members < 0) | (members >= n), -1, members)
    q_pos = members[:, b : (nb + 1) * b].reshape(d * nb, b)  # (C, b)
    cols = torch.arange(nb)[:, None] * b + torch.arange(3 * b)[None, :]  # (nb, 3b)
    k_pos = members[:, cols].reshape(d * nb, 3 * b)  # (C, 3b)
    allowed = (q_pos[:, :, None] - k_pos[:, None, :]).abs() <= window * d  # (C, b, 3b)
    return q_pos, k_pos, allowed


def dilated_attention(
    q,
    k,
    v,
    *,
    window,
    dilation,
    global_tokens=None,
    key_padding=None,
    causal=False,
    scale=None,
):
    """Longformer's dilated sliding window, blocked: :func:`dilated_layout` through
    :func:`block_sparse_attention`, with symmetric global tokens.

    Args:
        q: ``(B, H, L, D)``; k: ``(B, H, S, D)``; v: ``(B, H, S, Dv)``.
        window: keys on each side; dilation: the gap ``d ≥ 1`` between them (one for
            all heads).

    Returns:
        ``(B, H, L, Dv)``, equal to :func:`dilated_attention_naive`.
    """
    g = check_sparse_settings(
        q, k, v, key_padding, global_tokens, window=(window, 0), dilation=(dilation, 1)
    )
    n = max(q.shape[2], k.shape[2])
    layout = cached_layout(dilated_layout, n, window, dilation, device=q.device)
    return block_sparse_attention(
        q,
        k,
        v,
        *layout,
        global_tokens=g,
        key_padding=key_padding,
        causal=causal,
        scale=scale,
    )  # (B, H, L, Dv)


def dilated_attention_naive(
    q,
    k,
    v,
    *,
    window,
    dilation,
    global_tokens=None,
    key_padding=None,
    causal=False,
    scale=None,
):
    """:func:`~attnkit.sparse.dilated_pattern` on the dense masked ``L × S`` matrix.

    Returns:
        ``(out (B, H, L, Dv), weights (B, H, L, S))``.
    """
    g = check_sparse_settings(
        q, k, v, key_padding, global_tokens, window=(window, 0), dilation=(dilation, 1)
    )
    L, S = q.shape[2], k.shape[2]
    pattern = dilated_pattern(max(L, S), window, dilation, g.tolist(), device=q.device)[
        :L, :S
    ]
    mask = (
        None if key_padding is None else key_padding[:, None, None, :]
    )  # (B, 1, 1, S)
    return sparse_attention_naive(
        q, k, v, pattern, mask=mask, causal=causal, scale=scale
    )


# --- mechanisms


class BigBirdAttention(Mechanism):
    """BigBird as a mechanism (``"bigbird"``): window + random blocks + global tokens.

    Args (keyword-only):
        window: one-sided width; block_size: ``b``; num_random: random key blocks per
        query block; seed: the draw; global_tokens: positions with global attention, or
        ``None``;
        blocked: ``False`` runs the dense masked reference instead.

    ``mask`` may only be a key-padding mask ``(B, 1, 1, S)`` or ``(B, S)``.
    """

    def __init__(
        self,
        *,
        window: int = 8,
        block_size: int = 8,
        num_random: int = 2,
        seed: int = 0,
        global_tokens=None,
        blocked: bool = True,
    ):
        super().__init__()
        check_counts(
            window=(window, 0),
            block_size=(block_size, 1),
            num_random=(num_random, 0),
            seed=(seed, -(2**63)),
        )
        check_bool("blocked", blocked)
        # positions are checked against the sequence length at each call
        if global_tokens is not None:
            global_tokens = check_global_tokens(global_tokens, 2**62).tolist()
        self.settings = dict(
            window=window,
            block_size=block_size,
            num_random=num_random,
            seed=seed,
            global_tokens=global_tokens,
        )
        self.blocked = blocked

    def forward(self, q, k, v, *, mask=None, causal=False):
        key_padding = key_padding_from_mask(
            mask, q.shape[0], k.shape[2], "bigbird"
        )  # (B, S)
        if self.blocked:
            return bigbird_attention(
                q, k, v, **self.settings, key_padding=key_padding, causal=causal
            )  # (B, H, L, Dv)
        out, _ = bigbird_attention_naive(
            q, k, v, **self.settings, key_padding=key_padding, causal=causal
        )
        return out  # (B, H, L, Dv)


class LongformerAttention(Mechanism):
    """Longformer as a mechanism (``"longformer"``): a dilated window per head.

    Args (keyword-only):
        window: keys on each side; dilation: one int for every head, or a tuple with
        one int per head (e.g. ``(1, 1, 2, 4)``: lower heads local, upper heads far);
        global_tokens: positions with symmetric global attention, or ``None``.

    ``mask`` may only be a key-padding mask ``(B, 1, 1, S)`` or ``(B, S)``.
    """

    def __init__(self, *, window: int = 8, dilation=1, global_tokens=None):
        super().__init__()
        check_counts(window=(window, 0))
        self.dilation = (dilation,) if isinstance(dilation, int) else tuple(dilation)
        check_counts(**{f"dilation[{i}]": (d, 1) for i, d in enumerate(self.dilation)})
        if (
            global_tokens is not None
        ):  # checked against the sequence length at each call
            global_tokens = check_global_tokens(global_tokens, 2**62).tolist()
        self.window, self.global_tokens = window, global_tokens

    def forward(self, q, k, v, *, mask=None, causal=False):
        key_padding = key_padding_from_mask(
            mask, q.shape[0], k.shape[2], "longformer"
        )  # (B, S)
        per_head = (
            self.dilation * q.shape[1] if len(self.dilation) == 1 else self.dilation
        )
        if len(per_head) != q.shape[1]:
            raise ValueError(
                f"dilation has {len(per_head)} entries but q has {q.shape[1]} heads"
            )
        out = q.new_zeros(*q.shape[:3], v.shape[-1])  # (B, H, L, Dv)
        for d in sorted(set(per_head)):  # the heads that share a dilation, together
            heads = torch.tensor(
                [h for h, dh in enumerate(per_head) if dh == d], device=q.device
            )
            o = dilated_attention(
                q[:, heads],
                k[:, heads],
                v[:, heads],
                window=self.window,
                dilation=d,
                global_tokens=self.global_tokens,
                key_padding=key_padding,
                causal=causal,
            )  # (B, H_d, L, Dv)
            out = out.index_copy(1, heads, o)
        return out  # (B, H, L, Dv)
