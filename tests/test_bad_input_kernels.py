"""Bad input to the kernel functions of chapters 7-9.

The kernels: linear attention, random features, Nyström and Synthesizer.

Every public function is called with mutated arguments — integer, boolean and complex tensors,
a tensor on the ``meta`` device beside CPU tensors, a wrong rank, mismatched sizes, bad settings —
and must raise ``TypeError``/``ValueError`` whose message names the argument. Empty batches and
sequences give an output of the right (empty or zero) shape.
"""

from __future__ import annotations

import pytest
import torch
from helpers import randn

from attnkit import linear as lin
from attnkit import nystrom as ny
from attnkit import random_features as rf
from attnkit import synthesizer as syn

B, H, L, S, D, DV, M = 2, 3, 5, 6, 4, 3, 8


def _features(L=L, S=S, B=B):
    g = torch.Generator().manual_seed(0)
    return {
        "phi_q": torch.rand(B, H, L, M, generator=g, dtype=torch.float64) + 0.1,
        "phi_k": torch.rand(B, H, S, M, generator=g, dtype=torch.float64) + 0.1,
        "v": randn(B, H, S, DV, seed=1),
    }


def _qkv(L=L, S=S, B=B):
    return {
        "q": randn(B, H, L, D, seed=2),
        "k": randn(B, H, S, D, seed=3),
        "v": randn(B, H, S, DV, seed=4),
    }


def _omega():
    return rf.random_projection(M, D, seed=0).double()


def _kp(B=B, S=S):
    kp = torch.ones(B, S, dtype=torch.bool)
    kp[0, -1] = False
    return kp


def _state():
    return lin.linear_attention_init_state((B, H), M, DV, dtype=torch.float64)


# name -> (function, argument factory, tensor arguments whose rank is checked)
CASES = {
    "elu_feature_map": (lin.elu_feature_map, lambda: {"x": randn(B, L, D)}, []),
    "relu_feature_map": (lin.relu_feature_map, lambda: {"x": randn(B, L, D)}, []),
    "mask_key_features": (
        lin.mask_key_features,
        lambda: {"phi_k": _features()["phi_k"], "key_padding": _kp()},
        ["phi_k"],
    ),
    "linear_attention_naive": (
        lin.linear_attention_naive,
        lambda: {**_features(), "key_padding": _kp()},
        ["phi_q", "phi_k", "v"],
    ),
    "linear_attention_noncausal": (
        lin.linear_attention_noncausal,
        lambda: {**_features(), "key_padding": _kp()},
        ["phi_q", "phi_k", "v"],
    ),
    "linear_attention_recurrent": (
        lin.linear_attention_recurrent,
        lambda: {**_features(), "key_padding": _kp()},
        ["phi_q", "phi_k", "v"],
    ),
    "linear_attention_cumsum": (
        lin.linear_attention_cumsum,
        lambda: {**_features(), "key_padding": _kp()},
        ["phi_q", "phi_k", "v"],
    ),
    "linear_attention_chunked": (
        lin.linear_attention_chunked,
        lambda: {**_features(), "key_padding": _kp()},
        ["phi_q", "phi_k", "v"],
    ),
    "linear_attention_chunked_teaching": (
        lin.linear_attention_chunked_teaching,
        lambda: {**_features(), "key_padding": _kp()},
        ["phi_q", "phi_k", "v"],
    ),
    "linear_attention": (
        lin.linear_attention,
        lambda: {**_features(), "key_padding": _kp(), "causal": True},
        ["phi_q", "phi_k", "v"],
    ),
    "linear_attention_step": (
        lin.linear_attention_step,
        lambda: {
            "state": _state(),
            "phi_q_i": _features()["phi_q"][:, :, 0],
            "phi_k_i": _features()["phi_k"][:, :, 0],
            "v_i": _features()["v"][:, :, 0],
            "key_allowed": _kp()[:, :1].expand(B, H),
        },
        ["phi_q_i", "phi_k_i", "v_i"],
    ),
    "positive_log_features": (
        rf.positive_log_features,
        lambda: {"x": randn(B, L, D), "omega": _omega()},
        ["x", "omega"],
    ),
    "positive_features": (
        rf.positive_features,
        lambda: {"x": randn(B, L, D), "omega": _omega(), "stabilizer": randn(B, L, 1)},
        ["x", "omega"],
    ),
    "trig_features": (
        rf.trig_features,
        lambda: {"x": randn(B, L, D), "omega": _omega(), "log_scale": randn(B, L, 1)},
        ["x", "omega"],
    ),
    "key_stabilizer": (
        rf.key_stabilizer,
        lambda: {"log_k": randn(B, H, S, M), "key_padding": _kp()},
        ["log_k"],
    ),
    "performer_features": (
        rf.performer_features,
        lambda: {
            "q": _qkv()["q"],
            "k": _qkv()["k"],
            "omega": _omega(),
            "key_padding": _kp(),
        },
        ["q", "k", "omega"],
    ),
    "performer_attention_naive": (
        rf.performer_attention_naive,
        lambda: {**_qkv(), "omega": _omega(), "key_padding": _kp()},
        ["q", "k", "v", "omega"],
    ),
    "performer_attention": (
        rf.performer_attention,
        lambda: {**_qkv(), "omega": _omega(), "key_padding": _kp()},
        ["q", "k", "v", "omega"],
    ),
    "rfa_features": (
        rf.rfa_features,
        lambda: {"x": randn(B, L, D), "omega": _omega()},
        ["x", "omega"],
    ),
    "rfa_gate": (
        rf.rfa_gate,
        lambda: {"k": randn(B, S, D), "weight": randn(D), "bias": randn(1)[0]},
        ["weight"],
    ),
    "rfa_attention_naive": (
        rf.rfa_attention_naive,
        lambda: {
            **_features(L=S),
            "gate": torch.rand(B, H, S, dtype=torch.float64),
            "key_padding": _kp(),
            "causal": True,
        },
        ["phi_q", "phi_k", "v", "gate"],
    ),
    "rfa_attention": (
        rf.rfa_attention,
        lambda: {
            **_features(L=S),
            "gate": torch.rand(B, H, S, dtype=torch.float64),
            "key_padding": _kp(),
            "causal": True,
        },
        ["phi_q", "phi_k", "v", "gate"],
    ),
    "arccos_features": (
        rf.arccos_features,
        lambda: {"x": randn(B, L, D), "omega": _omega()},
        ["x", "omega"],
    ),
    "arccos_kernel": (
        rf.arccos_kernel,
        lambda: {"q": _qkv()["q"], "k": _qkv()["k"]},
        ["q", "k"],
    ),
    "arccos_attention_naive": (
        rf.arccos_attention_naive,
        lambda: {**_qkv(), "omega": _omega(), "key_padding": _kp(), "causal": True},
        ["q", "k", "v", "omega"],
    ),
    "arccos_attention": (
        rf.arccos_attention,
        lambda: {**_qkv(), "omega": _omega(), "key_padding": _kp(), "causal": True},
        ["q", "k", "v", "omega"],
    ),
    "nystrom_matrices": (
        ny.nystrom_matrices,
        lambda: {
            "q": _qkv()["q"],
            "k": _qkv()["k"],
            "num_landmarks": 2,
            "key_padding": _kp(),
        },
        ["q", "k"],
    ),
    "segment_means": (
        ny.segment_means,
        lambda: {"x": randn(B, S, D), "num_landmarks": 2, "valid": _kp()},
        ["x"],
    ),
    "iterative_pinv": (
        ny.iterative_pinv,
        lambda: {"a": torch.softmax(randn(B, 4, 4), -1), "iterations": 6},
        ["a"],
    ),
    "nystrom_attention_naive": (
        ny.nystrom_attention_naive,
        lambda: {**_qkv(), "num_landmarks": 2, "key_padding": _kp()},
        ["q", "k", "v"],
    ),
    "nystrom_attention": (
        ny.nystrom_attention,
        lambda: {**_qkv(), "num_landmarks": 2, "key_padding": _kp()},
        ["q", "k", "v"],
    ),
    "dense_synthesizer_logits": (
        syn.dense_synthesizer_logits,
        lambda: {
            "x": randn(B, L, D),
            "W1": randn(7, D),
            "b1": randn(7),
            "W2": randn(S, 7),
            "b2": randn(S),
        },
        ["x", "W1", "b1", "W2", "b2"],
    ),
    "factorized_dense_logits": (
        syn.factorized_dense_logits,
        lambda: {
            "x": randn(B, L, D),
            "W1": randn(7, D),
            "b1": randn(7),
            "Wa": randn(2, 7),
            "ba": randn(2),
            "Wb": randn(3, 7),
            "bb": randn(3),
            "max_len": S,
        },
        ["x", "W1", "b1", "Wa", "ba", "Wb", "bb"],
    ),
    "factorized_random_logits": (
        syn.factorized_random_logits,
        lambda: {"R1": randn(H, L, 2), "R2": randn(H, S, 2)},
        ["R1", "R2"],
    ),
    "crop_logits": (
        syn.crop_logits,
        lambda: {"logits": randn(H, S, S), "num_queries": L, "num_keys": S},
        ["logits"],
    ),
    "mix_logits": (
        syn.mix_logits,
        lambda: {"logits": [randn(B, L, S), randn(B, L, S)], "alphas": randn(2)},
        ["alphas"],
    ),
    "synthesizer_attention": (
        syn.synthesizer_attention,
        lambda: {
            "logits": randn(1, H, L, S),
            "v": randn(B, H, S, DV),
            "mask": _kp()[:, None, None, :],
        },
        ["logits", "v"],
    ),
    "synthesizer_attention_naive": (
        syn.synthesizer_attention_naive,
        lambda: {
            "logits": randn(1, H, L, S),
            "v": randn(B, H, S, DV),
            "mask": _kp()[:, None, None, :],
        },
        ["logits", "v"],
    ),
}
BOOL_ARGS = {"key_padding", "key_allowed", "valid", "mask"}


def _call(name, **override):
    fn, make, _ = CASES[name]
    return fn(**{**make(), **override})


def _tensor_args(name):
    return [k for k, v in CASES[name][1]().items() if isinstance(v, torch.Tensor)]


def test_every_public_function_is_covered():
    public = {
        n
        for mod in (lin, rf, ny, syn)
        for n in mod.__all__
        if callable(getattr(mod, n))
        and not isinstance(getattr(mod, n), type)
        and n[0].islower()
    }
    # not kernels: helpers called on checked arguments, the state constructor, the projection draws,
    # and the length validator (tested below)
    helpers = {
        "accumulation_dtype",
        "key_padding_view",
        "align_causal",
        "linear_attention_init_state",
        "gaussian_matrix",
        "orthogonal_matrix",
        "random_projection",
        "check_length",
        # the named steps of linear_attention_chunked, called on its checked arguments
        "exclusive_chunk_states",
        "chunk_outputs",
    }
    assert public - helpers == set(CASES)


@pytest.mark.parametrize("name", list(CASES))
def test_the_good_call_works(name):
    _call(name)


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.complex64])
@pytest.mark.parametrize(
    "name,arg", [(n, a) for n in CASES for a in _tensor_args(n) if a not in BOOL_ARGS]
)
def test_integer_boolean_complex_tensors_are_refused(name, arg, dtype):
    good = CASES[name][1]()[arg]
    bad = (good * 3).to(dtype) if dtype is not torch.bool else good > 0
    with pytest.raises(TypeError, match=arg):
        _call(name, **{arg: bad})


@pytest.mark.parametrize(
    "name,arg", [(n, a) for n in CASES for a in _tensor_args(n) if a in BOOL_ARGS]
)
def test_masks_must_be_boolean(name, arg):
    good = CASES[name][1]()[arg]
    with pytest.raises(TypeError, match=arg):
        _call(name, **{arg: good.double()})


@pytest.mark.parametrize("name,arg", [(n, a) for n in CASES for a in _tensor_args(n)])
def test_a_tensor_on_another_device_is_refused(name, arg):
    """The fuzzer found garbage from rfa_attention and nystrom_attention on mixed devices."""
    if len(_tensor_args(name)) + ("state" in CASES[name][1]()) < 2:
        pytest.skip("one tensor argument: nothing to mix")
    good = CASES[name][1]()[arg]
    with pytest.raises(
        ValueError, match=arg.split("_i")[0] if arg.endswith("_i") else arg
    ):
        _call(name, **{arg: good.to("meta")})


@pytest.mark.parametrize("name,arg", [(n, a) for n in CASES for a in CASES[n][2]])
def test_wrong_rank_is_refused(name, arg):
    with pytest.raises(ValueError, match=arg):
        _call(name, **{arg: torch.zeros((), dtype=torch.float64)})


BAD_SETTINGS = [
    # (function, override, exception, text the message must contain)
    (
        "linear_attention_naive",
        {"v": randn(B, H, S + 1, DV)},
        ValueError,
        "v has 7 positions",
    ),
    (
        "linear_attention_noncausal",
        {"phi_k": torch.rand(B, H, S, M + 1, dtype=torch.float64)},
        ValueError,
        "phi_k",
    ),
    (
        "linear_attention_cumsum",
        {"phi_q": torch.rand(3, H, L, M, dtype=torch.float64)},
        ValueError,
        "phi_q",
    ),
    ("linear_attention_chunked", {"chunk_size": 0}, ValueError, "chunk_size"),
    ("linear_attention_chunked", {"chunk_size": 2.0}, TypeError, "chunk_size"),
    ("linear_attention_chunked", {"chunk_size": True}, TypeError, "chunk_size"),
    ("linear_attention", {"causal_form": "scan"}, ValueError, "causal_form"),
    ("linear_attention_recurrent", {"eps": float("nan")}, ValueError, "eps"),
    ("linear_attention_recurrent", {"eps": 0.0}, ValueError, "eps"),
    (
        "linear_attention_naive",
        {"key_padding": torch.ones(B, 1, S, dtype=torch.bool)},
        ValueError,
        "key_padding",
    ),
    (
        "linear_attention_naive",
        {"key_padding": torch.ones(S, dtype=torch.bool)},
        ValueError,
        "key_padding",
    ),
    (
        "linear_attention_naive",
        {"key_padding": torch.ones(B, S + 1, dtype=torch.bool)},
        ValueError,
        "key_padding",
    ),
    ("linear_attention_step", {"v_i": randn(B, H, DV + 1)}, ValueError, "v_i"),
    ("mask_key_features", {"phi_k": torch.rand(S, M)}, ValueError, "phi_k"),
    (
        "performer_attention",
        {"omega": rf.random_projection(M, D + 1).double()},
        ValueError,
        "omega",
    ),
    ("performer_attention", {"kind": "cosine"}, ValueError, "kind"),
    ("performer_features", {"kind": "cosine"}, ValueError, "kind"),
    ("performer_attention", {"chunk_size": -1}, ValueError, "chunk_size"),
    ("positive_features", {"stabilizer": randn(B, L, 2)}, ValueError, "stabilizer"),
    ("trig_features", {"log_scale": randn(3, L, 1)}, ValueError, "log_scale"),
    ("rfa_features", {"sigma": float("nan")}, ValueError, "sigma"),
    ("rfa_features", {"sigma": 0}, ValueError, "sigma"),
    ("rfa_gate", {"weight": randn(D + 1)}, ValueError, "weight"),
    ("rfa_attention", {"causal": False}, ValueError, "causal=True"),
    (
        "rfa_attention",
        {"gate": torch.rand(B, H, S - 1, dtype=torch.float64)},
        ValueError,
        "gate",
    ),
    (
        "rfa_attention_naive",
        {"phi_q": torch.rand(B, H, S - 1, M, dtype=torch.float64)},
        ValueError,
        "L = S",
    ),
    ("segment_means", {"num_landmarks": 0}, ValueError, "num_landmarks"),
    (
        "segment_means",
        {"valid": torch.ones(B, S + 1, dtype=torch.bool)},
        ValueError,
        "valid",
    ),
    (
        "iterative_pinv",
        {"iterations": 10**9},
        ValueError,
        "iterations must be between 1 and 100",
    ),
    ("iterative_pinv", {"iterations": 0}, ValueError, "iterations"),
    ("iterative_pinv", {"iterations": 6.0}, TypeError, "iterations"),
    ("iterative_pinv", {"iterations": True}, TypeError, "iterations"),
    ("iterative_pinv", {"a": randn(B, 4, 3)}, ValueError, "square"),
    ("nystrom_attention", {"num_landmarks": 0}, ValueError, "num_landmarks"),
    ("nystrom_attention", {"num_landmarks": 2.5}, TypeError, "num_landmarks"),
    ("nystrom_attention", {"num_landmarks": False}, TypeError, "num_landmarks"),
    ("nystrom_attention", {"pinv_iterations": 0}, ValueError, "pinv_iterations"),
    (
        "nystrom_attention_naive",
        {"pinv_iterations": 10**9},
        ValueError,
        "pinv_iterations",
    ),
    ("nystrom_attention", {"k": randn(B, H, S, D + 1)}, ValueError, "but k has 5"),
    ("dense_synthesizer_logits", {"W1": randn(7, D + 1)}, ValueError, "W1"),
    ("dense_synthesizer_logits", {"b2": randn(S + 1)}, ValueError, "b2"),
    (
        "dense_synthesizer_logits",
        {"W2": randn(S, 7, dtype=torch.float32)},
        TypeError,
        "W2",
    ),
    ("factorized_dense_logits", {"max_len": 7}, ValueError, "max_len"),
    ("factorized_random_logits", {"R2": randn(H, S, 3)}, ValueError, "R1 and R2"),
    ("crop_logits", {"num_queries": S + 1}, ValueError, "max_len"),
    ("crop_logits", {"num_keys": -1}, ValueError, "num_keys"),
    ("crop_logits", {"num_queries": 2.0}, TypeError, "num_queries"),
    ("mix_logits", {"alphas": randn(3)}, ValueError, "mixing weights"),
    (
        "mix_logits",
        {"logits": [randn(B, L, S), randn(B, L, S + 1)]},
        ValueError,
        "broadcast",
    ),
    ("synthesizer_attention", {"logits": randn(1, H, L, S + 1)}, ValueError, "logits"),
    ("synthesizer_attention", {"logits": randn(1, H + 1, L, S)}, ValueError, "logits"),
    (
        "synthesizer_attention",
        {"mask": torch.ones(B, H, L, S + 1, dtype=torch.bool)},
        ValueError,
        "mask",
    ),
    (
        "synthesizer_attention_naive",
        {"logits": randn(1, H, L, S, dtype=torch.float32)},
        TypeError,
        "logits",
    ),
]


@pytest.mark.parametrize(
    "name,override,exc,text",
    BAD_SETTINGS,
    ids=[f"{n}-{'-'.join(o)}-{i}" for i, (n, o, _, _) in enumerate(BAD_SETTINGS)],
)
def test_bad_sizes_and_settings(name, override, exc, text):
    with pytest.raises(exc) as info:
        _call(name, **override)
    assert text in str(info.value), str(info.value)


def test_check_length_names_max_len():
    with pytest.raises(ValueError, match="max_len is 4"):
        syn.check_length(5, 3, 4)
    syn.check_length(4, 4, 4)


def test_init_state_settings():
    with pytest.raises(ValueError, match="num_features"):
        lin.linear_attention_init_state((B,), 0, DV)
    with pytest.raises(TypeError, match="dtype"):
        lin.linear_attention_init_state((B,), M, DV, dtype=torch.int64)
    with pytest.raises(TypeError, match="batch_shape"):
        lin.linear_attention_init_state(B, M, DV)
    with pytest.raises(TypeError, match="m must be an int"):
        rf.random_projection(8.0, D)
    with pytest.raises(ValueError, match="d must be at least 1"):
        rf.orthogonal_matrix(8, 0)


# ---------------------------------------------------------------- empty batches and sequences
EMPTY = {
    "linear_attention_naive": lambda B, L, S: lin.linear_attention_naive(
        **_features(L, S, B)
    )[0],
    "linear_attention_noncausal": lambda B, L, S: lin.linear_attention_noncausal(
        **_features(L, S, B)
    ),
    "linear_attention_recurrent": lambda B, L, S: lin.linear_attention_recurrent(
        **_features(L, S, B)
    ),
    "linear_attention_cumsum": lambda B, L, S: lin.linear_attention_cumsum(
        **_features(L, S, B)
    ),
    "linear_attention_chunked": lambda B, L, S: lin.linear_attention_chunked(
        **_features(L, S, B), chunk_size=2
    ),
    "performer_attention": lambda B, L, S: rf.performer_attention(
        **_qkv(L, S, B), omega=_omega()
    ),
    "performer_attention_causal": lambda B, L, S: rf.performer_attention(
        **_qkv(L, S, B), omega=_omega(), causal=True
    ),
    "performer_attention_trig": lambda B, L, S: rf.performer_attention(
        **_qkv(L, S, B), omega=_omega(), kind="trig"
    ),
    "performer_attention_naive": lambda B, L, S: rf.performer_attention_naive(
        **_qkv(L, S, B), omega=_omega()
    )[0],
    "rfa_attention": lambda B, L, S: rf.rfa_attention(
        **_features(L, S, B), causal=True
    ),
    "rfa_attention_gated": lambda B, L, S: rf.rfa_attention(
        **_features(S, S, B), causal=True, gate=torch.rand(B, H, S, dtype=torch.float64)
    ),
    "rfa_attention_naive": lambda B, L, S: rf.rfa_attention_naive(**_features(L, S, B))[
        0
    ],
    "nystrom_attention": lambda B, L, S: ny.nystrom_attention(
        **_qkv(L, S, B), num_landmarks=2
    ),
    "nystrom_attention_naive": lambda B, L, S: ny.nystrom_attention_naive(
        **_qkv(L, S, B), num_landmarks=2
    )[0],
}


@pytest.mark.parametrize("name", list(EMPTY))
@pytest.mark.parametrize("b,l,s", [(0, L, S), (B, 0, S), (B, L, 0), (0, 0, 0)])
def test_empty_batch_or_sequence_gives_an_empty_or_zero_output(name, b, l, s):  # noqa: E741
    if name == "rfa_attention_gated":
        l = s  # noqa: E741  # the gated recurrence needs L = S
    out = EMPTY[name](b, l, s)
    assert out.shape == (b, H, l, DV)
    if s == 0:  # no key at all: every row is zero, never NaN
        assert torch.equal(out, torch.zeros_like(out))


# ---------------------------------------------------------------- key padding is (B, S)
KEY_PADDING = {
    "linear_attention_noncausal": lambda kp, **a: lin.linear_attention_noncausal(
        **_features(), key_padding=kp
    ),
    "linear_attention_chunked": lambda kp, **a: lin.linear_attention_chunked(
        **_features(), key_padding=kp, chunk_size=2
    ),
    "performer_attention": lambda kp, **a: rf.performer_attention(
        **_qkv(), omega=_omega(), key_padding=kp
    ),
    "performer_attention_causal": lambda kp, **a: rf.performer_attention(
        **_qkv(), omega=_omega(), key_padding=kp, causal=True
    ),
    "rfa_attention": lambda kp, **a: rf.rfa_attention(**_features(), key_padding=kp),
    "nystrom_attention": lambda kp, **a: ny.nystrom_attention(
        **_qkv(), num_landmarks=2, key_padding=kp
    ),
}


@pytest.mark.parametrize("name", list(KEY_PADDING))
def test_a_b_by_s_mask_masks_each_batch_element_in_every_head(name):
    """B = 2, H = 3 and a (2, S) mask: batch 0 loses its last two keys, batch 1 its first one;
    the padded keys' values then have no effect on that batch element, and only on it."""
    kp = torch.ones(B, S, dtype=torch.bool)
    kp[0, -2:] = False
    kp[1, 0] = False
    out = KEY_PADDING[name](kp)
    assert out.shape == (B, H, L, DV)
    kp_first = kp.clone()
    kp_first[1] = True  # only batch element 0 padded
    out_first = KEY_PADDING[name](kp_first)
    torch.testing.assert_close(
        out[0], out_first[0]
    )  # batch 0 the same whatever batch 1's mask
    assert not torch.allclose(out[1], out_first[1])  # batch 1's mask acts on batch 1
    with pytest.raises(ValueError, match="key_padding"):
        KEY_PADDING[name](kp[:, None, :])  # (B, 1, S) is not (B, S)


# ---------------------------------------------------------------- half precision
@pytest.mark.parametrize(
    "call",
    [
        lambda q, k, v: rf.performer_attention(q, k, v, _omega().float(), kind="trig"),
        lambda q, k, v: rf.performer_attention_naive(
            q, k, v, _omega().float(), kind="trig"
        )[0],
        lambda q, k, v: rf.RFA().eval()(q, k, v, causal=True),
        lambda q, k, v: rf.rfa_attention(
            rf.rfa_features(q, _omega().float()),
            rf.rfa_features(k, _omega().float()),
            v,
            causal=True,
        ),
    ],
)
def test_sin_cos_features_refuse_float16_and_accept_bfloat16(call):
    """Sin/cos normalisers can be near 0, so the float32 result may not fit float16 (the fuzzer saw
    inf for N(0, 1) inputs): refused with a clear message; bfloat16 has float32's range."""
    q, k, v = (randn(B, H, S, D, seed=s, dtype=torch.float32) for s in range(3))
    with pytest.raises(TypeError, match="float16"):
        call(q.half(), k.half(), v.half())
    out = call(q.bfloat16(), k.bfloat16(), v.bfloat16())
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()


@pytest.mark.parametrize(
    "mech",
    [
        lin.LinearAttention(),
        rf.PerformerAttention(n_features=16).eval(),
        ny.NystromAttention(num_landmarks=2),
    ],
    ids=["linear", "performer", "nystrom"],
)
def test_positive_kernels_work_in_float16(mech):
    q, k, v = (randn(B, H, 64, 16, seed=s, dtype=torch.float32) for s in range(3))
    out = mech(q.half(), k.half(), v.half())
    assert out.dtype == torch.float16 and torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), mech(q, k, v), atol=3e-2, rtol=3e-2)


# ---------------------------------------------------------------- modules check their settings
@pytest.mark.parametrize(
    "make,text",
    [
        (lambda: lin.LinearAttention(eps=float("nan")), "eps"),
        (lambda: lin.LinearAttention(chunk_size=1.5), "chunk_size"),
        (lambda: rf.PerformerAttention(n_features=True), "n_features"),
        (lambda: rf.PerformerAttention(chunk_size=0), "chunk_size"),
        (lambda: rf.RFA(sigma=float("nan")), "sigma"),
        (lambda: rf.RFA(seed=1.5), "seed"),
        (lambda: ny.NystromAttention(num_landmarks=0), "num_landmarks"),
        (lambda: ny.NystromAttention(pinv_iterations=10**9), "pinv_iterations"),
        (lambda: ny.NystromAttention(pinv_iterations=0), "pinv_iterations"),
        (lambda: syn.RandomSynthesizer(max_len=0), "max_len"),
        (lambda: syn.RandomSynthesizer(num_heads=0), "num_heads"),
        (lambda: syn.FactorizedRandomSynthesizer(rank=0), "rank"),
        (lambda: syn.DenseSynthesizer(hidden=0), "hidden"),
        (lambda: syn.FactorizedDenseSynthesizer(max_len=16, factors=(2, 2)), "factors"),
    ],
)
def test_modules_check_their_settings(make, text):
    with pytest.raises((TypeError, ValueError), match=text):
        make()


def test_modules_derive_from_mechanism_with_default_flags():
    from attnkit.mechanisms import Mechanism

    for cls in (
        lin.LinearAttention,
        rf.PerformerAttention,
        rf.RFA,
        ny.NystromAttention,
        syn.RandomSynthesizer,
        syn.FactorizedRandomSynthesizer,
        syn.DenseSynthesizer,
        syn.FactorizedDenseSynthesizer,
        syn.SynthesizerMixture,
    ):
        assert issubclass(cls, Mechanism), cls
        assert "content_dependent_grouping" not in vars(cls) and "max_len" not in vars(
            cls
        ), cls
    assert ny.NystromAttention.supports_causal is False
    assert syn.RandomSynthesizer(max_len=9).max_len == 9  # an instance attribute
