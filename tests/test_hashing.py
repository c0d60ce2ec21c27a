"""The hash families of attnkit.hashing: random hyperplanes (SimHash) and random rotations."""

import math

import pytest
import torch
from torch.nn import functional as F

from attnkit.hashing import (
    angular_hash,
    hyperplane_bits,
    hyperplane_collision_probability,
    hyperplane_hash,
    random_hyperplanes,
    random_rotations,
)
from attnkit.lsh import LSHAttention

f64 = torch.float64


# ---------------------------------------------------------------- hash families
def test_hyperplane_collision_rate_matches_one_minus_theta_over_pi():
    planes = random_hyperplanes(8, 20000, seed=3).to(f64)  # (D, n_bits)
    x = F.normalize(
        torch.randn(8, dtype=f64, generator=torch.Generator().manual_seed(1)), dim=0
    )
    u = torch.randn(8, dtype=f64, generator=torch.Generator().manual_seed(2))
    u = F.normalize(u - (u @ x) * x, dim=0)  # orthogonal to x
    for theta in [0.1, 0.5, 1.0, math.pi / 2, 2.5, 3.0]:
        y = math.cos(theta) * x + math.sin(theta) * u
        rate = (
            (hyperplane_bits(x, planes) == hyperplane_bits(y, planes))
            .double()
            .mean()
            .item()
        )
        p = hyperplane_collision_probability(theta)
        sigma = math.sqrt(p * (1 - p) / planes.shape[1])
        assert abs(rate - p) < 4 * sigma + 1e-12, (theta, rate, p)


def test_hyperplane_hash_reads_bits_as_a_number():
    planes = random_hyperplanes(4, 3, seed=0)
    x = torch.randn(10, 4)
    bits = hyperplane_bits(x, planes).long()  # (10, 3)
    assert torch.equal(
        hyperplane_hash(x, planes), bits[:, 0] + 2 * bits[:, 1] + 4 * bits[:, 2]
    )
    assert hyperplane_collision_probability(0.0, 3) == 1.0
    assert hyperplane_collision_probability(math.pi / 2, 2) == pytest.approx(0.25)


def test_angular_hash_is_argmax_over_plus_minus_projection_and_scale_invariant():
    rot = random_rotations(6, 8, 3, seed=0)  # (R, D, M/2)
    x = torch.randn(2, 5, 6, dtype=f64)  # (B, L, D)
    b = angular_hash(x, rot)  # (B, R, L)
    assert b.shape == (2, 3, 5) and b.min() >= 0 and b.max() < 8
    xr = torch.einsum("bld,rdm->brlm", x, rot.to(f64))
    expected = torch.cat([xr, -xr], -1).argmax(-1)
    assert torch.equal(b, expected)
    assert torch.equal(angular_hash(3.7 * x, rot), b)  # only the direction matters
    assert torch.equal(
        angular_hash(-x, rot), (b + 4) % 8
    )  # −x lands in the opposite bucket


def test_angular_collisions_fall_with_angle():
    rot = random_rotations(16, 8, 4000, seed=5).to(f64)  # many independent rounds
    g = torch.Generator().manual_seed(0)
    x = F.normalize(torch.randn(16, dtype=f64, generator=g), dim=0)
    u = torch.randn(16, dtype=f64, generator=g)
    u = F.normalize(u - (u @ x) * x, dim=0)
    rates = []
    for theta in [0.2, 0.6, 1.2, 2.0, 2.8]:
        y = math.cos(theta) * x + math.sin(theta) * u
        bx, by = angular_hash(torch.stack([x, y])[:, None, :], rot).squeeze(
            -1
        )  # (R,) each
        rates.append((bx == by).double().mean().item())
    assert all(a > b for a, b in zip(rates, rates[1:])), rates
    assert rates[0] > 0.6 and rates[-1] < 0.05


@pytest.mark.parametrize("n_buckets", [0, 1, 3, 7])
def test_odd_bucket_counts_are_rejected(n_buckets):
    with pytest.raises(ValueError, match="even"):
        random_rotations(4, n_buckets)
    if n_buckets != 1:  # 1 bucket = no hashing, allowed by the mechanism
        with pytest.raises(ValueError, match="even"):
            LSHAttention(n_buckets=n_buckets)


def test_hashes_are_seeded():
    assert torch.equal(
        random_rotations(5, 4, 2, seed=7), random_rotations(5, 4, 2, seed=7)
    )
    assert not torch.equal(
        random_rotations(5, 4, 2, seed=7), random_rotations(5, 4, 2, seed=8)
    )
