"""Parity with d2l 1.0.3's attention code (``d2l.torch``).

Checked where attnkit claims to be d2l-compatible. Where attnkit differs on purpose (a valid
length of 0), the test shows the difference instead of hiding it.
"""

import pytest
import torch
from d2l_compat import import_d2l_torch
from helpers import randn
from hypothesis import given
from hypothesis import strategies as st

import attnkit

d2l = import_d2l_torch()
f32 = torch.float32  # d2l's modules are float32: so are the inputs here


def _d2l_masked_softmax(X, valid_lens):
    return d2l.masked_softmax(
        X.clone(), valid_lens
    )  # d2l writes -1e6 into its argument: give it a copy


# ---------------------------------------------------------------- masked_softmax


@given(
    B=st.integers(1, 3),
    L=st.integers(1, 4),
    S=st.integers(1, 6),
    two_d=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_masked_softmax_equals_d2l_for_lengths_at_least_one(B, L, S, two_d, seed):
    X = randn(B, L, S, seed=seed, dtype=f32) * 3
    g = torch.Generator().manual_seed(seed)
    lens = torch.randint(1, S + 1, (B, L) if two_d else (B,), generator=g)
    torch.testing.assert_close(
        attnkit.masked_softmax(X, lens), _d2l_masked_softmax(X, lens)
    )


def test_masked_softmax_equals_d2l_without_lengths():
    X = randn(2, 3, 4, seed=0, dtype=f32)
    torch.testing.assert_close(attnkit.masked_softmax(X), _d2l_masked_softmax(X, None))


def test_masked_softmax_d2l_examples():
    """The two calls from d2l's section on scoring functions, 1-D and 2-D lengths."""
    X = torch.rand(2, 2, 4, generator=torch.Generator().manual_seed(1))
    for lens in (torch.tensor([2, 3]), torch.tensor([[1, 3], [2, 4]])):
        ours, theirs = attnkit.masked_softmax(X, lens), _d2l_masked_softmax(X, lens)
        torch.testing.assert_close(ours, theirs)
        assert torch.all(ours[0, 0, 2:] == 0)


def test_masked_softmax_differs_from_d2l_for_length_zero():
    """Deliberate difference: d2l fills masked scores with -1e6, so a row with no valid key gets a
    uniform average over the padding; attnkit fills with -inf and returns zeros for that row."""
    X = randn(2, 3, 5, seed=2, dtype=f32)
    lens = torch.tensor([0, 4])
    ours, theirs = attnkit.masked_softmax(X, lens), _d2l_masked_softmax(X, lens)
    assert torch.all(ours[0] == 0)
    torch.testing.assert_close(theirs[0], torch.full((3, 5), 0.2))
    torch.testing.assert_close(ours[1], theirs[1])  # rows with a key still agree


# ---------------------------------------- the modules, weights copied across


def _materialised_d2l_additive(num_hiddens, queries, keys, values, valid_lens):
    theirs = d2l.AdditiveAttention(num_hiddens, 0.0)
    theirs.eval()
    theirs(
        queries, keys, values, valid_lens
    )  # d2l 1.0.3 uses LazyLinear: one call sets the sizes
    return theirs


@pytest.mark.parametrize("lazy", [True, False])
@pytest.mark.parametrize(
    "lens", [torch.tensor([2, 6]), torch.tensor([[3, 10, 1], [6, 6, 2]])]
)
def test_additive_attention_equals_d2l_with_copied_weights(lazy, lens):
    queries, keys = (
        randn(2, 3, 20, seed=3, dtype=f32),
        randn(2, 10, 2, seed=4, dtype=f32),
    )
    values = randn(2, 10, 4, seed=5, dtype=f32)
    theirs = _materialised_d2l_additive(8, queries, keys, values, lens)
    ours = (
        attnkit.AdditiveAttention(8, 0.0)
        if lazy
        else attnkit.AdditiveAttention(8, 0.0, key_size=2, query_size=20)
    )
    ours.eval()
    if lazy:
        ours(queries, keys, values, lens)  # materialise ours too
    with torch.no_grad():
        ours.W_q.weight.copy_(theirs.W_q.weight)
        ours.W_k.weight.copy_(theirs.W_k.weight)
        ours.w_v.weight.copy_(theirs.w_v.weight)
    torch.testing.assert_close(
        ours(queries, keys, values, lens), theirs(queries, keys, values, lens)
    )
    torch.testing.assert_close(ours.attention_weights, theirs.attention_weights)


def test_additive_attention_state_dict_loads_from_d2l():
    """Same parameter names and shapes: a d2l state dict loads into attnkit's module as is."""
    queries, keys = randn(2, 1, 20, seed=6, dtype=f32), torch.ones(2, 10, 2)
    values, lens = randn(2, 10, 4, seed=7, dtype=f32), torch.tensor([2, 6])
    theirs = _materialised_d2l_additive(8, queries, keys, values, lens)
    ours = attnkit.AdditiveAttention(8, 0.0, key_size=2, query_size=20).eval()
    ours.load_state_dict(theirs.state_dict())
    torch.testing.assert_close(
        ours(queries, keys, values, lens), theirs(queries, keys, values, lens)
    )


@pytest.mark.parametrize(
    "lens", [None, torch.tensor([2, 6]), torch.tensor([[1, 10, 4], [6, 2, 9]])]
)
def test_dot_product_attention_equals_d2l(lens):
    queries, keys = (
        randn(2, 3, 6, seed=8, dtype=f32),
        randn(2, 10, 6, seed=9, dtype=f32),
    )
    values = randn(2, 10, 4, seed=10, dtype=f32)
    theirs, ours = (
        d2l.DotProductAttention(0.3).eval(),
        attnkit.DotProductAttention(0.3).eval(),
    )
    torch.testing.assert_close(
        ours(queries, keys, values, lens), theirs(queries, keys, values, lens)
    )
    torch.testing.assert_close(ours.attention_weights, theirs.attention_weights)


def test_dot_product_attention_dropout_in_training_matches_d2l_for_the_same_seed():
    queries, keys = (
        randn(2, 3, 6, seed=11, dtype=f32),
        randn(2, 10, 6, seed=12, dtype=f32),
    )
    values, lens = randn(2, 10, 4, seed=13, dtype=f32), torch.tensor([3, 7])
    theirs, ours = (
        d2l.DotProductAttention(0.5).train(),
        attnkit.DotProductAttention(0.5).train(),
    )
    torch.manual_seed(0)
    want = theirs(queries, keys, values, lens)
    torch.manual_seed(0)
    torch.testing.assert_close(ours(queries, keys, values, lens), want)


# ---------------------------------------------------------------- show_heatmaps


def test_show_heatmaps_draws_what_d2l_draws(close_figures):
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    weights = torch.rand(2, 4, 3, 5, generator=torch.Generator().manual_seed(14))
    titles = [f"Head {i}" for i in range(1, 5)]
    d2l.show_heatmaps(
        weights, xlabel="Keys", ylabel="Queries", titles=titles, figsize=(7, 3.5)
    )
    theirs = plt.gcf()  # d2l returns nothing
    ours = attnkit.show_heatmaps(
        weights, xlabel="Keys", ylabel="Queries", titles=titles, figsize=(7, 3.5)
    )
    assert isinstance(ours, Figure) and ours is not theirs
    assert (
        len(ours.axes) == len(theirs.axes) == 2 * 4 + 1
    )  # the panels plus the colorbar
    for a, b in zip(ours.axes[:8], theirs.axes[:8]):
        assert (a.get_title(), a.get_xlabel(), a.get_ylabel()) == (
            b.get_title(),
            b.get_xlabel(),
            b.get_ylabel(),
        )
        assert (a.images[0].get_array() == b.images[0].get_array()).all()
        assert a.images[0].get_cmap().name == b.images[0].get_cmap().name == "Reds"
    # figsize is the whole figure in both
    assert tuple(theirs.get_size_inches()) == (7, 3.5)
    assert tuple(ours.get_size_inches()) == (7, 3.5)
