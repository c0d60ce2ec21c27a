"""Chapter 9's tasks and experiment (attnkit.tasks): the synthetic reorder and recall tasks and the
Synthesizer comparison the chapter runs."""

from __future__ import annotations

import pytest
import torch

from attnkit.tasks import recall_task, reorder_task, synthesizer_experiment


def test_reorder_task_uses_one_fixed_permutation():
    task = reorder_task(50, 9, 5, seed=3)
    assert task.inputs.shape == task.targets.shape == (50, 9)
    assert task.scored.all()
    # with 50 random rows the permutation is determined: find, for each t, the source column
    perm = []
    for t in range(9):
        sources = [
            j for j in range(9) if torch.equal(task.targets[:, t], task.inputs[:, j])
        ]
        assert len(sources) == 1
        perm.append(sources[0])
    assert sorted(perm) == list(range(9))
    assert torch.equal(
        reorder_task(5, 9, 5, seed=4).targets,
        reorder_task(5, 9, 5, seed=4).inputs[:, perm],
    )


def test_recall_task_answers_the_queried_key():
    P, K, V = 4, 6, 5
    task = recall_task(200, P, K, V, seed=1)
    assert task.inputs.shape == (200, P + 1) and task.vocab_size == K * (V + 1)
    assert task.scored[:, -1].all() and not task.scored[:, :-1].any()
    keys, values = task.inputs[:, :P] // V, task.inputs[:, :P] % V
    query = task.inputs[:, -1] - K * V
    assert (query >= 0).all() and (query < K).all()
    for n in range(200):
        assert len(set(keys[n].tolist())) == P  # distinct keys
        hit = (keys[n] == query[n]).nonzero().flatten()
        assert hit.numel() == 1
        assert task.targets[n, -1] == values[n, hit[0]]
    with pytest.raises(ValueError):
        recall_task(10, 7, 6, 5)


def test_synthesizer_experiment_tables():
    out = synthesizer_experiment(
        tasks=("recall",),
        variants=("vanilla", "random"),
        steps=20,
        n_train=64,
        n_test=32,
        progress=False,
    )
    assert [r["variant"] for r in out["results"]] == ["vanilla", "random"]
    random_row = out["results"][1]
    assert random_row["mechanism_params"] == 2 * 7 * 7  # one 7×7 matrix per head
    assert out["results"][0]["mechanism_params"] == 0
    assert len(out["curves"]) == 2 * 2  # every 10 of 20 steps, two variants
    assert len(out["weights"]) == 2 * 2 * 7 * 7  # variants × heads × L × S
    rows = [
        w
        for w in out["weights"]
        if w["variant"] == "random" and w["head"] == 0 and w["row"] == 3
    ]
    assert abs(sum(w["weight"] for w in rows) - 1) < 1e-3


def test_transfer_experiment_rows():
    from attnkit.tasks.experiments import transfer_experiment

    kwargs = dict(
        variants=("vanilla", "random"),
        finetune=(("new order", 2), ("recall", 3)),
        pretrain_steps=3,
        n_train=32,
        n_test=16,
        progress=False,
    )
    rows = transfer_experiment(**kwargs)
    assert [(r["task"], r["steps"], r["variant"]) for r in rows] == [
        ("new order", 2, "vanilla"),
        ("recall", 3, "vanilla"),
        ("new order", 2, "random"),
        ("recall", 3, "random"),
    ]
    for r in rows:
        for key in ("pretrained", "zero_shot", "scratch", "finetuned"):
            assert 0 <= r[key] <= 100
        assert r["gain"] == pytest.approx(r["finetuned"] - r["scratch"], abs=0.02)
    # one pre-trained model per variant: the same pre-training accuracy in both of its rows
    assert rows[0]["pretrained"] == rows[1]["pretrained"]
    # seeded: the same call gives the same accuracies
    again = transfer_experiment(**kwargs)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in rows]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in again]
