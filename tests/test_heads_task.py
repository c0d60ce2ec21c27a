"""attnkit.tasks.heads: the pair task, the positional-heads model, offset shares, and
the trained experiment in which two heads split the two relations and beat one head."""

import pytest
import torch

from attnkit.tasks.heads import (
    PositionalHeadsModel,
    heads_experiment,
    offset_share,
    pair_task,
    split_pair,
)


def test_pair_task_targets_and_scored_positions():
    task = pair_task(50, 9, 7, offsets=(1, 3), seed=4)
    x, y = task.inputs, task.targets
    assert x.shape == (50, 9) and task.vocab_size == 49 and int(x.max()) < 7
    assert not task.scored[:, :3].any() and task.scored[:, 3:].all()
    first, second = split_pair(y, 7)
    for t in range(3, 9):
        assert torch.equal(first[:, t], x[:, t - 1])
        assert torch.equal(second[:, t], x[:, t - 3])
    again = pair_task(50, 9, 7, offsets=(1, 3), seed=4)
    assert torch.equal(again.inputs, x) and torch.equal(again.targets, y)
    assert not torch.equal(pair_task(50, 9, 7, seed=5).inputs, x)


def test_pair_task_keeps_the_order_of_the_offsets():
    a = pair_task(20, 8, 5, offsets=(1, 3), seed=0)
    b = pair_task(20, 8, 5, offsets=(3, 1), seed=0)
    fa, sa = split_pair(a.targets[a.scored], 5)
    fb, sb = split_pair(b.targets[b.scored], 5)
    assert torch.equal(fa, sb) and torch.equal(sa, fb)
    assert not torch.equal(a.targets, b.targets)


@pytest.mark.parametrize(
    "args",
    [
        (10, 8, 5, (1, 1)),
        (10, 8, 5, (0, 2)),
        (10, 8, 5, (1, 2, 3)),
        (10, 8, 5, (1.0, 3)),
        (10, 3, 5, (1, 3)),
        (10, 8, 1, (1, 3)),
        (0, 8, 5, (1, 3)),
    ],
)
def test_pair_task_rejects_bad_settings(args):
    n, T, V, offsets = args
    with pytest.raises(ValueError):
        pair_task(n, T, V, offsets=offsets)


def test_model_weights_depend_on_positions_only_and_are_causal():
    torch.manual_seed(0)
    model = PositionalHeadsModel(5, 16, 2, max_len=8).eval()
    ids = torch.randint(0, 5, (3, 8))
    with torch.no_grad():
        logits = model(ids)
        w1 = model.attention.attention_weights.clone()  # (N, H, T, T)
        model((ids + 1) % 5)
        w2 = model.attention.attention_weights
    assert logits.shape == (3, 8, 25) and w1.shape == (3, 2, 8, 8)
    torch.testing.assert_close(w1, w2)  # the tokens do not move the weights
    assert torch.equal(w1[0], w1[1])
    assert (w1.triu(diagonal=1) == 0).all()  # nothing from the future


def test_model_pair_softmax_is_one_softmax_per_slot():
    torch.manual_seed(0)
    model = PositionalHeadsModel(4, 8, 1, max_len=6).eval()
    ids = torch.randint(0, 4, (2, 6))
    with torch.no_grad():
        log_p = model(ids).log_softmax(-1).reshape(2, 6, 4, 4)  # (N, T, V, V)
    first = log_p.logsumexp(-1)  # (N, T, V)
    second = log_p.logsumexp(-2)  # (N, T, V)
    torch.testing.assert_close(log_p, first[..., :, None] + second[..., None, :])


@pytest.mark.parametrize(
    "args, kwargs",
    [
        ((5, 16, 3), {"max_len": 8}),
        ((5, 16, 0), {"max_len": 8}),
        ((1, 16, 2), {"max_len": 8}),
    ],
)
def test_model_rejects_bad_settings(args, kwargs):
    with pytest.raises(ValueError):
        PositionalHeadsModel(*args, **kwargs)


def test_model_rejects_bad_ids():
    model = PositionalHeadsModel(5, 8, 2, max_len=6)
    with pytest.raises(ValueError, match="max_len"):
        model(torch.zeros(2, 7, dtype=torch.long))
    with pytest.raises(ValueError, match="int64"):
        model(torch.zeros(2, 6))
    with pytest.raises(ValueError, match="int64"):
        model(torch.zeros(6, dtype=torch.long))


def test_offset_share_reads_the_shifted_diagonal():
    L = 6
    w = torch.zeros(2, 3, L, L)
    for i in range(L):
        w[:, 0, i, i - 1 if i >= 1 else i] = 1.0  # head 0: one back
        w[:, 1, i, i - 3 if i >= 3 else i] = 1.0  # head 1: three back
        w[:, 2, i, :] = 1.0 / L  # head 2: uniform
    torch.testing.assert_close(offset_share(w, 1), torch.tensor([1.0, 0.0, 1.0 / L]))
    torch.testing.assert_close(offset_share(w, 3), torch.tensor([0.0, 1.0, 1.0 / L]))
    w[:, 0, 1:3] = 0.0  # queries 1 and 2 of head 0 look nowhere
    assert offset_share(w, 1)[0] < 1.0
    torch.testing.assert_close(
        offset_share(w, 1, first_query=3), torch.tensor([1.0, 0.0, 1.0 / L])
    )
    with pytest.raises(ValueError):
        offset_share(w, L)
    with pytest.raises(ValueError):
        offset_share(w[:, :, :, :4], 1)
    with pytest.raises(ValueError, match="first_query"):
        offset_share(w, 3, first_query=2)
    with pytest.raises(ValueError, match="first_query"):
        offset_share(w, 1, first_query=L)


def test_two_trained_heads_split_the_relations_and_beat_one_head():
    rows, models = heads_experiment((1, 2), seeds=(0,))
    one, two = rows
    assert (one["heads"], two["heads"]) == (1, 2) and set(models) == {(1, 0), (2, 0)}
    # one head: one token of the pair at best, the other near chance (1/5)
    assert one["accuracy"] < 0.5
    assert min(one["first_accuracy"], one["second_accuracy"]) < 0.5
    # two heads: the whole pair, with one head on each offset
    assert two["accuracy"] > 0.95
    on_a = max(range(2), key=lambda h: two["share_a"][h])
    on_b = max(range(2), key=lambda h: two["share_b"][h])
    assert on_a != on_b
    assert two["share_a"][on_a] > 0.8 and two["share_b"][on_b] > 0.8
    assert two["share_a"][on_b] < 0.2 and two["share_b"][on_a] < 0.2


def test_heads_experiment_is_seeded_and_reports_every_head():
    kwargs = dict(seeds=(0,), n_train=64, n_test=32, steps=3, seq_len=6)
    rows, models = heads_experiment((1, 2), **kwargs)
    assert [(r["heads"], r["seed"]) for r in rows] == [(1, 0), (2, 0)]
    assert [len(r["share_a"]) for r in rows] == [1, 2]
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in rows)
    assert set(models) == {(1, 0), (2, 0)}
    again, _ = heads_experiment((1, 2), **kwargs)
    assert again == rows


@pytest.mark.parametrize(
    "kwargs",
    [
        {"head_counts": (3,)},
        {"head_counts": ()},
        {"seeds": ()},
        {"offsets": (2, 2)},
        {"seq_len": 3},
    ],
)
def test_heads_experiment_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError):
        heads_experiment(**kwargs)
