"""Linear attention (attnkit.linear): every form equals the dense reference, and the traps."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import largest_tensor, qkv
from hypothesis import given
from hypothesis import strategies as st

from attnkit import MECHANISMS, make_mechanism
from attnkit.linear import (
    FEATURE_MAPS,
    LinearAttention,
    elu_feature_map,
    linear_attention,
    linear_attention_chunked,
    linear_attention_cumsum,
    linear_attention_init_state,
    linear_attention_naive,
    linear_attention_noncausal,
    linear_attention_recurrent,
    linear_attention_step,
    mask_key_features,
    relu_feature_map,
)

CAUSAL_FORMS = {
    "recurrent": linear_attention_recurrent,
    "cumsum": linear_attention_cumsum,
    "chunked": lambda pq, pk, v, **kw: linear_attention_chunked(
        pq, pk, v, chunk_size=4, **kw
    ),
    "chunked_default": linear_attention_chunked,
}


def _explicit_loop(phi_q, phi_k, v, causal, keep=None, eps=1e-6):
    """out_i = Σ_j φ(q_i)·φ(k_j) v_j / (Σ_j φ(q_i)·φ(k_j) + eps), one (i, j) at a time."""
    B, H, L, _ = phi_q.shape
    S = phi_k.shape[2]
    out = torch.zeros(B, H, L, v.shape[-1], dtype=v.dtype)
    for b in range(B):
        for h in range(H):
            for i in range(L):
                num, den = torch.zeros(v.shape[-1], dtype=v.dtype), 0.0
                for j in range(S):
                    if causal and j > i:
                        continue
                    if keep is not None and not keep[b, j]:
                        continue
                    w = float(phi_q[b, h, i] @ phi_k[b, h, j])
                    num += w * v[b, h, j]
                    den += w
                out[b, h, i] = num / (den + eps)
    return out


@pytest.mark.parametrize("causal", [False, True])
def test_naive_matches_explicit_loop(causal):
    q, k, v = qkv(B=2, H=1, L=6, D=3, Dv=2)
    keep = torch.tensor([[True] * 6, [True, False, True, True, False, True]])
    pq, pk = elu_feature_map(q), elu_feature_map(k)
    got, weights = linear_attention_naive(pq, pk, v, key_padding=keep, causal=causal)
    torch.testing.assert_close(got, _explicit_loop(pq, pk, v, causal, keep))
    # the weights are the dense row-normalised matrix: zero on padded (and future) keys,
    # rows sum to 1
    assert weights.shape == (2, 1, 6, 6)
    assert weights[1, ..., ~keep[1]].abs().max() == 0
    torch.testing.assert_close(
        weights.sum(-1), torch.ones(2, 1, 6, dtype=weights.dtype), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(weights @ v, got)
    if causal:
        assert weights.triu(1).abs().max() == 0


def test_feature_maps():
    x = torch.linspace(-5, 5, 101, dtype=torch.float64)
    assert (elu_feature_map(x) > 0).all()
    torch.testing.assert_close(
        elu_feature_map(x), torch.where(x > 0, x + 1, torch.exp(x))
    )
    torch.testing.assert_close(relu_feature_map(x), x.clamp_min(0))
    assert set(FEATURE_MAPS) == {"elu", "relu"}


@given(
    L=st.integers(1, 19),
    D=st.integers(1, 6),
    chunk=st.integers(1, 9),
    fmap=st.sampled_from(["elu", "relu"]),
    seed=st.integers(0, 10_000),
)
def test_all_forms_equal_dense_reference(L, D, chunk, fmap, seed):
    q, k, v = qkv(B=2, H=2, L=L, D=D, Dv=3, seed=seed)
    phi = FEATURE_MAPS[fmap]
    pq, pk = phi(q), phi(k)
    keep = (
        torch.rand(2, L, generator=torch.Generator().manual_seed(seed)) > 0.3
    )  # (B, S)
    torch.testing.assert_close(
        linear_attention_noncausal(pq, pk, v, key_padding=keep),
        linear_attention_naive(pq, pk, v, key_padding=keep)[0],
    )
    ref = linear_attention_naive(pq, pk, v, key_padding=keep, causal=True)[0]
    torch.testing.assert_close(
        linear_attention_recurrent(pq, pk, v, key_padding=keep), ref
    )
    torch.testing.assert_close(
        linear_attention_cumsum(pq, pk, v, key_padding=keep), ref
    )
    torch.testing.assert_close(
        linear_attention_chunked(pq, pk, v, key_padding=keep, chunk_size=chunk), ref
    )


@pytest.mark.parametrize("S", [5, 11, 16])
def test_causal_forms_with_unequal_lengths_are_top_left_aligned(S):
    q, k, v = qkv(L=11, S=S, Dv=7)
    pq, pk = elu_feature_map(q), elu_feature_map(k)
    ref, _ = linear_attention_naive(pq, pk, v, causal=True)
    for name, form in CAUSAL_FORMS.items():
        torch.testing.assert_close(form(pq, pk, v), ref, msg=name)


@pytest.mark.parametrize("name", list(CAUSAL_FORMS))
def test_causal_gradients_match_dense(name):
    q, k, v = qkv(B=1, H=2, L=9, D=4, Dv=3)
    keep = torch.tensor(
        [[True, True, False, True, True, True, False, True, True]]
    )  # (B, S)

    def grads(fn):
        qq, kk, vv = (t.clone().requires_grad_() for t in (q, k, v))
        out = fn(elu_feature_map(qq), elu_feature_map(kk), vv, key_padding=keep)
        (
            out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape)
        ).sum().backward()
        return qq.grad, kk.grad, vv.grad

    ref = grads(
        lambda pq, pk, v, **kw: linear_attention_naive(pq, pk, v, causal=True, **kw)[0]
    )
    for g, r in zip(grads(CAUSAL_FORMS[name]), ref):
        torch.testing.assert_close(g, r)


def test_noncausal_gradients_match_dense_and_gradcheck():
    q, k, v = qkv(B=1, H=1, L=6, D=3, Dv=2)
    inputs = tuple(t.clone().requires_grad_() for t in (q, k, v))

    def fast(a, b, c):
        return linear_attention_noncausal(elu_feature_map(a), elu_feature_map(b), c)

    def dense(a, b, c):
        return linear_attention_naive(elu_feature_map(a), elu_feature_map(b), c)[0]

    assert torch.autograd.gradcheck(fast, inputs)
    gf = torch.autograd.grad(fast(*inputs).sum(), inputs)
    gd = torch.autograd.grad(dense(*inputs).sum(), inputs)
    for a, b in zip(gf, gd):
        torch.testing.assert_close(a, b)

    def chunk(a, b, c):
        return linear_attention_chunked(
            elu_feature_map(a), elu_feature_map(b), c, chunk_size=4
        )

    assert torch.autograd.gradcheck(chunk, inputs)


def test_noncausal_hand_written_backward_matches_dense_with_padding_and_broadcast():
    """The hand-written backward of the non-causal form: masked keys, broadcast
    leading axes (queries shared over the batch), L != S and a non-square M, Dv."""
    g = torch.Generator().manual_seed(7)
    pq = torch.rand(1, 3, 5, 4, generator=g, dtype=torch.float64) + 0.1
    pk = torch.rand(2, 3, 7, 4, generator=g, dtype=torch.float64) + 0.1
    v = torch.randn(2, 1, 7, 6, generator=g, dtype=torch.float64)
    keep = torch.tensor([[1, 1, 0, 1, 1, 1, 0], [1, 0, 1, 1, 1, 1, 1]]).bool()
    inputs = tuple(t.clone().requires_grad_() for t in (pq, pk, v))
    w = torch.randn(2, 3, 5, 6, generator=g, dtype=torch.float64)

    def fast(a, b, c):
        return linear_attention_noncausal(a, b, c, key_padding=keep)

    def dense(a, b, c):
        return linear_attention_naive(a, b, c, key_padding=keep)[0]

    assert torch.autograd.gradcheck(fast, inputs)
    gf = torch.autograd.grad((fast(*inputs) * w).sum(), inputs)
    gd = torch.autograd.grad((dense(*inputs) * w).sum(), inputs)
    for a, b in zip(gf, gd):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b)


def test_step_by_step_decoding_equals_parallel_causal_output():
    q, k, v = qkv(B=2, H=3, L=13, Dv=7)
    pq, pk = elu_feature_map(q), elu_feature_map(k)
    keep = torch.ones(2, 13, dtype=torch.bool)
    keep[1, [0, 4, 5]] = False
    parallel = linear_attention_chunked(pq, pk, v, key_padding=keep, chunk_size=5)
    state = linear_attention_init_state(
        (2, 3), pq.shape[-1], v.shape[-1], dtype=q.dtype
    )
    for i in range(13):
        out_i, state = linear_attention_step(
            state, pq[:, :, i], pk[:, :, i], v[:, :, i], key_allowed=keep[:, i, None]
        )
        torch.testing.assert_close(out_i, parallel[:, :, i])
    # the carried state is the sum over every real key
    pk_kept = mask_key_features(pk, keep)
    torch.testing.assert_close(state.kv, pk_kept.transpose(-2, -1) @ v)
    torch.testing.assert_close(state.z, pk_kept.sum(-2))
    assert (
        parallel[1, :, 0].abs().max() == 0
    )  # query 0 of batch 1 sees only a padded key


@pytest.mark.parametrize("form", ["chunked", "cumsum", "recurrent"])
def test_causal_forms_never_see_the_future(form):
    q, k, v = qkv(L=12, Dv=7)
    mech = LinearAttention(causal_form=form, chunk_size=5)
    before = mech(q, k, v, causal=True)
    k2, v2 = k.clone(), v.clone()
    k2[:, :, 7:] = torch.randn_like(k2[:, :, 7:]) * 10
    v2[:, :, 7:] = torch.randn_like(v2[:, :, 7:]) * 10
    after = mech(q, k2, v2, causal=True)
    torch.testing.assert_close(after[:, :, :7], before[:, :, :7])
    assert not torch.allclose(after[:, :, 7:], before[:, :, 7:])


def test_masked_keys_leave_numerator_and_denominator():
    """Zeroing V alone (the performer-pytorch bug) keeps masked keys in the normaliser."""
    q, k, v = qkv(B=1, H=1, L=8, Dv=7)
    keep = torch.tensor([[True, True, True, False, False, True, True, False]])
    mech = LinearAttention()
    for causal in (False, True):
        out = mech(q, k, v, mask=keep[:, None, None, :], causal=causal)
        # the same as deleting the masked keys (non-causal) / as changing them arbitrarily
        k2, v2 = k.clone(), v.clone()
        k2[..., ~keep[0], :] = 100.0
        v2[..., ~keep[0], :] = -100.0
        torch.testing.assert_close(
            mech(q, k2, v2, mask=keep[:, None, None, :], causal=causal), out
        )
        if not causal:
            torch.testing.assert_close(
                mech(q, k[..., keep[0], :], v[..., keep[0], :]), out
            )
        # zeroing V alone is measurably different
        pq, pk = elu_feature_map(q), elu_feature_map(k)
        wrong = linear_attention(pq, pk, v * keep[:, None, :, None], causal=causal)
        assert (wrong - out).abs().max() > 1e-3


def test_fully_masked_rows_give_zeros_not_nan():
    q, k, v = qkv(B=2, H=2, L=6, Dv=7)
    keep = torch.ones(2, 6, dtype=torch.bool)
    keep[0] = False  # batch 0: no key at all
    keep[1, :2] = False  # batch 1: causal queries 0 and 1 see nothing
    for form in ("chunked", "cumsum", "recurrent"):
        mech = LinearAttention(causal_form=form, chunk_size=4)
        for causal in (False, True):
            out = mech(q, k, v, mask=keep[:, None, None, :], causal=causal)
            assert torch.isfinite(out).all()
            assert out[0].abs().max() == 0
            if causal:
                assert out[1, :, :2].abs().max() == 0
    # ReLU features can vanish entirely: eps turns 0/0 into 0
    zero = torch.zeros(1, 1, 3, 4, dtype=torch.float64)
    for causal in (False, True):
        out = LinearAttention(feature_map="relu")(
            -zero - 1, -zero - 1, torch.ones_like(zero), causal=causal
        )
        assert torch.equal(out, torch.zeros_like(out))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("form", ["chunked", "cumsum", "recurrent"])
def test_half_precision_is_finite_and_close_to_float32(dtype, form):
    q, k, v = qkv(B=1, H=2, L=300, D=16, Dv=16, dtype=torch.float32)
    mech = LinearAttention(causal_form=form, chunk_size=32)
    for causal in (False, True):
        ref = mech(q, k, v, causal=causal)
        out = mech(q.to(dtype), k.to(dtype), v.to(dtype), causal=causal)
        assert out.dtype == dtype
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out.float(), ref, atol=3e-2, rtol=3e-2)


def test_states_accumulate_in_float32_for_halfqkv(Dv=7):
    state = linear_attention_init_state((1,), 4, 3, dtype=torch.float16)
    assert state.kv.dtype == torch.float32 and state.z.dtype == torch.float32
    # 3000 tokens of size 1: a float16 running sum would stall at 2048
    n = 3000
    s = linear_attention_init_state((), 1, 1, dtype=torch.float16)
    for _ in range(n):
        _, s = linear_attention_step(
            s,
            torch.ones(1, dtype=torch.float16),
            torch.ones(1, dtype=torch.float16),
            torch.ones(1, dtype=torch.float16),
        )
    assert s.z.item() == n


def test_mechanism_registered_with_defaults_and_chunked_by_default():
    assert MECHANISMS["linear"] is LinearAttention
    mech = make_mechanism("linear")
    assert mech.causal_form == "chunked" and mech.feature_map is elu_feature_map
    q, k, v = qkv(B=2, H=3, L=10, S=10, D=5, Dv=6)
    out = mech(q, k, v)
    assert out.shape == (2, 3, 10, 6)
    ref, _ = linear_attention_naive(elu_feature_map(q), elu_feature_map(k), v)
    torch.testing.assert_close(out, ref)
    custom = LinearAttention(
        feature_map=lambda x: torch.cat([x.exp(), (-x).exp()], dim=-1)
    )
    assert custom(q, k, v, causal=True).shape == (2, 3, 10, 6)


def test_bad_input_raises_clear_errors():
    q, k, v = qkv(L=5, Dv=7)
    with pytest.raises(ValueError, match="causal_form"):
        LinearAttention(causal_form="scan")
    with pytest.raises(ValueError, match="feature_map"):
        LinearAttention(feature_map="softmax")
    with pytest.raises(ValueError, match="chunk_size"):
        LinearAttention(chunk_size=0)
    with pytest.raises(ValueError, match="key-padding"):
        LinearAttention()(q, k, v, mask=torch.ones(2, 3, 5, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="phi_k"):
        linear_attention_noncausal(q, k[..., :4], v)
    with pytest.raises(ValueError, match="key_padding"):
        linear_attention_cumsum(
            q, k, v, key_padding=torch.ones(2, 1, 4, dtype=torch.bool)
        )
    with pytest.raises(TypeError, match="key_padding"):
        linear_attention_cumsum(q, k, v, key_padding=torch.ones(2, 1, 5))


def test_key_padding_is_b_by_s_and_masks_per_batch_element():
    """A (B, S) mask with B = 2 against (B, H) = (2, 3) leading axes masks batch element b's keys
    in every head of b, and nothing else (a trailing-axis broadcast would mis-align it)."""
    B, H, L = 2, 3, 7
    q, k, v = qkv(B=B, H=H, L=L, Dv=4)
    pq, pk = elu_feature_map(q), elu_feature_map(k)
    keep = torch.ones(B, L, dtype=torch.bool)
    keep[0, 4:] = False  # batch 0: last three keys are padding
    keep[1, :2] = False  # batch 1: first two keys are padding
    forms = {"noncausal": linear_attention_noncausal, **CAUSAL_FORMS}
    for name, form in forms.items():
        out = form(pq, pk, v, key_padding=keep)
        for b in range(B):
            # the same as deleting batch b's padded keys (non-causal) /
            # zeroing their features (causal)
            pk_b = pk[b : b + 1] * keep[b, None, None, :, None]
            torch.testing.assert_close(
                out[b : b + 1], form(pq[b : b + 1], pk_b, v[b : b + 1]), msg=name
            )
        assert not torch.allclose(out, form(pq, pk, v)), name
    # (B, 1, S) or (S,) are not (B, S): refused, not broadcast
    for bad in (keep[:, None, :], keep[0], keep.T):
        with pytest.raises(ValueError, match=r"key_padding must have shape \(B, S\)"):
            linear_attention_noncausal(pq, pk, v, key_padding=bad)


def test_memory_shape_chunked_is_linear_and_cumsum_stores_every_state():
    """Complexity shape, not time: the chunked form's largest tensor grows like L·C (not L·M·Dv)."""
    M = Dv = 32
    sizes = {}
    for L in (256, 1024):
        q, k, v = qkv(B=1, H=1, L=L, D=M, Dv=Dv, dtype=torch.float32)
        pq, pk = elu_feature_map(q), elu_feature_map(k)
        sizes[L] = (
            largest_tensor(linear_attention_chunked, pq, pk, v, chunk_size=16),
            largest_tensor(linear_attention_cumsum, pq, pk, v),
            largest_tensor(linear_attention_noncausal, pq, pk, v),
        )
    assert sizes[1024][1] >= 1024 * M * Dv  # every prefix state
    assert sizes[1024][0] <= max(1024 * max(M, Dv), 1024 // 16 * M * Dv)
    assert sizes[1024][2] <= 1024 * max(M, Dv)
    assert math.isclose(sizes[1024][0] / sizes[256][0], 4, rel_tol=0.01)


def test_noncausal_form_allocates_only_its_output_and_states():
    """φ(Q) (φ(K)ᵀ V) / (φ(Q) z): the (..., L, Dv) numerator is divided in place, so the
    form allocates one (..., L, Dv) buffer beside the small states kv, z and den."""
    from attnkit.bench import PeakMemory
    from attnkit.linear import elu_feature_map, linear_attention_noncausal

    B, H, L, D = 1, 2, 512, 16
    q, k, v = qkv(B, H, L, D=D, dtype=torch.float32)
    phi_q, phi_k = elu_feature_map(q), elu_feature_map(k)
    with torch.no_grad(), PeakMemory() as m:
        linear_attention_noncausal(phi_q, phi_k, v)
    out, kv, z, den = B * H * L * D, B * H * D * D, B * H * D, B * H * L
    assert m.peak <= 4 * (out + kv + z + den)
    with PeakMemory() as m:  # elu, then + 1 in place: one (..., L, D) buffer
        elu_feature_map(q)
    assert m.peak <= 4 * B * H * L * D
