"""Reversible residual layers (RevNet) and the chunked feed-forward network: the
Reformer's two ways to train deep models in less memory.

Training keeps, for the backward pass, the inputs of every layer: memory that grows with
the number of layers. A **reversible** block (Gomez et al., 2017) works on a pair
``(x1, x2)``:

    y1 = x1 + F(x2),        y2 = x2 + G(y1)

and its inputs can be computed back from its outputs, ``x2 = y2 − G(y1)``,
``x1 = y1 − F(x2)``. So the backward pass can start from the last outputs and rebuild
each block's inputs as it goes: :class:`ReversibleStackFunction` stores only the outputs
of the whole stack and pays with one more forward pass of every block. In the Reformer,
``F`` is attention and ``G`` the feed-forward network, each after a LayerNorm.

The feed-forward network acts on each position alone, so it can run on a few positions
at a time (:func:`chunked_feed_forward`): the same numbers with a hidden tensor ``C``
times smaller.

:func:`reversible_stack_naive` is the reference (ordinary autograd through the same
blocks); :func:`reversible_stack` the memory-saving version. ``F`` and ``G`` must be
deterministic (no dropout while training): the backward pass calls them again and needs
the same values. :mod:`attnkit.bench.memory` measures what they save and allocate.
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import (
    check_bool,
    check_chunked_ffn_inputs,
    check_positive_int,
    check_reversible_inputs,
)
from .block import PositionWiseFFN
from .multihead import MultiHeadAttention

__all__ = [
    "reversible_forward",
    "reversible_inverse",
    "reversible_stack",
    "reversible_stack_naive",
    "ReversibleStackFunction",
    "chunked_feed_forward",
    "AttentionBranch",
    "FeedForwardBranch",
    "ReversibleBlock",
    "ReversibleStack",
]


def reversible_forward(x1, x2, F, G):
    """One reversible block: ``y1 = x1 + F(x2)``, ``y2 = x2 + G(y1)``; ``(B, L, E)``."""
    y1 = x1 + F(x2)
    y2 = x2 + G(y1)
    return y1, y2


def reversible_inverse(y1, y2, F, G):
    """The block's inputs from its outputs: ``x2 = y2 − G(y1)``, ``x1 = y1 − F(x2)``."""
    x2 = y2 - G(y1)
    x1 = y1 - F(x2)
    return x1, x2


def reversible_stack_naive(x1, x2, layers):
    """The reference: the blocks ``layers = [(F, G), …]`` in a row, with ordinary
    autograd (which keeps every block's intermediate tensors for the backward pass)."""
    check_reversible_inputs(x1, x2, layers)
    for F, G in layers:
        x1, x2 = reversible_forward(x1, x2, F, G)  # (B, L, E) each
    return x1, x2


def _trainable(module: nn.Module) -> tuple:
    return tuple(p for p in module.parameters() if p.requires_grad)


class ReversibleStackFunction(torch.autograd.Function):
    """Reversible blocks whose backward pass rebuilds each block's inputs from its
    outputs.

    ``apply(x1, x2, layers, *params)``: ``params`` are the parameters of every ``F`` and
    ``G`` in ``layers`` order (so that autograd returns their gradients). Only the two
    outputs are saved for backward, however many blocks there are.
    """

    @staticmethod
    def forward(ctx, x1, x2, layers, *params):
        with torch.no_grad():  # nothing inside the stack is recorded
            for F, G in layers:
                x1, x2 = reversible_forward(x1, x2, F, G)
        ctx.layers = layers
        ctx.save_for_backward(x1, x2)
        return x1, x2

    @staticmethod
    def backward(ctx, dy1, dy2):
        y1, y2 = ctx.saved_tensors
        grads = []  # parameter gradients, last block first
        for F, G in reversed(ctx.layers):
            g_params, f_params = _trainable(G), _trainable(F)
            chunk_size = getattr(G, "chunk_size", None)
            g, dg = _recompute_grad(G, y1, g_params, dy2, chunk_size)
            x2 = y2 - g  # the block's input x2, rebuilt
            dy1 = dy1 + dg[0]  # y1 reaches the loss directly and through G
            f, df = _recompute_grad(F, x2, f_params, dy1, None)
            y1, y2 = y1 - f, x2  # x1 and x2: the previous block's outputs
            dy2 = dy2 + df[0]  # dL/dx2; dL/dx1 = dy1 unchanged
            grads.append(df[1:] + dg[1:])
        param_grads = [g for block in reversed(grads) for g in block]
        return (dy1, dy2, None, *param_grads)


def _recompute_grad(fn, x, params, d_out, chunk_size):
    """``fn(x)`` again, and the gradients of ``<d_out, fn(x)>`` for ``x`` and
    ``params``.

    With a ``chunk_size``, ``fn`` is position-wise, so it is recomputed and
    differentiated ``chunk_size`` positions at a time (its hidden tensors never exist
    for all of ``L``).
    """
    outs, dxs, dparams = [], [], [torch.zeros_like(p) for p in params]
    for part in range(0, x.shape[1], chunk_size or x.shape[1]):
        rows = slice(part, part + chunk_size) if chunk_size else slice(None)
        with torch.enable_grad():
            x_part = x[:, rows].detach().requires_grad_()  # (B, c, E)
            out = fn(x_part)
            d = torch.autograd.grad(
                out, (x_part, *params), d_out[:, rows], allow_unused=True
            )
        outs.append(out.detach())
        dxs.append(d[0])
        dparams = [acc if g is None else acc + g for acc, g in zip(dparams, d[1:])]
    return torch.cat(outs, dim=1), (torch.cat(dxs, dim=1), *dparams)


def reversible_stack(x1, x2, layers):
    """The blocks ``layers = [(F, G), …]`` in a row, ``(B, L, E)`` pairs in and out,
    with the memory-saving backward of :class:`ReversibleStackFunction`; same values and
    gradients as :func:`reversible_stack_naive` up to rounding."""
    check_reversible_inputs(x1, x2, layers)
    params = [p for F, G in layers for p in (*_trainable(F), *_trainable(G))]
    return ReversibleStackFunction.apply(x1, x2, tuple(layers), *params)


def chunked_feed_forward(x, ff, chunk_size: int):
    """``ff`` applied to ``chunk_size`` positions at a time: ``(B, L, E) → (B, L, E)``.

    Exactly ``ff(x)`` when ``ff`` treats each position on its own (a position-wise FFN),
    with a hidden tensor of ``chunk_size`` positions instead of ``L``.
    """
    check_chunked_ffn_inputs(x, chunk_size)
    parts = x.split(chunk_size, dim=1)  # (B, c, E) each
    return torch.cat([ff(part) for part in parts], dim=1)  # (B, L, E)


class AttentionBranch(nn.Module):
    """``F(x) = MHA(LN(x))``, the attention branch of a reversible block (``causal`` is
    a setting, since ``F`` takes ``x`` only)."""

    def __init__(
        self,
        num_hiddens: int,
        num_heads: int,
        *,
        causal: bool = False,
        mechanism="softmax",
        mechanism_settings: dict | None = None,
    ):
        super().__init__()
        check_bool("causal", causal)
        self.causal = causal
        self.norm = nn.LayerNorm(num_hiddens)
        self.attention = MultiHeadAttention(
            num_hiddens,
            num_heads,
            mechanism=mechanism,
            mechanism_settings=mechanism_settings,
            query_size=num_hiddens,
            key_size=num_hiddens,
            value_size=num_hiddens,
        )

    def forward(self, x):
        h = self.norm(x)  # (B, L, E)
        return self.attention(h, h, h, causal=self.causal)  # (B, L, E)


class FeedForwardBranch(nn.Module):
    """``G(x) = FFN(LN(x))``, run ``chunk_size`` positions at a time when it is
    given."""

    def __init__(
        self,
        num_hiddens: int,
        ffn_num_hiddens: int,
        *,
        activation: str = "gelu",
        chunk_size: int | None = None,
    ):
        super().__init__()
        if chunk_size is not None:
            check_positive_int("chunk_size", chunk_size)
        self.chunk_size = chunk_size
        self.norm = nn.LayerNorm(num_hiddens)
        self.ff = PositionWiseFFN(num_hiddens, ffn_num_hiddens, activation=activation)

    def position_wise(self, x):
        return self.ff(self.norm(x))  # (B, c, E) → (B, c, E)

    def forward(self, x):
        if self.chunk_size is None:
            return self.position_wise(x)
        return chunked_feed_forward(x, self.position_wise, self.chunk_size)


class ReversibleBlock(nn.Module):
    """A Reformer block: ``F`` = attention, ``G`` = feed-forward, on a pair
    ``(x1, x2)``.

    ``forward(x1, x2) → (y1, y2)``; ``inverse(y1, y2) → (x1, x2)``; all ``(B, L, E)``.
    """

    def __init__(
        self,
        num_hiddens: int,
        num_heads: int,
        ffn_num_hiddens: int | None = None,
        *,
        causal: bool = False,
        activation: str = "gelu",
        chunk_size: int | None = None,
        mechanism="softmax",
        mechanism_settings: dict | None = None,
    ):
        super().__init__()
        if ffn_num_hiddens is None:
            ffn_num_hiddens = 4 * num_hiddens
        self.f = AttentionBranch(
            num_hiddens,
            num_heads,
            causal=causal,
            mechanism=mechanism,
            mechanism_settings=mechanism_settings,
        )
        self.g = FeedForwardBranch(
            num_hiddens, ffn_num_hiddens, activation=activation, chunk_size=chunk_size
        )

    def forward(self, x1, x2):
        return reversible_forward(x1, x2, self.f, self.g)

    def inverse(self, y1, y2):
        return reversible_inverse(y1, y2, self.f, self.g)


class ReversibleStack(nn.Module):
    """``num_layers`` :class:`ReversibleBlock` s: ``x (B, L, E) → (B, L, E)``.

    The input is used twice, ``(x1, x2) = (x, x)``, and the output is ``(y1 + y2) / 2``.
    ``reversible=False`` runs the same blocks with ordinary autograd (the reference, and
    the baseline of a memory comparison). The other arguments are
    :class:`ReversibleBlock`'s.
    """

    def __init__(
        self,
        num_layers: int,
        num_hiddens: int,
        num_heads: int,
        ffn_num_hiddens: int | None = None,
        *,
        reversible: bool = True,
        causal: bool = False,
        activation: str = "gelu",
        chunk_size: int | None = None,
        mechanism="softmax",
        mechanism_settings: dict | None = None,
    ):
        super().__init__()
        check_positive_int("num_layers", num_layers)
        check_bool("reversible", reversible)
        self.reversible = reversible
        self.blocks = nn.ModuleList(
            ReversibleBlock(
                num_hiddens,
                num_heads,
                ffn_num_hiddens,
                causal=causal,
                activation=activation,
                chunk_size=chunk_size,
                mechanism=mechanism,
                mechanism_settings=mechanism_settings,
            )
            for _ in range(num_layers)
        )

    def forward(self, x):
        layers = [(block.f, block.g) for block in self.blocks]
        run = reversible_stack if self.reversible else reversible_stack_naive
        y1, y2 = run(x, x, layers)  # (B, L, E) each
        return (y1 + y2) / 2
