"""Argument checks shared by every public function.

Each helper raises ``ValueError`` or ``TypeError`` with a message that names the
argument and the shape (or dtype, or device) it saw, so a wrong call fails at
the line that made it rather than as a silent broadcast further down.
"""
from __future__ import annotations

import torch

__all__ = [
    "check_tensor",
    "check_rank",
    "check_min_rank",
    "check_floating",
    "check_same_device",
    "check_same_dtype",
    "check_dim",
]


def check_tensor(name: str, x) -> None:
    """Raise ``TypeError`` unless ``x`` is a ``torch.Tensor``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")


def check_rank(name: str, x: torch.Tensor, ranks, legend: str = "") -> None:
    """Raise ``ValueError`` unless ``x.dim()`` is one of ``ranks``.

    ``legend`` describes the expected layout, e.g. ``"(B, L, D)"``.
    """
    check_tensor(name, x)
    ranks = (ranks,) if isinstance(ranks, int) else tuple(ranks)
    if x.dim() not in ranks:
        want = " or ".join(f"{r}-D" for r in ranks)
        hint = f" {legend}" if legend else ""
        raise ValueError(f"{name} must be {want}{hint}, got shape {tuple(x.shape)}")


def check_min_rank(name: str, x: torch.Tensor, rank: int, legend: str = "") -> None:
    """Raise ``ValueError`` unless ``x`` has at least ``rank`` dimensions."""
    check_tensor(name, x)
    if x.dim() < rank:
        hint = f" {legend}" if legend else ""
        raise ValueError(
            f"{name} must have at least {rank} dimensions{hint}, got shape {tuple(x.shape)}"
        )


def check_floating(name: str, x: torch.Tensor) -> None:
    """Raise ``TypeError`` unless ``x`` has a floating-point dtype."""
    check_tensor(name, x)
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")


def check_same_device(**tensors: torch.Tensor) -> None:
    """Raise ``ValueError`` unless every given tensor is on the same device."""
    items = [(n, t) for n, t in tensors.items() if t is not None]
    if not items:
        return
    first_name, first = items[0]
    for name, t in items[1:]:
        if t.device != first.device:
            raise ValueError(
                f"{name} is on {t.device} but {first_name} is on {first.device}; "
                "move them to the same device"
            )


def check_same_dtype(**tensors: torch.Tensor) -> None:
    """Raise ``TypeError`` unless every given tensor has the same dtype."""
    items = [(n, t) for n, t in tensors.items() if t is not None]
    if not items:
        return
    first_name, first = items[0]
    for name, t in items[1:]:
        if t.dtype != first.dtype:
            raise TypeError(
                f"{name} has dtype {t.dtype} but {first_name} has dtype {first.dtype}"
            )


def check_dim(name: str, x: torch.Tensor, dim: int, size: int, other: str) -> None:
    """Raise ``ValueError`` unless ``x.shape[dim] == size``; ``other`` says where ``size`` came from."""
    if x.shape[dim] != size:
        raise ValueError(
            f"{name} has size {x.shape[dim]} in dimension {dim} (shape {tuple(x.shape)}), "
            f"but {other} is {size}"
        )
