"""Attention as soft lookup: hard lookup, average pooling and Nadaraya–Watson regression.

A database answers a query with the value whose key matches it (hard lookup).
Attention answers with an average of *all* values, weighted by how well each key
matches (soft lookup). Nadaraya–Watson kernel regression (1964) is the oldest
example: the weights come from a Gaussian kernel of the query–key distance.

Shapes here use L queries and S key–value pairs; keys and queries are scalars
``(L,)``/``(S,)`` or vectors ``(L, D)``/``(S, D)``; values are ``(S,)`` or ``(S, Dv)``.
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import (
    check_counts,
    check_floating,
    check_lookup_inputs,
    check_pooling_inputs,
)
from .masking import masked_softmax

__all__ = [
    "squared_distances",
    "hard_lookup",
    "average_pooling",
    "gaussian_kernel_weights",
    "nadaraya_watson",
    "NWKernelRegression",
    "regression_target",
    "make_regression_data",
]


def _as_points(x: torch.Tensor) -> torch.Tensor:
    """``(N,)`` scalars or ``(N, D)`` vectors → ``(N, D)``."""
    return x[:, None] if x.dim() == 1 else x


def squared_distances(queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """``‖q_i − k_j‖²`` for every pair: ``(L,)|(L, D)`` and ``(S,)|(S, D)`` → ``(L, S)``."""
    check_lookup_inputs(queries, keys)
    q, k = _as_points(queries), _as_points(keys)  # (L, D), (S, D)
    return ((q[:, None, :] - k[None, :, :]) ** 2).sum(-1)  # (L, S)


def hard_lookup(
    queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Database-style lookup: each query gets the value of its nearest key.

    Returns ``(output (L,)|(L, Dv), weights (L, S))`` where each row of weights is
    one-hot (the first nearest key wins ties). Needs at least one key.
    """
    check_lookup_inputs(queries, keys, values, min_keys=1)
    d2 = squared_distances(queries, keys)  # (L, S)
    weights = torch.zeros_like(d2).scatter_(
        1, d2.argmin(dim=1, keepdim=True), 1.0
    )  # (L, S)
    return weights @ values, weights  # (L,)|(L, Dv), (L, S)


def average_pooling(values: torch.Tensor, num_queries: int) -> torch.Tensor:
    """The query-blind baseline: every query gets the mean of all values.

    Returns ``(L,)`` or ``(L, Dv)``. Needs at least one value.
    """
    check_pooling_inputs(values, num_queries)
    mean = values.mean(dim=0, keepdim=True)  # (1,) or (1, Dv)
    return mean.expand(num_queries, *values.shape[1:]).clone()  # (L,) or (L, Dv)


def gaussian_kernel_weights(
    queries: torch.Tensor, keys: torch.Tensor, bandwidth: float | torch.Tensor = 1.0
) -> torch.Tensor:
    """Nadaraya–Watson weights ``softmax_j(−‖q_i − k_j‖² / (2σ²))`` with bandwidth σ.

    Returns ``(L, S)``; each row sums to 1 (``S = 0`` gives an empty ``(L, 0)``).
    """
    check_lookup_inputs(queries, keys, bandwidth=bandwidth)
    scores = -squared_distances(queries, keys) / (2 * bandwidth**2)  # (L, S)
    return masked_softmax(scores)


def nadaraya_watson(
    queries: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    *,
    bandwidth: float | torch.Tensor = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Nadaraya–Watson kernel regression with a Gaussian kernel.

    ``f(q) = Σ_j softmax_j(−‖q − k_j‖² / 2σ²) v_j``.

    Returns ``(output (L,)|(L, Dv), weights (L, S))``; with no keys (``S = 0``) the
    output is zeros.
    """
    check_lookup_inputs(queries, keys, values, bandwidth)
    weights = gaussian_kernel_weights(queries, keys, bandwidth)  # (L, S)
    return weights @ values, weights  # (L,)|(L, Dv), (L, S)


class NWKernelRegression(nn.Module):
    """Nadaraya–Watson regression with a learnable inverse bandwidth ``w`` (σ = 1/|w|).

    ``forward(queries (L,), keys (S,), values (S,))`` returns ``(L,)`` and keeps the
    weights ``(L, S)`` in ``attention_weights``.
    """

    def __init__(self, init_w: float = 1.0):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(float(init_w)))
        self.attention_weights: torch.Tensor | None = None

    def forward(self, queries, keys, values):
        out, self.attention_weights = nadaraya_watson(
            queries, keys, values, bandwidth=1 / self.w
        )
        return out


def regression_target(x: torch.Tensor) -> torch.Tensor:
    """The smooth function the chapter's toy regression tries to recover: ``2 sin x + x^0.8``."""
    check_floating("x", x)
    return 2 * torch.sin(x) + x**0.8


def make_regression_data(
    n_train: int = 50, n_test: int = 50, *, noise: float = 0.5, seed: int = 0
) -> dict[str, torch.Tensor]:
    """A seeded 1-D regression problem on ``[0, 5)``.

    Returns a dict with ``x_train (n_train,)`` (sorted), ``y_train (n_train,)`` (noisy),
    ``x_test (n_test,)`` (an even grid) and ``y_truth (n_test,)`` (noise-free).
    """
    check_counts(n_train=(n_train, 1), n_test=(n_test, 1), seed=(seed, -(2**63)))
    g = torch.Generator().manual_seed(seed)
    x_train, _ = torch.sort(torch.rand(n_train, generator=g) * 5)
    y_train = regression_target(x_train) + noise * torch.randn(n_train, generator=g)
    x_test = torch.arange(n_test, dtype=torch.float32) * (5 / n_test)
    return {
        "x_train": x_train,
        "y_train": y_train,
        "x_test": x_test,
        "y_truth": regression_target(x_test),
    }
