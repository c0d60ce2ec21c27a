"""Tests for attnkit.masking: masks from lengths and causality, the masked softmax, softmax_one."""

import math

import pytest
import torch
from helpers import randn
from hypothesis import given
from hypothesis import strategies as st

from attnkit import (
    apply_mask,
    build_mask,
    causal_mask,
    check_mask,
    combine_masks,
    lengths_to_mask,
    masked_softmax,
    sequence_mask,
    softmax_one,
)

HALF_DTYPES = [torch.float16, torch.bfloat16]


def _lens(B, S, seed, low=0):
    g = torch.Generator().manual_seed(seed + 1)
    return torch.randint(low, S + 1, (B,), generator=g)


# ---------------------------------------------------------------- sequence_mask


def test_sequence_mask_hand_example_and_input_untouched():
    X = torch.arange(1.0, 7.0).reshape(2, 3)
    before = X.clone()
    out = sequence_mask(X, torch.tensor([1, 2]))
    assert torch.equal(out, torch.tensor([[1.0, 0.0, 0.0], [4.0, 5.0, 0.0]]))
    assert torch.equal(X, before), "sequence_mask must not write into X (d2l's does)"
    out = sequence_mask(X, torch.tensor([0, 3]), value=-1.0)
    assert torch.equal(out, torch.tensor([[-1.0, -1.0, -1.0], [4.0, 5.0, 6.0]]))


@given(N=st.integers(1, 5), S=st.integers(1, 7), seed=st.integers(0, 10_000))
def test_sequence_mask_matches_loop(N, S, seed):
    X = randn(N, S, seed=seed)
    lens = _lens(N, S, seed)
    out = sequence_mask(X, lens, value=7.5)
    for n in range(N):
        for s in range(S):
            want = X[n, s] if s < lens[n] else 7.5
            assert out[n, s] == want


# ---------------------------------------------------------------- lengths_to_mask


def test_lengths_to_mask_1d_hand_example():
    m = lengths_to_mask(torch.tensor([2, 0]), num_queries=2, num_keys=3)
    want = torch.tensor(
        [[[1, 1, 0], [1, 1, 0]], [[0, 0, 0], [0, 0, 0]]], dtype=torch.bool
    )
    assert m.dtype == torch.bool and torch.equal(m, want)


def test_lengths_to_mask_2d_hand_example():
    m = lengths_to_mask(torch.tensor([[1, 3], [2, 0]]), num_queries=2, num_keys=3)
    want = torch.tensor(
        [[[1, 0, 0], [1, 1, 1]], [[1, 1, 0], [0, 0, 0]]], dtype=torch.bool
    )
    assert torch.equal(m, want)


@given(
    B=st.integers(1, 4),
    L=st.integers(1, 5),
    S=st.integers(1, 6),
    two_d=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_lengths_to_mask_matches_loop(B, L, S, two_d, seed):
    g = torch.Generator().manual_seed(seed)
    lens = torch.randint(0, S + 1, (B, L) if two_d else (B,), generator=g)
    m = lengths_to_mask(lens, L, S)
    assert m.shape == (B, L, S)
    for b in range(B):
        for i in range(L):
            n = lens[b, i] if two_d else lens[b]
            assert m[b, i].tolist() == [j < n for j in range(S)]


# ---------------------------------------------------------------- causal_mask


def test_causal_mask_square_is_lower_triangle():
    assert torch.equal(causal_mask(4), torch.ones(4, 4).tril().bool())


def test_causal_mask_top_left_when_L_differs_from_S():
    # query i sits at position i
    want_wide = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0]], dtype=torch.bool)  # L=2, S=4
    assert torch.equal(causal_mask(2, 4), want_wide)
    want_tall = torch.tensor(
        [[1, 0], [1, 1], [1, 1], [1, 1]], dtype=torch.bool
    )  # L=4, S=2
    assert torch.equal(causal_mask(4, 2, align="top-left"), want_tall)


def test_causal_mask_bottom_right_when_L_differs_from_S():
    # the last query sits at the last key: query i at position i + S - L
    want_wide = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)  # L=2, S=4
    assert torch.equal(causal_mask(2, 4, align="bottom-right"), want_wide)
    # L > S: the first L - S queries see nothing
    want_tall = torch.tensor(
        [[0, 0], [0, 0], [1, 0], [1, 1]], dtype=torch.bool
    )  # L=4, S=2
    assert torch.equal(causal_mask(4, 2, align="bottom-right"), want_tall)


@given(L=st.integers(1, 9), S=st.integers(1, 9))
def test_causal_mask_equals_shifted_triangle(L, S):
    ones = torch.ones(L, S)
    assert torch.equal(causal_mask(L, S), ones.tril().bool())
    assert torch.equal(
        causal_mask(L, S, align="bottom-right"), ones.tril(diagonal=S - L).bool()
    )


def test_causal_mask_rejects_unknown_alignment_and_negative_sizes():
    with pytest.raises(ValueError, match="align"):
        causal_mask(2, 3, align="bottom-left")
    with pytest.raises(ValueError, match="num_queries"):
        causal_mask(-1, 3)


def test_combine_and_build_mask():
    a = torch.tensor([[True, False, True]])
    b = torch.tensor([[True, True, False]])
    assert combine_masks(None, None) is None
    assert torch.equal(combine_masks(a, None, b), torch.tensor([[True, False, False]]))
    assert build_mask(2, 3) is None
    m = build_mask(2, 3, valid_lens=torch.tensor([2]), causal=True)
    assert torch.equal(m, torch.tensor([[[True, False, False], [True, True, False]]]))


# ---------------------------------------------------------------- masked_softmax


def _reference_masked_softmax(X, allowed):
    """float64 loop: softmax over the allowed entries of each row, zeros elsewhere."""
    S = X.shape[-1]
    X, out = X.double(), torch.zeros(X.shape, dtype=torch.float64)
    flat_x = X.reshape(-1, S)  # (rows, S)
    flat_m = allowed.expand(X.shape).reshape(-1, S)  # (rows, S)
    flat_o = out.view(-1, S)  # (rows, S), writes into out
    for r in range(flat_x.shape[0]):
        idx = flat_m[r].nonzero().flatten()
        if len(idx):
            e = torch.exp(flat_x[r, idx] - flat_x[r, idx].max())
            flat_o[r, idx] = e / e.sum()
    return out


@given(
    B=st.integers(1, 3),
    L=st.integers(1, 4),
    S=st.integers(1, 6),
    two_d=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_masked_softmax_valid_lens_rows_sum_to_one_and_masked_are_zero(
    B, L, S, two_d, seed
):
    X = randn(B, L, S, seed=seed) * 3
    g = torch.Generator().manual_seed(seed)
    lens = torch.randint(0, S + 1, (B, L) if two_d else (B,), generator=g)
    W = masked_softmax(X, lens)
    allowed = lengths_to_mask(lens, L, S)
    assert torch.all(W[~allowed] == 0), "masked positions must get exactly zero weight"
    sums = W.sum(-1)
    has_key = allowed.any(-1)
    torch.testing.assert_close(sums[has_key], torch.ones_like(sums[has_key]))
    assert torch.all(sums[~has_key] == 0), "a row with no allowed key must be all zeros"
    torch.testing.assert_close(W, _reference_masked_softmax(X, allowed))


@given(
    L=st.integers(1, 5),
    S=st.integers(1, 5),
    causal=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_masked_softmax_boolean_mask_and_causal_match_reference(L, S, causal, seed):
    X = randn(2, 3, L, S, seed=seed)
    g = torch.Generator().manual_seed(seed)
    mask = (
        torch.rand(2, 1, L, S, generator=g) < 0.6
    )  # (B, 1, L, S) broadcasts over heads
    W = masked_softmax(X, mask=mask, causal=causal)
    allowed = mask & causal_mask(L, S) if causal else mask
    torch.testing.assert_close(W, _reference_masked_softmax(X, allowed))


def test_masked_softmax_without_mask_is_softmax():
    X = randn(2, 3, 5, seed=0)
    torch.testing.assert_close(masked_softmax(X), torch.softmax(X, dim=-1))


@pytest.mark.parametrize("dtype", [torch.float32, *HALF_DTYPES])
def test_fully_masked_row_gives_zeros_and_finite_gradient(dtype):
    X = randn(2, 3, 4, seed=1).to(dtype).requires_grad_(True)
    W = masked_softmax(X, torch.tensor([0, 2]))
    assert W.dtype == dtype
    assert not torch.isnan(W).any()
    assert torch.all(W[0] == 0), "sequence 0 has valid length 0: every weight must be 0"
    torch.testing.assert_close(W[1].float().sum(-1), torch.ones(3), atol=1e-2, rtol=0)
    (W.float() * torch.arange(4.0)).sum().backward()
    assert torch.isfinite(X.grad).all()
    assert torch.all(X.grad[0] == 0), "nothing flows back through an empty row"


def test_fully_masked_row_gradient_in_float64_via_gradcheck():
    X = randn(2, 2, 3, seed=2).requires_grad_(True)
    mask = torch.tensor(
        [[True, False, True], [False, False, False]]
    )  # second query sees nothing
    assert torch.autograd.gradcheck(lambda x: masked_softmax(x, mask=mask), (X,))


@pytest.mark.parametrize(
    "dtype, tol", [(torch.float16, 2.0**-11), (torch.bfloat16, 2.0**-8)]
)
def test_half_precision_is_computed_in_float32(dtype, tol):
    # many keys, so a sum accumulated in half precision would drift far from the reference
    X = (randn(4, 3, 1024, seed=3) * 4).to(dtype)
    lens = torch.tensor([1024, 700, 1, 0])
    W = masked_softmax(X, lens)
    assert W.dtype == dtype
    # exactly what a float32 computation rounded once to the half dtype gives
    assert torch.equal(W, masked_softmax(X.float(), lens).to(dtype))
    # and within one rounding of the float64 reference
    ref = _reference_masked_softmax(X.double(), lengths_to_mask(lens, 3, 1024))
    rel = ((W.double() - ref).abs() / ref.abs().clamp_min(1e-30))[ref > 1e-4]
    assert rel.max() <= tol


def test_minus_inf_fill_versus_d2l_large_negative_fill():
    """d2l fills masked scores with -1e6; attnkit uses -inf.

    The difference shows on a fully masked row.
    """
    X = randn(2, 2, 4, seed=4).float()
    lens = torch.tensor([0, 3])

    def d2l_style(
        X, lens
    ):  # d2l's recipe: write -1e6 past the length (by indexing), then a plain softmax
        flat = X.reshape(-1, X.shape[-1]).clone()
        keep = (
            torch.arange(X.shape[-1])[None, :]
            < lens.repeat_interleave(X.shape[1])[:, None]
        )
        flat[~keep] = -1e6
        return torch.softmax(flat.reshape(X.shape), dim=-1)

    ours, theirs = masked_softmax(X, lens), d2l_style(X, lens)
    torch.testing.assert_close(ours[1], theirs[1])  # rows with keys agree
    assert torch.all(ours[0] == 0)  # no key: zeros
    torch.testing.assert_close(
        theirs[0], torch.full((2, 4), 0.25)
    )  # -1e6 fill: a uniform average of padding
    # in float16, -1e6 overflows to -inf and the plain softmax of an all -inf row is NaN
    assert torch.isnan(d2l_style(X.half(), lens)[0]).all()
    assert torch.all(masked_softmax(X.half(), lens)[0] == 0)


def test_apply_mask_sets_minus_inf_and_passes_through_none():
    s = torch.zeros(1, 3)
    assert apply_mask(s, None) is s
    out = apply_mask(s, torch.tensor([[True, False, True]]))
    assert out[0, 1] == float("-inf") and out[0, 0] == 0
    assert s[0, 1] == 0  # a copy: the scores passed in are untouched
    same = apply_mask(s, torch.tensor([[True, False, True]]), inplace=True)
    assert same is s and torch.equal(s, out)  # overwritten, no second tensor


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "lens, exc, pattern",
    [
        (torch.tensor([2, 5]), ValueError, r"valid_lens must lie in \[0, 4\]"),
        (torch.tensor([-1, 2]), ValueError, r"valid_lens must lie in \[0, 4\]"),
        (
            torch.ones(2, 3, 1, dtype=torch.long),
            ValueError,
            r"valid_lens must be 1-D or 2-D",
        ),
        (
            torch.tensor([1, 2, 3]),
            ValueError,
            r"valid_lens has shape \(3,\) but X has batch size 2",
        ),
        (
            torch.ones(2, 2, dtype=torch.long),
            ValueError,
            r"valid_lens has shape \(2, 2\), but there are 3 queries",
        ),
        (torch.tensor([1.5, 2.0]), ValueError, r"valid_lens must hold whole numbers"),
        (
            torch.tensor([float("inf"), 2.0]),
            ValueError,
            r"valid_lens must hold whole numbers",
        ),
        (
            torch.tensor([True, False]),
            TypeError,
            r"valid_lens must be an integer tensor",
        ),
        ([1, 2], TypeError, r"valid_lens must be a torch.Tensor"),
    ],
)
def test_bad_valid_lens_raise_naming_the_argument(lens, exc, pattern):
    X = torch.zeros(2, 3, 4)
    with pytest.raises(exc, match=pattern):
        masked_softmax(X, lens)


def test_whole_float_valid_lens_are_accepted_like_d2l():
    X = randn(2, 3, 4, seed=5)
    torch.testing.assert_close(
        masked_softmax(X, torch.tensor([2.0, 3.0])),
        masked_softmax(X, torch.tensor([2, 3])),
    )


def test_mask_that_does_not_broadcast_names_both_shapes():
    X = torch.zeros(2, 3, 4)
    with pytest.raises(
        ValueError,
        match=r"mask of shape \(2, 3, 5\) does not broadcast to the scores' shape \(2, 3, 4\)",
    ):
        masked_softmax(X, mask=torch.ones(2, 3, 5, dtype=torch.bool))
    with pytest.raises(
        ValueError, match=r"mask of shape \(1, 2, 3, 4\)"
    ):  # more dims than the scores
        masked_softmax(X, mask=torch.ones(1, 2, 3, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match=r"mask must be a boolean tensor.*torch.int64"):
        check_mask(torch.ones(3, 4, dtype=torch.long), (2, 3, 4))


def test_masked_softmax_rejects_integer_scores_and_wrong_rank_with_lengths():
    with pytest.raises(TypeError, match="X must be a floating-point tensor"):
        masked_softmax(torch.zeros(2, 3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"X must be 3-D.*got shape \(2, 1, 3, 4\)"):
        masked_softmax(torch.zeros(2, 1, 3, 4), torch.tensor([1, 2]))


def test_sequence_mask_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"valid_len has 3 entries but X has 2 rows"):
        sequence_mask(torch.zeros(2, 4), torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match=r"valid_len must lie in \[0, 4\]"):
        sequence_mask(torch.zeros(2, 4), torch.tensor([1, 9]))


# ---------------------------------------------------------------- softmax_one


def test_softmax_one_formula_in_float64():
    X = torch.tensor(
        [[0.0, 1.0, -2.0], [3.0, 3.0, 3.0], [-5.0, -6.0, -7.0]], dtype=torch.float64
    )
    want = torch.exp(X) / (1 + torch.exp(X).sum(-1, keepdim=True))
    torch.testing.assert_close(softmax_one(X), want, rtol=1e-14, atol=0)
    # hand value: one score 0 -> 1 / (1 + 1)
    assert softmax_one(torch.zeros(1, 1, dtype=torch.float64)).item() == 0.5


@given(S=st.integers(1, 8), scale=st.floats(0.1, 5.0), seed=st.integers(0, 10_000))
def test_softmax_one_rows_sum_below_one(S, scale, seed):
    X = randn(3, S, seed=seed) * scale
    W = softmax_one(X)
    assert torch.all(W > 0) and torch.all(W.sum(-1) < 1)
    torch.testing.assert_close(
        W, torch.exp(X) / (1 + torch.exp(X).sum(-1, keepdim=True))
    )


def test_softmax_one_is_stable_for_large_inputs():
    X = torch.tensor([[1000.0, 0.0, -1000.0], [1000.0, 1000.0, 1000.0]])
    W = softmax_one(X)
    assert torch.isfinite(W).all()
    torch.testing.assert_close(
        W, torch.tensor([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    )
    X = X.requires_grad_(True)
    softmax_one(X)[:, 0].sum().backward()
    assert torch.isfinite(X.grad).all()


def test_softmax_one_mask_and_fully_masked_row():
    X = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]], dtype=torch.float64)
    mask = torch.tensor([[True, False, True], [False, False, False]])
    W = softmax_one(X, mask=mask)
    torch.testing.assert_close(
        W[0], torch.tensor([1 / 3, 0.0, 1 / 3], dtype=torch.float64)
    )
    assert torch.all(W[1] == 0) and not torch.isnan(W).any()


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_softmax_one_half_precision(dtype):
    X = randn(2, 6, seed=6)
    W = softmax_one(X.to(dtype))
    assert W.dtype == dtype
    want = torch.exp(X.to(dtype).double()) / (
        1 + torch.exp(X.to(dtype).double()).sum(-1, keepdim=True)
    )
    torch.testing.assert_close(W.double(), want, atol=0, rtol=2.0**-7)


def test_softmax_is_not_off_by_one():
    """Sanity contrast: the ordinary masked softmax sums to 1 where softmax_one sums below it."""
    X = randn(4, 5, seed=7)
    assert torch.allclose(masked_softmax(X).sum(-1), torch.ones(4, dtype=torch.float64))
    assert torch.all(softmax_one(X).sum(-1) < 1 - 1e-3 * math.exp(-5))


def test_masked_softmax_runs_on_meta_tensors_with_a_mask():
    """Shape checks on the meta device (ch09's hidden tests use them) must not look at
    values: the causal fast path is skipped there, and the shapes come out right."""
    X = torch.empty(2, 3, 5, device="meta")
    assert masked_softmax(X, causal=True).shape == (2, 3, 5)
    keep = torch.ones(5, dtype=torch.bool, device="meta")
    assert masked_softmax(X, mask=keep, inplace=True).shape == (2, 3, 5)
