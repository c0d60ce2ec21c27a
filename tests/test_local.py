"""Blocked local attention (attnkit.local): equal to the dense masked reference (outputs and
gradients), the mechanism, and the complexity shape (never an n × n tensor)."""

from __future__ import annotations

import pytest
import torch
from helpers import largest_tensor, qkv
from hypothesis import given
from hypothesis import strategies as st

import attnkit.local as local_module
from attnkit import make_mechanism, softmax_attention_naive
from attnkit.local import (
    LocalAttention,
    local_attention,
    local_attention_naive,
    local_attention_teaching,
)
from attnkit.sparse import local_pattern, sparse_attention_naive

# ---------------------------------------------------------------- blocked == dense masked reference


@given(
    n=st.integers(1, 37),
    w=st.integers(0, 40),
    causal=st.booleans(),
    padding=st.booleans(),
    n_global=st.integers(0, 2),
    chunk=st.sampled_from([1, 40, 2**20]),
    seed=st.integers(0, 2**16),
)
def test_blocked_equals_dense_outputs_and_gradients(
    n, w, causal, padding, n_global, chunk, seed
):
    saved, local_module.CHUNK_ELEMENTS = (
        local_module.CHUNK_ELEMENTS,
        chunk,
    )  # 1: one block at a time
    try:
        _check_blocked_against_dense(n, w, causal, padding, n_global, seed)
    finally:
        local_module.CHUNK_ELEMENTS = saved


def _check_blocked_against_dense(n, w, causal, padding, n_global, seed):
    q, k, v = qkv(2, 2, n, n, 3, 4, seed=seed, requires_grad=True)
    g = torch.Generator().manual_seed(seed + 1)
    kp = (torch.rand(2, n, generator=g) < 0.7) if padding else None
    glob = (
        sorted({int(t) for t in torch.randint(0, n, (n_global,), generator=g)}) or None
    )
    fast = local_attention(
        q, k, v, window=w, global_tokens=glob, key_padding=kp, causal=causal
    )
    ref, weights = local_attention_naive(
        q, k, v, window=w, global_tokens=glob, key_padding=kp, causal=causal
    )
    assert weights.shape == (2, 2, n, n)
    assert not torch.isnan(fast).any()
    torch.testing.assert_close(fast, ref, rtol=0, atol=1e-12)
    r = torch.randn(fast.shape, generator=g, dtype=torch.float64)
    g_fast = torch.autograd.grad((fast * r).sum(), (q, k, v))
    g_ref = torch.autograd.grad((ref * r).sum(), (q, k, v))
    for a, b in zip(g_fast, g_ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


# ---------------------------------------------------------------- teaching loop == blocked


@given(
    L=st.integers(0, 30),
    S=st.integers(1, 30),
    w=st.integers(0, 12),
    causal=st.booleans(),
    padding=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_teaching_loop_equals_blocked_outputs_and_gradients(
    L, S, w, causal, padding, seed
):
    """The chapter's loop over query blocks is the fast blocked code, value and gradient."""
    q, k, v = qkv(2, 2, L, S, 3, 4, seed=seed, requires_grad=True)
    g = torch.Generator().manual_seed(seed + 1)
    kp = (torch.rand(2, S, generator=g) < 0.7) if padding else None
    kw = dict(window=w, key_padding=kp, causal=causal)
    teach, fast = (
        local_attention_teaching(q, k, v, **kw),
        local_attention(q, k, v, **kw),
    )
    assert teach.shape == fast.shape == (2, 2, L, 4)
    torch.testing.assert_close(teach, fast, rtol=0, atol=1e-12)
    if L == 0:
        return  # nothing to differentiate
    r = torch.randn(fast.shape, generator=g, dtype=torch.float64)
    grads = [
        torch.autograd.grad(
            (out * r).sum(), (q, k, v), allow_unused=True, materialize_grads=True
        )
        for out in (teach, fast)
    ]
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("w", [1, 3, 8])
@pytest.mark.parametrize("causal", [False, True])
def test_teaching_loop_scores_only_the_window(w, causal):
    """Each block scores at most b × (b + 2w) pairs: never an L × S tensor."""
    n = 64
    q, k, v = qkv(1, 1, n, n, 4, 4, seed=0)
    assert (
        largest_tensor(local_attention_teaching, q, k, v, window=w, causal=causal)
        < n * n
    )


@pytest.mark.parametrize("L,S", [(5, 11), (11, 5), (16, 16)])
@pytest.mark.parametrize("causal", [False, True])
def test_blocked_handles_unequal_lengths(L, S, causal):
    q, k, v = qkv(1, 2, L, S, 4, 3, seed=0, requires_grad=True)
    kw = dict(window=3, global_tokens=[1], causal=causal)
    torch.testing.assert_close(
        local_attention(q, k, v, **kw), local_attention_naive(q, k, v, **kw)[0]
    )


def test_naive_is_the_masked_softmax_of_the_pattern():
    q, k, v = qkv(1, 1, 9, 9, 4, 2, seed=3, requires_grad=True)
    pattern = local_pattern(9, 2)
    out, weights = sparse_attention_naive(q, k, v, pattern)
    assert (weights[0, 0][~pattern] == 0).all()
    torch.testing.assert_close(
        weights.sum(-1), torch.ones(1, 1, 9, dtype=torch.float64)
    )
    ref, ref_weights = local_attention_naive(q, k, v, window=2)
    torch.testing.assert_close(ref, out)
    torch.testing.assert_close(ref_weights, weights)


@pytest.mark.parametrize("n", [1, 7, 16])
@pytest.mark.parametrize("causal", [False, True])
def test_window_at_least_n_is_full_attention(n, causal):
    q, k, v = qkv(2, 2, n, n, 5, 3, seed=n, requires_grad=True)
    full, _ = softmax_attention_naive(q, k, v, causal=causal)
    for w in (n - 1 if n > 1 else 0, n, 10 * n + 3):
        torch.testing.assert_close(
            local_attention(q, k, v, window=w, causal=causal), full, rtol=0, atol=1e-13
        )


def test_fully_masked_rows_give_zeros():
    q, k, v = qkv(2, 1, 10, 10, 4, 3, seed=5, requires_grad=True)
    kp = torch.ones(2, 10, dtype=torch.bool)
    kp[0] = False  # sequence 0: every key padded
    kp[1, :4] = (
        False  # sequence 1: query 0 (causal, window 2) sees keys 0..0 only -> empty
    )
    for glob in (None, [0]):
        out = local_attention(
            q, k, v, window=2, key_padding=kp, causal=True, global_tokens=glob
        )
        assert not torch.isnan(out).any()
        assert (out[0] == 0).all()
        assert (out[1, :, :2] == 0).all() and (out[1, :, 4:] != 0).any()
        out.sum().backward()
        assert not any(torch.isnan(t.grad).any() for t in (q, k, v))


def test_every_row_keeps_itself():
    """With no padding, every query sees at least itself (window 0 = attend to yourself only)."""
    q, k, v = qkv(1, 1, 9, 9, 3, 3, seed=8, requires_grad=True)
    out = local_attention(q, k, v, window=0)
    torch.testing.assert_close(out, v, rtol=0, atol=1e-14)


# ---------------------------------------------------------------- the mechanism


def test_mechanism_registered_and_both_paths_agree():
    q, k, v = qkv(2, 3, 21, 21, 8, 5, seed=11, requires_grad=True)
    mask = torch.ones(2, 1, 1, 21, dtype=torch.bool)
    mask[1, ..., 15:] = False
    fast = make_mechanism("local", window=4, global_tokens=[0])
    dense = make_mechanism("local", window=4, global_tokens=[0], blocked=False)
    assert isinstance(fast, LocalAttention)
    for causal in (False, True):
        torch.testing.assert_close(
            fast(q, k, v, mask=mask, causal=causal),
            dense(q, k, v, mask=mask, causal=causal),
        )
    torch.testing.assert_close(
        fast(q, k, v, mask=mask[:, 0, 0]), dense(q, k, v, mask=mask)
    )
    assert LocalAttention()(q, k, v).shape == (2, 3, 21, 5)


def test_mechanism_errors():
    q, k, v = qkv(1, 1, 6, 6, 4, 4, seed=0, requires_grad=True)
    with pytest.raises(ValueError, match="key-padding"):
        LocalAttention(window=2)(q, k, v, mask=torch.ones(1, 1, 6, 6, dtype=torch.bool))
    with pytest.raises(ValueError, match="window"):
        LocalAttention(window=-1)
    with pytest.raises(ValueError, match="global_tokens"):
        LocalAttention(window=1, global_tokens=[6])(q, k, v)
    with pytest.raises(ValueError, match="key_padding"):
        local_attention(
            q, k, v, window=1, key_padding=torch.ones(1, 5, dtype=torch.bool)
        )


# ---------------------------------------------------------------- complexity shape: never n × n


def _largest(fn, n, w, glob, causal, backward):
    """The largest tensor any operator returns while ``fn`` runs (and its backward, if asked)."""
    q, k, v = qkv(1, 2, n, n, 8, dtype=torch.float32, requires_grad=backward)
    kp = torch.ones(1, n, dtype=torch.bool)

    def run():
        out = fn(q, k, v, window=w, global_tokens=glob, key_padding=kp, causal=causal)
        if backward:
            out.sum().backward()

    return largest_tensor(run)


@pytest.mark.parametrize("causal", [False, True])
def test_blocked_never_builds_an_n_by_n_tensor(causal):
    n, w, glob = 2048, 16, [0, 1000]
    biggest = _largest(local_attention, n, w, glob, causal, backward=True)
    # the largest tensor is the tiles' scores: B·H·n·(3w + G) entries, far below n²
    assert biggest <= 1 * 2 * n * (3 * w + len(glob))
    assert biggest < n * n / 10
    # the dense reference does build (B, H, n, n): the recorder would have caught it
    assert (
        _largest(local_attention_naive, n, w, glob, causal, backward=False) >= 2 * n * n
    )


def test_blocked_memory_grows_linearly_in_n():
    sizes = [
        _largest(local_attention, n, 8, None, False, backward=False)
        for n in (512, 1024, 2048)
    ]
    assert sizes[1] == 2 * sizes[0] and sizes[2] == 2 * sizes[1]
