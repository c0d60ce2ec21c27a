"""attnkit.tasks.heads: the two-offset task, the per-head offset share, the seeded experiment."""

import pytest
import torch

from attnkit.tasks.heads import heads_experiment, offset_share, two_offset_task


def test_two_offset_task_targets_and_scored_positions():
    task = two_offset_task(50, 9, 7, offsets=(1, 3), seed=4)
    x, y = task.inputs, task.targets
    assert x.shape == (50, 9) and task.vocab_size == 7
    assert not task.scored[:, :3].any() and task.scored[:, 3:].all()
    for t in range(3, 9):
        assert torch.equal(y[:, t], (x[:, t - 1] - x[:, t - 3]) % 7)
    again = two_offset_task(50, 9, 7, offsets=(1, 3), seed=4)
    assert torch.equal(again.inputs, x) and torch.equal(again.targets, y)
    assert not torch.equal(two_offset_task(50, 9, 7, seed=5).inputs, x)


def test_two_offset_task_is_not_symmetric_in_the_offsets():
    a = two_offset_task(20, 8, 5, offsets=(1, 3), seed=0)
    b = two_offset_task(20, 8, 5, offsets=(3, 1), seed=0)
    assert torch.equal(
        (a.targets + b.targets)[a.scored] % 5, torch.zeros_like(a.targets[a.scored])
    )


@pytest.mark.parametrize(
    "args",
    [(10, 8, 5, (1, 1)), (10, 8, 5, (0, 2)), (10, 3, 5, (1, 3)), (10, 8, 1, (1, 3))],
)
def test_two_offset_task_rejects_bad_settings(args):
    n, T, V, offsets = args
    with pytest.raises(ValueError):
        two_offset_task(n, T, V, offsets=offsets)


def test_offset_share_reads_the_shifted_diagonal():
    L = 6
    w = torch.zeros(2, 3, L, L)
    for i in range(L):
        w[:, 0, i, i - 1 if i >= 1 else i] = 1.0  # head 0: one back
        w[:, 1, i, i - 3 if i >= 3 else i] = 1.0  # head 1: three back
        w[:, 2, i, :] = 1.0 / L  # head 2: uniform
    torch.testing.assert_close(offset_share(w, 1), torch.tensor([1.0, 0.0, 1.0 / L]))
    torch.testing.assert_close(offset_share(w, 3), torch.tensor([0.0, 1.0, 1.0 / L]))
    with pytest.raises(ValueError):
        offset_share(w, L)
    with pytest.raises(ValueError):
        offset_share(w[:, :, :, :4], 1)


def test_heads_experiment_is_seeded_and_reports_every_head():
    kwargs = dict(seeds=(0,), n_train=64, n_test=32, steps=3, seq_len=6)
    rows, models = heads_experiment((1, 2), **kwargs)
    assert [(r["heads"], r["seed"]) for r in rows] == [(1, 0), (2, 0)]
    assert [len(r["share_a"]) for r in rows] == [1, 2]
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in rows)
    assert set(models) == {(1, 0), (2, 0)}
    again, _ = heads_experiment((1, 2), **kwargs)
    assert again == rows
