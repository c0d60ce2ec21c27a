"""Exact softmax attention against PyTorch's F.scaled_dot_product_attention.

Also the mechanism checks.
"""

import pytest
import torch
import torch.nn.functional as F
from helpers import qkv
from hypothesis import given
from hypothesis import strategies as st
from torch.utils._python_dispatch import TorchDispatchMode

from attnkit import (
    Mechanism,
    SoftmaxAttention,
    dot_product_attention,
    key_padding_from_mask,
    softmax_attention_naive,
)
from attnkit._checks import check_mechanism_inputs
from attnkit.bench.memory import PeakMemory


def _outputs_and_grads(fn, q, k, v):
    """Run ``fn(q, k, v)`` and return the output and d(Σ out·R)/d(q, k, v) for a fixed random R."""
    out = fn(q, k, v)
    R = torch.randn(
        out.shape, generator=torch.Generator().manual_seed(123), dtype=out.dtype
    )
    grads = torch.autograd.grad((out * R).sum(), (q, k, v))
    return out.detach(), grads


def _assert_same(a, b, exact=False):
    tol = {"rtol": 0, "atol": 0} if exact else {}
    torch.testing.assert_close(a[0], b[0], **tol)
    for ga, gb, name in zip(a[1], b[1], "qkv"):
        torch.testing.assert_close(
            ga, gb, msg=lambda m, name=name: f"gradient for {name}: {m}", **tol
        )


def _random_mask(B, H, L, S, seed, per_head):
    g = torch.Generator().manual_seed(seed + 7)
    return (
        torch.rand(B, H if per_head else 1, L, S, generator=g) < 0.6
    )  # may contain fully masked rows


def _implementations():
    return {
        "dot_product_attention": lambda q, k, v, m, c: dot_product_attention(
            q, k, v, mask=m, causal=c
        )[0],
        "softmax_attention_naive": lambda q, k, v, m, c: softmax_attention_naive(
            q, k, v, mask=m, causal=c
        )[0],
        "SoftmaxAttention(fast)": lambda q, k, v, m, c: SoftmaxAttention()(
            q, k, v, mask=m, causal=c
        ),
        "SoftmaxAttention(fast=False)": lambda q, k, v, m, c: SoftmaxAttention(
            fast=False
        )(q, k, v, mask=m, causal=c),
        "SoftmaxAttention(need_weights)": lambda q, k, v, m, c: SoftmaxAttention(
            need_weights=True
        )(q, k, v, mask=m, causal=c),
    }


@pytest.mark.parametrize("name", list(_implementations()))
@given(
    B=st.integers(1, 2),
    H=st.integers(1, 3),
    L=st.integers(1, 5),
    S=st.integers(1, 5),
    use_mask=st.booleans(),
    per_head=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_equals_sdpa_with_boolean_mask(name, B, H, L, S, use_mask, per_head, seed):
    q, k, v = qkv(B, H, L, S, 3, 2, seed=seed, requires_grad=True)
    mask = _random_mask(B, H, L, S, seed, per_head) if use_mask else None
    fn = _implementations()[name]
    ours = _outputs_and_grads(lambda q, k, v: fn(q, k, v, mask, False), q, k, v)
    ref = _outputs_and_grads(
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=mask), q, k, v
    )
    _assert_same(ours, ref)


@pytest.mark.parametrize("name", list(_implementations()))
@pytest.mark.parametrize("L, S", [(4, 4), (2, 5), (5, 2)])
def test_equals_sdpa_is_causal_including_L_not_S(name, L, S):
    q, k, v = qkv(2, 2, L, S, 4, 3, seed=L * 10 + S, requires_grad=True)
    fn = _implementations()[name]
    ours = _outputs_and_grads(lambda q, k, v: fn(q, k, v, None, True), q, k, v)
    ref = _outputs_and_grads(
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), q, k, v
    )
    _assert_same(ours, ref)


def test_causal_and_mask_combine_like_sdpa():
    q, k, v = qkv(2, 2, 4, 6, 3, 2, seed=5, requires_grad=True)
    mask = _random_mask(2, 2, 4, 6, seed=5, per_head=True)
    causal = torch.ones(4, 6, dtype=torch.bool).tril()
    for fn in _implementations().values():
        ours = _outputs_and_grads(
            lambda q, k, v, fn=fn: fn(q, k, v, mask, True), q, k, v
        )
        ref = _outputs_and_grads(
            lambda q, k, v: F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask & causal
            ),
            q,
            k,
            v,
        )
        _assert_same(ours, ref)


def test_naive_and_module_identical_including_fully_masked_rows():
    q, k, v = qkv(2, 2, 3, 4, 3, 2, seed=9, requires_grad=True)
    mask = torch.ones(2, 1, 3, 4, dtype=torch.bool)
    mask[0, 0, 1] = False  # query 1 of sequence 0 sees nothing, in every head
    mask[1, 0, :, 2:] = False
    naive = _outputs_and_grads(
        lambda q, k, v: softmax_attention_naive(q, k, v, mask=mask)[0], q, k, v
    )
    for module in (SoftmaxAttention(fast=False), SoftmaxAttention(need_weights=True)):
        _assert_same(
            _outputs_and_grads(
                lambda q, k, v, module=module: module(q, k, v, mask=mask), q, k, v
            ),
            naive,
            exact=True,
        )
    _assert_same(
        _outputs_and_grads(
            lambda q, k, v: SoftmaxAttention()(q, k, v, mask=mask), q, k, v
        ),
        naive,
    )
    assert torch.all(naive[0][0, :, 1] == 0), "a fully masked row gives zeros"
    assert all(torch.isfinite(g).all() for g in naive[1])


def test_need_weights_stores_weights_and_fast_path_clears_them():
    q, k, v = qkv(1, 2, 3, 4, 3, 2, seed=1, requires_grad=True)
    module = SoftmaxAttention(need_weights=True)
    module(q, k, v, causal=True)
    w = module.attention_weights
    assert w.shape == (1, 2, 3, 4)
    torch.testing.assert_close(w, softmax_attention_naive(q, k, v, causal=True)[1])
    fast = SoftmaxAttention()
    fast.attention_weights = w
    fast(q, k, v)
    assert fast.attention_weights is None


def test_dropout_applies_only_in_training_and_is_validated():
    q, k, v = qkv(1, 1, 4, 8, 3, 2, seed=2, requires_grad=True)
    for fast in (True, False):
        module = SoftmaxAttention(dropout=0.5, fast=fast).eval()
        torch.testing.assert_close(module(q, k, v), softmax_attention_naive(q, k, v)[0])
        module.train()
        torch.manual_seed(0)
        assert not torch.allclose(module(q, k, v), softmax_attention_naive(q, k, v)[0])
    with pytest.raises(ValueError, match="dropout must be in"):
        SoftmaxAttention(dropout=1.0)


# ---------------------------------------------------------------- input checks


@pytest.mark.parametrize(
    "shapes, exc, pattern",
    [
        (
            ((2, 3, 4), (2, 1, 3, 4), (2, 1, 3, 4)),
            ValueError,
            r"q must be 4-D \(B, H, L, D\), got shape \(2, 3, 4\)",
        ),
        (
            ((2, 1, 3, 4), (2, 1, 5, 4), (2, 1, 5)),
            ValueError,
            r"v must be 4-D \(B, H, S, Dv\)",
        ),
        (
            ((2, 1, 3, 4), (1, 1, 5, 4), (1, 1, 5, 2)),
            ValueError,
            r"must agree in \(B, H\).*\(2, 1, 3, 4\), \(1, 1, 5, 4\)",
        ),
        (
            ((2, 1, 3, 4), (2, 1, 5, 3), (2, 1, 5, 2)),
            ValueError,
            r"k has feature size 3 but q has 4",
        ),
        (
            ((2, 1, 3, 4), (2, 1, 5, 4), (2, 1, 6, 2)),
            ValueError,
            r"v has 6 positions but k has 5",
        ),
    ],
)
def test_check_mechanism_inputs_shape_errors(shapes, exc, pattern):
    q, k, v = (torch.zeros(s) for s in shapes)
    with pytest.raises(exc, match=pattern):
        check_mechanism_inputs(q, k, v)
    with pytest.raises(exc, match=pattern):
        SoftmaxAttention()(q, k, v)


def test_check_mechanism_inputs_dtype_and_mask_errors():
    q, k, v = torch.zeros(1, 1, 2, 3), torch.zeros(1, 1, 4, 3), torch.zeros(1, 1, 4, 2)
    with pytest.raises(TypeError, match="q must be a floating-point tensor"):
        check_mechanism_inputs(q.long(), k, v)
    with pytest.raises(TypeError, match="q, k and v must share a dtype"):
        check_mechanism_inputs(q, k.double(), v)
    with pytest.raises(TypeError, match="mask must be a boolean tensor"):
        check_mechanism_inputs(q, k, v, torch.ones(1, 1, 2, 4))
    with pytest.raises(
        ValueError,
        match=r"mask of shape \(1, 1, 2, 5\) does not broadcast .* \(1, 1, 2, 4\)",
    ):
        check_mechanism_inputs(q, k, v, torch.ones(1, 1, 2, 5, dtype=torch.bool))
    check_mechanism_inputs(
        q, k, v, torch.ones(4, dtype=torch.bool)
    )  # broadcasts: accepted


def test_key_padding_from_mask():
    assert key_padding_from_mask(None, 2, 3, "local") is None
    m = torch.tensor([[True, True, False], [True, False, False]])
    assert torch.equal(key_padding_from_mask(m, 2, 3, "local"), m)
    assert torch.equal(key_padding_from_mask(m[:, None, None, :], 2, 3, "local"), m)
    one = torch.tensor([[True, False, True]])
    assert torch.equal(key_padding_from_mask(one, 2, 3, "local"), one.expand(2, 3))
    with pytest.raises(
        ValueError,
        match=r"'lsh' mechanism supports only key-padding masks.*\(2, 1, 3, 3\)",
    ):
        key_padding_from_mask(torch.ones(2, 1, 3, 3, dtype=torch.bool), 2, 3, "lsh")
    with pytest.raises(
        ValueError,
        match=r"key-padding mask of shape \(2, 4\) does not match batch 2 and 3 keys",
    ):
        key_padding_from_mask(torch.ones(2, 4, dtype=torch.bool), 2, 3, "lsh")
    with pytest.raises(TypeError, match="mask must be a boolean tensor"):
        key_padding_from_mask(torch.ones(2, 3), 2, 3, "lsh")
    with pytest.raises(TypeError, match="mask must be a torch.Tensor"):
        key_padding_from_mask([[True, False, True]], 1, 3, "lsh")


def test_softmax_attention_is_a_mechanism_with_the_default_flags():
    mech = SoftmaxAttention()
    assert isinstance(mech, Mechanism)
    assert (mech.supports_causal, mech.content_dependent_grouping, mech.max_len) == (
        True,
        False,
        None,
    )


class _SquareCount(TorchDispatchMode):
    """Counts the tensors of at least ``numel`` elements that operators make."""

    def __init__(self, numel):
        super().__init__()
        self.numel, self.count = numel, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and t.numel() >= self.numel:
                self.count += 1
        return out


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("train", [False, True])
def test_textbook_path_costs_no_more_than_the_three_operation_form(train, causal):
    """softmax(q kᵀ / √D) v: the explicit path makes no more L×S tensors and holds no
    more bytes at its peak than the plain three lines (beyond a copy of q), unmasked or
    causal (the plain form then builds its (L, S) mask and fills the future with -inf)."""
    B, H, L, D = 1, 2, 256, 8
    q, k, v = qkv(B, H, L, D=D, dtype=torch.float32, requires_grad=train)

    def plain():
        scores = q @ k.transpose(-2, -1) / D**0.5  # (B, H, L, S)
        if causal:
            future = torch.ones(L, L, dtype=torch.bool).triu(1)  # (L, S)
            scores = scores.masked_fill(future, float("-inf"))
        out = torch.softmax(scores, dim=-1) @ v  # (B, H, L, D)
        if train:
            out.sum().backward()

    mech = SoftmaxAttention(fast=False)
    mech(q, k, v)  # a benchmark calls it again and again: the last weights are stored

    def textbook():
        out = mech(q, k, v, causal=causal)  # (B, H, L, D)
        if train:
            out.sum().backward()

    counts, peaks = {}, {}
    for fn in (plain, textbook):
        with _SquareCount(B * H * L * L) as c, PeakMemory() as m:
            fn()
        counts[fn.__name__], peaks[fn.__name__] = c.count, m.peak
    assert counts["textbook"] <= counts["plain"], counts
    assert peaks["textbook"] <= peaks["plain"] + q.nelement() * 4, peaks


def test_unmasked_and_masked_paths_agree_and_empty_rows_stay_zero():
    """No mask: the plain softmax; an all-True mask gives the same; a fully masked row
    gives zeros with zero (finite) gradients."""
    q, k, v = qkv(2, 3, 7, 9, requires_grad=True)
    everything = torch.ones(7, 9, dtype=torch.bool)
    out_plain = _outputs_and_grads(lambda *a: softmax_attention_naive(*a)[0], q, k, v)
    out_full = _outputs_and_grads(
        lambda *a: softmax_attention_naive(*a, mask=everything)[0], q, k, v
    )
    _assert_same(out_plain, out_full)
    none_row = everything.clone()
    none_row[3] = False
    out, grads = _outputs_and_grads(
        lambda *a: softmax_attention_naive(*a, mask=none_row)[0], q, k, v
    )
    assert torch.all(out[:, :, 3] == 0)
    assert all(torch.isfinite(g).all() for g in grads)
    assert torch.all(grads[0][:, :, 3] == 0)
