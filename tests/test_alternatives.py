"""Softmax alternatives (attnkit.alternatives): each weight function is its formula on
allowed positions, exact zeros on masked ones, and zeros (never NaN) on empty rows."""

from __future__ import annotations

import pytest
import torch
from helpers import randn

from attnkit.alternatives import (
    WEIGHT_FUNCTIONS,
    relu_weights,
    sigmoid_weights,
    softmax_weights,
    weight_summary,
)
from attnkit.masking import softmax_one

TOL = dict(atol=1e-12, rtol=0)


def scores_and_mask(seed=0):
    s = randn(2, 5, 7, seed=seed, requires_grad=True)
    mask = torch.rand(2, 5, 7, generator=torch.Generator().manual_seed(seed)) > 0.3
    mask[0, 2] = False  # a fully masked row
    mask[1, 0] = True
    return s, mask


def test_formulas_on_allowed_positions():
    s, mask = scores_and_mask()
    x = s.detach()
    torch.testing.assert_close(relu_weights(x, mask=mask), torch.relu(x) * mask, **TOL)
    torch.testing.assert_close(relu_weights(x, scale=0.25), 0.25 * torch.relu(x), **TOL)
    torch.testing.assert_close(
        sigmoid_weights(x, mask=mask, bias=-1.5), torch.sigmoid(x - 1.5) * mask, **TOL
    )
    torch.testing.assert_close(softmax_weights(x), torch.softmax(x, dim=-1), **TOL)


@pytest.mark.parametrize("name", sorted(WEIGHT_FUNCTIONS))
def test_masked_and_empty_rows(name):
    fn = WEIGHT_FUNCTIONS[name]
    s, mask = scores_and_mask()
    w = fn(s, mask=mask)
    assert torch.isfinite(w).all()
    assert torch.equal(w[~mask.expand_as(w)], torch.zeros_like(w[~mask.expand_as(w)]))
    assert torch.equal(w[0, 2], torch.zeros(7, dtype=w.dtype))  # the fully masked row
    (w * randn(*w.shape, seed=4)).sum().backward()
    assert torch.isfinite(s.grad).all()
    assert torch.equal(s.grad[~mask], torch.zeros_like(s.grad[~mask]))


def test_masked_scores_do_not_matter():
    s, mask = scores_and_mask()
    x = s.detach()
    y = torch.where(mask, x, 1e6 * torch.ones_like(x))
    for fn in WEIGHT_FUNCTIONS.values():
        torch.testing.assert_close(fn(x, mask=mask), fn(y, mask=mask), **TOL)


def test_row_sums_and_sparsity():
    s, mask = scores_and_mask(seed=2)
    x = s.detach()
    soft = weight_summary(softmax_weights(x, mask=mask), mask=mask)
    assert soft["row_sum_min"] == pytest.approx(1.0) and soft[
        "row_sum_max"
    ] == pytest.approx(1)
    assert soft["zero_fraction"] == 0.0 and soft["empty_rows_zero"] == 1.0
    one = weight_summary(softmax_one(x, mask=mask), mask=mask)
    assert one["row_sum_max"] < 1.0
    relu = weight_summary(relu_weights(x, mask=mask), mask=mask)
    allowed = x[mask.expand_as(x)]
    assert relu["zero_fraction"] == pytest.approx((allowed <= 0).double().mean().item())
    assert relu["zero_fraction"] > 0.2
    sig = weight_summary(sigmoid_weights(x, mask=mask), mask=mask)
    assert sig["zero_fraction"] == 0.0 and sig["row_sum_max"] > 1.0


def test_half_precision_and_broadcast_masks():
    x = randn(3, 4, 6).to(torch.bfloat16)
    mask = torch.ones(6, dtype=torch.bool)
    mask[-1] = False
    for fn in WEIGHT_FUNCTIONS.values():
        w = fn(x, mask=mask)
        assert w.dtype == torch.bfloat16 and w.shape == (3, 4, 6)
        assert torch.equal(w[..., -1], torch.zeros_like(w[..., -1]))


def test_bad_input():
    x = randn(2, 3, 4)
    for fn in (relu_weights, sigmoid_weights, softmax_weights):
        with pytest.raises(ValueError, match="mask"):
            fn(x, mask=torch.ones(3, 3, dtype=torch.bool))
        with pytest.raises(TypeError, match="mask"):
            fn(x, mask=torch.ones(3, 4))
        with pytest.raises(TypeError):
            fn(x.long())
    with pytest.raises(TypeError, match="scale"):
        relu_weights(x, scale=torch.tensor(2.0))
    with pytest.raises(TypeError, match="bias"):
        sigmoid_weights(x, bias="low")
