"""Nyströmformer (chapter 8): landmarks, iterative pseudo-inverse, exactness and errors."""

import pytest
import torch
from helpers import qkv
from hypothesis import given
from hypothesis import strategies as st

from attnkit.mechanisms import softmax_attention_naive
from attnkit.nystrom import (
    NystromAttention,
    iterative_pinv,
    nystrom_attention,
    nystrom_attention_naive,
    nystrom_matrices,
    segment_means,
)


def test_segment_means_by_hand_with_padding():
    x = torch.arange(7.0)[:, None]  # n = 7, M = 3 → segments of 3: [0,1,2] [3,4,5] [6]
    torch.testing.assert_close(segment_means(x, 3), torch.tensor([[1.0], [4.0], [6.0]]))
    valid = torch.tensor([True, False, True, True, True, True, False])
    torch.testing.assert_close(
        segment_means(x, 3, valid), torch.tensor([[1.0], [4.0], [0.0]])
    )


def test_iterative_pinv_converges_to_the_pseudo_inverse():
    g = torch.Generator().manual_seed(0)
    a = torch.softmax(torch.randn(3, 8, 8, generator=g, dtype=torch.float64), dim=-1)
    exact = torch.linalg.pinv(a)
    err = [(iterative_pinv(a, it) - exact).abs().max() for it in (2, 6, 20)]
    assert err[0] > err[1] > err[2] and err[2] < 1e-8
    # per-matrix norms: a batch item's inverse does not depend on another's scale
    b = a.clone()
    b[0] *= 100
    torch.testing.assert_close(iterative_pinv(b, 20)[1:], iterative_pinv(a, 20)[1:])


def test_landmarks_equal_tokens_is_exact_softmax():
    q, k, v = qkv(B=2, H=2, L=16, S=16, D=8, Dv=5)
    exact = softmax_attention_naive(q, k, v)[0]
    # the fallback path
    torch.testing.assert_close(NystromAttention(num_landmarks=16)(q, k, v), exact)
    # the Nyström formula itself with M = n: F A⁺ Bm = A A⁺ A = A
    out, w = nystrom_attention_naive(q, k, v, num_landmarks=16, pinv_iterations=None)
    torch.testing.assert_close(out, exact, atol=1e-8, rtol=1e-6)
    out_it, _ = nystrom_attention_naive(q, k, v, num_landmarks=16, pinv_iterations=30)
    torch.testing.assert_close(out_it, exact, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("L,S,M", [(40, 40, 8), (37, 29, 6), (20, 45, 7)])
def test_fast_matches_naive_outputs_and_gradients(L, S, M):
    q, k, v = qkv(B=2, H=2, L=L, S=S, D=8, Dv=5)
    kp = (torch.arange(S) < S - 5)[None, :].expand(2, S).clone()  # (B, S)
    kp[1, :3] = False
    for t in (q, k, v):
        t.requires_grad_(True)
    fast = nystrom_attention(q, k, v, num_landmarks=M, key_padding=kp)
    ref, _ = nystrom_attention_naive(q, k, v, num_landmarks=M, key_padding=kp)
    torch.testing.assert_close(fast, ref, atol=1e-9, rtol=1e-7)
    w = torch.randn_like(fast)
    for a, b in zip(
        torch.autograd.grad((fast * w).sum(), (q, k, v)),
        torch.autograd.grad((ref * w).sum(), (q, k, v)),
    ):
        torch.testing.assert_close(a, b, atol=1e-8, rtol=1e-6)


def test_masked_keys_have_no_effect_on_the_nystrom_path():
    q, k, v = qkv(B=2, H=2, L=50, S=50, D=8, Dv=5)
    mask = (torch.arange(50) < 41)[None, None, None, :].expand(
        2, 1, 1, 50
    )  # (B, 1, 1, S)
    mech = NystromAttention(num_landmarks=8)
    out = mech(q, k, v, mask=mask)
    k2, v2 = k.clone(), v.clone()
    k2[..., 41:, :] = 30 * torch.randn_like(k2[..., 41:, :])
    v2[..., 41:, :] += 7
    torch.testing.assert_close(mech(q, k2, v2, mask=mask), out)
    assert not torch.allclose(mech(q, k2, v2), mech(q, k, v))
    none = torch.zeros(2, 1, 1, 50, dtype=torch.bool)
    torch.testing.assert_close(mech(q, k, v, mask=none), torch.zeros_like(out))


def test_error_shrinks_with_more_landmarks():
    g = torch.Generator().manual_seed(1)
    # smooth sequences (neighbours similar), where segment means are good landmarks
    base = torch.cumsum(
        0.3 * torch.randn(1, 1, 128, 16, generator=g, dtype=torch.float64), dim=2
    )
    q, k = base, base + 0.05 * torch.randn(base.shape, generator=g, dtype=torch.float64)
    v = torch.randn(1, 1, 128, 4, generator=g, dtype=torch.float64)
    exact = softmax_attention_naive(q, k, v)[0]
    errs = [
        ((nystrom_attention(q, k, v, num_landmarks=m) - exact) ** 2).mean()
        for m in (4, 16, 64)
    ]
    assert errs[0] > errs[1] > errs[2]


def test_not_causal_and_declares_it():
    assert NystromAttention.supports_causal is False
    q, k, v = qkv(B=2, H=2, L=40, S=40, D=8, Dv=5)
    with pytest.raises(ValueError, match="not causal"):
        NystromAttention()(q, k, v, causal=True)
    with pytest.raises(ValueError, match="num_landmarks"):
        NystromAttention(num_landmarks=0)


def test_naive_weights_are_the_nystrom_matrix():
    q, k, v = qkv(B=2, H=2, L=30, S=30, D=8, Dv=5)
    kp = torch.ones(2, 30, dtype=torch.bool)
    kp[0, 25:] = False
    out, w = nystrom_attention_naive(q, k, v, num_landmarks=6, key_padding=kp)
    assert w.shape == (2, 2, 30, 30) and w.dtype == v.dtype
    torch.testing.assert_close(w @ v, out)
    assert w[0, ..., 25:].abs().max() == 0  # padded keys get no weight (Bm is masked)
    torch.testing.assert_close(
        w.sum(-1), torch.ones(2, 2, 30, dtype=w.dtype), atol=0.05, rtol=0
    )


def test_iterations_are_bounded_and_counted():
    a = torch.softmax(torch.randn(4, 4, dtype=torch.float64), dim=-1)
    for bad, err in (
        (0, ValueError),
        (10**9, ValueError),
        (101, ValueError),
        (True, TypeError),
        (6.0, TypeError),
    ):
        with pytest.raises(err, match="iterations"):
            iterative_pinv(a, bad)
    iterative_pinv(a, 100)  # the documented maximum is accepted
    with pytest.raises(ValueError, match="pinv_iterations"):
        NystromAttention(pinv_iterations=0)


def test_half_precision_runs_in_float32():
    q, k, v = qkv(B=2, H=2, L=70, S=70, D=8, Dv=5, dtype=torch.bfloat16)
    out = NystromAttention(num_landmarks=8)(q, k, v)
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()
    ref = NystromAttention(num_landmarks=8)(q.double(), k.double(), v.double())
    torch.testing.assert_close(out.double(), ref, atol=0.1, rtol=0.05)


@given(
    L=st.integers(2, 30),
    S=st.integers(2, 30),
    M=st.integers(1, 8),
    seed=st.integers(0, 50),
)
def test_any_sizes_fast_equals_naive(L, S, M, seed):
    q, k, v = qkv(B=1, H=1, L=L, S=S, D=3, Dv=2, seed=seed)
    fast = nystrom_attention(q, k, v, num_landmarks=M)
    if M >= max(L, S):
        torch.testing.assert_close(fast, softmax_attention_naive(q, k, v)[0])
    else:
        torch.testing.assert_close(
            fast,
            nystrom_attention_naive(q, k, v, num_landmarks=M)[0],
            atol=1e-8,
            rtol=1e-6,
        )


def test_nystrom_matrices_are_the_three_softmax_kernels():
    q, k, v = qkv(B=2, H=2, L=12, S=10, D=4, Dv=3)
    kp = torch.ones(2, 10, dtype=torch.bool)
    kp[1, 7:] = False
    f, a, b = nystrom_matrices(q, k, num_landmarks=3, key_padding=kp)
    assert (
        f.shape == (2, 2, 12, 3)
        and a.shape == (2, 2, 3, 3)
        and b.shape == (2, 2, 3, 10)
    )
    q_l, k_l = segment_means(q, 3), segment_means(k, 3, kp[:, None, :])
    scale = 4**-0.5
    torch.testing.assert_close(f, torch.softmax(q @ k_l.transpose(-2, -1) * scale, -1))
    torch.testing.assert_close(
        a, torch.softmax(q_l @ k_l.transpose(-2, -1) * scale, -1)
    )
    assert b[1, ..., 7:].abs().max() == 0  # padded keys get no weight
    torch.testing.assert_close(b.sum(-1), torch.ones(2, 2, 3, dtype=torch.float64))
    # their product with the exact pseudo-inverse is the naive reference's weight matrix
    _, weights = nystrom_attention_naive(
        q, k, v, num_landmarks=3, pinv_iterations=None, key_padding=kp
    )
    torch.testing.assert_close(f @ torch.linalg.pinv(a) @ b, weights)
