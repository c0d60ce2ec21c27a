"""Helpers shared by the unit tests: seeded inputs and a recorder of the largest tensor.

The hypothesis profile every property test uses is registered in ``conftest.py``
(``settings.load_profile("attnkit")``: 25 examples, no deadline), so test files use plain
``@given(...)`` without their own ``@settings``.
"""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ["randn", "qkv", "LargestTensor", "largest_tensor"]


def randn(
    *shape: int,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    requires_grad: bool = False,
) -> torch.Tensor:
    """A seeded standard-normal tensor (float64 by default, so equalities can be tight)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g, dtype=dtype)
    return x.requires_grad_(requires_grad)


def qkv(
    B: int = 2,
    H: int = 3,
    L: int = 11,
    S: int | None = None,
    D: int = 5,
    Dv: int | None = None,
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    scale: float = 1.0,
    requires_grad: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Seeded ``q (B, H, L, D)``, ``k (B, H, S, D)``, ``v (B, H, S, Dv)``; ``S = L`` and ``Dv = D``
    unless given. ``scale`` multiplies ``q`` and ``k`` (large scores at large ``scale``)."""
    S = L if S is None else S
    Dv = D if Dv is None else Dv
    g = torch.Generator().manual_seed(seed)
    q = scale * torch.randn(B, H, L, D, generator=g, dtype=dtype)
    k = scale * torch.randn(B, H, S, D, generator=g, dtype=dtype)
    v = torch.randn(B, H, S, Dv, generator=g, dtype=dtype)
    return tuple(t.requires_grad_(requires_grad) for t in (q, k, v))


class LargestTensor(TorchDispatchMode):
    """Records the number of elements of the largest tensor any operator returns inside it.

    ``with LargestTensor() as rec: fn(...)`` then ``rec.largest``: a test of the complexity
    *shape* (no ``n × n`` tensor is ever built) that does not depend on wall-clock time.
    """

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def largest_tensor(fn, *args, **kwargs) -> int:
    """``fn(*args, **kwargs)`` under :class:`LargestTensor`; returns the largest ``numel`` seen."""
    with LargestTensor() as rec:
        fn(*args, **kwargs)
    return rec.largest
