"""Block-sparse attention beyond the window (attnkit.blocksparse, attnkit.strided): the
Sparse Transformer's strided and fixed patterns, BigBird and Longformer's dilated window.

Each blocked implementation equals the dense masked reference (outputs and gradients,
float64, hypothesis over sizes), its teaching loop equals it too, every row sees exactly
the keys the pattern allows (counts asserted against the patterns and their formulas),
and no tensor of n × n elements is ever built.
"""

import pytest
import torch
from helpers import largest_tensor, qkv
from hypothesis import given
from hypothesis import strategies as st

import attnkit
from attnkit.blocksparse import (
    BigBirdAttention,
    LongformerAttention,
    bigbird_attention,
    bigbird_attention_naive,
    bigbird_layout,
    block_sparse_attention,
    block_sparse_loop,
    cached_layout,
    dilated_attention,
    dilated_attention_naive,
    dilated_layout,
)
from attnkit.sparse import (
    bigbird_pattern,
    dilated_pattern,
    fixed_pattern,
    longformer_pattern,
    strided_pattern,
)
from attnkit.strided import (
    StridedAttention,
    fixed_attention,
    fixed_layout,
    strided_attention,
    strided_attention_naive,
    strided_layout,
)

ATOL = 1e-12


def close(fast, ref, inputs):
    """Outputs and gradients of two computations agree (float64)."""
    torch.testing.assert_close(fast, ref, atol=ATOL, rtol=0)
    w = torch.randn(
        fast.shape, generator=torch.Generator().manual_seed(5), dtype=fast.dtype
    )
    ga = torch.autograd.grad((fast * w).sum(), inputs, retain_graph=True)
    gb = torch.autograd.grad((ref * w).sum(), inputs, retain_graph=True)
    for a, b in zip(ga, gb):
        torch.testing.assert_close(a, b, atol=ATOL, rtol=0)


def padding(B, S, seed):
    kp = torch.rand(B, S, generator=torch.Generator().manual_seed(seed)) > 0.25
    return kp


sizes = dict(
    L=st.integers(1, 30),
    S=st.integers(1, 30),
    causal=st.booleans(),
    pad=st.booleans(),
    seed=st.integers(0, 10),
)


@given(stride=st.integers(1, 9), **sizes)
def test_strided_equals_dense_reference(stride, L, S, causal, pad, seed):
    q, k, v = qkv(2, 2, L, S, D=3, Dv=4, seed=seed, requires_grad=True)
    kp = padding(2, S, seed) if pad else None
    args = dict(stride=stride, key_padding=kp, causal=causal)
    ref, _ = strided_attention_naive(q, k, v, **args)
    close(strided_attention(q, k, v, **args), ref, (q, k, v))
    layout = strided_layout(max(L, S), stride)
    close(
        block_sparse_loop(q, k, v, *layout, key_padding=kp, causal=causal),
        ref,
        (q, k, v),
    )


@given(stride=st.integers(1, 9), summary=st.integers(1, 4), **sizes)
def test_fixed_equals_dense_reference(stride, summary, L, S, causal, pad, seed):
    q, k, v = qkv(2, 2, L, S, D=3, Dv=4, seed=seed, requires_grad=True)
    kp = padding(2, S, seed) if pad else None
    args = dict(stride=stride, summary=summary, key_padding=kp, causal=causal)
    ref, _ = strided_attention_naive(q, k, v, mode="fixed", **args)
    close(fixed_attention(q, k, v, **args), ref, (q, k, v))
    layout = fixed_layout(max(L, S), stride, summary)
    close(
        block_sparse_loop(q, k, v, *layout, key_padding=kp, causal=causal),
        ref,
        (q, k, v),
    )


def globals_for(n, pick):
    return None if pick == 0 else sorted({0, (pick * 7) % n})


@given(
    window=st.integers(0, 9),
    block_size=st.integers(1, 8),
    num_random=st.integers(0, 4),
    pick=st.integers(0, 3),
    **sizes,
)
def test_bigbird_equals_dense_reference(
    window, block_size, num_random, pick, L, S, causal, pad, seed
):
    q, k, v = qkv(2, 2, L, S, D=3, Dv=4, seed=seed, requires_grad=True)
    kp = padding(2, S, seed) if pad else None
    args = dict(
        window=window,
        block_size=block_size,
        num_random=num_random,
        seed=seed,
        global_tokens=globals_for(min(L, S), pick),
        key_padding=kp,
        causal=causal,
    )
    ref, _ = bigbird_attention_naive(q, k, v, **args)
    close(bigbird_attention(q, k, v, **args), ref, (q, k, v))
    layout = bigbird_layout(max(L, S), window, block_size, num_random, seed)
    loop = block_sparse_loop(
        q,
        k,
        v,
        *layout,
        global_tokens=args["global_tokens"],
        key_padding=kp,
        causal=causal,
    )
    close(loop, ref, (q, k, v))


@given(
    window=st.integers(0, 6),
    dilation=st.integers(1, 6),
    pick=st.integers(0, 3),
    **sizes,
)
def test_dilated_equals_dense_reference(
    window, dilation, pick, L, S, causal, pad, seed
):
    q, k, v = qkv(2, 2, L, S, D=3, Dv=4, seed=seed, requires_grad=True)
    kp = padding(2, S, seed) if pad else None
    args = dict(
        window=window,
        dilation=dilation,
        global_tokens=globals_for(min(L, S), pick),
        key_padding=kp,
        causal=causal,
    )
    ref, _ = dilated_attention_naive(q, k, v, **args)
    close(dilated_attention(q, k, v, **args), ref, (q, k, v))
    layout = dilated_layout(max(L, S), window, dilation)
    loop = block_sparse_loop(
        q,
        k,
        v,
        *layout,
        global_tokens=args["global_tokens"],
        key_padding=kp,
        causal=causal,
    )
    close(loop, ref, (q, k, v))


def test_dilation_one_is_longformer_and_local_attention():
    q, k, v = qkv(2, 3, 29, D=4)
    a = dilated_attention(q, k, v, window=3, dilation=1, global_tokens=[0, 10])
    b = attnkit.local_attention(q, k, v, window=3, global_tokens=[0, 10])
    torch.testing.assert_close(a, b, atol=ATOL, rtol=0)
    assert torch.equal(
        dilated_pattern(29, 3, 1, [0, 10]), longformer_pattern(29, 3, [0, 10])
    )


def test_longformer_per_head_dilation():
    q, k, v = qkv(2, 4, 33, D=4)
    kp = padding(2, 33, 1)
    mech = LongformerAttention(window=2, dilation=(1, 1, 2, 4), global_tokens=[0])
    out = mech(q, k, v, mask=kp[:, None, None, :], causal=True)
    for h, d in enumerate((1, 1, 2, 4)):
        ref, _ = dilated_attention_naive(
            q[:, h : h + 1],
            k[:, h : h + 1],
            v[:, h : h + 1],
            window=2,
            dilation=d,
            global_tokens=[0],
            key_padding=kp,
            causal=True,
        )
        torch.testing.assert_close(out[:, h : h + 1], ref, atol=ATOL, rtol=0)
    with pytest.raises(ValueError, match="dilation has 4 entries"):
        mech(*qkv(1, 3, 8, D=4))


def row_counts(q_pos, k_pos, allowed, n, causal=False):
    """Keys each query sees according to a layout (no globals): ``(n,)``, blockwise."""
    ok = allowed & ((k_pos >= 0) & (k_pos < n))[:, None, :]
    if causal:
        ok = ok & (k_pos[:, None, :] <= q_pos[:, :, None])
    counts = torch.zeros(n, dtype=torch.long)
    keep = (q_pos >= 0) & (q_pos < n)
    counts[q_pos[keep]] = ok.sum(-1)[keep]
    # no query counts a key twice
    for keys, rows in zip(k_pos, ok):
        for row in rows:
            assert keys[row].unique().numel() == keys[row].numel()
    return counts


@pytest.mark.parametrize("n", [1, 16, 37, 64])
@pytest.mark.parametrize("stride", [1, 3, 8])
def test_per_row_counts_are_exact(n, stride):
    i = torch.arange(n)
    # strided, causal: min(i, l) + ⌊i/l⌋ + 1 − [i ≥ l] (documented in strided_pattern)
    want = (
        torch.minimum(i, torch.tensor(stride)) + i // stride + 1 - (i >= stride).long()
    )
    lay = strided_layout(n, stride)
    assert torch.equal(row_counts(*lay, n, causal=True), want)
    assert torch.equal(strided_pattern(n, stride, causal=True).sum(-1), want)
    assert torch.equal(
        row_counts(*lay, n), strided_pattern(n, stride, causal=False).sum(-1)
    )
    # fixed, causal: own block up to i, plus summaries of earlier blocks
    c = 2
    want = i % stride + 1 + (i // stride) * min(c, stride)
    assert torch.equal(row_counts(*fixed_layout(n, stride, c), n, causal=True), want)
    assert torch.equal(fixed_pattern(n, stride, summary=c).sum(-1), want)
    # dilated: ⌊·⌋ counts of the atrous pattern with limit window·d
    for window, d in [(2, 1), (2, 3), (3, stride)]:
        want = (
            torch.minimum(i, torch.tensor(window * d)) // d
            + torch.minimum(n - 1 - i, torch.tensor(window * d)) // d
            + 1
        )
        assert torch.equal(row_counts(*dilated_layout(n, window, d), n), want)
        assert torch.equal(dilated_pattern(n, window, d).sum(-1), want)
    # BigBird: the pattern's own counts, block by block
    for window, b, r in [(2, 4, 2), (0, 1, 3), (5, 8, 1)]:
        pattern = bigbird_pattern(n, window, num_random=r, block_size=b, seed=3)
        assert torch.equal(
            row_counts(*bigbird_layout(n, window, b, r, 3), n), pattern.sum(-1)
        )
        assert torch.equal(
            row_counts(*bigbird_layout(n, window, b, r, 3), n, True),
            (pattern & torch.ones(n, n, dtype=torch.bool).tril()).sum(-1),
        )


def test_bigbird_random_blocks_are_seeded_and_distinct():
    a = attnkit.bigbird_random_blocks(10, 3, seed=4)
    assert torch.equal(a, attnkit.bigbird_random_blocks(10, 3, seed=4))
    assert not torch.equal(a, attnkit.bigbird_random_blocks(10, 3, seed=5))
    assert all(row.unique().numel() == 3 for row in a)
    # row counts away from the edges: 2w + 1 window keys + r·b random keys outside the window
    n, w, b, r = 256, 4, 8, 2
    pattern = bigbird_pattern(n, w, num_random=r, block_size=b, seed=0)
    assert pattern.sum(-1).max() <= 2 * w + 1 + r * b


def test_layouts_are_built_once_per_setting_and_equal_a_fresh_build():
    cached_layout.cache_clear()
    first = cached_layout(bigbird_layout, 200, 8, 16, 2, 3, device=torch.device("cpu"))
    again = cached_layout(bigbird_layout, 200, 8, 16, 2, 3, device=torch.device("cpu"))
    assert all(a is b for a, b in zip(first, again, strict=True))  # not rebuilt
    for got, fresh in zip(first, bigbird_layout(200, 8, 16, 2, 3), strict=True):
        assert torch.equal(got, fresh)
    other_seed = cached_layout(bigbird_layout, 200, 8, 16, 2, 4, device=torch.device("cpu"))
    assert not torch.equal(other_seed[1], first[1])  # the seed is part of the key
    q, k, v = qkv(1, 2, 200, D=8)
    settings = dict(window=8, block_size=16, num_random=2, seed=3)
    torch.testing.assert_close(
        bigbird_attention(q, k, v, **settings), bigbird_attention(q, k, v, **settings)
    )
    assert cached_layout.cache_info().hits >= 2
    d = cached_layout(dilated_layout, 50, 3, 2, device=torch.device("cpu"))
    assert all(torch.equal(a, b) for a, b in zip(d, dilated_layout(50, 3, 2), strict=True))


MECHS = [
    ("strided", StridedAttention, dict(stride=32)),
    ("fixed", StridedAttention, dict(stride=32, mode="fixed")),
    (
        "bigbird",
        BigBirdAttention,
        dict(window=16, block_size=16, num_random=2, global_tokens=[0]),
    ),
    (
        "longformer",
        LongformerAttention,
        dict(window=16, dilation=(1, 4), global_tokens=[0]),
    ),
]


@pytest.mark.parametrize("name,cls,settings", MECHS, ids=[m[0] for m in MECHS])
def test_never_builds_the_n_by_n_matrix(name, cls, settings):
    mech = cls(**settings)
    n = 4096
    q, k, v = qkv(1, 2, n, D=8, dtype=torch.float32)
    assert largest_tensor(mech, q, k, v) < n * n // 4
    assert largest_tensor(mech, q, k, v, causal=True) < n * n // 4


@pytest.mark.parametrize("name,cls,settings", MECHS[2:], ids=[m[0] for m in MECHS[2:]])
def test_largest_tensor_grows_linearly(name, cls, settings):
    # fixed block size: doubling n at most doubles the largest tensor (scores in flight
    # are capped by CHUNK_ELEMENTS, the rest is O(n))
    mech = cls(**settings)
    sizes = [
        largest_tensor(mech, *qkv(1, 2, n, D=8, dtype=torch.float32))
        for n in (512, 2048)
    ]
    assert sizes[1] <= 4 * sizes[0] * 1.05


def test_strided_scores_grow_like_n_times_n_over_stride():
    # the strided pattern has about n/l column keys per row: with l = √n, O(n√n) in all
    # (n·(3l + n/l) scores in all); they are computed a few grid rows at a time, so the
    # largest tensor stays far below n × n
    for n in (4096, 16384):
        q, k, v = qkv(1, 1, n, D=4, dtype=torch.float32)
        assert (
            largest_tensor(strided_attention, q, k, v, stride=int(n**0.5)) < n * n // 8
        )


@pytest.mark.parametrize("name,cls,settings", MECHS, ids=[m[0] for m in MECHS])
def test_blocked_false_or_reference_agrees(name, cls, settings):
    q, k, v = qkv(2, 2, 70, D=8)
    mech = cls(**settings)
    out = mech(q, k, v, causal=True)
    if cls is LongformerAttention:
        return
    dense = cls(**settings, blocked=False)(q, k, v, causal=True)
    torch.testing.assert_close(out, dense, atol=ATOL, rtol=0)


def test_bad_settings_and_layouts():
    with pytest.raises(ValueError, match="mode"):
        StridedAttention(mode="diagonal")
    with pytest.raises(ValueError):
        BigBirdAttention(block_size=0)
    with pytest.raises(TypeError):
        LongformerAttention(dilation=(1, 2.0))
    q, k, v = qkv(1, 1, 8, D=4)
    q_pos, k_pos, allowed = bigbird_layout(8, 2, 4, 1, 0)
    with pytest.raises(TypeError, match="q_pos"):
        block_sparse_attention(q, k, v, q_pos.float(), k_pos, allowed)
    with pytest.raises(ValueError, match="one layout"):
        block_sparse_attention(q, k, v, q_pos, k_pos[:, :-1], allowed)
    with pytest.raises(TypeError, match="allowed"):
        block_sparse_attention(q, k, v, q_pos, k_pos, allowed.long())


def test_registered_and_usable_by_the_benchmark():
    from attnkit.bench.runner import parse_spec

    spec = parse_spec("strided:stride=64,mode=fixed")
    assert spec == ("strided", {"stride": 64, "mode": "fixed"})
    for name in ("strided", "bigbird", "longformer"):
        assert isinstance(attnkit.make_mechanism(name), attnkit.Mechanism)


@pytest.mark.parametrize("chunk", [1, 300])
def test_groups_of_blocks_equal_one_group(chunk, monkeypatch):
    # a small budget makes every group one or a few query blocks: the groups gathered
    # one at a time (no autograd) and at once then split (autograd) both give the
    # reference, outputs and gradients
    import attnkit.blocksparse as blocksparse_module

    monkeypatch.setattr(blocksparse_module, "CHUNK_ELEMENTS", chunk)
    q, k, v = qkv(2, 2, 45, 45, D=3, Dv=4, seed=3, requires_grad=True)
    kw = dict(window=3, block_size=4, num_random=2, seed=1, global_tokens=[7])
    kw.update(key_padding=padding(2, 45, 4), causal=True)
    ref, _ = bigbird_attention_naive(q, k, v, **kw)
    close(bigbird_attention(q, k, v, **kw), ref, (q, k, v))
    with torch.no_grad():
        torch.testing.assert_close(
            bigbird_attention(q, k, v, **kw), ref, atol=ATOL, rtol=0
        )
    ref, _ = dilated_attention_naive(q, k, v, window=2, dilation=3)
    close(dilated_attention(q, k, v, window=2, dilation=3), ref, (q, k, v))
