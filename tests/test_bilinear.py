"""Tests for the bilinear ("general") score qᵀWk: attnkit.bilinear_scores,
attnkit.bilinear_attention and attnkit.BilinearAttention."""

import pytest
import torch
from helpers import randn

from attnkit import (
    BilinearAttention,
    bilinear_attention,
    bilinear_scores,
    dot_product_scores,
    masked_softmax,
)


def bilinear_loop(q, k, W):
    """Reference: one score per (batch, query, key), the formula qᵀ W k as written."""
    B, L, S = q.shape[0], q.shape[1], k.shape[1]
    return torch.stack(
        [
            torch.stack(
                [
                    torch.stack([q[b, i] @ W @ k[b, j] for j in range(S)])
                    for i in range(L)
                ]
            )
            for b in range(B)
        ]
    )


def test_bilinear_scores_hand_check():
    q = torch.tensor([[[1.0, 2.0]]])  # (1, 1, Dq=2)
    k = torch.tensor([[[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]])  # (1, 2, Dk=3)
    W = torch.tensor([[1.0, 0.0, 2.0], [0.0, 3.0, 1.0]])  # (2, 3)
    # qᵀW = [1, 6, 4]; · [1, 0, 1] = 5; · [0, 1, 0] = 6
    torch.testing.assert_close(bilinear_scores(q, k, W), torch.tensor([[[5.0, 6.0]]]))


def test_bilinear_scores_match_loop_outputs_and_gradients():
    B, L, S, Dq, Dk = 2, 3, 5, 4, 7
    q = randn(B, L, Dq, seed=0, requires_grad=True)
    k = randn(B, S, Dk, seed=1, requires_grad=True)
    W = randn(Dq, Dk, seed=2, requires_grad=True)
    fast = bilinear_scores(q, k, W)
    ref = bilinear_loop(q, k, W)
    assert fast.shape == (B, L, S)
    torch.testing.assert_close(fast, ref, rtol=1e-12, atol=1e-12)
    upstream = randn(B, L, S, seed=3)
    grads = torch.autograd.grad((fast * upstream).sum(), (q, k, W))
    grads_ref = torch.autograd.grad((ref * upstream).sum(), (q, k, W))
    for g, r in zip(grads, grads_ref):
        torch.testing.assert_close(g, r, rtol=1e-12, atol=1e-12)


def test_bilinear_scores_extra_leading_dims():
    q, k, W = randn(2, 3, 4, 5, seed=0), randn(2, 3, 6, 7, seed=1), randn(5, 7, seed=2)
    out = bilinear_scores(q, k, W)
    assert out.shape == (2, 3, 4, 6)
    torch.testing.assert_close(out[1], bilinear_loop(q[1], k[1], W))


def test_identity_W_gives_the_unscaled_dot_product():
    q, k = randn(2, 3, 6, seed=0), randn(2, 4, 6, seed=1)
    eye = torch.eye(6, dtype=torch.float64)
    torch.testing.assert_close(
        bilinear_scores(q, k, eye), dot_product_scores(q, k, scale=1.0)
    )


def test_bilinear_attention_matches_softmax_of_loop_with_valid_lens():
    q, k, v = randn(2, 3, 4, seed=0), randn(2, 5, 6, seed=1), randn(2, 5, 2, seed=2)
    W = randn(4, 6, seed=3)
    valid_lens = torch.tensor([2, 5])
    out, weights = bilinear_attention(q, k, v, W, valid_lens=valid_lens)
    want_w = masked_softmax(bilinear_loop(q, k, W), valid_lens)
    torch.testing.assert_close(weights, want_w)
    torch.testing.assert_close(out, want_w @ v)
    assert torch.all(weights[0, :, 2:] == 0)


def test_module_matches_function_and_is_seeded():
    q, k, v = randn(2, 3, 4, seed=0), randn(2, 5, 6, seed=1), randn(2, 5, 2, seed=2)

    def make():
        return BilinearAttention(
            4, 6, dropout=0.5, generator=torch.Generator().manual_seed(7)
        ).double()

    m1, m2 = make(), make()
    assert m1.W.shape == (4, 6)
    torch.testing.assert_close(m1.W, m2.W)
    assert m1.W.abs().max() <= 1 / 6**0.5
    m1.eval()
    out = m1(q, k, v, torch.tensor([3, 4]))
    want, w = bilinear_attention(q, k, v, m1.W, valid_lens=torch.tensor([3, 4]))
    torch.testing.assert_close(out, want)
    torch.testing.assert_close(m1.attention_weights, w)
    out.sum().backward()
    assert m1.W.grad is not None and m1.W.grad.abs().sum() > 0


@pytest.mark.parametrize("size", [0, -1, 2.5, True])
def test_module_rejects_bad_sizes(size):
    with pytest.raises(ValueError, match="query_size"):
        BilinearAttention(size, 3)
    with pytest.raises(ValueError, match="key_size"):
        BilinearAttention(3, size)


def test_bad_input_names_the_argument():
    q, k, W = torch.randn(2, 3, 4), torch.randn(2, 5, 6), torch.randn(4, 6)
    with pytest.raises(ValueError, match=r"W has size 6 in dimension 0.*Dq"):
        bilinear_scores(q, k, torch.randn(6, 6))
    with pytest.raises(ValueError, match=r"W has size 5 in dimension 1.*Dk"):
        bilinear_scores(q, k, torch.randn(4, 5))
    with pytest.raises(ValueError, match=r"W must be 2-D"):
        bilinear_scores(q, k, torch.randn(4))
    with pytest.raises(ValueError, match="queries must have at least 2"):
        bilinear_scores(torch.randn(4), k, W)
    with pytest.raises(ValueError, match="leading"):
        bilinear_scores(q, torch.randn(3, 5, 6), W)
    with pytest.raises(TypeError, match="W has dtype"):
        bilinear_scores(q, k, W.double())
    with pytest.raises(TypeError, match="keys must be a floating-point"):
        bilinear_scores(q, k.long(), W)
    with pytest.raises(TypeError, match="W must be a torch.Tensor"):
        bilinear_scores(q, k, [[1.0]])
    with pytest.raises(ValueError, match="values has size 4 in dimension -2"):
        bilinear_attention(q, k, torch.randn(2, 4, 2), W)
