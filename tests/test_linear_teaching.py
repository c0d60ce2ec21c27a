"""The chunked causal linear attention the chapter teaches (a loop over chunks carrying
the state S and the normaliser z) is the fast grouped form, in outputs and gradients."""

from __future__ import annotations

import pytest
import torch
from helpers import largest_tensor, qkv
from hypothesis import given
from hypothesis import strategies as st

import attnkit.linear as linear_module
from attnkit.linear import (
    FEATURE_MAPS,
    elu_feature_map,
    linear_attention_chunked,
    linear_attention_chunked_teaching,
    linear_attention_naive,
)


@given(
    L=st.integers(0, 23),
    S=st.integers(1, 23),
    chunk=st.integers(1, 9),
    fmap=st.sampled_from(["elu", "relu"]),
    padding=st.booleans(),
    group_bytes=st.sampled_from([1, 2**22]),
    seed=st.integers(0, 10_000),
)
def test_teaching_loop_equals_grouped_chunks(
    L, S, chunk, fmap, padding, group_bytes, seed
):
    """Outputs and gradients agree in float64, for any chunk size, L != S, padding,
    and groups of one chunk (group_bytes = 1) as well as many."""
    q, k, v = qkv(B=2, H=2, L=L, S=S, D=3, Dv=4, seed=seed, requires_grad=True)
    phi = FEATURE_MAPS[fmap]
    g = torch.Generator().manual_seed(seed)
    keep = (torch.rand(2, S, generator=g) > 0.3) if padding else None  # (B, S)
    kw = dict(key_padding=keep, chunk_size=chunk)
    saved, linear_module.GROUP_STATE_BYTES = (
        linear_module.GROUP_STATE_BYTES,
        group_bytes,
    )
    try:
        fast = linear_attention_chunked(phi(q), phi(k), v, **kw)
    finally:
        linear_module.GROUP_STATE_BYTES = saved
    teach = linear_attention_chunked_teaching(phi(q), phi(k), v, **kw)
    assert teach.shape == fast.shape == (2, 2, L, 4)
    torch.testing.assert_close(teach, fast, rtol=1e-12, atol=1e-12)
    if L == 0:
        return
    r = torch.randn(fast.shape, generator=g, dtype=torch.float64)
    grads = [
        torch.autograd.grad(
            (out * r).sum(), (q, k, v), allow_unused=True, materialize_grads=True
        )
        for out in (teach, fast)
    ]
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_teaching_loop_is_the_causal_reference():
    q, k, v = qkv(B=1, H=2, L=13, D=4, Dv=3, seed=3)
    pq, pk = elu_feature_map(q), elu_feature_map(k)
    ref, _ = linear_attention_naive(pq, pk, v, causal=True)
    torch.testing.assert_close(
        linear_attention_chunked_teaching(pq, pk, v, chunk_size=4), ref
    )


def test_teaching_loop_broadcasts_and_keeps_the_dtype():
    q, k, v = qkv(B=2, H=1, L=9, D=3, Dv=2, seed=1, dtype=torch.float32)
    pq, pk = elu_feature_map(q), elu_feature_map(k)
    pk_shared = pk[:1]  # (1, 1, L, M): one set of keys for both batch rows
    out = linear_attention_chunked_teaching(pq, pk_shared, v, chunk_size=4)
    assert out.dtype == torch.float32 and out.shape == (2, 1, 9, 2)
    torch.testing.assert_close(
        out, linear_attention_chunked(pq, pk_shared, v, chunk_size=4)
    )


@pytest.mark.parametrize("chunk", [4, 16])
def test_teaching_loop_never_builds_an_L_by_L_tensor(chunk):
    L = 128
    q, k, v = qkv(B=1, H=1, L=L, D=4, Dv=4, seed=0)
    pq, pk = elu_feature_map(q), elu_feature_map(k)
    largest = largest_tensor(
        linear_attention_chunked_teaching, pq, pk, v, chunk_size=chunk
    )
    assert largest < L * L
