"""Chapter 10's capstone: every mechanism trains on the same recall task (tiny sizes here)."""

from __future__ import annotations

import csv

import pytest

from attnkit.registry import MECHANISMS
from attnkit.tasks import CAPSTONE_MECHANISMS, capstone_experiment, main


def test_capstone_mechanisms_are_registered_and_build():
    """Every capstone setting names a registered mechanism and is accepted by its constructor."""
    from attnkit.tasks import TinyAttentionModel

    missing = set(CAPSTONE_MECHANISMS) - set(MECHANISMS)
    assert not missing, f"capstone names unregistered mechanisms: {missing}"
    for name, settings in CAPSTONE_MECHANISMS.items():
        extra = {"max_len": 9} if name.startswith("synthesizer") else {}
        TinyAttentionModel(
            40,
            16,
            2,
            mechanism=name,
            mechanism_settings={**settings, **extra},
            max_len=9,
            causal=False,
        )


def test_capstone_experiment_rows():
    settings = dict(
        n_pairs=8,
        n_keys=8,
        n_values=4,
        d_model=16,
        steps=3,
        n_train=64,
        n_test=32,
        progress=False,
    )
    rows = capstone_experiment(
        mechanisms=["softmax", "local", "synthesizer_random"], **settings
    )
    assert [r["mechanism"] for r in rows] == ["softmax", "local", "synthesizer_random"]
    for r in rows:
        correct = (
            r["accuracy"] * 32 / 100
        )  # one scored position (the recalled value) per test sample
        assert abs(correct - round(correct)) < 0.01 and 0 <= round(correct) <= 32, r
        assert r["train_seconds"] > 0 and r["steps_per_second"] > 0
    # seeded: the same accuracies again
    again = capstone_experiment(
        mechanisms=["softmax", "local", "synthesizer_random"], **settings
    )
    assert [r["accuracy"] for r in again] == [r["accuracy"] for r in rows]
    # the synthesizer adds its (T, T) random attention per head to softmax's parameters;
    # local attention adds none
    params = {r["mechanism"]: r["params"] for r in rows}
    assert params["local"] == params["softmax"] > 0
    assert params["synthesizer_random"] > params["softmax"]
    with pytest.raises(ValueError, match="unknown mechanism"):
        capstone_experiment(
            mechanisms=["nope"],
            n_pairs=2,
            n_keys=4,
            steps=1,
            n_train=8,
            n_test=8,
            progress=False,
        )


def test_capstone_learns_with_softmax():
    """Exact attention solves a short recall well above chance (1/4) in a few hundred steps."""
    rows = capstone_experiment(
        mechanisms=["softmax"],
        n_pairs=4,
        n_keys=8,
        n_values=4,
        d_model=32,
        steps=300,
        n_train=4000,
        n_test=500,
        progress=False,
    )
    assert rows[0]["accuracy"] > 60, rows


def test_capstone_cli_writes_csv(tmp_path):
    out = tmp_path / "task.csv"
    assert (
        main(["capstone", "--out", str(out), "--mechanisms", "linear", "--steps", "2"])
        == 0
    )
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert [r["mechanism"] for r in rows] == ["linear"]
    assert set(rows[0]) == {
        "mechanism",
        "accuracy",
        "train_seconds",
        "steps_per_second",
        "params",
    }
    assert float(rows[0]["accuracy"]) >= 0 and int(rows[0]["params"]) > 0
