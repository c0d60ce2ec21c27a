"""attnkit.fusion: attention fusion of several inputs (by hand, properties, masks, errors)."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from attnkit.fusion import AttentionFusion, attention_fusion


def test_fusion_by_hand():
    H = torch.tensor(
        [[[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]]], dtype=torch.float64
    )  # (B=1, P=3, Dh=2)
    W = torch.tensor([[1.0, 0.0], [0.0, -1.0]], dtype=torch.float64)
    b = torch.tensor([0.0, 1.0], dtype=torch.float64)
    c = torch.tensor([2.0, 1.0], dtype=torch.float64)
    fused, beta = attention_fusion(H, W, b, c)
    # hidden = relu(W h + b): [1, 1], [0, 0], [3, 0]  -> scores c·hidden = 3, 0, 6
    expected_beta = torch.softmax(torch.tensor([3.0, 0.0, 6.0], dtype=torch.float64), 0)
    torch.testing.assert_close(beta[0], expected_beta)
    torch.testing.assert_close(fused[0], expected_beta @ H[0])


@given(B=st.integers(1, 3), P=st.integers(1, 5), seed=st.integers(0, 10_000))
def test_fusion_properties(B, P, seed):
    torch.manual_seed(seed)
    fusion = AttentionFusion(6, 4).double()
    H = torch.randn(B, P, 6, dtype=torch.float64)
    fused = fusion(H)
    beta = fusion.attention_weights
    torch.testing.assert_close(beta.sum(-1), torch.ones(B, dtype=torch.float64))
    assert (beta >= 0).all()
    # order of the inputs does not matter: fusion is permutation-invariant
    perm = torch.randperm(P)
    torch.testing.assert_close(fusion(H[:, perm]), fused)
    # the fused vector stays inside the inputs' bounding box (a convex combination)
    assert (fused <= H.amax(1) + 1e-12).all() and (fused >= H.amin(1) - 1e-12).all()


def test_fusion_mask_drops_missing_modalities_and_grads():
    torch.manual_seed(0)
    fusion = AttentionFusion(5, 3).double()
    H = torch.randn(2, 3, 5, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[True, False, True], [False, False, False]])
    H2 = H.detach().clone()
    H2[0, 1] = 100.0
    out, out2 = fusion(H, mask), fusion(H2, mask)
    torch.testing.assert_close(out[0], out2[0])
    torch.testing.assert_close(out[1], torch.zeros(5, dtype=torch.float64))
    assert torch.autograd.gradcheck(lambda h: fusion(h, mask), (H,))
    assert torch.autograd.gradcheck(
        lambda W, b, c: attention_fusion(H.detach(), W, b, c)[0],
        tuple(
            p.detach().clone().requires_grad_() for p in (fusion.W, fusion.b, fusion.c)
        ),
    )


def test_fusion_errors():
    H = torch.randn(2, 3, 4)
    W, b, c = torch.randn(5, 4), torch.randn(5), torch.randn(5)
    with pytest.raises(ValueError, match="H must be 3-D"):
        attention_fusion(H[0], W, b, c)
    with pytest.raises(ValueError, match="W has size 3"):
        attention_fusion(H, torch.randn(5, 3), b, c)
    with pytest.raises(ValueError, match="c has size 4"):
        attention_fusion(H, W, b, torch.randn(4))
    with pytest.raises(ValueError, match="mask has shape"):
        attention_fusion(H, W, b, c, mask=torch.ones(2, 4, dtype=torch.bool))
