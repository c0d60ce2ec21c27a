"""attnkit.convolution: attention with one relative offset per head is nn.Conv1d (Cordonnier
et al., 2020), in outputs and gradients; parameter counts of attention, CNN and RNN layers."""

import pytest
import torch
from helpers import randn
from torch import nn

from attnkit.convolution import (
    conv1d_weights_as_attention,
    convolution_as_attention,
    kernel_offsets,
    layer_parameter_counts,
    offset_attention_weights,
)
from attnkit.multihead import MultiHeadAttention


def test_offset_weights_are_one_hot_or_zero():
    w = offset_attention_weights(6, kernel_offsets(3))  # (H, L, S)
    assert w.shape == (3, 6, 6)
    assert torch.equal(w[1], torch.eye(6, dtype=torch.float64))  # offset 0
    assert torch.equal(
        w[2], torch.eye(6, dtype=torch.float64).roll(1, dims=1).triu()
    )  # +1
    assert w[0, 0].sum() == 0 and w[2, 5].sum() == 0  # beyond the ends: zero padding
    # finite sharpness: the weights approach the one-hot ones as alpha grows
    errors = [
        (offset_attention_weights(6, kernel_offsets(3), alpha=a) - w)[:, 1:-1]
        .abs()
        .max()
        for a in (1.0, 4.0, 16.0)
    ]
    assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-6


@pytest.mark.parametrize("K, bias", [(1, False), (3, True), (5, True), (7, False)])
def test_attention_reproduces_conv1d_in_outputs_and_gradients(K, bias):
    torch.manual_seed(K)
    B, L, Dvin, E = 2, 11, 4, 6
    conv = nn.Conv1d(Dvin, E, K, padding=K // 2, bias=bias).double()
    x1 = randn(B, L, Dvin, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_()
    W_v, W_o, offsets = conv1d_weights_as_attention(conv.weight.detach())
    W_o.requires_grad_()
    b_o = conv.bias.detach().clone().requires_grad_() if bias else None
    ours = convolution_as_attention(x1, W_v, W_o, b_o, offsets=offsets)  # (B, L, E)
    theirs = conv(x2.transpose(1, 2)).transpose(1, 2)  # (B, L, E)
    torch.testing.assert_close(ours, theirs, atol=1e-12, rtol=0)
    grad = randn(B, L, E, seed=1)
    ours.backward(grad)
    theirs.backward(grad)
    torch.testing.assert_close(x1.grad, x2.grad, atol=1e-12, rtol=0)
    kernel_grad = W_o.grad.reshape(E, K, Dvin).permute(0, 2, 1)  # back to (E, Dvin, K)
    torch.testing.assert_close(kernel_grad, conv.weight.grad, atol=1e-12, rtol=0)
    if bias:
        torch.testing.assert_close(b_o.grad, conv.bias.grad, atol=1e-12, rtol=0)


def test_bad_input():
    with pytest.raises(ValueError, match="kernel_size"):
        kernel_offsets(4)
    with pytest.raises(TypeError, match="kernel_size"):
        kernel_offsets(3.0)
    with pytest.raises(ValueError, match="alpha"):
        offset_attention_weights(5, kernel_offsets(3), alpha=-1.0)
    W_v, W_o, offsets = conv1d_weights_as_attention(randn(6, 4, 3))
    with pytest.raises(ValueError, match="W_v"):
        convolution_as_attention(randn(2, 5, 3), W_v, W_o, offsets=offsets)
    with pytest.raises(ValueError, match="W_o"):
        convolution_as_attention(randn(2, 5, 4), W_v, W_o[:, :5], offsets=offsets)
    with pytest.raises(ValueError, match="weight"):
        conv1d_weights_as_attention(randn(6, 4))


def n_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("d, k, bias", [(8, 3, True), (64, 5, True), (16, 3, False)])
def test_parameter_counts_match_torch_modules(d, k, bias):
    counts = layer_parameter_counts(d, k, bias=bias)
    assert counts["self-attention"] == n_params(nn.MultiheadAttention(d, 4, bias=bias))
    assert counts["self-attention"] == n_params(
        MultiHeadAttention(d, 2, bias=bias, query_size=d, key_size=d, value_size=d)
    )
    assert counts[f"CNN (k = {k})"] == n_params(nn.Conv1d(d, d, k, bias=bias))
    assert counts["RNN"] == n_params(nn.RNN(d, d, bias=bias))
    assert counts["GRU"] == n_params(nn.GRU(d, d, bias=bias))
    assert counts["LSTM"] == n_params(nn.LSTM(d, d, bias=bias))
    with pytest.raises(TypeError, match="bias"):
        layer_parameter_counts(d, k, bias=1)
