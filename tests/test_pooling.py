"""Tests for attnkit.pooling: hard/soft lookup, Nadaraya–Watson, the regression data."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from attnkit import (
    NWKernelRegression,
    average_pooling,
    gaussian_kernel_weights,
    hard_lookup,
    make_regression_data,
    nadaraya_watson,
    regression_target,
    squared_distances,
)


def _rand(*shape, seed, dtype=torch.float64):
    """Seeded uniform [0, 1) inputs (helpers.randn draws normals; lookups here want a box)."""
    return torch.rand(
        *shape, generator=torch.Generator().manual_seed(seed), dtype=dtype
    )


def test_squared_distances_hand_check():
    q = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    k = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 0.0]])
    torch.testing.assert_close(
        squared_distances(q, k), torch.tensor([[25.0, 1.0, 0.0], [13.0, 1.0, 2.0]])
    )
    torch.testing.assert_close(
        squared_distances(torch.tensor([1.0]), torch.tensor([0.0, 3.0])),
        torch.tensor([[1.0, 4.0]]),
    )


def test_hard_lookup_hand_example():
    keys = torch.tensor([0.0, 1.0, 2.0, 3.0])
    values = torch.tensor([10.0, 20.0, 30.0, 40.0])
    out, w = hard_lookup(torch.tensor([0.9, 2.6, -5.0]), keys, values)
    torch.testing.assert_close(out, torch.tensor([20.0, 40.0, 10.0]))
    assert torch.equal(w, torch.tensor([[0.0, 1, 0, 0], [0, 0, 0, 1], [1, 0, 0, 0]]))


@given(
    L=st.integers(1, 6),
    S=st.integers(1, 8),
    D=st.integers(1, 3),
    seed=st.integers(0, 10_000),
)
def test_hard_lookup_is_one_hot_nearest(L, S, D, seed):
    q, k, v = (
        _rand(L, D, seed=seed),
        _rand(S, D, seed=seed + 1),
        _rand(S, 2, seed=seed + 2),
    )
    out, w = hard_lookup(q, k, v)
    assert torch.all(w.sum(1) == 1) and torch.all((w == 0) | (w == 1))
    d2 = ((q[:, None, :] - k[None, :, :]) ** 2).sum(-1)  # (L, S)
    chosen = w.argmax(1)
    assert torch.all(d2[torch.arange(L), chosen] == d2.min(1).values)
    torch.testing.assert_close(out, v[chosen])


@given(
    L=st.integers(1, 6),
    S=st.integers(1, 8),
    bw=st.floats(0.05, 10.0),
    seed=st.integers(0, 10_000),
)
def test_nadaraya_watson_weights_are_a_gaussian_softmax(L, S, bw, seed):
    q, k, v = (
        _rand(L, seed=seed) * 5,
        _rand(S, seed=seed + 1) * 5,
        _rand(S, seed=seed + 2),
    )
    out, w = nadaraya_watson(q, k, v, bandwidth=bw)
    torch.testing.assert_close(w.sum(1), torch.ones(L, dtype=torch.float64))
    assert torch.all(w >= 0)
    d2 = (q[:, None] - k[None, :]) ** 2  # (L, S)
    kernel = torch.exp(
        -(d2 - d2.min(1, keepdim=True).values) / (2 * bw**2)
    )  # shifted so it cannot underflow
    torch.testing.assert_close(w, kernel / kernel.sum(1, keepdim=True))
    torch.testing.assert_close(out, w @ v)


def test_tiny_bandwidth_approaches_hard_lookup_and_huge_one_average_pooling():
    data = make_regression_data(30, 20, seed=1)
    x, y, q = (
        data["x_train"].double(),
        data["y_train"].double(),
        data["x_test"].double(),
    )
    hard, _ = hard_lookup(q, x, y)
    avg = average_pooling(y, len(q))
    # (a query almost halfway between two keys needs a very small bandwidth to pick one of them)
    errors_small = [
        (nadaraya_watson(q, x, y, bandwidth=b)[0] - hard).abs().max().item()
        for b in (1.0, 0.1, 0.001)
    ]
    errors_large = [
        (nadaraya_watson(q, x, y, bandwidth=b)[0] - avg).abs().max().item()
        for b in (3.0, 30.0, 300.0)
    ]
    assert (
        errors_small[0] > errors_small[1] > errors_small[2] and errors_small[2] < 1e-5
    )
    assert (
        errors_large[0] > errors_large[1] > errors_large[2] and errors_large[2] < 1e-4
    )


def test_average_pooling_shapes_and_value():
    v = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
    torch.testing.assert_close(average_pooling(v, 3), torch.tensor([[2.0, 4.0]] * 3))
    torch.testing.assert_close(
        average_pooling(torch.tensor([1.0, 2.0, 6.0]), 2), torch.tensor([3.0, 3.0])
    )


def test_make_regression_data_is_deterministic_and_well_formed():
    a, b, c = (
        make_regression_data(seed=3),
        make_regression_data(seed=3),
        make_regression_data(seed=4),
    )
    for key in a:
        assert torch.equal(a[key], b[key])
    assert not torch.equal(a["x_train"], c["x_train"])
    assert (
        torch.all(a["x_train"][1:] >= a["x_train"][:-1])
        and a["x_train"].min() >= 0
        and a["x_train"].max() < 5
    )
    torch.testing.assert_close(
        a["y_truth"], 2 * torch.sin(a["x_test"]) + a["x_test"] ** 0.8
    )
    torch.testing.assert_close(a["y_truth"], regression_target(a["x_test"]))
    assert a["x_train"].shape == (50,) and a["x_test"].shape == (50,)
    noise = a["y_train"] - regression_target(a["x_train"])
    assert 0.25 < noise.std().item() < 1.0  # noise=0.5
    with pytest.raises(ValueError, match="n_train must be at least 1"):
        make_regression_data(0)


def test_nw_kernel_regression_trains():
    data = make_regression_data(50, 50, seed=0)
    x, y = data["x_train"], data["y_train"]
    n = len(x)
    # leave-one-out: each training point is predicted from the others (as d2l does)
    others = ~torch.eye(n, dtype=torch.bool)
    keys = x.expand(n, n)[others].reshape(n, n - 1)  # (n, n-1)
    vals = y.expand(n, n)[others].reshape(n, n - 1)  # (n, n-1)
    model = NWKernelRegression(init_w=1.0)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)

    def loss_fn():
        preds = torch.stack(
            [model(x[i : i + 1], keys[i], vals[i]) for i in range(n)]
        ).flatten()
        return ((preds - y) ** 2).mean()

    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0]
    assert model.w.item() > 1.0  # learnt a narrower kernel than the initial bandwidth 1
    assert model.attention_weights.shape == (1, n - 1)


def test_pooling_errors_name_the_argument():
    with pytest.raises(
        ValueError, match=r"values has size 3 in dimension 0 .* number of keys S is 4"
    ):
        nadaraya_watson(torch.zeros(2), torch.zeros(4), torch.zeros(3))
    with pytest.raises(
        ValueError,
        match=r"keys has size 3 in dimension 1 .* queries' feature size D is 2",
    ):
        squared_distances(torch.zeros(5, 2), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="bandwidth must be > 0"):
        gaussian_kernel_weights(torch.zeros(2), torch.zeros(3), bandwidth=0.0)
    with pytest.raises(TypeError, match="queries must be a floating-point tensor"):
        hard_lookup(torch.zeros(2, dtype=torch.long), torch.zeros(3), torch.zeros(3))
