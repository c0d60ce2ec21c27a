"""Sparse patterns (attnkit.sparse) and blocked local attention (attnkit.local)."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils._python_dispatch import TorchDispatchMode

import attnkit.local as local_module
from attnkit import make_mechanism, softmax_attention_naive
from attnkit.local import LocalAttention, local_attention, local_attention_naive
from attnkit.sparse import (
    atrous_pattern,
    bigbird_pattern,
    density,
    local_pattern,
    longformer_pattern,
    sparse_attention_naive,
    strided_pattern,
)


# ---------------------------------------------------------------- patterns: exact per-row counts


def _rows(mask):
    return mask.sum(dim=-1).tolist()


@pytest.mark.parametrize("n,w", [(1, 0), (1, 3), (7, 0), (7, 1), (10, 3), (10, 9), (10, 20)])
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


@pytest.mark.parametrize("n,step,limit", [(9, 2, None), (9, 3, None), (12, 3, 6), (12, 1, 2), (5, 7, None)])
@pytest.mark.parametrize("causal", [False, True])
def test_atrous_pattern_counts(n, step, limit, causal):
    m = atrous_pattern(n, step, limit=limit, causal=causal)
    lim = n if limit is None else limit
    want = [min(i, lim) // step + 1 + (0 if causal else min(n - 1 - i, lim) // step) for i in range(n)]
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
    want = [min(i, stride) + i // stride + 1 - (1 if i >= stride else 0) for i in range(n)]
    assert _rows(m) == want


@pytest.mark.parametrize("n", [64, 256, 400])
def test_strided_density_shrinks_like_one_over_root_n(n):
    l = int(math.sqrt(n))
    causal = strided_pattern(n, l)
    rows = [min(i, l) + i // l + 1 - (1 if i >= l else 0) for i in range(n)]
    assert density(causal) == pytest.approx(sum(rows) / n**2)
    assert density(causal) <= 2 * l / n + 1 / n  # each row: ≤ l + 1 local keys plus ≤ n/l strided ones
    both_sides = strided_pattern(n, l, causal=False)
    assert density(both_sides) <= (3 * l + 2) / n  # 2l + 1 local + ≤ n/l + 1 strided per row
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
    assert not torch.triu(bigbird_pattern(n, w, g, seed=1, causal=True), diagonal=1).any()


def test_pattern_errors():
    with pytest.raises(ValueError, match="window"):
        local_pattern(5, -1)
    with pytest.raises(ValueError, match="step"):
        atrous_pattern(5, 0)
    with pytest.raises(ValueError, match="global_tokens"):
        longformer_pattern(5, 1, [5])
    with pytest.raises(TypeError, match="mask"):
        density(torch.ones(3, 3))


# ---------------------------------------------------------------- blocked == dense masked reference


def _qkv(B, H, L, S, D, Dv, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, H, n, d, generator=g, dtype=torch.float64, requires_grad=True)
            for n, d in ((L, D), (S, D), (S, Dv))]


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 37),
    w=st.integers(0, 40),
    causal=st.booleans(),
    padding=st.booleans(),
    n_global=st.integers(0, 2),
    chunk=st.sampled_from([1, 40, 2**20]),
    seed=st.integers(0, 2**16),
)
def test_blocked_equals_dense_outputs_and_gradients(n, w, causal, padding, n_global, chunk, seed):
    saved, local_module.CHUNK_ELEMENTS = local_module.CHUNK_ELEMENTS, chunk  # 1: one block at a time
    try:
        _check_blocked_against_dense(n, w, causal, padding, n_global, seed)
    finally:
        local_module.CHUNK_ELEMENTS = saved


def _check_blocked_against_dense(n, w, causal, padding, n_global, seed):
    q, k, v = _qkv(2, 2, n, n, 3, 4, seed)
    g = torch.Generator().manual_seed(seed + 1)
    kp = (torch.rand(2, n, generator=g) < 0.7) if padding else None
    glob = sorted({int(t) for t in torch.randint(0, n, (n_global,), generator=g)}) or None
    fast = local_attention(q, k, v, window=w, global_tokens=glob, key_padding=kp, causal=causal)
    ref, weights = local_attention_naive(q, k, v, window=w, global_tokens=glob, key_padding=kp, causal=causal)
    assert weights.shape == (2, 2, n, n)
    assert not torch.isnan(fast).any()
    torch.testing.assert_close(fast, ref, rtol=0, atol=1e-12)
    r = torch.randn(fast.shape, generator=g, dtype=torch.float64)
    g_fast = torch.autograd.grad((fast * r).sum(), (q, k, v))
    g_ref = torch.autograd.grad((ref * r).sum(), (q, k, v))
    for a, b in zip(g_fast, g_ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("L,S", [(5, 11), (11, 5), (16, 16)])
@pytest.mark.parametrize("causal", [False, True])
def test_blocked_handles_unequal_lengths(L, S, causal):
    q, k, v = _qkv(1, 2, L, S, 4, 3, 0)
    kw = dict(window=3, global_tokens=[1], causal=causal)
    torch.testing.assert_close(local_attention(q, k, v, **kw), local_attention_naive(q, k, v, **kw)[0])


def test_naive_is_the_masked_softmax_of_the_pattern():
    q, k, v = _qkv(1, 1, 9, 9, 4, 2, 3)
    pattern = local_pattern(9, 2)
    out, weights = sparse_attention_naive(q, k, v, pattern)
    assert (weights[0, 0][~pattern] == 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(1, 1, 9, dtype=torch.float64))
    ref, ref_weights = local_attention_naive(q, k, v, window=2)
    torch.testing.assert_close(ref, out)
    torch.testing.assert_close(ref_weights, weights)


@pytest.mark.parametrize("n", [1, 7, 16])
@pytest.mark.parametrize("causal", [False, True])
def test_window_at_least_n_is_full_attention(n, causal):
    q, k, v = _qkv(2, 2, n, n, 5, 3, n)
    full, _ = softmax_attention_naive(q, k, v, causal=causal)
    for w in (n - 1 if n > 1 else 0, n, 10 * n + 3):
        torch.testing.assert_close(local_attention(q, k, v, window=w, causal=causal), full, rtol=0, atol=1e-13)


def test_fully_masked_rows_give_zeros():
    q, k, v = _qkv(2, 1, 10, 10, 4, 3, 5)
    kp = torch.ones(2, 10, dtype=torch.bool)
    kp[0] = False  # sequence 0: every key padded
    kp[1, :4] = False  # sequence 1: query 0 (causal, window 2) sees keys 0..0 only -> empty
    for glob in (None, [0]):
        out = local_attention(q, k, v, window=2, key_padding=kp, causal=True, global_tokens=glob)
        assert not torch.isnan(out).any()
        assert (out[0] == 0).all()
        assert (out[1, :, :2] == 0).all() and (out[1, :, 4:] != 0).any()
        out.sum().backward()
        assert not any(torch.isnan(t.grad).any() for t in (q, k, v))


def test_every_row_keeps_itself():
    """With no padding, every query sees at least itself (window 0 = attend to yourself only)."""
    q, k, v = _qkv(1, 1, 9, 9, 3, 3, 8)
    out = local_attention(q, k, v, window=0)
    torch.testing.assert_close(out, v, rtol=0, atol=1e-14)


# ---------------------------------------------------------------- the mechanism


def test_mechanism_registered_and_both_paths_agree():
    q, k, v = _qkv(2, 3, 21, 21, 8, 5, 11)
    mask = torch.ones(2, 1, 1, 21, dtype=torch.bool)
    mask[1, ..., 15:] = False
    fast = make_mechanism("local", window=4, global_tokens=[0])
    dense = make_mechanism("local", window=4, global_tokens=[0], blocked=False)
    assert isinstance(fast, LocalAttention)
    for causal in (False, True):
        torch.testing.assert_close(fast(q, k, v, mask=mask, causal=causal), dense(q, k, v, mask=mask, causal=causal))
    torch.testing.assert_close(fast(q, k, v, mask=mask[:, 0, 0]), dense(q, k, v, mask=mask))
    assert LocalAttention()(q, k, v).shape == (2, 3, 21, 5)


def test_mechanism_errors():
    q, k, v = _qkv(1, 1, 6, 6, 4, 4, 0)
    with pytest.raises(ValueError, match="key-padding"):
        LocalAttention(window=2)(q, k, v, mask=torch.ones(1, 1, 6, 6, dtype=torch.bool))
    with pytest.raises(ValueError, match="window"):
        LocalAttention(window=-1)
    with pytest.raises(ValueError, match="global_tokens"):
        LocalAttention(window=1, global_tokens=[6])(q, k, v)
    with pytest.raises(ValueError, match="key_padding"):
        local_attention(q, k, v, window=1, key_padding=torch.ones(1, 5, dtype=torch.bool))


# ---------------------------------------------------------------- complexity shape: never n × n


class _LargestTensor(TorchDispatchMode):
    """Records the largest number of elements of any tensor an operator returns."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def _largest(fn, n, w, glob, causal, backward):
    q, k, v = (torch.randn(1, 2, n, 8, requires_grad=backward) for _ in range(3))
    kp = torch.ones(1, n, dtype=torch.bool)
    with _LargestTensor() as rec:
        out = fn(q, k, v, window=w, global_tokens=glob, key_padding=kp, causal=causal)
        if backward:
            out.sum().backward()
    return rec.largest


@pytest.mark.parametrize("causal", [False, True])
def test_blocked_never_builds_an_n_by_n_tensor(causal):
    n, w, glob = 2048, 16, [0, 1000]
    biggest = _largest(local_attention, n, w, glob, causal, backward=True)
    # the largest tensor is the tiles' scores: B·H·n·(3w + G) entries, far below n²
    assert biggest <= 1 * 2 * n * (3 * w + len(glob))
    assert biggest < n * n / 10
    # the dense reference does build (B, H, n, n): the recorder would have caught it
    assert _largest(local_attention_naive, n, w, glob, causal, backward=False) >= 2 * n * n


def test_blocked_memory_grows_linearly_in_n():
    sizes = [_largest(local_attention, n, 8, None, False, backward=False) for n in (512, 1024, 2048)]
    assert sizes[1] == 2 * sizes[0] and sizes[2] == 2 * sizes[1]
