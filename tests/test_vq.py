"""Quantised keys (attnkit.vq): attention through the codewords equals softmax attention
over the quantised keys, exactly (float64, atol 1e-12), with gradients."""

from __future__ import annotations

import pytest
import torch
from helpers import largest_tensor, qkv, randn

from attnkit.masking import masked_softmax
from attnkit.vq import codeword_stats, vq_attention, vq_attention_naive, vq_quantize

TOL = dict(atol=1e-12, rtol=0)


def setup(B=2, H=3, L=17, S=None, D=4, Dv=5, M=6, seed=0, requires_grad=False):
    q, k, v = qkv(B, H, L, S=S, D=D, Dv=Dv, seed=seed, requires_grad=requires_grad)
    codebook = randn(M, D, seed=seed + 100, requires_grad=requires_grad)
    return q, k, v, codebook


def test_quantize_picks_the_nearest_codeword():
    _, k, _, codebook = setup()
    codes, k_hat = vq_quantize(k, codebook)
    dist = torch.cdist(
        k, codebook.expand(*k.shape[:-2], *codebook.shape)
    )  # (B, H, S, M)
    torch.testing.assert_close(codes, dist.argmin(-1), rtol=0, atol=0)
    torch.testing.assert_close(k_hat, codebook[codes], **TOL)


def test_codeword_stats():
    codes = torch.tensor([[0, 2, 2, 1, 2]])
    v = torch.arange(10.0, dtype=torch.float64).reshape(1, 5, 2)
    counts, sums = codeword_stats(codes, v, 4)
    assert counts.tolist() == [[1, 1, 3, 0]]
    assert sums[0, 2].tolist() == [2 + 4 + 8, 3 + 5 + 9]
    counts, sums = codeword_stats(codes, v, 4, causal=True)
    assert counts[0, 2].tolist() == [1, 0, 2, 0]  # running counts after three keys
    keep = torch.tensor([[True, True, False, True, True]])
    counts, _ = codeword_stats(codes, v, 4, key_padding=keep)
    assert counts.tolist() == [[1, 1, 2, 0]]


def test_reference_is_softmax_over_quantised_keys():
    q, k, v, codebook = setup()
    _, k_hat = vq_quantize(k, codebook)
    w = torch.softmax(
        q @ k_hat.transpose(-2, -1) / 2.0, dim=-1
    )  # D = 4: 1/sqrt(D) = 1/2
    out, weights = vq_attention_naive(q, k, v, codebook)
    torch.testing.assert_close(weights, w, **TOL)
    torch.testing.assert_close(out, w @ v, **TOL)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("with_padding", [False, True])
@pytest.mark.parametrize("M", [1, 6, 40])
def test_codewords_equal_quantised_softmax(causal, with_padding, M):
    q, k, v, codebook = setup(M=M, requires_grad=True)
    kp = None
    if with_padding:
        kp = torch.rand(2, 17, generator=torch.Generator().manual_seed(3)) > 0.4
        kp[1] = False  # a sequence with no real key: zeros, no NaN

    def fast(q, k, v, codebook):
        return vq_attention(q, k, v, codebook, key_padding=kp, causal=causal)

    def naive(q, k, v, codebook):
        return vq_attention_naive(q, k, v, codebook, key_padding=kp, causal=causal)[0]

    inputs = (q, k, v, codebook)
    out = fast(*inputs)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, naive(*inputs), **TOL)
    weight = randn(*out.shape, seed=9)
    g_fast = torch.autograd.grad(
        (fast(*inputs) * weight).sum(), inputs, allow_unused=True
    )
    g_naive = torch.autograd.grad(
        (naive(*inputs) * weight).sum(), inputs, allow_unused=True
    )
    for name, a, b in zip("qkvE", g_fast, g_naive):
        if (
            a is None or b is None
        ):  # keys pass through an argmin: no gradient either way
            assert name == "k" and (a is None or a.abs().max() == 0)
            continue
        torch.testing.assert_close(a, b, **TOL)
    if with_padding:
        assert torch.equal(out[1], torch.zeros_like(out[1]))


def test_causal_ignores_the_future():
    q, k, v, codebook = setup(L=12)
    out = vq_attention(q, k, v, codebook, causal=True)
    k2, v2 = k.clone(), v.clone()
    k2[..., 7:, :] = 3 * torch.randn_like(k2[..., 7:, :])
    v2[..., 7:, :] += 10
    out2 = vq_attention(q, k2, v2, codebook, causal=True)
    torch.testing.assert_close(out2[..., :7, :], out[..., :7, :], **TOL)


def test_large_scores_stay_finite():
    q, k, v, codebook = setup()
    out = vq_attention(50 * q, k, v, 50 * codebook)
    ref, _ = vq_attention_naive(50 * q, k, v, 50 * codebook)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, ref, atol=1e-10, rtol=0)


def test_cross_attention_lengths():
    q, k, v, codebook = setup(L=5, S=23)
    torch.testing.assert_close(
        vq_attention(q, k, v, codebook), vq_attention_naive(q, k, v, codebook)[0], **TOL
    )


def test_never_builds_the_L_by_S_matrix():
    n, M = 512, 8
    q, k, v, codebook = setup(B=1, H=1, L=n, D=4, Dv=4, M=M)
    assert largest_tensor(vq_attention, q, k, v, codebook) < n * n // 8
    assert largest_tensor(vq_attention_naive, q, k, v, codebook) >= n * n


def test_equals_softmax_over_codewords_with_log_counts():
    """The identity the module is built on, checked by hand for one query."""
    q, k, v, codebook = setup(B=1, H=1, L=1, S=30)
    codes, _ = vq_quantize(k, codebook)
    counts, sums = codeword_stats(codes, v, codebook.shape[0])
    present = counts > 0
    scores = (
        q @ codebook.T / 2.0 + torch.where(present, counts, 1.0).log()[..., None, :]
    )
    w = masked_softmax(scores, mask=present[..., None, :])
    means = sums / torch.where(present, counts, 1.0)[..., None]
    torch.testing.assert_close(vq_attention(q, k, v, codebook), w @ means, **TOL)


def test_bad_input():
    q, k, v, codebook = setup()
    with pytest.raises(ValueError, match="codebook"):
        vq_attention(q, k, v, codebook[:, :3])
    with pytest.raises(ValueError, match="codebook"):
        vq_attention(q, k, v, codebook[:0])
    with pytest.raises(ValueError, match="codebook"):
        vq_attention(q, k, v, codebook[0])
    with pytest.raises(TypeError, match="codebook"):
        vq_attention(q, k, v, codebook.float())
    with pytest.raises(ValueError, match="L = S"):
        vq_attention(q[..., :4, :], k, v, codebook, causal=True)
    with pytest.raises(ValueError, match="key_padding"):
        vq_attention(q, k, v, codebook, key_padding=torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="v"):
        vq_attention(q, k, v[..., :3, :], codebook)
