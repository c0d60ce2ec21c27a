"""Synthetic tasks, the tiny attention model and the training loop (attnkit.tasks)."""

import pytest
import torch

from attnkit.lsh import LSHAttention
from attnkit.mechanisms import SoftmaxAttention
from attnkit.tasks import (
    SequenceTask,
    TinyAttentionModel,
    duplication_experiment,
    duplication_task,
    evaluate,
    train,
    use_mechanism,
)


def test_duplication_task_is_0w0w_and_scores_the_second_copy():
    task = duplication_task(50, 5, 7, seed=1)
    assert task.inputs.shape == task.targets.shape == task.scored.shape == (50, 11)
    seq = torch.cat([task.inputs, task.targets[:, -1:]], dim=1)  # (N, 12) = 0 w 0 w
    assert (seq[:, 0] == 0).all() and (seq[:, 6] == 0).all()
    assert torch.equal(seq[:, 1:6], seq[:, 7:12])
    assert seq[:, 1:6].min() >= 1 and seq[:, 1:6].max() <= 6
    assert torch.equal(task.targets[:, :-1], task.inputs[:, 1:])  # next-token targets
    assert task.scored.sum(1).eq(5).all() and task.scored[:, 6:].all()
    assert torch.equal(duplication_task(50, 5, 7, seed=1).inputs, task.inputs)
    assert not torch.equal(duplication_task(50, 5, 7, seed=2).inputs, task.inputs)
    with pytest.raises(ValueError):
        duplication_task(10, 3, 1)
    with pytest.raises(ValueError):
        SequenceTask(task.inputs, task.targets[:, :3], task.scored, 7)


def test_model_is_causal_and_swaps_mechanisms():
    torch.manual_seed(0)
    model = TinyAttentionModel(9, 16, 2, max_len=12).eval()
    ids = torch.randint(0, 9, (3, 12))
    logits = model(ids)
    assert logits.shape == (3, 12, 9)
    ids2 = ids.clone()
    ids2[:, 8:] = (ids2[:, 8:] + 1) % 9
    torch.testing.assert_close(model(ids2)[:, :8], logits[:, :8])
    assert not torch.allclose(model(ids2)[:, 8:], logits[:, 8:])
    use_mechanism(model, "lsh", {"bucket_size": 12, "n_buckets": 1, "n_hashes": 1})
    assert isinstance(model.attention.attention, LSHAttention)
    # one bucket covering everything is exact attention: same logits as softmax
    torch.testing.assert_close(model(ids), logits, atol=1e-5, rtol=1e-5)
    use_mechanism(model, "softmax")
    assert isinstance(model.attention.attention, SoftmaxAttention)
    with pytest.raises(ValueError):
        model(torch.randint(0, 9, (1, 13)))


def test_training_learns_a_short_duplication_task():
    data = duplication_task(512, 3, 5, seed=0)
    torch.manual_seed(0)
    model = TinyAttentionModel(5, 32, 2, max_len=7)
    before = evaluate(model, data)
    losses = train(
        model, data, steps=150, lr=1e-2, batch_size=32, seed=0, progress=False
    )
    after = evaluate(model, data)
    assert len(losses) == 150 and not model.training
    assert after["loss"] < 0.5 * before["loss"]
    assert after["accuracy"] > 0.9 > before["accuracy"]


def test_duplication_experiment_table_is_seeded_and_scores_the_test_words():
    settings = dict(
        word_len=3,
        vocab=5,
        d_model=16,
        num_heads=2,
        bucket_size=2,
        steps=3,
        n_train=64,
        n_test=32,
        train_with=("full", "lsh-1"),
        eval_with=("full", "lsh-2"),
        progress=False,
    )
    rows = duplication_experiment(**settings)
    assert [(r["trained"], r["evaluated"]) for r in rows] == [
        ("full", "full"),
        ("full", "lsh-2"),
        ("lsh-1", "full"),
        ("lsh-1", "lsh-2"),
    ]
    # a percentage of the 32 * 3 scored test tokens (the second copy of each word), not all tokens
    for r in rows:
        correct = r["accuracy"] * 32 * 3 / 100
        assert abs(correct - round(correct)) < 0.01 and 0 <= round(correct) <= 96, r
    assert duplication_experiment(**settings) == rows  # seeded: the same table again
