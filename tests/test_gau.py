"""GAU and FLASH (attnkit.gau): fast forms equal their written-out references, outputs
and gradients in float64; the squared-ReLU mechanism keeps the mechanism contract."""

from __future__ import annotations

import pytest
import torch
from helpers import qkv, randn

from attnkit.gau import (
    GatedAttentionUnit,
    SquaredReLUAttention,
    gated_attention_unit,
    gau_naive,
    mixed_chunk_attention,
    mixed_chunk_attention_naive,
    scale_offset,
    squared_relu_attention,
)
from attnkit.mechanisms import Mechanism

TOL = dict(atol=1e-12, rtol=0)


def grads(fn, inputs):
    """Gradients of a random linear functional of ``fn(*inputs)`` w.r.t. every input."""
    out = fn(*inputs)
    weight = randn(*out.shape, seed=123)
    return torch.autograd.grad((out * weight).sum(), inputs)


def padding(B, n, seed=5):
    g = torch.Generator().manual_seed(seed)
    keep = torch.rand(B, n, generator=g) > 0.3
    keep[0, :] = True
    return keep  # (B, n)


# ----------------------------------------------------------------------- squared ReLU
def test_squared_relu_attention_is_the_formula():
    q, k, v = qkv(2, 3, 7, S=9, D=5, Dv=4)
    out, w = squared_relu_attention(q, k, v)
    expected = torch.relu(q @ k.transpose(-2, -1) / 9) ** 2
    torch.testing.assert_close(w, expected, **TOL)
    torch.testing.assert_close(out, expected @ v, **TOL)
    # scale, bias, mask, causal
    bias = randn(7, 9, seed=1)
    mask = torch.rand(2, 1, 7, 9, generator=torch.Generator().manual_seed(2)) > 0.5
    out, w = squared_relu_attention(
        q, k, v, scale=0.3, bias=bias, mask=mask, causal=True
    )
    tril = torch.ones(7, 9, dtype=torch.bool).tril()
    expected = (torch.relu(0.3 * q @ k.transpose(-2, -1) + bias) ** 2) * (mask & tril)
    torch.testing.assert_close(w, expected, **TOL)


def test_squared_relu_weights_are_sparse_and_unnormalised():
    q, k, v = qkv(1, 1, 50, D=8, scale=3.0)
    _, w = squared_relu_attention(q, k, v)
    assert (w == 0).float().mean() > 0.3  # negative scores give exact zeros
    assert not torch.allclose(w.sum(-1), torch.ones(50, dtype=w.dtype))


def test_squared_relu_mechanism():
    mech = SquaredReLUAttention()
    assert isinstance(mech, Mechanism)
    q, k, v = qkv(2, 3, 8, D=4, Dv=6)
    torch.testing.assert_close(
        mech(q, k, v, causal=True),
        squared_relu_attention(q, k, v, causal=True)[0],
        **TOL,
    )
    assert mech.attention_weights.shape == (2, 3, 8, 8)
    with pytest.raises(TypeError, match="scale"):
        SquaredReLUAttention(scale="big")


def test_squared_relu_fully_masked_rows_are_zero_with_zero_gradient():
    q, k, v = qkv(1, 2, 5, D=3, requires_grad=True)
    mask = torch.zeros(1, 1, 1, 5, dtype=torch.bool)
    out, _ = squared_relu_attention(q, k, v, mask=mask)
    assert torch.equal(out, torch.zeros_like(out))
    out.sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))


def test_squared_relu_bad_input():
    q, k, v = qkv(1, 1, 4, D=3)
    with pytest.raises(ValueError, match="mask"):
        squared_relu_attention(q, k, v, mask=torch.ones(3, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match="mask"):
        squared_relu_attention(q, k, v, mask=torch.ones(4, 4))
    with pytest.raises(ValueError, match="bias"):
        squared_relu_attention(q, k, v, bias=torch.ones(5, 4, dtype=q.dtype))
    with pytest.raises(ValueError, match="k"):
        squared_relu_attention(q, k[..., :2], v)
    with pytest.raises(TypeError, match="q"):
        squared_relu_attention(q.long(), k, v)


# ----------------------------------------------------------------------- FLASH mixed chunk
def chunk_inputs(B=2, H=2, n=13, D=4, Dv=5, seed=0):
    return [randn(B, H, n, D, seed=seed + i, requires_grad=True) for i in range(4)] + [
        randn(B, H, n, Dv, seed=seed + 4, requires_grad=True)
    ]


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("chunk_size", [1, 4, 5, 13, 20])
@pytest.mark.parametrize("with_padding", [False, True])
def test_mixed_chunk_equals_its_reference(causal, chunk_size, with_padding):
    inputs = chunk_inputs()
    kp = padding(2, 13) if with_padding else None

    def fast(*x):
        return mixed_chunk_attention(
            *x, chunk_size=chunk_size, causal=causal, key_padding=kp
        )

    def naive(*x):
        return mixed_chunk_attention_naive(
            *x, chunk_size=chunk_size, causal=causal, key_padding=kp
        )[0]

    torch.testing.assert_close(fast(*inputs), naive(*inputs), **TOL)
    for gf, gn in zip(grads(fast, inputs), grads(naive, inputs)):
        torch.testing.assert_close(gf, gn, **TOL)


def test_mixed_chunk_reference_is_the_two_parts():
    qq, kq, ql, kl, v = (t.detach() for t in chunk_inputs(B=1, H=1, n=6))
    _, w = mixed_chunk_attention_naive(qq, kq, ql, kl, v, chunk_size=3, causal=True)
    quad = torch.relu(qq @ kq.transpose(-2, -1) / 3) ** 2
    lin = ql @ kl.transpose(-2, -1) / 6
    w = w[0, 0]
    for i in range(6):
        for j in range(6):
            same, earlier = i // 3 == j // 3, j // 3 < i // 3
            want = (
                quad[0, 0, i, j]
                if same and j <= i
                else lin[0, 0, i, j]
                if earlier
                else 0
            )
            assert w[i, j].item() == pytest.approx(float(want), abs=1e-14)


def test_mixed_chunk_is_causal_and_ignores_padded_keys():
    qq, kq, ql, kl, v = (t.detach() for t in chunk_inputs(n=16))
    out = mixed_chunk_attention(qq, kq, ql, kl, v, chunk_size=4, causal=True)
    later = [t.clone() for t in (qq, kq, ql, kl, v)]
    for t in later:
        t[..., 9:, :] += 5.0
    out2 = mixed_chunk_attention(*later, chunk_size=4, causal=True)
    torch.testing.assert_close(out2[..., :9, :], out[..., :9, :], **TOL)
    kp = torch.ones(2, 16, dtype=torch.bool)
    kp[:, 3] = False
    moved = [t.clone() for t in (qq, kq, ql, kl, v)]
    for t in moved[1:2] + moved[3:]:
        t[..., 3, :] += 7.0
    a = mixed_chunk_attention(qq, kq, ql, kl, v, chunk_size=4, key_padding=kp)
    b = mixed_chunk_attention(
        qq, moved[1], ql, moved[3], moved[4], chunk_size=4, key_padding=kp
    )
    torch.testing.assert_close(a, b, **TOL)


def test_mixed_chunk_never_builds_n_by_n():
    from helpers import largest_tensor

    n, c = 256, 16
    qq, kq, ql, kl, v = (t.detach() for t in chunk_inputs(B=1, H=1, n=n, D=4, Dv=4))
    biggest = largest_tensor(
        mixed_chunk_attention, qq, kq, ql, kl, v, chunk_size=c, causal=True
    )
    assert biggest < n * n // 4


def test_mixed_chunk_bad_input():
    qq, kq, ql, kl, v = (t.detach() for t in chunk_inputs())
    with pytest.raises(ValueError, match="chunk_size"):
        mixed_chunk_attention(qq, kq, ql, kl, v, chunk_size=0)
    with pytest.raises(ValueError, match="q_lin"):
        mixed_chunk_attention(qq, kq, ql[..., :5, :], kl, v)
    with pytest.raises(ValueError, match="key_padding"):
        mixed_chunk_attention(
            qq, kq, ql, kl, v, key_padding=torch.ones(2, 3, dtype=bool)
        )
    with pytest.raises(TypeError, match="k_lin"):
        mixed_chunk_attention(qq, kq, ql, kl.float(), v)


# ----------------------------------------------------------------------- the unit
def unit_weights(E=6, Dh=8, D=5, pairs=2, seed=0):
    shapes = [(Dh, E), (Dh, E), (D, E), (pairs, D), (pairs, D), (E, Dh)]
    return [randn(*s, seed=seed + i, requires_grad=True) for i, s in enumerate(shapes)]


def test_scale_offset():
    z, g, b = randn(3, 4), randn(4, seed=1), randn(4, seed=2)
    torch.testing.assert_close(scale_offset(z, g, b), z * g + b, **TOL)
    with pytest.raises(ValueError, match="gamma"):
        scale_offset(z, randn(3), b)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("with_padding", [False, True])
def test_gau_equals_the_position_by_position_reference(causal, with_padding):
    x = randn(2, 9, 6, seed=10, requires_grad=True)
    weights = unit_weights()
    kp = padding(2, 9) if with_padding else None
    inputs = [x, *weights]

    def fast(*a):
        return gated_attention_unit(*a, causal=causal, key_padding=kp)

    def naive(*a):
        return gau_naive(*a, causal=causal, key_padding=kp)

    torch.testing.assert_close(fast(*inputs), naive(*inputs), **TOL)
    for gf, gn in zip(grads(fast, inputs), grads(naive, inputs)):
        torch.testing.assert_close(gf, gn, **TOL)


def test_gau_limits_glu_and_attention():
    """With A = I the unit is a GLU feed-forward; with U = 1 it is plain attention."""
    x = randn(1, 5, 6, seed=3)
    w_u, w_v, w_z, gamma, beta, w_o = (t.detach() for t in unit_weights())
    F = torch.nn.functional
    u, v = F.silu(x @ w_u.T), F.silu(x @ w_v.T)
    z = F.silu(x @ w_z.T)
    q, k = z * gamma[0] + beta[0], z * gamma[1] + beta[1]
    av, _ = squared_relu_attention(q, k, v)
    torch.testing.assert_close(
        gated_attention_unit(x, w_u, w_v, w_z, gamma, beta, w_o),
        (u * av) @ w_o.T,
        **TOL,
    )


def test_flash_unit_uses_mixed_chunks():
    x = randn(2, 11, 6, seed=4)
    weights = [t.detach() for t in unit_weights(pairs=4)]
    w_u, w_v, w_z, gamma, beta, w_o = weights
    F = torch.nn.functional
    u, v, z = F.silu(x @ w_u.T), F.silu(x @ w_v.T), F.silu(x @ w_z.T)
    qk = [z * gamma[i] + beta[i] for i in range(4)]
    for causal in (False, True):
        av, _ = mixed_chunk_attention_naive(*qk, v, chunk_size=4, causal=causal)
        got = gated_attention_unit(x, *weights, chunk_size=4, causal=causal)
        torch.testing.assert_close(got, (u * av) @ w_o.T, **TOL)


def test_gau_module():
    gau = GatedAttentionUnit(8, qk_dim=6)
    assert gau.w_u.shape == (16, 8) and gau.gamma.shape == (2, 6)
    x = torch.randn(2, 10, 8)
    assert gau(x, causal=True).shape == (2, 10, 8)
    flash = GatedAttentionUnit(8, qk_dim=6, chunk_size=4)
    assert flash.gamma.shape == (4, 6)
    out = flash(x, causal=True)
    out.sum().backward()
    assert out.shape == (2, 10, 8) and flash.w_z.grad is not None
    with pytest.raises(ValueError, match="chunk_size"):
        GatedAttentionUnit(8, chunk_size=0)


def test_gau_bad_input():
    x = randn(2, 9, 6)
    weights = [t.detach() for t in unit_weights()]
    with pytest.raises(ValueError, match="x"):
        gated_attention_unit(x[0], *weights)
    with pytest.raises(ValueError, match="w_o"):
        gated_attention_unit(x, *weights[:5], weights[5].T)
    with pytest.raises(ValueError, match="gamma"):
        gated_attention_unit(
            x, *weights, chunk_size=4
        )  # FLASH needs 4 scale/offset pairs
    with pytest.raises(TypeError, match="w_z"):
        gated_attention_unit(
            x, weights[0], weights[1], weights[2].float(), *weights[3:]
        )
