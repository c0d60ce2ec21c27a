"""Sparse patterns (attnkit.sparse): exact per-row counts, density, errors.

Blocked local attention (attnkit.local) is tested in test_local.py."""

from __future__ import annotations

import math

import pytest
import torch

from attnkit.sparse import (
    atrous_pattern,
    bigbird_pattern,
    density,
    local_pattern,
    longformer_pattern,
    strided_pattern,
)

# ---------------------------------------------------------------- patterns: exact per-row counts


def _rows(mask):
    return mask.sum(dim=-1).tolist()


@pytest.mark.parametrize(
    "n,w", [(1, 0), (1, 3), (7, 0), (7, 1), (10, 3), (10, 9), (10, 20)]
)
@pytest.mark.parametrize("causal", [False, True])
def test_local_pattern_counts(n, w, causal):
    m = local_pattern(n, w, causal=causal)
    want = [min(i, w) + 1 + (0 if causal else min(n - 1 - i, w)) for i in range(n)]
    assert m.dtype == torch.bool and m.shape == (n, n)
    assert _rows(m) == want
    assert m.diagonal().all()
    assert density(m) == pytest.approx(sum(want) / n**2)


def test_local_pattern_by_hand():
    m = local_pattern(5, 1)
    assert m.int().tolist() == [
        [1, 1, 0, 0, 0],
        [1, 1, 1, 0, 0],
        [0, 1, 1, 1, 0],
        [0, 0, 1, 1, 1],
        [0, 0, 0, 1, 1],
    ]


@pytest.mark.parametrize(
    "n,step,limit", [(9, 2, None), (9, 3, None), (12, 3, 6), (12, 1, 2), (5, 7, None)]
)
@pytest.mark.parametrize("causal", [False, True])
def test_atrous_pattern_counts(n, step, limit, causal):
    m = atrous_pattern(n, step, limit=limit, causal=causal)
    lim = n if limit is None else limit
    want = [
        min(i, lim) // step + 1 + (0 if causal else min(n - 1 - i, lim) // step)
        for i in range(n)
    ]
    assert _rows(m) == want
    i, j = torch.nonzero(m, as_tuple=True)
    assert ((i - j).abs() % step == 0).all()


def test_atrous_pattern_by_hand():
    assert atrous_pattern(7, 3)[3].int().tolist() == [1, 0, 0, 1, 0, 0, 1]
    assert atrous_pattern(7, 3, causal=True)[6].int().tolist() == [1, 0, 0, 1, 0, 0, 1]


@pytest.mark.parametrize("n,stride", [(16, 4), (17, 4), (10, 3), (5, 1), (6, 10)])
def test_strided_pattern_matches_child_et_al(n, stride):
    m = strided_pattern(n, stride)  # causal by default, as in the paper
    for i in range(n):
        a1 = set(range(max(0, i - stride), i + 1))
        a2 = {j for j in range(i + 1) if (i - j) % stride == 0}
        assert set(torch.nonzero(m[i]).flatten().tolist()) == a1 | a2
    want = [
        min(i, stride) + i // stride + 1 - (1 if i >= stride else 0) for i in range(n)
    ]
    assert _rows(m) == want


@pytest.mark.parametrize("n", [64, 256, 400])
def test_strided_density_shrinks_like_one_over_root_n(n):
    stride = int(math.sqrt(n))
    causal = strided_pattern(n, stride)
    rows = [
        min(i, stride) + i // stride + 1 - (1 if i >= stride else 0) for i in range(n)
    ]
    assert density(causal) == pytest.approx(sum(rows) / n**2)
    # each row: ≤ stride + 1 local keys plus ≤ n/stride strided ones
    assert density(causal) <= 2 * stride / n + 1 / n
    both_sides = strided_pattern(n, stride, causal=False)
    # 2·stride + 1 local + ≤ n/stride + 1 strided per row
    assert density(both_sides) <= (3 * stride + 2) / n
    assert density(both_sides) > density(causal)


def test_longformer_pattern_global_is_symmetric():
    n, w, g = 12, 1, [0, 7]
    m = longformer_pattern(n, w, g)
    assert m[g, :].all() and m[:, g].all()
    assert torch.equal(m, m.T)
    plain = local_pattern(n, w)
    assert torch.equal(m & ~plain, (m & ~plain).T)
    rest = [i for i in range(n) if i not in g]
    # non-global rows: window plus the global columns not already in the window
    for i in rest:
        want = set(range(max(0, i - w), min(n, i + w + 1))) | set(g)
        assert set(torch.nonzero(m[i]).flatten().tolist()) == want
    mc = longformer_pattern(n, w, g, causal=True)
    assert not torch.triu(mc, diagonal=1).any()
    assert mc[7, :8].all()


def test_bigbird_pattern_is_seeded_and_contains_longformer():
    n, w, g = 64, 2, [0]
    a = bigbird_pattern(n, w, g, num_random=3, block_size=4, seed=1)
    b = bigbird_pattern(n, w, g, num_random=3, block_size=4, seed=1)
    c = bigbird_pattern(n, w, g, num_random=3, block_size=4, seed=2)
    assert torch.equal(a, b) and not torch.equal(a, c)
    base = longformer_pattern(n, w, g)
    assert (a | base).equal(a)
    extra = a & ~base
    assert extra.any()
    # the random keys come in whole blocks shared by a query block: ≤ 3 blocks per query block
    for qb in range(n // 4):
        cols = a[qb * 4 : qb * 4 + 4].any(dim=0) & ~base[qb * 4 : qb * 4 + 4].any(dim=0)
        hit_blocks = {j // 4 for j in torch.nonzero(cols).flatten().tolist()}
        assert len(hit_blocks) <= 3
    assert density(a) < 0.35
    assert not torch.triu(
        bigbird_pattern(n, w, g, seed=1, causal=True), diagonal=1
    ).any()


def test_pattern_errors():
    with pytest.raises(ValueError, match="window"):
        local_pattern(5, -1)
    with pytest.raises(ValueError, match="step"):
        atrous_pattern(5, 0)
    with pytest.raises(ValueError, match="global_tokens"):
        longformer_pattern(5, 1, [5])
    with pytest.raises(TypeError, match="mask"):
        density(torch.ones(3, 3))
