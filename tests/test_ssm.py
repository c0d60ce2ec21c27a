"""Linear attention as a state-space model (attnkit.ssm): the SSM recurrence with
``a_t = 1`` (or ``g_t``), ``b_t = φ(k_t)`` (or ``(1 − g_t) φ(k_t)``), ``c_t = φ(q_t)``
equals causal linear attention (or gated RFA), outputs and gradients in float64."""

from __future__ import annotations

import pytest
import torch
from helpers import qkv, randn

from attnkit.linear import (
    elu_feature_map,
    linear_attention_chunked,
    linear_attention_naive,
    linear_attention_recurrent,
)
from attnkit.random_features import rfa_attention, rfa_attention_naive
from attnkit.ssm import gated_rfa_ssm, linear_attention_ssm, ssm_matrix, ssm_scan

TOL = dict(atol=1e-12, rtol=0)


def features(B=2, H=3, L=13, D=4, Dv=5, seed=0):
    q, k, v = qkv(B, H, L, D=D, Dv=Dv, seed=seed)
    pq, pk = elu_feature_map(q), elu_feature_map(k)
    return [t.detach().requires_grad_(True) for t in (pq, pk, v)]


def gate(B=2, H=3, L=13, seed=7):
    g = torch.Generator().manual_seed(seed)
    return (
        0.1 + 0.8 * torch.rand(B, H, L, generator=g, dtype=torch.float64)
    ).requires_grad_()


def assert_same_with_grads(f, g, inputs):
    out_f, out_g = f(*inputs), g(*inputs)
    torch.testing.assert_close(out_f, out_g, **TOL)
    weight = randn(*out_f.shape, seed=11)
    gf = torch.autograd.grad((out_f * weight).sum(), inputs)
    gg = torch.autograd.grad((out_g * weight).sum(), inputs)
    for a, b in zip(gf, gg):
        torch.testing.assert_close(a, b, **TOL)


def test_scan_is_the_recurrence():
    a, b, c = (randn(2, 6, 3, seed=i) for i in range(3))
    x = randn(2, 6, 4, seed=3)
    h = torch.zeros(2, 3, 4, dtype=torch.float64)
    ys = []
    for t in range(6):
        h = torch.diag_embed(a[:, t]) @ h + b[:, t, :, None] @ x[:, t, None, :]
        ys.append(c[:, t, None, :] @ h)  # (2, 1, 4): y_t = C_t h_t
    torch.testing.assert_close(ssm_scan(a, b, c, x), torch.cat(ys, dim=1), **TOL)


@pytest.mark.parametrize("seed", [0, 1])
def test_scan_equals_its_matrix(seed):
    a, b, c = (randn(2, 3, 9, 4, seed=seed + i, requires_grad=True) for i in range(3))
    x = randn(2, 3, 9, 5, seed=seed + 3, requires_grad=True)
    assert_same_with_grads(
        ssm_scan, lambda a, b, c, x: ssm_matrix(a, b, c) @ x, (a, b, c, x)
    )
    w = ssm_matrix(a, b, c)
    assert torch.equal(
        w.triu(1), torch.zeros_like(w)
    )  # causal: nothing above the diagonal


def test_linear_attention_is_an_ssm():
    inputs = features()
    assert_same_with_grads(linear_attention_ssm, linear_attention_recurrent, inputs)
    assert_same_with_grads(
        linear_attention_ssm,
        lambda *x: linear_attention_naive(*x, causal=True)[0],
        inputs,
    )
    assert_same_with_grads(
        linear_attention_ssm,
        lambda *x: linear_attention_chunked(*x, chunk_size=4),
        inputs,
    )


def test_linear_attention_matrix_is_the_causal_similarity():
    pq, pk, v = (t.detach() for t in features())
    w = ssm_matrix(torch.ones_like(pk), pk, pq)  # (B, H, L, L)
    sim = (pq @ pk.transpose(-2, -1)).tril()
    torch.testing.assert_close(w, sim, **TOL)


def test_gated_rfa_is_an_ssm():
    pq, pk, v = features()
    inputs = (pq, pk, v, gate())
    assert_same_with_grads(
        gated_rfa_ssm, lambda *x: rfa_attention(*x[:3], gate=x[3], causal=True), inputs
    )
    assert_same_with_grads(
        gated_rfa_ssm,
        lambda *x: rfa_attention_naive(*x[:3], gate=x[3], causal=True)[0],
        inputs,
    )


def test_gate_is_a_decay():
    pq, pk, v = (t.detach() for t in features(B=1, H=1, L=8))
    g = gate(B=1, H=1, L=8).detach()
    a = g[..., None].expand_as(pk)
    w = ssm_matrix(a, (1 - g[..., None]) * pk, pq)
    t, j = 6, 2
    decay = g[0, 0, j + 1 : t + 1].prod() * (1 - g[0, 0, j])
    want = decay * (pq[0, 0, t] @ pk[0, 0, j])
    assert w[0, 0, t, j].item() == pytest.approx(want.item(), abs=1e-14)


def test_empty_and_bad_input():
    a, b, c = (randn(2, 0, 3, seed=i) for i in range(3))
    assert ssm_scan(a, b, c, randn(2, 0, 4)).shape == (2, 0, 4)
    assert ssm_matrix(a, b, c).shape == (2, 0, 0)
    a, b, c = (randn(2, 5, 3, seed=i) for i in range(3))
    x = randn(2, 5, 4)
    with pytest.raises(ValueError, match="a has shape"):
        ssm_scan(a[..., :2], b, c, x)
    with pytest.raises(ValueError, match="x"):
        ssm_scan(a, b, c, x[:, :4])
    with pytest.raises(TypeError, match="c"):
        ssm_scan(a, b, c.long(), x)
    with pytest.raises(ValueError, match="gate"):
        gated_rfa_ssm(*(t.detach() for t in features()), torch.rand(2, 3, 5))
    with pytest.raises(ValueError, match="eps"):
        linear_attention_ssm(*(t.detach() for t in features()), eps=0.0)
