"""Random features (chapter 8): projections, feature maps, Performer, RFA."""

import math

import pytest
import torch
from helpers import qkv
from hypothesis import given
from hypothesis import strategies as st

from attnkit.linear import linear_attention_init_state, linear_attention_step
from attnkit.mechanisms import softmax_attention_naive
from attnkit.random_features import (
    RFA,
    PerformerAttention,
    arccos_attention,
    arccos_attention_naive,
    arccos_features,
    arccos_kernel,
    gaussian_matrix,
    key_stabilizer,
    orthogonal_matrix,
    performer_attention,
    performer_attention_naive,
    performer_features,
    positive_features,
    random_projection,
    rfa_attention,
    rfa_attention_naive,
    trig_features,
)


# ---------------------------------------------------------------- projections
@pytest.mark.parametrize("m,d", [(16, 8), (20, 8), (5, 8), (64, 24)])
def test_orthogonal_blocks_are_orthogonal(m, d):
    omega = orthogonal_matrix(m, d, generator=torch.Generator().manual_seed(0)).double()
    assert omega.shape == (m, d)
    for start in range(0, m, d):
        block = omega[start : start + d]
        unit = block / block.norm(dim=1, keepdim=True)
        torch.testing.assert_close(
            unit @ unit.T, torch.eye(len(block), dtype=torch.float64), atol=1e-5, rtol=0
        )
    # the rows are not unit length: they carry chi-distributed norms
    assert omega.norm(dim=1).std() > 0.1


def test_orthogonal_row_norms_follow_the_gaussian_length_distribution():
    d = 16
    norms = torch.cat(
        [
            orthogonal_matrix(64, d, generator=torch.Generator().manual_seed(s)).norm(
                dim=1
            )
            for s in range(40)
        ]
    ).double()  # 2560 rows
    # chi_d: E[r^2] = d, Var[r^2] = 2d
    n = len(norms)
    assert abs((norms**2).mean() - d) < 4 * math.sqrt(2 * d / n)
    assert abs((norms**2).var() - 2 * d) < 0.25 * 2 * d


def test_qr_sign_correction_makes_columns_unbiased():
    # without the sign correction, LAPACK's positive diag(R) biases the first entry of each row
    rows = torch.cat(
        [
            orthogonal_matrix(8, 8, generator=torch.Generator().manual_seed(s))
            for s in range(300)
        ]
    )
    unit = rows / rows.norm(dim=1, keepdim=True)
    assert unit.mean(dim=0).abs().max() < 4 / math.sqrt(len(unit) * 8) * 2


def test_projections_are_seeded_and_redrawable():
    a = random_projection(32, 8, seed=3)
    torch.testing.assert_close(a, random_projection(32, 8, seed=3), atol=0, rtol=0)
    assert not torch.allclose(a, random_projection(32, 8, seed=4))
    assert not torch.allclose(a, random_projection(32, 8, seed=3, orthogonal=False))
    assert gaussian_matrix(7, 3).shape == (7, 3)


# ---------------------------------------------------------------- estimates of exp(q·k)
@pytest.mark.parametrize("kind", ["positive", "trig"])
@pytest.mark.parametrize("orthogonal", [False, True])
def test_feature_estimate_is_unbiased(kind, orthogonal):
    d, m, seeds = 6, 4, 2000
    g = torch.Generator().manual_seed(1)
    x = 0.4 * torch.randn(5, d, generator=g, dtype=torch.float64)
    y = 0.4 * torch.randn(5, d, generator=g, dtype=torch.float64)
    exact = torch.exp(x @ y.T)  # (5, 5)
    feats = positive_features if kind == "positive" else trig_features
    # one call draws `seeds` independent blocks of d rows; the first m rows of a block are one Ω
    gen = torch.Generator().manual_seed(7)
    draw = orthogonal_matrix if orthogonal else gaussian_matrix
    blocks = (
        draw(seeds * d, d, generator=gen).double().reshape(seeds, d, d)[:, :m]
    )  # (seeds, m, d)
    ests = [feats(x, omega) @ feats(y, omega).T for omega in blocks]
    ests = torch.stack(ests)  # (seeds, 5, 5)
    se = ests.std(dim=0) / math.sqrt(seeds)
    z = (ests.mean(dim=0) - exact) / se
    assert z.abs().max() < 4.5, z
    # and the check can fail: a wrong estimator (no −‖x‖²/2 term) is far off
    if kind == "positive":
        wrong = torch.stack(
            [torch.exp(x @ w.T) @ torch.exp(y @ w.T).T / m for w in blocks]
        ).mean(dim=0)
        assert ((wrong - exact) / se).abs().max() > 10


def test_orthogonal_positive_features_have_lower_error():
    d, m = 16, 16
    g = torch.Generator().manual_seed(2)
    x = 0.5 * torch.randn(20, d, generator=g, dtype=torch.float64)
    y = 0.5 * torch.randn(20, d, generator=g, dtype=torch.float64)
    exact = torch.exp(x @ y.T)
    mse = {}
    for orth in (False, True):
        errs = [
            ((positive_features(x, w) @ positive_features(y, w).T - exact) ** 2).mean()
            for w in (
                random_projection(m, d, orthogonal=orth, seed=s).double()
                for s in range(200)
            )
        ]
        mse[orth] = torch.stack(errs).mean()
    assert mse[True] < 0.8 * mse[False]


def test_stabilizer_cancels_in_the_output():
    q, k, v = qkv(B=2, H=2, L=23, S=23, D=8, Dv=5)
    omega = random_projection(64, 8, seed=0).double()
    out, weights = performer_attention_naive(q, k, v, omega)
    # unstabilised features of the scaled inputs, normalised by hand
    s = 8**-0.25
    a = positive_features(q * s, omega) @ positive_features(k * s, omega).transpose(
        -2, -1
    )  # (B, H, L, S)
    torch.testing.assert_close(
        out, (a @ v) / a.sum(-1, keepdim=True), atol=1e-10, rtol=1e-8
    )
    # the naive reference's weights are that matrix, row-normalised
    torch.testing.assert_close(
        weights, a / a.sum(-1, keepdim=True), atol=1e-10, rtol=1e-8
    )


def test_key_stabilizer_never_looks_at_the_future():
    log_k = torch.randn(2, 9, 4)
    later = log_k.clone()
    later[:, 1:] += 50.0
    c = key_stabilizer(log_k, causal=True)
    torch.testing.assert_close(c, key_stabilizer(later, causal=True))
    assert not torch.allclose(
        key_stabilizer(log_k), key_stabilizer(later)
    )  # non-causal does
    # first *real* key
    pad = torch.tensor([False, True] + [True] * 7).expand(2, 9)  # (B, S)
    torch.testing.assert_close(
        key_stabilizer(log_k, pad, causal=True)[:, 0, 0], log_k[:, 1].amax(-1)
    )


# ---------------------------------------- Performer: fast vs dense reference
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("kind", ["positive", "trig"])
@pytest.mark.parametrize("L,S", [(23, 23), (17, 29), (29, 17)])
def test_performer_matches_dense_reference(causal, kind, L, S):
    q, k, v = qkv(B=2, H=2, L=L, S=S, D=8, Dv=5)
    omega = random_projection(32, 8, seed=1).double()
    kp = (torch.arange(S) < S - 4)[None, :].expand(2, S).clone()  # (B, S)
    kp[1, 0] = False
    args = dict(kind=kind, key_padding=kp, causal=causal)
    fast = performer_attention(q, k, v, omega, chunk_size=8, **args)
    ref, weights = performer_attention_naive(q, k, v, omega, **args)
    torch.testing.assert_close(fast, ref, atol=1e-9, rtol=1e-7)
    assert weights.shape == (2, 2, L, S)
    torch.testing.assert_close(weights @ v, ref)
    assert (
        weights[1, ..., 0].abs().max() == 0 and weights[..., S - 4 :].abs().max() == 0
    )


@pytest.mark.parametrize("causal", [False, True])
def test_performer_gradients_match_reference(causal):
    q, k, v = qkv(B=1, H=1, L=11, S=11, D=4, Dv=3)
    omega = random_projection(8, 4, seed=0).double()
    for t in (q, k, v):
        t.requires_grad_(True)
    fast = performer_attention(q, k, v, omega, causal=causal, chunk_size=4)
    ref, _ = performer_attention_naive(q, k, v, omega, causal=causal)
    w = torch.randn_like(fast)
    g_fast = torch.autograd.grad((fast * w).sum(), (q, k, v))
    g_ref = torch.autograd.grad((ref * w).sum(), (q, k, v))
    for a, b in zip(g_fast, g_ref):
        torch.testing.assert_close(a, b, atol=1e-9, rtol=1e-7)
    assert torch.autograd.gradcheck(
        lambda q, k, v: performer_attention(
            q, k, v, omega, causal=causal, chunk_size=4
        ),
        (q, k, v),
    )


def test_padded_keys_leave_the_normaliser():
    q, k, v = qkv(B=1, H=1, L=6, S=10, D=8, Dv=5)
    omega = random_projection(16, 8, seed=0).double()
    kp = (torch.arange(10) < 7)[None, :]  # (B, S)
    out = performer_attention(q, k, v, omega, key_padding=kp)
    trimmed = performer_attention(q, k[..., :7, :], v[..., :7, :], omega)
    torch.testing.assert_close(out, trimmed)
    # zeroing only the values would keep the padded keys in the denominator
    v0 = v.clone()
    v0[..., 7:, :] = 0
    assert not torch.allclose(performer_attention(q, k, v0, omega), trimmed)


def test_step_decoding_equals_parallel_causal():
    q, k, v = qkv(B=2, H=2, L=15, S=15, D=8, Dv=5, scale=2.0)
    omega = random_projection(32, 8, seed=0).double()
    parallel = performer_attention(q, k, v, omega, causal=True, chunk_size=4)
    phi_q, phi_k = performer_features(q, k, omega, causal=True)
    state = linear_attention_init_state((2, 2), 32, 5, dtype=torch.float64)
    outs = []
    for i in range(15):
        # at step i only tokens 0..i exist: features recomputed from the prefix alone
        pq, pk = performer_features(
            q[..., : i + 1, :], k[..., : i + 1, :], omega, causal=True
        )
        out_i, state = linear_attention_step(
            state, pq[..., i, :], pk[..., i, :], v[..., i, :], eps=1e-30
        )
        outs.append(out_i)
    torch.testing.assert_close(
        torch.stack(outs, dim=-2), parallel, atol=1e-10, rtol=1e-8
    )


def test_causal_performer_ignores_the_future():
    q, k, v = qkv(B=2, H=2, L=12, S=12, D=8, Dv=5, dtype=torch.float32)
    mech = PerformerAttention(n_features=32).eval()
    out = mech(q, k, v, causal=True)
    k2, v2 = k.clone(), v.clone()
    k2[..., 6:, :] *= 20  # huge future keys would move a stabiliser that looks ahead
    v2[..., 6:, :] += 3
    torch.testing.assert_close(
        mech(q, k2, v2, causal=True)[..., :6, :], out[..., :6, :], atol=0, rtol=0
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("causal", [False, True])
def test_large_norms_stay_finite(dtype, causal):
    q, k, v = qkv(B=1, H=2, L=64, S=64, D=64, Dv=16, scale=10.0, dtype=dtype)
    out = PerformerAttention(n_features=64).eval()(q, k, v, causal=causal)
    assert out.dtype == dtype and torch.isfinite(out).all()
    assert out.float().abs().sum() > 0
    # without stabilisers the same features overflow/underflow
    s = 64**-0.25
    omega = random_projection(64, 64, seed=0)
    raw = positive_features(q.float() * s, omega) @ positive_features(
        k.float() * s, omega
    ).transpose(-2, -1)
    assert not torch.isfinite(raw / raw.sum(-1, keepdim=True)).all()


def test_half_inputs_get_float32_features():
    q, k, v = qkv(B=2, H=2, L=23, S=23, D=8, Dv=5, dtype=torch.bfloat16)
    phi_q, phi_k = performer_features(q, k, random_projection(16, 8))
    assert phi_q.dtype == torch.float32 and phi_k.dtype == torch.float32


def test_performer_approaches_softmax_attention():
    q, k, v = qkv(B=1, H=2, L=40, S=40, D=16, Dv=5, scale=0.5, dtype=torch.float32)
    exact = softmax_attention_naive(q, k, v)[0]
    err = [
        ((PerformerAttention(n_features=m, seed=s).eval()(q, k, v) - exact) ** 2).mean()
        for m in (8, 512)
        for s in range(3)
    ]
    assert sum(err[3:]) < 0.2 * sum(err[:3])


def test_redraw_only_in_training():
    q, k, v = qkv(B=2, H=2, L=23, S=23, D=8, Dv=5, dtype=torch.float32)
    mech = PerformerAttention(n_features=16).eval()
    a, b = mech(q, k, v), mech(q, k, v)
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    mech.train()
    c, d = mech(q, k, v), mech(q, k, v)
    assert not torch.allclose(c, d)
    mech.eval()
    torch.testing.assert_close(mech(q, k, v), mech(q, k, v), atol=0, rtol=0)
    assert not PerformerAttention(redraw=False).train()(q, k, v).isnan().any()


def test_bad_settings_and_masks():
    with pytest.raises(ValueError, match="n_features"):
        PerformerAttention(n_features=0)
    with pytest.raises(ValueError, match="kind"):
        PerformerAttention(kind="cosine")
    q, k, v = qkv(B=2, H=2, L=23, S=23, D=8, Dv=5, dtype=torch.float32)
    with pytest.raises(ValueError, match="key-padding"):
        PerformerAttention()(q, k, v, mask=torch.ones(2, 2, 23, 23, dtype=torch.bool))


# ---------------------------------------------------------------- RFA
def rfa_inputs(L=13, seed=0):
    g = torch.Generator().manual_seed(seed)
    phi_q = torch.rand(2, 2, L, 10, generator=g, dtype=torch.float64) + 0.1
    phi_k = torch.rand(2, 2, L, 10, generator=g, dtype=torch.float64) + 0.1
    v = torch.randn(2, 2, L, 3, generator=g, dtype=torch.float64)
    gate = torch.sigmoid(torch.randn(2, 2, L, generator=g, dtype=torch.float64))
    return phi_q, phi_k, v, gate


@pytest.mark.parametrize("causal,gated", [(False, False), (True, False), (True, True)])
def test_rfa_matches_reference_outputs_and_gradients(causal, gated):
    phi_q, phi_k, v, gate = rfa_inputs()
    gate = gate if gated else None
    for t in (phi_q, phi_k, v):
        t.requires_grad_(True)
    fast = rfa_attention(phi_q, phi_k, v, gate=gate, causal=causal)
    ref, weights = rfa_attention_naive(phi_q, phi_k, v, gate=gate, causal=causal)
    torch.testing.assert_close(weights @ v, ref)
    if causal:
        assert weights.triu(1).abs().max() == 0
    torch.testing.assert_close(fast, ref, atol=1e-10, rtol=1e-8)
    w = torch.randn_like(fast)
    for a, b in zip(
        torch.autograd.grad((fast * w).sum(), (phi_q, phi_k, v)),
        torch.autograd.grad((ref * w).sum(), (phi_q, phi_k, v)),
    ):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-8)


def test_rfa_gate_recurrence_by_hand():
    phi_q, phi_k, v, gate = rfa_inputs(L=4)
    s = torch.zeros(2, 2, 10, 3, dtype=torch.float64)
    z = torch.zeros(2, 2, 10, dtype=torch.float64)
    outs = []
    for t in range(4):
        g = gate[..., t, None]
        s = g[..., None] * s + (1 - g)[..., None] * torch.einsum(
            "bhm,bhd->bhmd", phi_k[..., t, :], v[..., t, :]
        )
        z = g * z + (1 - g) * phi_k[..., t, :]
        outs.append(
            torch.einsum("bhm,bhmd->bhd", phi_q[..., t, :], s)
            / (phi_q[..., t, :] * z).sum(-1, keepdim=True)
        )
    torch.testing.assert_close(
        rfa_attention(phi_q, phi_k, v, gate=gate, causal=True), torch.stack(outs, -2)
    )
    # a gate near 1 forgets nothing new; a gate near 0 keeps only the latest token
    last = rfa_attention(phi_q, phi_k, v, gate=torch.full_like(gate, 1e-9), causal=True)
    torch.testing.assert_close(last, v, atol=1e-6, rtol=0)


def test_rfa_negative_normaliser_is_clamped():
    phi_q = torch.tensor([[1.0, -1.0]])
    phi_k = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    v = torch.tensor([[1.0], [3.0]])
    out = rfa_attention(phi_q, phi_k, v, eps=0.5)  # den = −2 → clamped to 0.5
    torch.testing.assert_close(out, torch.tensor([[-8.0]]))
    assert torch.isfinite(rfa_attention(phi_q, phi_k * 0, v)).all()


def test_rfa_mechanism_gate_and_errors():
    q, k, v = qkv(B=2, H=2, L=23, S=23, D=8, Dv=5, dtype=torch.float32)
    mech = RFA(gate=True).eval()
    out = mech(q, k, v, causal=True)
    assert out.shape == v.shape and torch.isfinite(out).all()
    assert sum(p.numel() for p in mech.parameters()) == 8 + 1
    out.sum().backward()
    assert mech.gate_weight.grad is not None and mech.gate_bias.grad is not None
    with pytest.raises(ValueError, match="causal"):
        mech(q, k, v)
    with pytest.raises(ValueError, match="sigma"):
        RFA(sigma=0.0)


@given(
    L=st.integers(1, 12),
    S=st.integers(1, 12),
    causal=st.booleans(),
    seed=st.integers(0, 100),
)
def test_performer_any_sizes_property(L, S, causal, seed):
    q, k, v = qkv(B=1, H=1, L=L, S=S, D=3, Dv=2, seed=seed)
    omega = random_projection(6, 3, seed=seed).double()
    fast = performer_attention(q, k, v, omega, causal=causal, chunk_size=5)
    ref, _ = performer_attention_naive(q, k, v, omega, causal=causal)
    torch.testing.assert_close(fast, ref, atol=1e-9, rtol=1e-7)


# ---------------------------------------------------------------- arc-cosine features (RFA variant)
def test_arccos_kernel_special_angles():
    x = torch.tensor([[3.0, 0.0, 0.0]], dtype=torch.float64)
    ys = torch.tensor(
        [[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [-2.0, 0.0, 0.0]], dtype=torch.float64
    )
    k = arccos_kernel(x, ys)[0]  # θ = 0, π/2, π
    want = torch.tensor([6.0 / 2, 6.0 / (2 * math.pi), 0.0], dtype=torch.float64)
    torch.testing.assert_close(k, want)
    # homogeneous of degree 1 in each argument, symmetric, batched like (..., L, S)
    q, kk, _ = qkv(B=2, H=3, L=4, S=5, D=6)
    K = arccos_kernel(q, kk)
    assert K.shape == (2, 3, 4, 5)
    torch.testing.assert_close(arccos_kernel(2.5 * q, 0.5 * kk), 1.25 * K)
    torch.testing.assert_close(arccos_kernel(kk, q), K.transpose(-2, -1))


@pytest.mark.parametrize("orthogonal", [False, True])
def test_arccos_estimate_is_unbiased(orthogonal):
    d, m, seeds = 5, 3, 3000
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, d, generator=g, dtype=torch.float64)
    y = torch.randn(6, d, generator=g, dtype=torch.float64)
    exact = arccos_kernel(x, y)  # (4, 6)
    # one call draws `seeds` independent blocks of d rows; the first m rows of a block are one Ω
    draw = orthogonal_matrix if orthogonal else gaussian_matrix
    blocks = draw(seeds * d, d, generator=torch.Generator().manual_seed(7)).double()
    blocks = blocks.reshape(seeds, d, d)[:, :m]  # (seeds, m, d)
    ests = torch.stack(
        [arccos_features(x, w) @ arccos_features(y, w).T for w in blocks]
    )  # (seeds, 4, 6)
    se = ests.std(dim=0) / math.sqrt(seeds)
    z = (ests.mean(dim=0) - exact) / se
    assert z.abs().max() < 4.5, z
    # the check can fail: the constant 1/π (Cho & Saul's k₁ without the 1/2) is far off
    assert ((2 * exact - ests.mean(dim=0)) / se).abs().max() > 10


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("L,S", [(9, 9), (7, 10), (10, 6)])
def test_arccos_attention_matches_reference_outputs_and_gradients(causal, L, S):
    q, k, v = qkv(B=2, H=2, L=L, S=S, D=5, Dv=3, requires_grad=True)
    omega = random_projection(12, 5, seed=1).double()
    kp = torch.ones(2, S, dtype=torch.bool)
    kp[1, S - 3 :] = False
    fast = arccos_attention(q, k, v, omega, key_padding=kp, causal=causal, chunk_size=4)
    ref, weights = arccos_attention_naive(q, k, v, omega, key_padding=kp, causal=causal)
    torch.testing.assert_close(fast, ref, atol=1e-12, rtol=1e-10)
    assert weights.shape == (2, 2, L, S) and (weights >= 0).all()
    assert weights[1, ..., S - 3 :].abs().max() == 0
    if causal:
        assert weights.triu(1).abs().max() == 0
    w = torch.randn_like(fast)
    g_fast = torch.autograd.grad((fast * w).sum(), (q, k, v))
    g_ref = torch.autograd.grad((ref * w).sum(), (q, k, v))
    for a, b in zip(g_fast, g_ref):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-10)


def test_arccos_attention_approaches_the_kernel_and_ignores_query_norms():
    q, k, v = qkv(B=1, H=1, L=6, S=8, D=4, Dv=2)
    exact_w = arccos_kernel(q, k)
    exact_w = exact_w / exact_w.sum(-1, keepdim=True)  # (1, 1, L, S)
    omega = random_projection(20000, 4, seed=0).double()
    _, weights = arccos_attention_naive(q, k, v, omega, eps=1e-12)
    torch.testing.assert_close(weights, exact_w, atol=0.01, rtol=0)
    # k₁ is linear in ‖q‖: rescaling the queries leaves every weight unchanged
    omega = random_projection(16, 4, seed=2).double()
    torch.testing.assert_close(
        arccos_attention(3.0 * q, k, v, omega, eps=1e-12),
        arccos_attention(q, k, v, omega, eps=1e-12),
    )


def test_positive_features_reuse_the_logits_buffers():
    """exp(ωᵀx − ‖x‖²/2 − c) is computed in place: φ(Q) and φ(K) are the only
    (..., L, M) buffers alive at the peak, not the logits beside them."""
    from attnkit.bench import PeakMemory

    L, D, M = 512, 8, 256
    q, k, _ = qkv(1, 2, L, D=D, dtype=torch.float32)
    omega = random_projection(M, D, seed=0)
    with torch.no_grad(), PeakMemory() as m:
        performer_features(q, k, omega)
    assert m.peak <= 2.5 * (2 * L * M * 4)


@pytest.mark.parametrize("cap", [None, 0.3])
def test_positive_features_function_backward_matches_autograd(cap):
    """PositiveFeaturesFunction's hand-written gradient equals autograd's through
    exp(min(x wᵀ − s‖x‖²/2 − c, cap)) with c detached (cap 0.3 clips some entries)."""
    from attnkit.random_features import PositiveFeaturesFunction

    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 3, 7, 4, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(2, 3, 7, 5, generator=g, dtype=torch.float64)
    s = 0.7

    def shift(log):
        return log.amax(dim=(-2, -1), keepdim=True) - 1.0

    def plain(x, w):
        logits = x @ w.T - 0.5 * s * (x * x).sum(dim=-1, keepdim=True)
        logits = logits - shift(logits).detach()
        return (logits if cap is None else logits.clamp(max=cap)).exp()

    def fast(x, w):
        return PositiveFeaturesFunction.apply(x, w, s, shift, cap)

    torch.testing.assert_close(fast(x, w), plain(x, w))
    gf = torch.autograd.grad((fast(x, w) * weights).sum(), (x, w))
    gp = torch.autograd.grad((plain(x, w) * weights).sum(), (x, w))
    for a, b in zip(gf, gp):
        torch.testing.assert_close(a, b)
    if cap is not None:
        assert (plain(x, w) == math.exp(cap)).any()  # the cap was hit


def test_performer_gradcheck_with_padding_and_causal():
    """The stabilisers cancel in the output, so its gradient (through the hand-written
    backwards of the features and of the non-causal form) is the true one."""
    q, k, v = qkv(1, 2, 6, D=4)
    omega = random_projection(5, 4, seed=1).double()
    keep = torch.tensor([[1, 1, 0, 1, 1, 0]]).bool()
    inputs = tuple(t.clone().requires_grad_() for t in (q, k, v))
    for causal in (False, True):

        def attend(a, b, c, causal=causal):
            return performer_attention(
                a, b, c, omega, key_padding=keep, causal=causal, eps=1e-12
            )

        assert torch.autograd.gradcheck(attend, inputs)
