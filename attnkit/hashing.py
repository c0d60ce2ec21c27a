"""Locality-sensitive hash families for vectors compared by angle.

A hash family is *(r, R, α, β)-sensitive* when points closer than ``r`` collide with
probability at least ``α`` and points farther than ``R`` collide with probability at most
``β < α``. Two families are used by LSH attention:

* **random hyperplanes** (Charikar, 2002): each bit is the sign of ``x · h`` for a Gaussian
  ``h``; two vectors at angle ``θ`` get the same bit with probability ``1 − θ/π``;
* **angular LSH by random rotation** (Andoni et al., 2015; used by the Reformer): project
  with a Gaussian ``R`` of shape ``(D, M/2)`` and take ``argmax([xR; −xR])`` — one of ``M``
  buckets, ``M`` even.

Randomness always comes from an explicit seed or ``torch.Generator``; the random matrices
are drawn on the CPU (so a seed gives the same hashes on every device): move them to the
device of the vectors you hash (``.to(x.device)``); a mismatch is refused.
"""

from __future__ import annotations

import math

import torch

from ._checks import check_angle, check_hash_projection, check_hash_settings

__all__ = [
    "random_hyperplanes",
    "hyperplane_bits",
    "hyperplane_hash",
    "hyperplane_collision_probability",
    "random_rotations",
    "angular_hash",
]


def _generator(seed: int | None, generator: torch.Generator | None) -> torch.Generator:
    if generator is not None:
        return generator
    return torch.Generator().manual_seed(0 if seed is None else seed)


def random_hyperplanes(
    dim: int,
    n_bits: int,
    *,
    seed: int | None = 0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Normals of ``n_bits`` random hyperplanes through the origin: ``(D, n_bits)`` Gaussian."""
    check_hash_settings(seed, generator, dim=(dim, 1), n_bits=(n_bits, 1))
    return torch.randn(
        dim, n_bits, generator=_generator(seed, generator)
    )  # (D, n_bits)


def hyperplane_bits(x: torch.Tensor, planes: torch.Tensor) -> torch.Tensor:
    """Which side of each hyperplane ``x`` lies on.

    ``x (..., D)``, ``planes (D, n_bits)`` → bool ``(..., n_bits)``.
    """
    check_hash_projection(x, planes, "planes", 2, "(D, n_bits)")
    return (x @ planes.to(x.dtype)) >= 0  # (..., n_bits)


def hyperplane_hash(x: torch.Tensor, planes: torch.Tensor) -> torch.Tensor:
    """The bits of :func:`hyperplane_bits` read as a binary number.

    Returns int64 ``(...)`` in ``[0, 2^n_bits)``.
    """
    check_hash_projection(x, planes, "planes", 2, "(D, n_bits)")
    bits = hyperplane_bits(x, planes).long()  # (..., n_bits)
    powers = 2 ** torch.arange(bits.shape[-1], device=x.device)  # (n_bits,)
    return (bits * powers).sum(-1)  # (...)


def hyperplane_collision_probability(theta: torch.Tensor | float, n_bits: int = 1):
    """Probability that two vectors at angle ``theta`` (radians) share all ``n_bits`` bits.

    It is ``(1 − θ/π)^n_bits``.
    """
    check_angle(theta, n_bits)
    if isinstance(theta, torch.Tensor):
        return (1 - theta / torch.pi) ** n_bits
    return (1 - theta / math.pi) ** n_bits


def random_rotations(
    dim: int,
    n_buckets: int,
    n_rounds: int = 1,
    *,
    seed: int | None = 0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Gaussian projections for angular LSH: ``(R, D, M/2)`` for ``R`` rounds and ``M`` buckets.

    ``M`` must be even: each column gives two buckets, one per sign.
    """
    check_hash_settings(
        seed, generator, n_buckets, dim=(dim, 1), n_rounds=(n_rounds, 1)
    )
    return torch.randn(
        n_rounds, dim, n_buckets // 2, generator=_generator(seed, generator)
    )  # (R, D, M/2)


def angular_hash(x: torch.Tensor, rotations: torch.Tensor) -> torch.Tensor:
    """Angular LSH buckets ``argmax([xR; −xR])`` for every round.

    Args:
        x: ``(..., L, D)``.
        rotations: ``(R, D, M/2)`` from :func:`random_rotations`.

    Returns:
        int64 ``(..., R, L)`` buckets in ``[0, M)``.
    """
    check_hash_projection(x, rotations, "rotations", 3, "(R, D, M/2)")
    R, D, half = rotations.shape
    # all rounds in one product, laid out (..., L, R, M/2) so no permuted copy is needed
    rotated = (
        x @ rotations.to(x.dtype).permute(1, 0, 2).reshape(D, R * half)
    ).unflatten(-1, (R, half))
    # argmax([xR; −xR]) without building the 2× block: the largest of xR, or the most
    # negative (bucket M/2 + j); on a tie the first half wins, as argmax over the
    # concatenation would
    top, top_at = rotated.max(dim=-1)  # (..., L, R) each
    low, low_at = rotated.min(dim=-1)  # (..., L, R) each
    return torch.where(top >= -low, top_at, low_at + half).transpose(
        -1, -2
    )  # (..., R, L)
