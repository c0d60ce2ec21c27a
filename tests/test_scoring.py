"""Tests for attnkit.scoring: dot-product scores, the √D argument and additive scores."""

import math

import pytest
import torch
from helpers import randn

from attnkit import additive_scores, dot_product_scores

# ---------------------------------------------------------------- scoring


def test_dot_product_scores_hand_check():
    q = torch.tensor([[[1.0, 2.0]]])  # (1, 1, 2)
    k = torch.tensor([[[3.0, 4.0], [-1.0, 0.5]]])  # (1, 2, 2)
    want = torch.tensor([[[11.0, 0.0]]]) / math.sqrt(2)
    torch.testing.assert_close(dot_product_scores(q, k), want)
    torch.testing.assert_close(
        dot_product_scores(q, k, scale=1.0), torch.tensor([[[11.0, 0.0]]])
    )


@pytest.mark.parametrize("D", [4, 64, 256])
def test_variance_of_dot_product_is_D_and_of_scaled_score_is_one(D):
    """q, k with independent N(0, 1) entries: Var(q·k) = D, so q·k/√D has variance 1."""
    n = 20_000
    g = torch.Generator().manual_seed(D)
    q = torch.randn(
        n, 1, D, generator=g, dtype=torch.float64
    )  # n independent (query, key) pairs
    k = torch.randn(n, 1, D, generator=g, dtype=torch.float64)
    raw = dot_product_scores(q, k, scale=1.0).flatten()  # (n,)
    scaled = dot_product_scores(q, k).flatten()  # (n,)
    # q·k is a sum of D products with variance 1 and fourth moment 9, so its fourth central moment
    # is 3D² + 6D and the sample variance has standard error sqrt((2D² + 6D) / n).
    se = math.sqrt((2 * D * D + 6 * D) / n)
    assert abs(raw.var().item() - D) < 5 * se
    assert abs(scaled.var().item() - 1.0) < 5 * se / D
    assert abs(scaled.mean().item()) < 5 / math.sqrt(n)


def test_additive_scores_match_explicit_loop():
    B, L, S, Dq, Dk, h = 2, 3, 4, 5, 6, 7
    q, k = randn(B, L, Dq, seed=0), randn(B, S, Dk, seed=1)
    W_q, W_k, w_v = randn(h, Dq, seed=2), randn(h, Dk, seed=3), randn(1, h, seed=4)
    scores = additive_scores(q, k, W_q, W_k, w_v)
    assert scores.shape == (B, L, S)
    for b in range(B):
        for i in range(L):
            for j in range(S):
                want = w_v[0] @ torch.tanh(W_q @ q[b, i] + W_k @ k[b, j])
                torch.testing.assert_close(scores[b, i, j], want)
    torch.testing.assert_close(
        additive_scores(q, k, W_q, W_k, w_v[0]), scores
    )  # w_v as (h,)
