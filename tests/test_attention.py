"""Tests for attnkit.attention: softmax-weighted sums, masking and the d2l modules."""

import pytest
import torch
from helpers import randn
from hypothesis import given
from hypothesis import strategies as st

from attnkit import (
    AdditiveAttention,
    DotProductAttention,
    additive_attention,
    attend,
    dot_product_attention,
    lengths_to_mask,
)

# ---------------------------------------------------------------- attention functions


def test_dot_product_attention_is_softmax_then_weighted_sum():
    q, k, v = randn(2, 3, 4, seed=0), randn(2, 5, 4, seed=1), randn(2, 5, 6, seed=2)
    out, w = dot_product_attention(q, k, v)
    want_w = torch.softmax(q @ k.transpose(1, 2) / 2.0, dim=-1)
    torch.testing.assert_close(w, want_w)
    torch.testing.assert_close(out, want_w @ v)
    torch.testing.assert_close(attend(w, v), out)


def _masked_inputs(B, L, S, D, Dv, seed):
    q, k, v = (
        randn(B, L, D, seed=seed),
        randn(B, S, D, seed=seed + 1),
        randn(B, S, Dv, seed=seed + 2),
    )
    lens = torch.randint(1, S + 1, (B,), generator=torch.Generator().manual_seed(seed))
    return q, k, v, lens


@given(
    B=st.integers(1, 3),
    L=st.integers(1, 4),
    S=st.integers(2, 6),
    seed=st.integers(0, 10_000),
)
def test_masked_keys_and_values_never_change_the_output(B, L, S, seed):
    q, k, v, lens = _masked_inputs(B, L, S, 3, 2, seed)
    masked = ~lengths_to_mask(lens, 1, S)[:, 0, :]  # (B, S), True where padding
    k2, v2 = k.clone(), v.clone()
    k2[masked] = randn(int(masked.sum()), 3, seed=seed + 3) * 100
    v2[masked] = randn(int(masked.sum()), 2, seed=seed + 4) * 100
    out, w = dot_product_attention(q, k, v, valid_lens=lens)
    out2, w2 = dot_product_attention(q, k2, v2, valid_lens=lens)
    torch.testing.assert_close(out2, out, rtol=0, atol=0)
    torch.testing.assert_close(w2, w, rtol=0, atol=0)
    # the same for additive attention, through a boolean mask
    W_q, W_k, w_v = (
        randn(4, 3, seed=seed + 5),
        randn(4, 3, seed=seed + 6),
        randn(4, seed=seed + 7),
    )
    mask = ~masked[:, None, :]  # (B, 1, S)
    a = additive_attention(q, k, v, W_q, W_k, w_v, mask=mask)[0]
    a2 = additive_attention(q, k2, v2, W_q, W_k, w_v, mask=mask)[0]
    torch.testing.assert_close(a2, a, rtol=0, atol=0)


@given(
    B=st.integers(1, 3),
    L=st.integers(1, 4),
    S=st.integers(2, 6),
    seed=st.integers(0, 10_000),
)
def test_permuting_key_value_pairs_together_leaves_output_unchanged(B, L, S, seed):
    q, k, v, lens = _masked_inputs(B, L, S, 3, 2, seed)
    mask = lengths_to_mask(lens, L, S)  # (B, L, S)
    perm = torch.randperm(S, generator=torch.Generator().manual_seed(seed + 9))
    out, _ = dot_product_attention(q, k, v, mask=mask)
    out_p, _ = dot_product_attention(q, k[:, perm], v[:, perm], mask=mask[..., perm])
    torch.testing.assert_close(out_p, out)
    W_q, W_k, w_v = (
        randn(4, 3, seed=seed + 5),
        randn(4, 3, seed=seed + 6),
        randn(4, seed=seed + 7),
    )
    a = additive_attention(q, k, v, W_q, W_k, w_v, mask=mask)[0]
    a_p = additive_attention(
        q, k[:, perm], v[:, perm], W_q, W_k, w_v, mask=mask[..., perm]
    )[0]
    torch.testing.assert_close(a_p, a)


def test_causal_dot_product_attention_ignores_the_future():
    q, k, v = randn(1, 4, 3, seed=0), randn(1, 4, 3, seed=1), randn(1, 4, 2, seed=2)
    out, w = dot_product_attention(q, k, v, causal=True)
    assert torch.all(w.triu(diagonal=1) == 0)
    v2 = v.clone()
    v2[:, 3] += 10.0  # only the last query may see the last value
    out2, _ = dot_product_attention(q, k, v2, causal=True)
    torch.testing.assert_close(out2[:, :3], out[:, :3], rtol=0, atol=0)
    assert not torch.allclose(out2[:, 3], out[:, 3])


# ---------------------------------------- the d2l modules: seed-004 worked example


def _worked_example_inputs(query_size):
    torch.manual_seed(0)
    queries = torch.normal(0, 1, (2, 1, query_size))
    keys = torch.ones((2, 10, 2))
    values = torch.arange(40, dtype=torch.float32).reshape(1, 10, 4).repeat(2, 1, 1)
    return queries, keys, values, torch.tensor([2, 6])


def _check_worked_example(attention, query_size):
    queries, keys, values, valid_lens = _worked_example_inputs(query_size)
    attention.eval()
    out = attention(queries, keys, values, valid_lens)
    # all keys equal, so the weights are uniform over the valid keys:
    # the mean of the first 2 / 6 value rows
    torch.testing.assert_close(
        out, torch.tensor([[[2.0, 3.0, 4.0, 5.0]], [[10.0, 11.0, 12.0, 13.0]]])
    )
    w = attention.attention_weights
    assert w.shape == (2, 1, 10)
    torch.testing.assert_close(w[0, 0, :2], torch.full((2,), 0.5))
    assert torch.all(w[0, 0, 2:] == 0) and torch.all(w[1, 0, 6:] == 0)


def test_additive_attention_worked_example_old_signature():
    attention = AdditiveAttention(key_size=2, query_size=20, num_hiddens=8, dropout=0.1)
    assert attention.W_q.weight.shape == (8, 20) and attention.W_k.weight.shape == (
        8,
        2,
    )
    _check_worked_example(attention, query_size=20)


def test_additive_attention_worked_example_d2l_103_lazy_signature():
    attention = AdditiveAttention(
        8, 0.1
    )  # d2l 1.0.3: AdditiveAttention(num_hiddens, dropout), sizes inferred
    _check_worked_example(attention, query_size=20)
    assert attention.W_q.weight.shape == (8, 20) and attention.W_k.weight.shape == (
        8,
        2,
    )


def test_dot_product_attention_worked_example():
    _check_worked_example(DotProductAttention(dropout=0.5), query_size=2)


def test_dropout_only_in_training():
    queries, keys, values, valid_lens = _worked_example_inputs(2)
    attention = DotProductAttention(dropout=0.5)
    attention.eval()
    first = attention(queries, keys, values, valid_lens)
    torch.testing.assert_close(
        attention(queries, keys, values, valid_lens), first, rtol=0, atol=0
    )
    attention.train()
    torch.manual_seed(1)
    assert not torch.allclose(attention(queries, keys, values, valid_lens), first)


def test_additive_attention_module_equals_function():
    attention = AdditiveAttention(5, 0.0).double()
    q, k, v = randn(2, 3, 4, seed=0), randn(2, 6, 7, seed=1), randn(2, 6, 2, seed=2)
    lens = torch.tensor([[1, 6, 3], [2, 2, 5]])
    out = attention(q, k, v, lens)
    want, w = additive_attention(
        q,
        k,
        v,
        attention.W_q.weight,
        attention.W_k.weight,
        attention.w_v.weight,
        valid_lens=lens,
    )
    torch.testing.assert_close(out, want)
    torch.testing.assert_close(attention.attention_weights, w)


# ---------------------------------------------------------------- errors name the argument


@pytest.mark.parametrize(
    "shapes, pattern",
    [
        (
            ((2, 1, 4), (3, 5, 4), (3, 5, 6)),
            r"keys has leading \(batch\) shape \(3,\) but queries has \(2,\)",
        ),
        (
            ((2, 1, 4), (2, 5, 3), (2, 5, 6)),
            r"keys has size 3 in dimension -1 .* queries' feature size D is 4",
        ),
        (
            ((2, 1, 4), (2, 5, 4), (2, 7, 6)),
            r"values has size 7 in dimension -2 .* the number of keys S is 5",
        ),
        (((4,), (2, 5, 4), (2, 5, 6)), r"queries must have at least 2 dimensions"),
    ],
)
def test_dot_product_attention_shape_errors(shapes, pattern):
    q, k, v = (torch.zeros(s) for s in shapes)
    with pytest.raises(ValueError, match=pattern):
        dot_product_attention(q, k, v)
    with pytest.raises(ValueError, match=pattern):
        DotProductAttention(0.0)(q, k, v)


@pytest.mark.parametrize("which", ["queries", "keys", "values"])
def test_integer_inputs_raise_type_error_naming_the_argument(which):
    t = {
        "queries": torch.zeros(2, 1, 2),
        "keys": torch.ones(2, 10, 2),
        "values": torch.zeros(2, 10, 4),
    }
    t[which] = t[which].long()
    with pytest.raises(TypeError, match=f"{which} must be a floating-point tensor"):
        dot_product_attention(t["queries"], t["keys"], t["values"])
    with pytest.raises(TypeError, match=f"{which} must be a floating-point tensor"):
        AdditiveAttention(4, 0.0)(
            t["queries"], t["keys"], t["values"]
        )  # lazy: fails before materialising


def test_mixed_dtypes_raise_type_error():
    q, k, v = (
        torch.zeros(1, 2, 3),
        torch.zeros(1, 4, 3),
        torch.zeros(1, 4, 2, dtype=torch.float64),
    )
    with pytest.raises(
        TypeError,
        match="values has dtype torch.float64 but queries has dtype torch.float32",
    ):
        dot_product_attention(q, k, v)
    with pytest.raises(
        TypeError,
        match="W_q has dtype torch.float32 but queries has dtype torch.float64",
    ):
        AdditiveAttention(4, 0.0, key_size=3, query_size=3)(q.double(), k.double(), v)


def test_additive_attention_wrong_feature_size_names_the_weight():
    attention = AdditiveAttention(8, 0.0, key_size=2, query_size=20)
    q, k, v = torch.zeros(2, 1, 20), torch.zeros(2, 10, 3), torch.zeros(2, 10, 4)
    with pytest.raises(
        ValueError, match=r"W_k has size 2 in dimension 1 .* keys' feature size Dk is 3"
    ):
        attention(q, k, v)
    with pytest.raises(ValueError, match="num_hiddens must be"):
        AdditiveAttention(0)


def test_additive_attention_rejects_non_positive_sizes():
    with pytest.raises(ValueError, match="key_size must be ≥ 1"):
        AdditiveAttention(4, key_size=0, query_size=3)
    with pytest.raises(ValueError, match="query_size must be ≥ 1"):
        AdditiveAttention(4, key_size=2, query_size=0)
