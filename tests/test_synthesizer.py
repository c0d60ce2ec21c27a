"""Tests of attnkit.synthesizer: Dense, Random, factorised and mixture Synthesizers."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import qkv
from hypothesis import given
from hypothesis import strategies as st

from attnkit.masking import causal_mask
from attnkit.multihead import MultiHeadAttention
from attnkit.registry import MECHANISMS, make_mechanism
from attnkit.synthesizer import (
    DenseSynthesizer,
    FactorizedDenseSynthesizer,
    FactorizedRandomSynthesizer,
    RandomSynthesizer,
    SynthesizerMixture,
    crop_logits,
    dense_synthesizer_logits,
    factorized_dense_logits,
    factorized_random_logits,
    mix_logits,
    synthesizer_attention,
    synthesizer_attention_naive,
)

NAMES = [
    "synthesizer_dense",
    "synthesizer_random",
    "synthesizer_factorized_dense",
    "synthesizer_factorized_random",
    "synthesizer_mixture",
]


def build(name, max_len=16, H=3, D=6):
    """Each mechanism with small settings, in float64, parameters created."""
    settings_ = {
        "synthesizer_dense": {"max_len": max_len, "hidden": 5, "head_dim": D},
        "synthesizer_random": {"max_len": max_len, "num_heads": H},
        "synthesizer_factorized_dense": {
            "max_len": max_len,
            "hidden": 5,
            "head_dim": D,
        },
        "synthesizer_factorized_random": {
            "max_len": max_len,
            "num_heads": H,
            "rank": 3,
        },
        "synthesizer_mixture": {"max_len": max_len, "num_heads": H},
    }[name]
    return make_mechanism(name, **settings_).double()


# ------------------------------------------------------------------ registry and defaults


@pytest.mark.parametrize("name", NAMES)
def test_registered_and_default_constructible(name):
    assert name in MECHANISMS
    mech = make_mechanism(name)  # no arguments at all
    assert (
        mech.max_len == 512
    )  # declared for the contract test (see attnkit.mechanisms)
    q, k, v = qkv(B=2, H=3, L=37, D=24, Dv=25, dtype=torch.float32)
    out = mech(q, k, v)
    assert out.shape == (2, 3, 37, 25)
    assert torch.isfinite(out).all()


# ------------------------------------------------------------------ shapes, masking, causality


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_reference(name):
    """Module output == row-by-row reference on its own logits, with mask and causal."""
    mech = build(name)
    q, k, v = qkv(B=2, H=3, L=5, S=9, D=6, Dv=7)
    mask = torch.rand(2, 1, 5, 9, generator=torch.Generator().manual_seed(1)) > 0.3
    out = mech(q, k, v, mask=mask, causal=True)
    assert out.shape == (2, 3, 5, 7)
    weights = mech.attention_weights
    assert weights.shape == (2, 3, 5, 9)
    if name == "synthesizer_mixture":
        a = mech.alphas()
        logits = a[0] * mech.synthesizer.logits(q, 9) + a[1] * (
            q @ k.transpose(-2, -1)
        ) / math.sqrt(6)
    else:
        logits = mech.logits(q, 9)
    ref, ref_w = synthesizer_attention_naive(logits, v, mask=mask, causal=True)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(weights, ref_w)


@pytest.mark.parametrize("name", NAMES)
def test_causal_no_leak_from_future(name):
    mech = build(name)
    q, k, v = qkv(B=2, H=3, L=8, D=6, Dv=7)
    out = mech(q, k, v, causal=True)
    q2, k2, v2 = q.clone(), k.clone(), v.clone()
    q2[:, :, 5:] += 3.0
    k2[:, :, 5:] -= 2.0
    v2[:, :, 5:] *= -4.0
    out2 = mech(q2, k2, v2, causal=True)
    torch.testing.assert_close(out[:, :, :5], out2[:, :, :5])
    w = mech.attention_weights
    assert (w * (~causal_mask(8, 8)).double()).abs().max() == 0


@pytest.mark.parametrize("name", NAMES)
def test_masked_keys_have_no_effect_and_empty_rows_are_zero(name):
    mech = build(name)
    q, k, v = qkv(B=2, H=3, L=6, D=6, Dv=7)
    pad = torch.ones(2, 1, 1, 6, dtype=torch.bool)
    pad[0, ..., 4:] = False  # sequence 0 has 4 real keys
    pad[1] = False  # sequence 1 has none
    out = mech(q, k, v, mask=pad)
    k2, v2 = k.clone(), v.clone()
    k2[0, :, 4:] = 100.0
    v2[0, :, 4:] = -100.0
    out2 = mech(q, k2, v2, mask=pad)
    torch.testing.assert_close(out[0], out2[0])
    assert torch.equal(out[1], torch.zeros_like(out[1]))
    assert torch.isfinite(out).all()
    assert mech.attention_weights[0, ..., 4:].abs().max() == 0


@pytest.mark.parametrize("name", NAMES)
def test_too_long_raises(name):
    mech = build(name, max_len=8)
    q, k, v = qkv(B=2, H=3, L=9, D=6, Dv=7)
    with pytest.raises(ValueError, match="max_len"):
        mech(q, k, v)
    q, k, v = qkv(B=2, H=3, L=4, S=9, D=6, Dv=7)
    with pytest.raises(ValueError, match="max_len"):
        mech(q, k, v)


def test_slices_the_top_left_block():
    """For n < N the Random Synthesizer uses R[:n, :n] (the PAPERS.md trap)."""
    mech = RandomSynthesizer(max_len=10, seed=3).double()
    q, k, v = qkv(B=2, H=1, L=4, D=6, Dv=7)
    mech(q, k, v)
    expected = torch.softmax(mech.R[0, :4, :4].detach(), dim=-1)
    torch.testing.assert_close(mech.attention_weights[0, 0], expected)
    torch.testing.assert_close(mech.attention_weights[1, 0], expected)


def test_crop_logits_and_errors():
    R = torch.arange(25.0).reshape(5, 5)
    assert torch.equal(crop_logits(R, 2, 3), R[:2, :3])
    with pytest.raises(ValueError, match="max_len"):
        crop_logits(R, 6, 3)
    with pytest.raises(ValueError, match="num_heads=2"):
        RandomSynthesizer(max_len=5, num_heads=2)(
            *qkv(B=2, H=3, L=4, D=6, Dv=7, dtype=torch.float32)
        )
    with pytest.raises(ValueError, match="max_len"):
        RandomSynthesizer(max_len=0)
    with pytest.raises(ValueError, match="mixing"):
        SynthesizerMixture(mixing="average")
    with pytest.raises(ValueError, match="init_weights"):
        SynthesizerMixture(init_weights=(1.0, 0.0))  # log(0) with softmax mixing


# ------------------------------------------------------------------ Random: independent of input


@given(st.integers(0, 10_000), st.integers(1, 12))
def test_random_weights_do_not_depend_on_input(seed, L):
    mech = RandomSynthesizer(max_len=12, num_heads=2, seed=1).double()
    q1, k1, v1 = qkv(B=2, H=2, L=L, D=6, Dv=7, seed=seed)
    q2, k2, v2 = qkv(B=2, H=2, L=L, D=6, Dv=7, seed=seed + 1)
    mech(q1, k1, v1)
    w1 = mech.attention_weights
    mech(q2, k2, v2)
    w2 = mech.attention_weights
    torch.testing.assert_close(w1, w2)
    torch.testing.assert_close(w1[0], w1[1])  # same for every sequence in the batch


def test_dense_weights_depend_only_on_the_query():
    mech = DenseSynthesizer(max_len=10, hidden=4, head_dim=6).double()
    q, k, v = qkv(B=2, H=3, L=6, D=6, Dv=7)
    mech(q, k, v)
    w = mech.attention_weights
    mech(q, torch.randn_like(k), v)  # other keys: same weights
    torch.testing.assert_close(mech.attention_weights, w)
    mech(q + 1.0, k, v)  # other queries: other weights
    assert not torch.allclose(mech.attention_weights, w)


def test_frozen_random_has_no_parameters_and_seed_decides():
    frozen = RandomSynthesizer(max_len=6, trainable=False, seed=2)
    assert sum(p.numel() for p in frozen.parameters()) == 0
    assert "R" in dict(frozen.named_buffers())
    same = RandomSynthesizer(max_len=6, seed=2)
    other = RandomSynthesizer(max_len=6, seed=3)
    assert torch.equal(frozen.R, same.R.detach())
    assert not torch.equal(frozen.R, other.R.detach())


# ------------------------------------------------------------------ pure functions by hand


def test_dense_logits_by_hand():
    x = torch.tensor([[1.0, -2.0]])  # (L=1, D=2)
    W1 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # (Dh=3, D=2)
    b1 = torch.tensor([0.0, 0.0, 0.5])
    W2 = torch.tensor([[1.0, 1.0, 1.0], [2.0, 0.0, -1.0]])  # (N=2, Dh=3)
    b2 = torch.tensor([0.0, 1.0])
    # hidden = relu([1, -2, -0.5]) = [1, 0, 0] -> logits = [1, 2 + 1]
    torch.testing.assert_close(
        dense_synthesizer_logits(x, W1, b1, W2, b2), torch.tensor([[1.0, 3.0]])
    )


def test_factorized_dense_is_an_outer_product():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 5, generator=g, dtype=torch.float64)
    W1, b1 = (
        torch.randn(3, 5, generator=g, dtype=torch.float64),
        torch.randn(3, generator=g, dtype=torch.float64),
    )
    Wa, ba = (
        torch.randn(2, 3, generator=g, dtype=torch.float64),
        torch.randn(2, generator=g, dtype=torch.float64),
    )
    Wb, bb = (
        torch.randn(4, 3, generator=g, dtype=torch.float64),
        torch.randn(4, generator=g, dtype=torch.float64),
    )
    out = factorized_dense_logits(x, W1, b1, Wa, ba, Wb, bb, 7)
    h = torch.relu(x @ W1.T + b1)
    a, b = h @ Wa.T + ba, h @ Wb.T + bb
    for i in range(4):
        for j in range(7):
            torch.testing.assert_close(out[i, j], a[i, j // 4] * b[i, j % 4])
    with pytest.raises(ValueError, match="max_len"):
        factorized_dense_logits(x, W1, b1, Wa, ba, Wb, bb, 9)


def test_factorized_random_full_rank_represents_any_matrix():
    """With k = N, R₁R₂ᵀ can be any N×N matrix: take R₁ = R, R₂ = I."""
    N = 6
    R = torch.randn(
        N, N, generator=torch.Generator().manual_seed(4), dtype=torch.float64
    )
    torch.testing.assert_close(
        factorized_random_logits(R, torch.eye(N, dtype=torch.float64)), R
    )
    # and a module with those factors gives the same attention as the unfactorised one
    full = RandomSynthesizer(max_len=N).double()
    fact = FactorizedRandomSynthesizer(max_len=N, rank=N).double()
    with torch.no_grad():
        full.R.copy_(R[None])
        fact.R1.copy_(R[None])
        fact.R2.copy_(torch.eye(N, dtype=torch.float64)[None])
    q, k, v = qkv(B=2, H=3, L=5, D=6, Dv=7)
    torch.testing.assert_close(fact(q, k, v, causal=True), full(q, k, v, causal=True))


def test_factorized_random_low_rank_cannot_but_full_rank_can_fit():
    """Fitting a random target by gradient descent: rank k < N leaves an error, rank N does not."""
    N = 8
    target = torch.randn(
        N, N, generator=torch.Generator().manual_seed(5), dtype=torch.float64
    )
    errors = {}
    for rank in (2, N):
        g = torch.Generator().manual_seed(0)
        R1 = (
            0.5 * torch.randn(N, rank, generator=g, dtype=torch.float64)
        ).requires_grad_()
        R2 = (
            0.5 * torch.randn(N, rank, generator=g, dtype=torch.float64)
        ).requires_grad_()
        opt = torch.optim.Adam([R1, R2], lr=0.05)
        for _ in range(1500):
            loss = (factorized_random_logits(R1, R2) - target).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        errors[rank] = loss.item()
    assert errors[N] < 1e-6
    # the best rank-2 approximation (Eckart–Young) bounds what rank 2 can reach
    s = torch.linalg.svdvals(target)
    assert errors[2] >= (s[2:] ** 2).sum().item() / N**2 - 1e-9


def test_factorized_dense_parameters_fewer():
    dense = DenseSynthesizer(max_len=256, hidden=16, head_dim=8)
    fact = FactorizedDenseSynthesizer(max_len=256, hidden=16, head_dim=8)
    assert fact.factors == (16, 16)
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(dense) == 16 * 8 + 16 + 256 * 16 + 256
    assert n(fact) == 16 * 8 + 16 + 2 * (16 * 16 + 16)


# ------------------------------------------------------------------ mixture


def test_mixture_weights_one_zero_is_the_pure_form():
    torch.manual_seed(0)
    q, k, v = qkv(B=2, H=3, L=6, D=6, Dv=7)
    mask = torch.ones(2, 1, 1, 6, dtype=torch.bool)
    mask[1, ..., 5] = False
    synth = RandomSynthesizer(max_len=8, num_heads=3, seed=7).double()
    mix = SynthesizerMixture(
        synthesizer=synth, init_weights=(1.0, 0.0), mixing="raw"
    ).double()
    torch.testing.assert_close(
        mix(q, k, v, mask=mask, causal=True), synth(q, k, v, mask=mask, causal=True)
    )
    # (0, 1): plain scaled dot-product attention
    dot = SynthesizerMixture(
        synthesizer=synth, init_weights=(0.0, 1.0), mixing="raw"
    ).double()
    ref = make_mechanism("softmax", fast=False)
    torch.testing.assert_close(
        dot(q, k, v, mask=mask, causal=True), ref(q, k, v, mask=mask, causal=True)
    )


def test_mixture_softmax_weights_sum_to_one_and_mix_logits():
    mix = SynthesizerMixture(max_len=8, init_weights=(3.0, 1.0))
    torch.testing.assert_close(mix.alphas(), torch.tensor([0.75, 0.25]))
    a, b = torch.randn(3, 4), torch.randn(3, 4)
    torch.testing.assert_close(
        mix_logits([a, b], torch.tensor([0.75, 0.25])), 0.75 * a + 0.25 * b
    )
    with pytest.raises(ValueError, match="mixing weights"):
        mix_logits([a, b], torch.tensor([1.0]))


# ------------------------------------------------------------------ gradients


@pytest.mark.parametrize("name", NAMES)
def test_gradients_flow_to_every_parameter(name):
    mech = build(name)
    q, k, v = qkv(B=2, H=3, L=5, D=6, Dv=7)
    q.requires_grad_()
    v.requires_grad_()
    mech(q, k, v, causal=True).pow(2).sum().backward()
    assert v.grad is not None and v.grad.abs().sum() > 0
    for pname, p in mech.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


def test_gradcheck_synthesizer_attention_and_naive_gradients():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(
        1, 2, 4, 5, generator=g, dtype=torch.float64, requires_grad=True
    )
    v = torch.randn(2, 2, 5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    mask = torch.ones(2, 1, 4, 5, dtype=torch.bool)
    mask[1, 0, 2] = False  # one empty row
    mask[0, 0, :, 1] = False
    fn = lambda lg, vv: synthesizer_attention(lg, vv, mask=mask, causal=True)[0]  # noqa: E731
    assert torch.autograd.gradcheck(fn, (logits, v))
    out = fn(logits, v)
    ref = synthesizer_attention_naive(logits, v, mask=mask, causal=True)[0]
    gout = torch.randn_like(out)
    g1 = torch.autograd.grad(out, (logits, v), gout)
    g2 = torch.autograd.grad(ref, (logits, v), gout)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b)


# ------------------------------------------------------------------ inside MultiHeadAttention


@pytest.mark.parametrize("name", NAMES)
def test_inside_multihead_attention(name):
    settings_ = {"max_len": 12}
    if name in (
        "synthesizer_random",
        "synthesizer_factorized_random",
        "synthesizer_mixture",
    ):
        settings_["num_heads"] = 2
    if name in ("synthesizer_dense", "synthesizer_factorized_dense"):
        settings_["head_dim"] = 4
    mha = MultiHeadAttention(
        8,
        2,
        mechanism=name,
        mechanism_settings=settings_,
        query_size=8,
        key_size=8,
        value_size=8,
    )
    X = torch.randn(3, 10, 8)
    out = mha(X, X, X, torch.tensor([10, 7, 0]), causal=True)
    assert out.shape == (3, 10, 8)
    assert torch.isfinite(out).all()
    w = mha.attention_weights
    assert w.shape == (3, 2, 10, 10)
    assert w[1, ..., 7:].abs().max() == 0
    assert w[2].abs().max() == 0
    with pytest.raises(ValueError, match="max_len"):
        mha(torch.randn(1, 13, 8), torch.randn(1, 13, 8), torch.randn(1, 13, 8))


def test_dense_lazy_head_dim():
    mech = DenseSynthesizer(max_len=9)
    q, k, v = qkv(B=2, H=3, L=5, D=7, Dv=8, dtype=torch.float32)
    mech(q, k, v)
    assert mech.W1.shape == (64, 7)
    state = DenseSynthesizer(max_len=9)
    state(q, k, v)
    state.load_state_dict(mech.state_dict())
    torch.testing.assert_close(state(q, k, v), mech(q, k, v))
