"""Tests for attnkit.tasks.seq2seq: the reversal task, the GRU encoder–decoder with additive
attention, its training and the anti-diagonal measure of its alignment."""

import pytest
import torch

from attnkit.tasks import (
    Seq2SeqAttention,
    antidiagonal_mass,
    reversal_task,
    seq2seq_accuracy,
    train_seq2seq,
)


def test_reversal_task_is_seeded_and_reversed():
    src, tgt = reversal_task(5, 7, 9, seed=3)
    assert src.shape == tgt.shape == (5, 7)
    assert torch.equal(tgt, src.flip(1))
    assert src.min() >= 1 and src.max() <= 8  # token 0 is the start token
    assert torch.equal(reversal_task(5, 7, 9, seed=3)[0], src)
    assert not torch.equal(reversal_task(5, 7, 9, seed=4)[0], src)


def test_shapes_with_and_without_teacher_forcing():
    model = Seq2SeqAttention(vocab_size=9, hidden=8, seed=0)
    src, tgt = reversal_task(3, 5, 9)
    logits, weights = model(src, tgt[:, :4])
    assert logits.shape == (3, 4, 9) and weights.shape == (3, 4, 5)
    logits, weights = model(src)
    assert logits.shape == (3, 5, 9) and weights.shape == (3, 5, 5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 5))


def test_same_seed_same_model():
    a, b = Seq2SeqAttention(9, 8, seed=1), Seq2SeqAttention(9, 8, seed=1)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_antidiagonal_mass():
    T = 5
    assert antidiagonal_mass(torch.eye(T).flip(-1)) == pytest.approx(1.0)
    assert antidiagonal_mass(torch.eye(T)) == pytest.approx(
        1 / T
    )  # only the middle row
    assert antidiagonal_mass(torch.full((2, T, T), 1 / T)) == pytest.approx(1 / T)
    # each row's weight one column right of the anti-diagonal (the last row wraps to column 0)
    shifted = torch.eye(T).flip(-1).roll(1, -1)
    assert antidiagonal_mass(shifted) == pytest.approx(0.0)
    assert antidiagonal_mass(shifted, width=1) == pytest.approx((T - 1) / T)
    with pytest.raises(ValueError, match="weights"):
        antidiagonal_mass(torch.ones(3, 4))
    with pytest.raises(ValueError, match="width"):
        antidiagonal_mass(torch.eye(3), width=-1)


def test_bad_settings():
    with pytest.raises(ValueError, match="seq_len"):
        reversal_task(4, 0, 9)
    with pytest.raises(ValueError, match="vocab"):
        reversal_task(4, 3, 2)
    with pytest.raises(ValueError, match="hidden"):
        Seq2SeqAttention(9, 0)


def test_training_learns_reversal_and_an_antidiagonal_alignment():
    """A 150-step run on a tiny reversal task (T = 6, 7 symbols). The decoder starts from a zero
    state, so everything it knows about the source comes through attention: a model whose
    attention is broken stays near chance (1/7 of the tokens right) and spreads its weights."""
    torch.set_num_threads(1)  # tiny operations: one thread is fastest and deterministic
    src, tgt = reversal_task(1000, 6, 8, seed=0)
    test_src, test_tgt = reversal_task(300, 6, 8, seed=1)
    model = Seq2SeqAttention(8, hidden=16, seed=0)
    before = seq2seq_accuracy(model, test_src, test_tgt)
    losses = train_seq2seq(model, src, tgt, steps=150, batch_size=32, lr=2e-2, seed=0)
    after = seq2seq_accuracy(model, test_src, test_tgt)
    assert before["token"] < 0.3
    assert losses[-1] < 0.5 * losses[0]
    assert after["token"] >= 0.75
    # uniform weights would give 1/6 on the anti-diagonal and about 0.47 within one position
    assert antidiagonal_mass(after["weights"]) >= 0.3
    assert antidiagonal_mass(after["weights"], width=1) >= 0.7
