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
        TinyAttentionModel(40, 16, 2, mechanism=name, mechanism_settings={**settings, **extra}, max_len=9, causal=False)


def test_capstone_experiment_rows():
    rows = capstone_experiment(mechanisms=["softmax", "local", "synthesizer_random"], n_pairs=8, n_keys=8,
                               n_values=4, d_model=16, steps=3, n_train=64, n_test=32, progress=False)
    assert [r["mechanism"] for r in rows] == ["softmax", "local", "synthesizer_random"]
    for r in rows:
        assert 0 <= r["accuracy"] <= 100
        assert r["train_seconds"] > 0 and r["steps_per_second"] > 0 and r["params"] > 0
    with pytest.raises(ValueError, match="unknown mechanism"):
        capstone_experiment(mechanisms=["nope"], n_pairs=2, n_keys=4, steps=1, n_train=8, n_test=8, progress=False)


def test_capstone_learns_with_softmax():
    """Exact attention solves a short recall well above chance (1/4) in a few hundred steps."""
    rows = capstone_experiment(mechanisms=["softmax"], n_pairs=4, n_keys=8, n_values=4, d_model=32,
                               steps=300, n_train=4000, n_test=500, progress=False)
    assert rows[0]["accuracy"] > 60, rows


def test_capstone_cli_writes_csv(tmp_path):
    out = tmp_path / "task.csv"
    assert main(["capstone", "--out", str(out), "--mechanisms", "linear", "--steps", "2"]) == 0
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert [r["mechanism"] for r in rows] == ["linear"] and 0 <= float(rows[0]["accuracy"]) <= 100
