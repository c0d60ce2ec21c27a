"""LSH attention (attnkit.lsh): sorting and chunks, the dense reference, masks, memory.

The hash families (attnkit.hashing) are tested in test_hashing.py."""

import math

import pytest
import torch
from helpers import qkv
from hypothesis import given
from hypothesis import strategies as st
from torch.nn import functional as F

from attnkit import make_mechanism, softmax_attention_naive
from attnkit.hashing import angular_hash, random_rotations
from attnkit.lsh import (
    SELF_PENALTY,
    LSHAttention,
    chunk_layout,
    default_n_buckets,
    lsh_attention,
    lsh_attention_loop,
    lsh_attention_naive,
    sort_by_bucket,
)

f64 = torch.float64


# ---------------------------------------------------------------- sorting and chunks
def test_sort_by_bucket_orders_by_bucket_then_position_and_rank_inverts_it():
    buckets = torch.tensor([[3, 1, 3, 0, 1, 1, 0]])
    order, rank = sort_by_bucket(buckets, padded_len=9)
    assert order.tolist() == [[3, 6, 1, 4, 5, 0, 2, 7, 8]]  # padding last
    assert torch.equal(
        order.gather(-1, rank), torch.arange(9)[None]
    )  # inverse permutation
    assert torch.equal(rank.gather(-1, order), torch.arange(9)[None])


def test_chunk_layout_pads_instead_of_requiring_divisibility():
    assert chunk_layout(37, 37, 8) == (5, 8, 8)
    assert chunk_layout(10, 10, 64) == (1, 10, 10)
    assert chunk_layout(20, 13, 3) == (7, 3, 2)
    assert default_n_buckets(37, 37, 8) % 2 == 0
    assert default_n_buckets(5, 5, 64) == 2


# ---------------------------------------------------------------- chunked == dense reference
@given(
    B=st.integers(1, 2),
    H=st.integers(1, 2),
    L=st.integers(1, 40),
    extra=st.integers(-10, 10),
    D=st.integers(1, 9),
    bucket_size=st.integers(1, 9),
    R=st.integers(1, 4),
    half_buckets=st.integers(1, 4),
    causal=st.booleans(),
    shared=st.booleans(),
    pad=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_chunked_matches_dense_reference_outputs_and_gradients(
    B, H, L, extra, D, bucket_size, R, half_buckets, causal, shared, pad, seed
):
    S = L if shared else max(1, L + extra)
    q, k, v = qkv(B, H, L, S, D, 3, seed=seed, requires_grad=True)
    rot = random_rotations(D, 2 * half_buckets, R, seed=seed)
    qb = angular_hash(q.detach(), rot)
    kb = qb if shared else angular_hash(k.detach(), rot)
    kp = (
        (torch.rand(B, S, generator=torch.Generator().manual_seed(seed)) > 0.3)
        if pad
        else None
    )

    def run(fn):
        keys = F.normalize(q, dim=-1) if shared else k
        out = fn(
            q,
            keys,
            v,
            qb,
            kb,
            bucket_size=bucket_size,
            causal=causal,
            key_padding=kp,
            not_self=shared,
        )
        out = out[0] if isinstance(out, tuple) else out
        w = torch.linspace(-1, 1, out.numel(), dtype=f64).reshape(out.shape)
        grads = torch.autograd.grad((out * w).sum(), (q, k, v), allow_unused=True)
        return out.detach(), [
            torch.zeros(1, dtype=f64) if g is None else g for g in grads
        ]

    out_fast, g_fast = run(lsh_attention)
    out_ref, g_ref = run(lsh_attention_naive)
    out_loop, g_loop = run(lsh_attention_loop)  # the teaching version
    torch.testing.assert_close(out_fast, out_ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(out_loop, out_fast, rtol=1e-10, atol=1e-10)
    for a, b, c in zip(g_fast, g_ref, g_loop):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(c, a, rtol=1e-9, atol=1e-9)
    assert not torch.isnan(out_fast).any()
    assert all(not torch.isnan(g).any() for g in g_loop)


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("R", [1, 3, 8])
def test_teaching_loop_equals_fast_version(shared, causal, R):
    """The chapter's loop over rounds and chunks is the fast function, outputs and grads."""
    L, D = 45, 6  # 45 = 5 chunks of 9: uneven buckets overflow chunks
    q, k, v = qkv(2, 3, L, L, D, 4, seed=R, requires_grad=True)
    rot = random_rotations(D, 6, R, seed=R)
    qb = angular_hash(q.detach(), rot)
    kb = qb if shared else angular_hash(k.detach(), rot)
    settings = dict(bucket_size=9, causal=causal, not_self=shared)
    upstream = torch.randn(2, 3, L, 4, dtype=f64)
    outs, grads = [], []
    for fn in (lsh_attention_loop, lsh_attention):
        keys = F.normalize(q, dim=-1) if shared else k
        out = fn(q, keys, v, qb, kb, **settings)
        outs.append(out)
        grads.append(torch.autograd.grad(out, (q, k, v), upstream, allow_unused=True))
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-12, atol=1e-12)
    for a, b in zip(*grads):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_duplicate_pairs_across_rounds_count_once():
    # identical rounds: every allowed pair appears R times; the result must equal one round
    q, k, v = qkv(1, 2, 23, 23, 5, 4, seed=0, requires_grad=True)
    rot1 = random_rotations(5, 4, 1, seed=3)
    qb1, kb1 = angular_hash(q.detach(), rot1), angular_hash(k.detach(), rot1)
    one = lsh_attention(q, k, v, qb1, kb1, bucket_size=4)
    three = lsh_attention(
        q, k, v, qb1.repeat(1, 1, 3, 1), kb1.repeat(1, 1, 3, 1), bucket_size=4
    )
    torch.testing.assert_close(one, three)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("L", [1, 7, 37])
def test_one_bucket_and_one_chunk_is_full_attention(causal, L):
    q, k, v = qkv(2, 3, L, L, 6, 5, seed=L, requires_grad=True)
    mask = torch.rand(2, 1, 1, L, generator=torch.Generator().manual_seed(1)) > 0.4
    lsh = LSHAttention(bucket_size=64, n_hashes=1, n_buckets=1)
    expected, _ = softmax_attention_naive(q, k, v, mask=mask, causal=causal)
    torch.testing.assert_close(lsh(q, k, v, mask=mask, causal=causal), expected)


def test_shared_qk_normalises_keys_not_queries_and_avoids_self():
    q, _, v = qkv(1, 2, 9, 9, 4, 3, seed=2, requires_grad=True)
    lsh = LSHAttention(bucket_size=16, n_hashes=1, n_buckets=1, shared_qk=True)
    out = lsh(q, q, v)
    scores = (
        q @ F.normalize(q, dim=-1).transpose(-1, -2)
    ) / 2.0  # query raw, key unit, 1/√D
    scores = scores.masked_fill(
        torch.eye(9, dtype=torch.bool), float("-inf")
    )  # never itself
    torch.testing.assert_close(out, scores.softmax(-1) @ v)
    # scaling the queries sharpens the weights: they are not normalised
    assert not torch.allclose(lsh(3 * q, 3 * q, v), out)


def test_shared_qk_lone_token_attends_to_itself():
    q, _, v = qkv(1, 1, 6, 6, 4, 3, seed=3, requires_grad=True)
    lsh = LSHAttention(bucket_size=8, n_hashes=1, n_buckets=1, shared_qk=True)
    out = lsh(q, q, v, causal=True)
    torch.testing.assert_close(
        out[..., 0, :], v[..., 0, :]
    )  # position 0 sees only itself
    assert (out[..., 1:, :] - v[..., 1:, :]).abs().amax() > 1e-3
    single = lsh(q[..., :1, :], q[..., :1, :], v[..., :1, :])  # a sequence of one token
    torch.testing.assert_close(single, v[..., :1, :])
    assert math.isfinite(SELF_PENALTY)


@pytest.mark.parametrize("shared", [False, True])
def test_causal_never_attends_to_the_future(shared):
    q, k, v = qkv(2, 2, 37, 37, 6, 4, seed=5, requires_grad=True)
    lsh = LSHAttention(bucket_size=4, n_hashes=3, shared_qk=shared).eval()
    out = lsh(q, k, v, causal=True)
    for t in [0, 10, 30]:
        # later values (with the same buckets) cannot change earlier outputs ...
        v2 = v.detach().clone()
        v2[..., t + 1 :, :] = 100 * torch.randn_like(v2[..., t + 1 :, :])
        torch.testing.assert_close(
            lsh(q, k, v2, causal=True)[..., : t + 1, :], out[..., : t + 1, :].detach()
        )
        # ... while without causal=True they do (the check above can fail)
        assert not torch.allclose(
            lsh(q, k, v2)[..., : t + 1, :], lsh(q, k, v)[..., : t + 1, :]
        )
    # the reference's weights for the same buckets are exactly zero above the diagonal
    qb, kb = lsh.last_buckets
    keys = F.normalize(q, dim=-1) if shared else k
    _, w = lsh_attention_naive(
        q, keys, v, qb, kb, bucket_size=4, causal=True, not_self=shared
    )
    assert torch.equal(w.triu(1), torch.zeros_like(w))


def test_masked_keys_have_no_effect_and_fully_masked_rows_are_zero():
    q, k, v = qkv(2, 2, 30, 30, 5, 4, seed=6, requires_grad=True)
    mask = torch.ones(2, 1, 1, 30, dtype=torch.bool)
    mask[0, ..., 5:12] = False
    mask[1] = False
    lsh = LSHAttention(bucket_size=4, n_hashes=2).eval()
    out = lsh(q, k, v, mask=mask)
    k2, v2 = k.detach().clone(), v.detach().clone()
    k2[0, :, 5:12] += 5.0
    v2[0, :, 5:12] = 1e3
    torch.testing.assert_close(lsh(q, k2, v2, mask=mask)[0], out[0].detach())
    assert torch.equal(out[1], torch.zeros_like(out[1]))
    out.sum().backward()
    assert torch.isfinite(q.grad).all() and torch.isfinite(v.grad).all()


def test_error_against_full_attention_falls_with_more_rounds():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4, 256, 16, generator=g, dtype=f64) * 2
    v = torch.randn(1, 4, 256, 16, generator=g, dtype=f64)
    full = LSHAttention(bucket_size=256, n_buckets=1, n_hashes=1, shared_qk=True)(
        x, x, v
    )
    errors, coverage = [], []
    for rounds in [1, 2, 4, 8]:
        lsh = LSHAttention(
            bucket_size=16, n_hashes=rounds, shared_qk=True, seed=1
        ).eval()
        errors.append((lsh(x, x, v) - full).norm().item() / full.norm().item())
        qb, kb = lsh.last_buckets
        _, w = lsh_attention_naive(
            x, F.normalize(x, dim=-1), v, qb, kb, bucket_size=16, not_self=True
        )
        coverage.append((w > 0).double().mean().item())
    assert all(a <= b for a, b in zip(coverage, coverage[1:])), (
        coverage
    )  # rounds only add pairs
    assert errors[-1] < 0.6 * errors[0], errors
    assert all(a > b for a, b in zip(errors, errors[1:])), errors


def test_rotations_fixed_in_eval_and_redrawn_in_training_only_when_asked():
    q, k, v = qkv(1, 2, 40, 40, 8, 3, seed=8, requires_grad=True)
    fixed = LSHAttention(bucket_size=4, n_hashes=2, seed=3)
    a = fixed(q, k, v)
    assert torch.equal(fixed(q, k, v), a)  # training mode but redraw=False
    fresh = LSHAttention(bucket_size=4, n_hashes=2, seed=3, redraw=True)
    assert torch.equal(fresh.eval()(q, k, v), a)  # eval: rotations from the seed
    fresh.train()
    b1 = fresh(q, k, v)
    b1_buckets = fresh.last_buckets[0]
    fresh(q, k, v)
    assert not torch.equal(
        fresh.last_buckets[0], b1_buckets
    )  # redrawn at each training call
    assert torch.equal(
        fresh.eval()(q, k, v), a
    )  # back in eval: the seeded rotations again
    assert b1.shape == a.shape


def test_awkward_sizes_and_registry():
    lsh = make_mechanism("lsh")  # default settings
    q, k, v = qkv(2, 3, 37, 37, 24, 7, seed=9, requires_grad=True)
    out = lsh(q.float(), k.float(), v.float(), causal=True)
    assert out.shape == (2, 3, 37, 7) and torch.isfinite(out).all()
    cross = LSHAttention(bucket_size=5)(q, k[:, :, :11], v[:, :, :11])  # L ≠ S
    assert cross.shape == (2, 3, 37, 7)


def test_bad_inputs_are_rejected_clearly():
    q, k, v = qkv(1, 2, 8, 8, 4, 4, seed=0, requires_grad=True)
    with pytest.raises(ValueError, match="key-padding"):
        LSHAttention()(q, k, v, mask=torch.ones(1, 1, 8, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match="shared_qk"):
        LSHAttention(shared_qk=True)(q, k[:, :, :5], v[:, :, :5])
    with pytest.raises(ValueError, match="bucket_size"):
        LSHAttention(bucket_size=0)
    with pytest.raises(ValueError):
        LSHAttention()(q, k, v[:, :, :5])


def test_memory_grows_linearly_not_quadratically():
    # the largest tensor saved for backward: doubling L (bucket size fixed) must about double it
    def largest_saved(L):
        q, k, v = qkv(1, 1, L, L, 8, 8, seed=0, requires_grad=True)
        sizes = []
        with torch.autograd.graph.saved_tensors_hooks(
            lambda t: sizes.append(t.numel()) or t, lambda t: t
        ):
            LSHAttention(bucket_size=16, n_hashes=2)(q, k, v, causal=True)
        return max(sizes)

    a, b, c = largest_saved(256), largest_saved(512), largest_saved(1024)
    assert b <= 2.2 * a and c <= 2.2 * b, (a, b, c)
    assert c < 1024 * 1024 / 8  # far below one L × L matrix


def test_sort_rows_backward_is_the_inverse_gather():
    """SortRows' backward (a gather with the inverse permutation, summed over rounds)
    equals the true gradient."""
    from attnkit.lsh import SortRows

    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 7, 4, generator=g, dtype=torch.float64, requires_grad=True)
    order = torch.stack(
        [torch.randperm(7, generator=g) for _ in range(2 * 3 * 2)]
    ).reshape(2, 3, 2, 7)
    rank = order.argsort(dim=-1)
    assert torch.autograd.gradcheck(lambda t: SortRows.apply(t, order, rank), (x,))
    torch.testing.assert_close(
        SortRows.apply(x, order, rank)[1, 2, 1], x[1, 2][order[1, 2, 1]]
    )
