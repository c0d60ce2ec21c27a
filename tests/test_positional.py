"""attnkit.positional: sinusoidal encoding, d2l parity, order blindness."""

import math

import pytest
import torch
from d2l_compat import import_d2l_torch
from hypothesis import given
from hypothesis import strategies as st

from attnkit.multihead import MultiHeadAttention
from attnkit.positional import PositionalEncoding, sinusoidal_encoding

# ---------------------------------------------------------------- positional encoding


def test_sinusoidal_values_by_hand():
    P = sinusoidal_encoding(5, 6, dtype=torch.float64)
    assert P.shape == (5, 6)
    i, j = 3, 2  # feature pair (4, 5): frequency 1 / 10000^(4/6)
    w = 1.0 / 10000 ** (4 / 6)
    assert P[i, 2 * j].item() == pytest.approx(math.sin(i * w), abs=1e-12)
    assert P[i, 2 * j + 1].item() == pytest.approx(math.cos(i * w), abs=1e-12)
    # position 0: sin 0 = 0 on even features, cos 0 = 1 on odd ones
    assert P[0, 0::2].abs().max() == 0 and torch.all(P[0, 1::2] == 1)


def test_odd_width_and_relative_shift():
    P = sinusoidal_encoding(50, 7, dtype=torch.float64)
    assert P.shape == (50, 7)
    # P[i+k] is a fixed rotation of P[i] in each (sin, cos) pair, for every i
    k, w = 5, 1.0 / 10000 ** (2 / 7)
    rot = torch.tensor(
        [[math.cos(k * w), -math.sin(k * w)], [math.sin(k * w), math.cos(k * w)]],
        dtype=torch.float64,
    )
    pair = P[:, 2:4]  # (N, 2): sin, cos of frequency w
    torch.testing.assert_close(pair[:-k] @ rot, pair[k:])


def test_parity_with_d2l_positional_encoding():
    d2l = import_d2l_torch()
    ours, theirs = (
        PositionalEncoding(32, 0.0, 60).eval(),
        d2l.PositionalEncoding(32, 0.0, 60).eval(),
    )
    X = torch.randn(2, 40, 32)
    torch.testing.assert_close(ours(X), theirs(X), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.P, theirs.P, atol=1e-5, rtol=1e-5)


def test_positional_encoding_errors_and_dropout():
    pe = PositionalEncoding(8, 0.0, max_len=10)
    with pytest.raises(ValueError, match="length 11 but max_len is 10"):
        pe(torch.randn(1, 11, 8))
    with pytest.raises(ValueError, match="feature size 6"):
        pe(torch.randn(1, 4, 6))
    with pytest.raises(ValueError, match="X must be 3-D"):
        pe(torch.randn(4, 8))
    train = PositionalEncoding(8, 0.5).train()
    out = train(torch.zeros(4, 10, 8))
    assert (out == 0).float().mean() > 0.25  # some entries dropped


@given(L=st.integers(3, 10), seed=st.integers(0, 10_000))
def test_positions_break_permutation_equivariance(L, seed):
    torch.manual_seed(seed)
    mha = (
        MultiHeadAttention(8, 2, 0.0, query_size=8, key_size=8, value_size=8)
        .double()
        .eval()
    )
    pe = PositionalEncoding(8, 0.0).double()
    X = torch.randn(1, L, 8, dtype=torch.float64)
    perm = torch.roll(torch.arange(L), 1)  # a permutation that moves every position
    with torch.no_grad():
        plain = mha(X, X, X)[:, perm]
        plain_perm = mha(X[:, perm], X[:, perm], X[:, perm])
        Xp, Xpp = pe(X), pe(X[:, perm])
        with_pos = mha(Xp, Xp, Xp)[:, perm]
        with_pos_perm = mha(Xpp, Xpp, Xpp)
    torch.testing.assert_close(plain_perm, plain)  # order-blind without positions
    assert (with_pos_perm - with_pos).abs().max() > 1e-3  # not with them
