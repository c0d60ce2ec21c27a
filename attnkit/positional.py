"""Sinusoidal positional encoding: giving order-blind self-attention a sense of position.

Self-attention treats its input as a set: permuting the positions permutes the outputs
the same way (it is *permutation-equivariant*), so "dog bites man" and "man bites dog"
get the same per-word outputs. Adding a position-dependent vector to each input breaks
that symmetry. The sinusoidal encoding of Vaswani et al. (2017) uses, for position ``i``
and feature pair ``2j, 2j+1``::

    P[i, 2j]   = sin(i / base^(2j / d))
    P[i, 2j+1] = cos(i / base^(2j / d))
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import check_counts, check_positional_inputs

__all__ = ["sinusoidal_encoding", "add_positional_encoding", "PositionalEncoding"]


def sinusoidal_encoding(
    num_positions: int,
    num_hiddens: int,
    *,
    base: float = 10000.0,
    dtype=torch.float32,
    device=None,
) -> torch.Tensor:
    """The sinusoidal table ``P`` of shape ``(num_positions, num_hiddens)``.

    Even features ``2j`` hold ``sin(i / base^(2j/d))``, odd features ``2j+1`` the
    matching ``cos``. An odd ``num_hiddens`` drops the last cosine.
    """
    check_counts(num_positions=(num_positions, 0), num_hiddens=(num_hiddens, 1))
    pos = torch.arange(num_positions, dtype=torch.float64, device=device)[
        :, None
    ]  # (N, 1)
    freq = base ** (
        torch.arange(0, num_hiddens, 2, dtype=torch.float64, device=device)
        / num_hiddens
    )
    angles = pos / freq  # (N, ceil(d/2))
    P = torch.zeros(num_positions, num_hiddens, dtype=torch.float64, device=device)
    P[:, 0::2] = torch.sin(angles)
    P[:, 1::2] = torch.cos(angles[:, : num_hiddens // 2])
    return P.to(dtype)  # (N, d)


def add_positional_encoding(X: torch.Tensor, P: torch.Tensor) -> torch.Tensor:
    """Add the first ``L`` rows of the table ``P (max_len, d)`` to ``X (B, L, d)``.

    ``P`` is cast to ``X``'s dtype; ``L ≤ max_len``. Returns ``(B, L, d)``.
    """
    check_positional_inputs(X, P)
    return X + P[: X.shape[1]].to(X.dtype)  # (B, L, d)


class PositionalEncoding(nn.Module):
    """Add the sinusoidal table to the inputs, then dropout (d2l's signature).

    ``PositionalEncoding(num_hiddens, dropout, max_len=1000)``;
    ``forward(X (B, L, num_hiddens)) -> (B, L, num_hiddens)`` for ``L ≤ max_len``.
    The table is kept in ``P``, shape ``(1, max_len, num_hiddens)`` as in d2l.
    """

    def __init__(self, num_hiddens: int, dropout: float = 0.0, max_len: int = 1000):
        super().__init__()
        check_counts(num_hiddens=(num_hiddens, 1), max_len=(max_len, 0))
        self.num_hiddens = num_hiddens
        self.max_len = max_len
        self.dropout = nn.Dropout(dropout)
        self.register_buffer(
            "P", sinusoidal_encoding(max_len, num_hiddens)[None], persistent=False
        )

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.dropout(
            add_positional_encoding(X, self.P[0])
        )  # (B, L, num_hiddens)
