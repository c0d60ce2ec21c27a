"""attnkit.multihead: head split/merge, the explicit reference, MultiHeadAttention.

Parity with torch.nn.MultiheadAttention (weights copied; its masks are True = ignore)
and with d2l 1.0.3's MultiHeadAttention; properties with hypothesis; gradcheck in float64.
"""

import math

import pytest
import torch
from d2l_compat import import_d2l_torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from attnkit import causal_mask
from attnkit.mechanisms import SoftmaxAttention
from attnkit.multihead import (
    MultiHeadAttention,
    merge_heads,
    multi_head_attention,
    split_heads,
    valid_lens_to_mask,
)


def make_pair(E=16, H=4, kdim=None, vdim=None, seed=0, **kw):
    """A torch.nn.MultiheadAttention and an attnkit MHA with the same weights."""
    torch.manual_seed(seed)
    ref = nn.MultiheadAttention(
        E, H, bias=False, batch_first=True, kdim=kdim, vdim=vdim
    ).eval()
    ours = MultiHeadAttention(
        E, H, 0.0, query_size=E, key_size=kdim or E, value_size=vdim or E, **kw
    ).eval()
    with torch.no_grad():
        if ref._qkv_same_embed_dim:
            W_q, W_k, W_v = ref.in_proj_weight.chunk(3)
        else:
            W_q, W_k, W_v = ref.q_proj_weight, ref.k_proj_weight, ref.v_proj_weight
        ours.W_q.weight.copy_(W_q)
        ours.W_k.weight.copy_(W_k)
        ours.W_v.weight.copy_(W_v)
        ours.W_o.weight.copy_(ref.out_proj.weight)
    return ref, ours


# ---------------------------------------------------------------- split / merge


def test_split_heads_layout():
    X = torch.arange(2 * 3 * 8.0).reshape(2, 3, 8)  # (B, L, H*D) with H=2, D=4
    Y = split_heads(X, 2)
    assert Y.shape == (2, 2, 3, 4)
    # head h holds features h*D ... (h+1)*D-1 of every position
    torch.testing.assert_close(Y[1, 0, 2], X[1, 2, 0:4])
    torch.testing.assert_close(Y[1, 1, 2], X[1, 2, 4:8])


@given(
    B=st.integers(1, 3), L=st.integers(1, 7), H=st.integers(1, 4), D=st.integers(1, 5)
)
def test_split_then_merge_is_identity(B, L, H, D):
    X = torch.randn(B, L, H * D)
    torch.testing.assert_close(merge_heads(split_heads(X, H)), X, atol=0, rtol=0)
    Y = torch.randn(B, H, L, D)
    torch.testing.assert_close(split_heads(merge_heads(Y), H), Y, atol=0, rtol=0)


def test_split_heads_errors():
    with pytest.raises(ValueError, match="not divisible by num_heads=3"):
        split_heads(torch.randn(2, 3, 8), 3)
    with pytest.raises(ValueError, match="X must be 3-D"):
        split_heads(torch.randn(3, 8), 2)
    with pytest.raises(ValueError, match="X must be 4-D"):
        merge_heads(torch.randn(2, 3, 8))


def test_valid_lens_to_mask_shapes():
    m1 = valid_lens_to_mask(torch.tensor([2, 3]), 4, 5)
    assert m1.shape == (2, 1, 1, 5)
    assert m1[0, 0, 0].tolist() == [True, True, False, False, False]
    m2 = valid_lens_to_mask(torch.tensor([[1, 2, 3, 4], [5, 5, 5, 0]]), 4, 5)
    assert m2.shape == (2, 1, 4, 5)
    assert m2[1, 0, 3].sum() == 0 and m2[0, 0, 2].sum() == 3


# ---------------------------------------------------------------- parity with PyTorch


@pytest.mark.parametrize("fast", [True, False])
def test_parity_with_torch_self_attention(fast):
    ref, ours = make_pair(mechanism_settings={"fast": fast})
    X = torch.randn(3, 7, 16)
    with torch.no_grad():
        expected, _ = ref(X, X, X, need_weights=False)
        torch.testing.assert_close(ours(X, X, X), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("fast", [True, False])
def test_parity_with_torch_key_padding_and_cross_sizes(fast):
    ref, ours = make_pair(E=12, H=3, kdim=10, vdim=6, mechanism_settings={"fast": fast})
    q, k, v = torch.randn(2, 5, 12), torch.randn(2, 9, 10), torch.randn(2, 9, 6)
    lens = torch.tensor([4, 9])
    keep = torch.arange(9)[None, :] < lens[:, None]  # (B, S) True = real key
    with torch.no_grad():
        expected, _ = ref(
            q, k, v, key_padding_mask=~keep, need_weights=False
        )  # torch: True = ignore
        torch.testing.assert_close(ours(q, k, v, lens), expected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(
            ours(q, k, v, mask=keep[:, None, None, :]), expected, atol=1e-5, rtol=1e-5
        )


@pytest.mark.parametrize("fast", [True, False])
def test_parity_with_torch_causal(fast):
    ref, ours = make_pair(mechanism_settings={"fast": fast})
    X = torch.randn(2, 6, 16)
    banned = ~causal_mask(6)  # torch: True = ignore
    with torch.no_grad():
        expected, _ = ref(X, X, X, attn_mask=banned, need_weights=False)
        torch.testing.assert_close(
            ours(X, X, X, causal=True), expected, atol=1e-5, rtol=1e-5
        )


def test_weights_match_torch_average_and_per_head():
    ref, ours = make_pair(need_weights=True)
    X = torch.randn(2, 5, 16)
    with torch.no_grad():
        _, w_ref = ref(X, X, X, need_weights=True, average_attn_weights=False)
        ours(X, X, X)
    assert ours.attention_weights.shape == (2, 4, 5, 5)
    torch.testing.assert_close(ours.attention_weights, w_ref, atol=1e-6, rtol=1e-5)


def test_fast_path_keeps_no_weights_and_explicit_path_does():
    _, fast = make_pair()
    X = torch.randn(1, 3, 16)
    fast(X, X, X)
    assert fast.attention_weights is None
    _, slow = make_pair(need_weights=True)
    slow(X, X, X)
    torch.testing.assert_close(slow.attention_weights.sum(-1), torch.ones(1, 4, 3))


# ---------------------------------------------------------------- the explicit reference


def test_functional_reference_equals_module_and_scales_by_head_size():
    _, ours = make_pair(E=16, H=4, need_weights=True)
    q, k = torch.randn(2, 3, 16), torch.randn(2, 5, 16)
    lens = torch.tensor([2, 5])
    out, w = multi_head_attention(
        q,
        k,
        k,
        ours.W_q.weight,
        ours.W_k.weight,
        ours.W_v.weight,
        ours.W_o.weight,
        4,
        mask=valid_lens_to_mask(lens, 3, 5),
    )
    torch.testing.assert_close(out, ours(q, k, k, lens), atol=1e-6, rtol=1e-5)
    # scores of head 0, by hand: scaled by 1/sqrt(D) with D = 16/4 = 4 (not 1/sqrt(16))
    qh = (q @ ours.W_q.weight.T)[..., :4]
    kh = (k @ ours.W_k.weight.T)[..., :4]
    s = qh[1] @ kh[1].T / math.sqrt(4)
    torch.testing.assert_close(w[1, 0], torch.softmax(s, -1), atol=1e-6, rtol=1e-5)


# ---------------------------------------------------------------- parity with d2l 1.0.3


def test_parity_with_d2l_multihead_attention():
    d2l = import_d2l_torch()
    torch.manual_seed(0)
    theirs = d2l.MultiHeadAttention(20, 5, 0.0).eval()
    ours = MultiHeadAttention(20, 5, 0.0).eval()  # lazy projections, as in d2l
    q, kv = torch.randn(2, 4, 12), torch.randn(2, 6, 12)
    for lens in (
        None,
        torch.tensor([3, 2]),
        torch.tensor([[1, 2, 3, 4], [6, 5, 4, 3]]),
    ):
        with torch.no_grad():
            theirs(q, kv, kv, lens)
            ours(q, kv, kv, lens)
            ours.load_state_dict(theirs.state_dict())
            torch.testing.assert_close(
                ours(q, kv, kv, lens), theirs(q, kv, kv, lens), atol=1e-5, rtol=1e-5
            )


# ---------------------------------------------------------------- properties


@given(L=st.integers(2, 8), seed=st.integers(0, 10_000))
def test_self_attention_is_permutation_equivariant(L, seed):
    torch.manual_seed(seed)
    mha = (
        MultiHeadAttention(8, 2, 0.0, query_size=8, key_size=8, value_size=8)
        .double()
        .eval()
    )
    X = torch.randn(2, L, 8, dtype=torch.float64)
    perm = torch.randperm(L)
    with torch.no_grad():
        torch.testing.assert_close(
            mha(X[:, perm], X[:, perm], X[:, perm]), mha(X, X, X)[:, perm]
        )


@given(n=st.integers(1, 6), seed=st.integers(0, 10_000), fast=st.booleans())
def test_masked_keys_never_influence_outputs(n, seed, fast):
    torch.manual_seed(seed)
    mha = MultiHeadAttention(
        8,
        2,
        0.0,
        mechanism_settings={"fast": fast},
        query_size=8,
        key_size=8,
        value_size=8,
    ).eval()
    q, k, v = torch.randn(1, 3, 8), torch.randn(1, 7, 8), torch.randn(1, 7, 8)
    k2, v2 = k.clone(), v.clone()
    k2[:, n:] = 100 * torch.randn(1, 7 - n, 8)
    v2[:, n:] = 100 * torch.randn(1, 7 - n, 8)
    lens = torch.tensor([n])
    with torch.no_grad():
        torch.testing.assert_close(
            mha(q, k2, v2, lens), mha(q, k, v, lens), atol=1e-5, rtol=1e-5
        )


def test_fully_masked_rows_give_finite_output():
    _, ours = make_pair()
    X = torch.randn(2, 4, 16)
    out = ours(X, X, X, torch.tensor([0, 4]))
    assert torch.isfinite(out).all()
    # a row that sees nothing gets zero from every head, so W_o (no bias) gives zero
    torch.testing.assert_close(out[0], torch.zeros(4, 16))


@pytest.mark.parametrize("fast", [True, False])
def test_gradcheck_float64_reaches_all_projections(fast):
    torch.manual_seed(0)
    mha = MultiHeadAttention(
        6,
        2,
        0.0,
        bias=True,
        mechanism_settings={"fast": fast},
        query_size=5,
        key_size=4,
        value_size=3,
    ).double()
    q = torch.randn(2, 3, 5, dtype=torch.float64, requires_grad=True)
    k = torch.randn(2, 4, 4, dtype=torch.float64, requires_grad=True)
    v = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    lens = torch.tensor([2, 4])
    assert torch.autograd.gradcheck(
        lambda a, b, c: mha(a, b, c, lens, causal=True), (q, k, v)
    )
    params = dict(mha.named_parameters())
    names = list(params)
    assert set(names) == {f"W_{p}.{t}" for p in "qkvo" for t in ("weight", "bias")}
    assert torch.autograd.gradcheck(
        lambda *ps: torch.func.functional_call(
            mha, dict(zip(names, ps)), (q.detach(), k.detach(), v.detach(), lens)
        ),
        tuple(p.detach().clone().requires_grad_() for p in params.values()),
    )
    mha(q, k, v, lens).sum().backward()
    for name, p in params.items():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


# ---------------------------------------------------------------- other mechanisms and bad input


def test_mechanism_by_name_by_module_and_settings():
    X = torch.randn(2, 9, 8)
    by_name = MultiHeadAttention(
        8, 2, 0.0, mechanism="softmax", query_size=8, key_size=8, value_size=8
    )
    by_module = MultiHeadAttention(
        8,
        2,
        0.0,
        mechanism=SoftmaxAttention(fast=False),
        query_size=8,
        key_size=8,
        value_size=8,
    )
    by_module.load_state_dict(by_name.state_dict())
    torch.testing.assert_close(
        by_module(X, X, X), by_name(X, X, X), atol=1e-6, rtol=1e-5
    )
    assert by_name.attention.fast and not by_module.attention.fast
    dropped = MultiHeadAttention(8, 2, 0.5)
    assert dropped.attention.dropout == 0.5


def test_every_registered_mechanism_plugs_in():
    from attnkit.registry import MECHANISMS

    X = torch.randn(2, 9, 8)
    for name in MECHANISMS:
        torch.manual_seed(0)
        mha = MultiHeadAttention(8, 2, mechanism=name).eval()
        with torch.no_grad():
            out = mha(X, X, X, torch.tensor([5, 9]))
        assert out.shape == (2, 9, 8) and torch.isfinite(out).all(), name


def test_bad_input_errors():
    with pytest.raises(
        ValueError, match="num_hiddens=10 must be a positive multiple of num_heads=3"
    ):
        MultiHeadAttention(10, 3, 0.0)
    with pytest.raises(
        ValueError, match="unknown mechanism 'softmx'.*known mechanisms: .*softmax"
    ):
        MultiHeadAttention(8, 2, 0.0, mechanism="softmx")
    with pytest.raises(TypeError, match="mechanism must be a name or an nn.Module"):
        MultiHeadAttention(8, 2, 0.0, mechanism=3)
    with pytest.raises(TypeError, match="rejected the settings"):
        MultiHeadAttention(8, 2, 0.0, mechanism_settings={"window": 3})
    with pytest.raises(ValueError, match="given both"):
        MultiHeadAttention(8, 2, 0.1, mechanism_settings={"dropout": 0.2})
    with pytest.raises(ValueError, match="configure the module itself"):
        MultiHeadAttention(8, 2, 0.1, mechanism=SoftmaxAttention())
    mha = MultiHeadAttention(8, 2, 0.0, query_size=8, key_size=8, value_size=8)
    X = torch.randn(2, 5, 8)
    with pytest.raises(ValueError, match="same batch size"):
        mha(X, torch.randn(3, 5, 8), torch.randn(3, 5, 8))
    with pytest.raises(ValueError, match="same length S"):
        mha(X, torch.randn(2, 5, 8), torch.randn(2, 4, 8))
    with pytest.raises(ValueError, match=r"keys has feature size 7 .* expects 8"):
        mha(X, torch.randn(2, 5, 7), torch.randn(2, 5, 8))
    with pytest.raises(ValueError, match="queries must be 3-D"):
        mha(X[0], X, X)
    with pytest.raises(TypeError, match="floating-point"):
        mha(X.long(), X, X)
    with pytest.raises(ValueError, match="valid_lens has shape"):
        mha(X, X, X, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match=r"valid_lens must lie in \[0, 5\]"):
        mha(X, X, X, torch.tensor([1, 6]))


def test_bench_mha_runs_and_reports_all_three_models(tmp_path):
    from attnkit.bench import mha as bench_mha

    out = tmp_path / "bench.csv"
    bench_mha.main(
        [
            "--batch",
            "1",
            "--length",
            "8",
            "--width",
            "16",
            "--heads",
            "2",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--out",
            str(out),
        ]
    )
    lines = out.read_text().splitlines()
    assert lines[0] == "batch,length,width,heads,threads,model,median_ms,ratio_to_torch"
    models = [line.split(",")[5] for line in lines[1:]]
    assert models == [
        "torch.nn.MultiheadAttention",
        "attnkit fast path (SDPA)",
        "attnkit explicit path",
    ]
    assert lines[1].endswith(",1.0")  # torch's ratio to itself
