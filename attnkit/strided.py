"""The Sparse Transformer's two patterns (Child et al., 2019), blocked: strided, fixed.

With stride ``l`` the sequence is a grid of ``⌈n/l⌉`` rows of ``l`` positions
(position ``i`` is row ``i // l``, column ``i mod l``).

* **strided**: query ``i`` sees its neighbours ``|i − j| ≤ l`` and its whole grid
  column ``{j : (i − j) mod l = 0}``. The neighbours lie in the rows before, at and
  after its own: a window tile per row of the grid. The column is the same for every
  query of a column: one score per (query, grid row), ``n·n/l`` in all, computed as a
  batched product over the columns of the grid (:func:`strided_attention`).
* **fixed**: query ``i`` sees its own row (block) and the last ``c`` positions of
  every row (the "summary" keys): a block layout for
  :func:`~attnkit.blocksparse.block_sparse_attention` (:func:`fixed_layout`).

Each row holds about ``l + n/l`` keys (``l + c·n/l`` for fixed): for ``l ≈ √n`` that is
``O(n√n)`` scores, never the ``n × n`` matrix; with ``l`` held fixed it is
``O(n²/l)``, quadratic in ``n`` with a constant ``1/l``. :func:`strided_layout` writes
the strided pattern one query at a time, for the teaching loop
:func:`~attnkit.blocksparse.block_sparse_loop`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._checks import check_bool, check_counts, check_sparse_settings
from .blocksparse import block_sparse_attention
from .local import CHUNK_ELEMENTS
from .masking import masked_softmax
from .mechanisms import Mechanism, key_padding_from_mask
from .sparse import fixed_pattern, sparse_attention_naive, strided_pattern

__all__ = [
    "strided_layout",
    "fixed_layout",
    "strided_attention",
    "fixed_attention",
    "strided_attention_naive",
    "StridedAttention",
]


def strided_layout(n: int, stride: int):
    """The strided pattern, one query per block: ``2l + 1`` neighbours and a column.

    A key at distance ``0`` or ``±l`` is both a neighbour and in the column; it is
    allowed once, as a column key.

    Returns:
        ``q_pos (n, 1)``, ``k_pos (n, 2l + 1 + ⌈n/l⌉)``, ``allowed (n, 1, W)``.
    """
    check_counts(n=(n, 0), stride=(stride, 1))
    i = torch.arange(n)[:, None]  # (n, 1)
    near = i + torch.arange(-stride, stride + 1)[None, :]  # (n, 2l + 1)
    column = i % stride + stride * torch.arange(-(-n // stride))[None, :]  # (n, ⌈n/l⌉)
    k_pos = torch.cat([near, column], dim=1)  # (n, W)
    k_pos = torch.where((k_pos < 0) | (k_pos >= n), -1, k_pos)
    in_column = torch.ones_like(column, dtype=torch.bool)  # (n, ⌈n/l⌉)
    allowed = torch.cat([(near - i) % stride != 0, in_column], dim=1)  # (n, W)
    return i, k_pos, allowed[:, None, :]


def fixed_layout(n: int, stride: int, summary: int = 1):
    """The fixed pattern as a block layout: block ``c`` gathers its own ``l`` keys
    and the last ``summary`` keys of every other block.

    Returns:
        ``q_pos (C, l)``, ``k_pos (C, W)``, ``W = l + (C − 1)·c``, and
        ``allowed (C, l, W)``, all ``True``.
    """
    check_counts(n=(n, 0), stride=(stride, 1), summary=(summary, 1))
    C, c = -(-n // stride), min(summary, stride)
    q_pos = torch.arange(C * stride).reshape(C, stride)  # (C, l)
    tails = q_pos[:, stride - c :]  # (C, c) every block's summary keys
    others = [torch.cat([tails[:r], tails[r + 1 :]]).reshape(-1) for r in range(C)]
    k_pos = torch.cat([q_pos, torch.stack(others)], dim=1)  # (C, W)
    k_pos = torch.where(k_pos >= n, -1, k_pos)
    return q_pos, k_pos, torch.ones(C, stride, k_pos.shape[1], dtype=torch.bool)


def _strided_masks(rows, near, real, causal):
    """Masks of a group of grid rows: neighbours ``(B|1, c, l, W)``, column
    ``(B|1, c, l, R)``.

    ``rows (c, l)`` query positions, ``near (c, W)`` neighbour positions,
    ``real (B|1, R, l)`` the real (unpadded) keys of the grid.
    """
    R, stride = real.shape[-2:]
    dist = rows[:, :, None] - near[:, None, :]  # (c, l, W)
    inside = ((near >= 0) & (near < R * stride))[:, None, :]  # (c, 1, W)
    ok_near = (dist.abs() <= stride) & (dist % stride != 0) & inside  # (c, l, W)
    key_row = (
        torch.arange(R, device=rows.device) * stride
    )  # (R,) each row's first position
    ok_col = (
        key_row[None, None, :] <= rows[:, :, None]
        if causal
        else torch.ones_like(rows[:, :, None].expand(-1, -1, R), dtype=torch.bool)
    )  # (c, l, R)
    if causal:
        ok_near = ok_near & (dist >= 0)
    at = near.clamp(0, R * stride - 1)  # (c, W)
    real_near = real.flatten(-2)[:, at][:, :, None, :]  # (B|1, c, 1, W)
    return ok_near & real_near, ok_col & real.transpose(-1, -2)[:, None]


def strided_attention(q, k, v, *, stride, key_padding=None, causal=False, scale=None):
    """Strided attention: a window tile per grid row, plus each query's grid column.

    ``q (B, H, L, D)``, ``k (B, H, S, D)``, ``v (B, H, S, Dv)``, stride ``l ≥ 1``,
    ``key_padding (B, S)``. Returns ``(B, H, L, Dv)``, equal to
    :func:`strided_attention_naive`.
    """
    check_sparse_settings(q, k, v, key_padding, stride=(stride, 1))
    B, H, L, D = q.shape
    S = k.shape[2]
    R = -(-max(L, S, 1) // stride)  # grid rows of `stride` positions
    P = R * stride
    qg = F.pad(q, (0, 0, 0, P - L)) * (D**-0.5 if scale is None else scale)
    qg = qg.reshape(B, H, R, stride, D)  # (B, H, R, l, D)
    kg = F.pad(k, (0, 0, 0, P - S)).reshape(B, H, R, stride, D)  # (B, H, R, l, D)
    vg = F.pad(v, (0, 0, 0, P - S)).reshape(B, H, R, stride, -1)  # (B, H, R, l, Dv)
    real = (torch.arange(P, device=q.device) < S)[None]  # (1, P) keys that exist
    if key_padding is not None:
        real = torch.cat([key_padding, key_padding.new_zeros(B, P - S)], 1)  # (B, P)
    real = real.view(-1, R, stride)  # (B|1, R, l)
    grid = torch.arange(P, device=q.device).reshape(R, stride)  # (R, l) positions
    reach = torch.arange(-stride, (1 if causal else 2) * stride, device=q.device)
    near = grid[:, :1] + reach  # (R, W): the rows before, at (and after) each row
    step = max(1, CHUNK_ELEMENTS // max(1, B * H * stride * (near.shape[1] + R)))
    # the grid's columns as batches, laid out once (einsum would copy them per group)
    k_col = kg.transpose(2, 3).contiguous()  # (B, H, l, R, D)
    v_col = vg.transpose(2, 3).contiguous()  # (B, H, l, R, Dv)
    outs = []
    for c in range(0, R, step):
        rows = grid[c : c + step]  # (c, l) query positions
        nb = near[c : c + step].clamp(0, P - 1)  # (c, W) neighbour positions
        ok_near, ok_col = _strided_masks(rows, near[c : c + step], real, causal)
        qc = qg[:, :, c : c + step]  # (B, H, c, l, D)
        s_near = qc @ kg.flatten(2, 3)[:, :, nb].transpose(-1, -2)  # (B, H, c, l, W)
        s_col = torch.einsum("bhcrd,bhrmd->bhcrm", qc, k_col)  # (B, H, c, l, R)
        mask = torch.cat([ok_near, ok_col], dim=-1)[:, None]  # (B|1, 1, c, l, W + R)
        w = masked_softmax(torch.cat([s_near, s_col], dim=-1), mask=mask)  # (…, W + R)
        W = nb.shape[1]
        o_col = torch.einsum("bhcrm,bhrme->bhcre", w[..., W:], v_col)  # (B,H,c,l,Dv)
        outs.append(w[..., :W] @ vg.flatten(2, 3)[:, :, nb] + o_col)  # (B, H, c, l, Dv)
    return torch.cat(outs, dim=2).reshape(B, H, P, -1)[:, :, :L]  # (B, H, L, Dv)


def fixed_attention(
    q, k, v, *, stride, summary=1, key_padding=None, causal=False, scale=None
):
    """The fixed pattern, blocked: :func:`fixed_layout` through
    :func:`~attnkit.blocksparse.block_sparse_attention`.

    Returns:
        ``(B, H, L, Dv)``, equal to :func:`strided_attention_naive` with
        ``mode="fixed"``.
    """
    check_sparse_settings(
        q, k, v, key_padding, stride=(stride, 1), summary=(summary, 1)
    )
    layout = (
        t.to(q.device)
        for t in fixed_layout(max(q.shape[2], k.shape[2]), stride, summary)
    )
    return block_sparse_attention(
        q, k, v, *layout, key_padding=key_padding, causal=causal, scale=scale
    )  # (B, H, L, Dv)


def strided_attention_naive(
    q,
    k,
    v,
    *,
    stride,
    mode="strided",
    summary=1,
    key_padding=None,
    causal=False,
    scale=None,
):
    """:func:`~attnkit.sparse.strided_pattern` (or :func:`~attnkit.sparse.fixed_pattern`
    when ``mode="fixed"``) on the dense masked ``L × S`` matrix.

    Returns:
        ``(out (B, H, L, Dv), weights (B, H, L, S))``.
    """
    check_sparse_settings(
        q, k, v, key_padding, stride=(stride, 1), summary=(summary, 1)
    )
    if mode not in ("strided", "fixed"):
        raise ValueError(f"mode must be 'strided' or 'fixed', got {mode!r}")
    L, S = q.shape[2], k.shape[2]
    n = max(L, S)
    pattern = (
        strided_pattern(n, stride, causal=False, device=q.device)
        if mode == "strided"
        else fixed_pattern(n, stride, summary=summary, causal=False, device=q.device)
    )
    mask = (
        None if key_padding is None else key_padding[:, None, None, :]
    )  # (B, 1, 1, S)
    return sparse_attention_naive(
        q, k, v, pattern[:L, :S], mask=mask, causal=causal, scale=scale
    )


class StridedAttention(Mechanism):
    """The Sparse Transformer's patterns as a mechanism (registered as ``"strided"``).

    Args (keyword-only):
        stride: ``l`` (the paper takes ``l ≈ √n``); mode: ``"strided"`` or ``"fixed"``;
        summary: summary keys per block (fixed mode); blocked: ``False`` runs the dense
        masked reference :func:`strided_attention_naive` instead.

    ``mask`` may only be a key-padding mask ``(B, 1, 1, S)`` or ``(B, S)``.
    """

    def __init__(
        self,
        *,
        stride: int = 8,
        mode: str = "strided",
        summary: int = 1,
        blocked: bool = True,
    ):
        super().__init__()
        check_counts(stride=(stride, 1), summary=(summary, 1))
        check_bool("blocked", blocked)
        if mode not in ("strided", "fixed"):
            raise ValueError(f"mode must be 'strided' or 'fixed', got {mode!r}")
        self.stride, self.mode, self.summary, self.blocked = (
            stride,
            mode,
            summary,
            blocked,
        )

    def forward(self, q, k, v, *, mask=None, causal=False):
        key_padding = key_padding_from_mask(
            mask, q.shape[0], k.shape[2], "strided"
        )  # (B, S)
        settings = dict(stride=self.stride, key_padding=key_padding, causal=causal)
        if not self.blocked:
            out, _ = strided_attention_naive(
                q, k, v, mode=self.mode, summary=self.summary, **settings
            )
            return out  # (B, H, L, Dv)
        if self.mode == "fixed":
            return fixed_attention(
                q, k, v, summary=self.summary, **settings
            )  # (B, H, L, Dv)
        return strided_attention(q, k, v, **settings)  # (B, H, L, Dv)
