"""The Transformer block: attention and a feed-forward network, each inside a residual
connection with a LayerNorm.

A block maps ``(B, L, E)`` to ``(B, L, E)`` in two sub-layers. The first mixes positions
(multi-head attention with any registered mechanism); the second transforms each
position on its own (the position-wise feed-forward network, hidden size ``Dh``). Each
sub-layer is wrapped in a residual connection and a LayerNorm, placed in one of two
ways:

* **post-norm** (the original Transformer): ``x = LN(x + sublayer(x))``;
* **pre-norm** (most models since): ``x = x + sublayer(LN(x))``, which leaves an
  un-normalised path from the input to the output.

:func:`position_wise_ffn`, :func:`residual` and :func:`transformer_block` do the maths;
:class:`PositionWiseFFN`, :class:`TransformerBlock` and :class:`TransformerStack` own
the parameters and call them.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from ._checks import (
    check_bool,
    check_choice,
    check_ffn_inputs,
    check_positive_int,
    check_transformer_block_inputs,
)
from .multihead import MultiHeadAttention

__all__ = [
    "ACTIVATIONS",
    "position_wise_ffn",
    "residual",
    "transformer_block",
    "PositionWiseFFN",
    "TransformerBlock",
    "TransformerStack",
]

#: the activations a feed-forward network may use, by name
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu,
    "gelu": F.gelu,
}


# --- the maths


def position_wise_ffn(
    x,
    W1,
    b1,
    W2,
    b2,
    *,
    activation: str = "gelu",
    dropout: float = 0.0,
    training: bool = False,
):
    """The position-wise feed-forward network ``W2 act(W1 x + b1) + b2`` at every
    position.

    Weights use ``nn.Linear``'s layout: ``W1 (Dh, E)``, ``b1 (Dh,)`` or ``None``,
    ``W2 (E, Dh)``, ``b2 (E,)`` or ``None``. ``x (..., L, E) → (..., L, E)``; positions
    never mix, so any split of the ``L`` axis gives the same result. ``dropout`` acts on
    the hidden layer while ``training``.
    """
    check_ffn_inputs(x, W1, W2, activation, ACTIVATIONS)
    hidden = ACTIVATIONS[activation](F.linear(x, W1, b1))  # (..., L, Dh)
    hidden = F.dropout(hidden, dropout, training)
    return F.linear(hidden, W2, b2)  # (..., L, E)


def residual(x, sublayer, norm, *, norm_first: bool = True):
    """One sub-layer with its residual connection and LayerNorm,
    ``(B, L, E) → (B, L, E)``.

    ``norm_first=True`` (pre-norm): ``x + sublayer(norm(x))``;
    ``norm_first=False`` (post-norm): ``norm(x + sublayer(x))``.
    """
    if norm_first:
        return x + sublayer(norm(x))
    return norm(x + sublayer(x))


def transformer_block(
    x, attend, feed_forward, norm1, norm2, *, norm_first: bool = True
):
    """A Transformer block: an attention sub-layer, then a feed-forward sub-layer.

    Args:
        x: ``(B, L, E)``.
        attend: ``(B, L, E) → (B, L, E)``, self-attention (it mixes positions).
        feed_forward: ``(B, L, E) → (B, L, E)``, applied at each position on its own.
        norm1, norm2: the LayerNorms of the two sub-layers.
        norm_first: pre-norm (``True``) or post-norm (``False``), see :func:`residual`.

    Returns:
        ``(B, L, E)``.
    """
    check_transformer_block_inputs(x, attend, feed_forward, norm1, norm2, norm_first)
    x = residual(x, attend, norm1, norm_first=norm_first)  # (B, L, E)
    return residual(x, feed_forward, norm2, norm_first=norm_first)  # (B, L, E)


# --- thin modules


class PositionWiseFFN(nn.Module):
    """``linear2(act(linear1(x)))`` at every position: ``(..., L, E) → (..., L, E)``.

    Args:
        num_hiddens: E; ``ffn_num_hiddens``: Dh (the hidden size, often ``4 E``).
        activation: ``"gelu"`` or ``"relu"``; dropout: on the hidden layer while
            training.
    """

    def __init__(
        self,
        num_hiddens: int,
        ffn_num_hiddens: int,
        *,
        activation: str = "gelu",
        dropout: float = 0.0,
        bias: bool = True,
    ):
        super().__init__()
        check_positive_int("num_hiddens", num_hiddens)
        check_positive_int("ffn_num_hiddens", ffn_num_hiddens)
        check_choice("activation", activation, ACTIVATIONS)
        self.activation = activation
        self.dropout = dropout
        self.linear1 = nn.Linear(num_hiddens, ffn_num_hiddens, bias=bias)
        self.linear2 = nn.Linear(ffn_num_hiddens, num_hiddens, bias=bias)

    def forward(self, x):
        return position_wise_ffn(
            x,
            self.linear1.weight,
            self.linear1.bias,
            self.linear2.weight,
            self.linear2.bias,
            activation=self.activation,
            dropout=self.dropout,
            training=self.training,
        )


class TransformerBlock(nn.Module):
    """Self-attention and a feed-forward network, each with a residual connection and a
    LayerNorm: ``(B, L, E) → (B, L, E)``.

    Args:
        num_hiddens: E (``num_heads · D``); num_heads: H.
        ffn_num_hiddens: Dh, the feed-forward hidden size (default ``4 E``).
        dropout: on each sub-layer's output before the residual sum, and inside the FFN.
        norm_first: pre-norm (default) or post-norm.
        activation: the FFN's, ``"gelu"`` (default) or ``"relu"``.
        mechanism, mechanism_settings: the attention, as in :class:`MultiHeadAttention`.
        bias: biases in the attention projections (the FFN always has them).

    ``forward(x (B, L, E), valid_lens=None, *, mask=None, causal=False)``;
    ``valid_lens`` and ``mask`` are :class:`MultiHeadAttention`'s.
    """

    def __init__(
        self,
        num_hiddens: int,
        num_heads: int,
        ffn_num_hiddens: int | None = None,
        dropout: float = 0.0,
        *,
        norm_first: bool = True,
        activation: str = "gelu",
        mechanism="softmax",
        mechanism_settings: dict | None = None,
        bias: bool = False,
    ):
        super().__init__()
        check_positive_int("num_hiddens", num_hiddens)
        check_bool("norm_first", norm_first)
        if ffn_num_hiddens is None:
            ffn_num_hiddens = 4 * num_hiddens
        self.norm_first = norm_first
        self.dropout = dropout
        # the creation order (norm1, attention, norm2, ff) is fixed: seeded models
        # depend on it
        self.norm1 = nn.LayerNorm(num_hiddens)
        self.attention = MultiHeadAttention(
            num_hiddens,
            num_heads,
            mechanism=mechanism,
            mechanism_settings=mechanism_settings,
            bias=bias,
            query_size=num_hiddens,
            key_size=num_hiddens,
            value_size=num_hiddens,
        )
        self.norm2 = nn.LayerNorm(num_hiddens)
        self.ff = PositionWiseFFN(
            num_hiddens, ffn_num_hiddens, activation=activation, dropout=dropout
        )

    def forward(self, x, valid_lens=None, *, mask=None, causal: bool = False):
        def attend(h):
            out = self.attention(
                h, h, h, valid_lens, mask=mask, causal=causal
            )  # (B, L, E)
            return F.dropout(out, self.dropout, self.training)

        def feed_forward(h):
            return F.dropout(self.ff(h), self.dropout, self.training)  # (B, L, E)

        return transformer_block(
            x, attend, feed_forward, self.norm1, self.norm2, norm_first=self.norm_first
        )


class TransformerStack(nn.Module):
    """``num_layers`` :class:`TransformerBlock` s in a row, ``(B, L, E) → (B, L, E)``.

    With pre-norm blocks the stack ends with one more LayerNorm (``final_norm``), since
    the residual path itself is never normalised; with post-norm it is the identity.
    The other arguments are :class:`TransformerBlock`'s, shared by every block.
    """

    def __init__(
        self,
        num_layers: int,
        num_hiddens: int,
        num_heads: int,
        ffn_num_hiddens: int | None = None,
        dropout: float = 0.0,
        *,
        norm_first: bool = True,
        activation: str = "gelu",
        mechanism="softmax",
        mechanism_settings: dict | None = None,
        bias: bool = False,
    ):
        super().__init__()
        check_positive_int("num_layers", num_layers)
        self.blocks = nn.ModuleList(
            TransformerBlock(
                num_hiddens,
                num_heads,
                ffn_num_hiddens,
                dropout,
                norm_first=norm_first,
                activation=activation,
                mechanism=mechanism,
                mechanism_settings=mechanism_settings,
                bias=bias,
            )
            for _ in range(num_layers)
        )
        self.final_norm = nn.LayerNorm(num_hiddens) if norm_first else nn.Identity()

    def forward(self, x, valid_lens=None, *, mask=None, causal: bool = False):
        for block in self.blocks:
            x = block(x, valid_lens, mask=mask, causal=causal)  # (B, L, E)
        return self.final_norm(x)
