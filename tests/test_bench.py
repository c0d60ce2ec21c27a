"""The benchmark CLI: argument handling, exponent fitting, and an end-to-end run on tiny sizes."""
from __future__ import annotations

import csv
import math
import subprocess
import sys

import pytest

from attnkit.bench import fit_exponent, main, parse_spec
from attnkit.registry import MECHANISMS


@pytest.mark.parametrize("slope", [1.0, 1.15, 2.0])
def test_fit_exponent_recovers_a_power_law(slope):
    lengths = [1024, 2048, 4096, 8192, 16384]
    noise = [1.03, 0.98, 1.01, 0.99, 1.02]  # a few percent of timing jitter
    times = [3e-7 * n**slope * e for n, e in zip(lengths, noise)]
    assert fit_exponent(lengths, times) == pytest.approx(slope, abs=0.02)


def test_fit_exponent_rejects_too_few_points():
    with pytest.raises(ValueError, match="at least two"):
        fit_exponent([1024], [0.1])
    with pytest.raises(ValueError, match="different lengths"):
        fit_exponent([1024, 1024], [0.1, 0.2])


def test_parse_spec():
    assert parse_spec("softmax") == ("softmax", {})
    assert parse_spec("softmax:fast=false") == ("softmax", {"fast": False})
    with pytest.raises(ValueError, match="unknown mechanism 'nope'"):
        parse_spec("nope:window=3")
    with pytest.raises(ValueError, match="key=value"):
        parse_spec("softmax:fast")


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "attnkit.bench", *args], capture_output=True, text=True)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--mechanisms", "no_such_mechanism"], "unknown mechanism 'no_such_mechanism'"),
        (["--lengths", "0", "16"], "--lengths must be positive"),
        (["--lengths", "-8"], "--lengths must be positive"),
        (["--heads", "0"], "--heads must be positive"),
    ],
)
def test_cli_rejects_bad_arguments(args, message, tmp_path):
    proc = _cli(*args, "--out", str(tmp_path))
    assert proc.returncode == 2
    assert message in proc.stderr


def test_cli_end_to_end_every_mechanism(tmp_path):
    """Every registered mechanism appears in the CSV with positive times and ratios."""
    out = tmp_path / "results"
    code = main(["--lengths", "16", "32", "--heads", "2", "--head-dim", "8", "--repeats", "1",
                 "--warmup", "1", "--error-length", "32", "--out", str(out), "--no-progress"])
    assert code == 0
    with open(out / "bench.csv") as f:
        rows = list(csv.DictReader(f))
    specs = {r["spec"] for r in rows}
    assert set(MECHANISMS) <= specs
    for r in rows:
        assert r["status"] == "ok", r
        assert float(r["time_s"]) > 0
        assert float(r["speedup_vs_softmax"]) > 0
        assert math.isfinite(float(r["speedup_vs_softmax_fast-false"]))
    with open(out / "error.csv") as f:
        errors = {r["spec"]: float(r["relative_error"]) for r in csv.DictReader(f)}
    assert set(errors) == set(MECHANISMS)
    assert errors["softmax"] < 1e-5  # exact attention agrees with the reference
    for name in ("time.png", "memory.png"):
        assert (out / name).stat().st_size > 1000


def test_over_budget_is_marked_not_crashed(tmp_path):
    """A run that cannot fit the memory budget is marked, and longer lengths are skipped."""
    from attnkit.bench import run_benchmark

    rows = run_benchmark(["softmax"], [64, 4096, 8192], baselines=["softmax:fast=false"], progress=False,
                         heads=4, head_dim=8, repeats=1, warmup=0, budget_gb=0.05)
    status = {(r["spec"], r["length"]): r["status"] for r in rows}
    assert status["softmax:fast=false", 64] == "ok"
    assert status["softmax:fast=false", 4096] == "over budget"  # 4·4096² floats = 256 MB > 50 MB
    assert status["softmax:fast=false", 8192] == "skipped (budget)"
