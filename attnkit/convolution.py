"""Self-attention can be a convolution (Cordonnier, Loukas & Jaggi, 2020), and what each
kind of layer costs in parameters.

A 1-D convolution with kernel size ``K`` sums ``K`` linear maps of the input, each
applied to the input shifted by one offset ``Δ ∈ {−K//2, …, K//2}``. Multi-head
self-attention with ``H = K`` heads can do the same: give head ``h`` a
**relative-position score** that is largest at offset ``Δ_h`` — ``−α (j − i − Δ_h)²`` —
and let ``α → ∞``; the head's weights become one-hot on position ``i + Δ_h`` (zero where
that position does not exist, which is the convolution's zero padding). The head then
copies ``v_{i+Δ_h}``, and the output projection ``W_o`` applies the kernel's slice for
that offset and sums over heads.

:func:`offset_attention_weights` builds those weights, :func:`convolution_as_attention`
is the attention layer, :func:`conv1d_weights_as_attention` turns ``nn.Conv1d``'s weight
into its ``W_v`` and ``W_o``. Shapes: the kernel size is the number of heads ``H``.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from ._checks import (
    check_conv1d_weight,
    check_convolution_attention_inputs,
    check_kernel_size,
    check_offset_weights_args,
    check_parameter_count_args,
)
from .masking import masked_softmax
from .multihead import merge_heads, split_heads

__all__ = [
    "kernel_offsets",
    "offset_attention_weights",
    "convolution_as_attention",
    "conv1d_weights_as_attention",
    "layer_parameter_counts",
]


def kernel_offsets(kernel_size: int) -> torch.Tensor:
    """The offsets ``Δ_h = h − K//2`` a kernel of odd size ``K`` covers: ``(H,)`` with
    ``H = K``."""
    check_kernel_size(kernel_size)
    return torch.arange(kernel_size) - kernel_size // 2  # (H,)


def offset_attention_weights(
    num_positions: int,
    offsets: torch.Tensor,
    *,
    alpha=None,
    dtype=torch.float64,
    device=None,
) -> torch.Tensor:
    """Attention weights from relative-position scores ``−α (j − i − Δ_h)²``:
    ``(H, L, L)``.

    Args:
        num_positions: L (queries and keys are the same sequence).
        offsets: ``(H,)`` integer offsets ``Δ_h``.
        alpha: the sharpness ``α > 0``; ``None`` is the limit ``α → ∞``: each row of
            head
            ``h`` is one-hot on key ``i + Δ_h``, or all zeros when that key is outside
            ``0 … L−1``.
    """
    check_offset_weights_args(num_positions, offsets, alpha)
    pos = torch.arange(num_positions, device=device)
    delta = pos[None, :] - pos[:, None]  # (L, S): key minus query position
    shift = delta[None] - offsets.to(device)[:, None, None]  # (H, L, S): j − i − Δ_h
    if alpha is None:
        scores = torch.zeros(shift.shape, dtype=dtype, device=device)  # (H, L, S)
        return masked_softmax(scores, mask=shift == 0)  # one-hot rows, or zero rows
    return torch.softmax(-alpha * shift.to(dtype) ** 2, dim=-1)  # (H, L, S)


def convolution_as_attention(
    x, W_v, W_o, b_o=None, *, offsets: torch.Tensor, alpha=None
):
    """Multi-head self-attention with one relative offset per head, then ``W_o``.

    Args:
        x: ``(B, L, Dvin)``.
        W_v: ``(H·Dv, Dvin)``; W_o: ``(E, H·Dv)``; b_o: ``(E,)`` or ``None``.
        offsets: ``(H,)``, head ``h`` attends to position ``i + Δ_h``.
        alpha: see :func:`offset_attention_weights` (``None``: exactly one-hot).

    Returns:
        ``(B, L, E)``; with ``alpha=None`` and the weights of
        :func:`conv1d_weights_as_attention`, exactly ``nn.Conv1d`` with padding
        ``H//2``.
    """
    check_convolution_attention_inputs(x, W_v, W_o, offsets)
    H = offsets.shape[0]
    v = split_heads(F.linear(x, W_v), H)  # (B, H, L, Dv)
    weights = offset_attention_weights(
        x.shape[1], offsets, alpha=alpha, dtype=x.dtype, device=x.device
    )  # (H, L, S)
    heads = weights @ v  # (B, H, L, Dv)
    return F.linear(merge_heads(heads), W_o, b_o)  # (B, L, E)


def conv1d_weights_as_attention(weight: torch.Tensor):
    """``nn.Conv1d``'s weight ``(E, Dvin, H)`` as attention weights
    ``(W_v, W_o, offsets)``.

    Every head's value projection is the identity (``W_v``: ``H`` stacked identities,
    ``(H·Dvin, Dvin)``); head ``h``'s block of ``W_o`` is the kernel's slice
    ``weight[:, :, h]`` (``W_o``: ``(E, H·Dvin)``).
    """
    check_conv1d_weight(weight)
    E, Dvin, H = weight.shape
    eye = torch.eye(Dvin, dtype=weight.dtype, device=weight.device)
    W_v = eye.repeat(H, 1)  # (H·Dvin, Dvin)
    W_o = weight.permute(0, 2, 1).reshape(E, H * Dvin)  # (E, H·Dvin), head-major
    return W_v, W_o, kernel_offsets(H)


def layer_parameter_counts(
    width: int, kernel_size: int = 3, *, bias: bool = True
) -> dict:
    """Parameters of one layer of each kind mapping ``d = width`` features to ``d``
    features, with ``k = kernel_size`` (``d`` and ``k`` are local to this count).

    Self-attention has ``W_q, W_k, W_v, W_o`` (``4 d²``, whatever the number of heads);
    a convolution ``k d²``; an RNN ``d²`` for the input and ``d²`` for the state; a GRU
    three and an LSTM four times an RNN. With ``bias``, each weight matrix of PyTorch's
    layers brings ``d`` biases (``nn.RNN`` has two bias vectors).
    """
    check_parameter_count_args(width, kernel_size, bias)
    d, b = width, int(bias)
    rnn = 2 * d * d + 2 * b * d
    return {
        "self-attention": 4 * d * d + 4 * b * d,
        f"CNN (k = {kernel_size})": kernel_size * d * d + b * d,
        "RNN": rnn,
        "GRU": 3 * rnn,
        "LSTM": 4 * rnn,
    }
