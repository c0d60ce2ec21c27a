"""The benchmark CLI: argument handling, exponent fitting, and an end-to-end run on tiny sizes."""

from __future__ import annotations

import csv
import math
import subprocess
import sys

import pytest
import torch

from attnkit.bench import fit_exponent, main, measure_step, parse_spec
from attnkit.registry import MECHANISMS

# the registered mechanisms with no causal form (chapter 8: the Nystrom landmarks mix the future in)
NO_CAUSAL = {"nystrom"}


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
    return subprocess.run(
        [sys.executable, "-m", "attnkit.bench", *args], capture_output=True, text=True
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--mechanisms", "no_such_mechanism"],
            "unknown mechanism 'no_such_mechanism'",
        ),
        (["--lengths", "0", "16"], "--lengths must be positive"),
        (["--lengths", "-8"], "--lengths must be positive"),
        (["--heads", "0"], "--heads must be positive"),
        (["--mode", "sideways"], "invalid choice: 'sideways'"),
        (["--mechanisms", "softmax:fast"], "key=value"),
    ],
)
def test_cli_rejects_bad_arguments(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_runs_as_a_module(tmp_path):
    proc = _cli("--mechanisms", "nope", "--out", str(tmp_path))
    assert proc.returncode == 2 and "unknown mechanism 'nope'" in proc.stderr


# the CLI end to end (a process per run) on three mechanisms: exact, an estimate, and one
# without a causal form; every registered mechanism goes through the same worker in-process
# below (a process each would cost a Python start and a torch import per mechanism)
CLI_MECHANISMS = ["softmax", "performer", "nystrom"]


def test_cli_end_to_end(tmp_path):
    """The CLI writes bench.csv (positive times and ratios), error.csv and the plots."""
    out = tmp_path / "results"
    code = main(
        [
            "--mechanisms",
            *CLI_MECHANISMS,
            "--lengths",
            "16",
            "--heads",
            "2",
            "--head-dim",
            "8",
            "--repeats",
            "1",
            "--warmup",
            "1",
            "--error-length",
            "32",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    with open(out / "bench.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["spec"] for r in rows} == set(CLI_MECHANISMS) | {"softmax:fast=false"}
    for r in rows:
        assert r["status"] == "ok", r
        assert float(r["time_s"]) > 0
        assert float(r["speedup_vs_softmax"]) > 0
        assert math.isfinite(float(r["speedup_vs_softmax_fast-false"]))
    with open(out / "error.csv") as f:
        errors = {
            (r["spec"], r["causal"]): r["relative_error"] for r in csv.DictReader(f)
        }
    assert set(errors) == {
        (name, causal) for name in CLI_MECHANISMS for causal in ("False", "True")
    }
    for name in ("time.png", "memory.png"):
        assert (out / name).stat().st_size > 1000


@pytest.mark.parametrize("mode", ["forward", "train"])
def test_every_mechanism_through_the_worker(mode):
    """Every registered mechanism, through the benchmark's worker (in this process, no memory
    limit): timed, with a peak; causal where it has a causal form, marked otherwise."""
    from attnkit.bench.runner import _worker

    for name in MECHANISMS:
        for causal in (False, True):
            job = dict(
                spec=name, length=16, batch=1, heads=2, head_dim=8, causal=causal,
                dtype="float32", device="cpu", mode=mode, repeats=1, warmup=1, seed=0,
                threads=0, budget_bytes=0,
            )  # fmt: skip
            r = _worker(job)
            if causal and name in NO_CAUSAL:
                assert r == {"status": "no causal"}, name
                continue
            assert r["status"] == "ok" and r["time_s"] > 0, (name, causal, r)
            assert r["peak_mb"] >= 0, (name, causal, r)


def test_every_mechanism_in_the_error_table():
    """The approximation-error table covers every registered mechanism, causal and not: exact
    softmax agrees with the reference, an estimate does not, no causal form gives ""."""
    from attnkit.bench import approximation_errors

    rows = approximation_errors(sorted(MECHANISMS), length=32, heads=2, head_dim=8)
    errors = {(r["spec"], r["causal"]): r["relative_error"] for r in rows}
    assert set(errors) == {(n, c) for n in MECHANISMS for c in (False, True)}
    for causal in (False, True):
        assert float(errors["softmax", causal]) < 1e-5
        assert float(errors["performer", causal]) > 1e-3
    for name in MECHANISMS:
        assert (errors[name, True] == "") == (name in NO_CAUSAL), name


def test_error_table_does_not_depend_on_the_global_rng():
    """The Synthesizers' weights are drawn when the table builds them: seeded, so two tables
    agree whatever ran before, and the caller's RNG is left where it was."""
    from attnkit.bench import approximation_errors

    specs = ["synthesizer_dense", "synthesizer_factorized_dense"]
    torch.manual_seed(1)
    first = approximation_errors(specs, length=16, heads=2, head_dim=8)
    torch.rand(1000)  # another RNG state
    state = torch.get_rng_state()
    assert approximation_errors(specs, length=16, heads=2, head_dim=8) == first
    assert torch.equal(torch.get_rng_state(), state)
    other = approximation_errors(specs, length=16, heads=2, head_dim=8, seed=1)
    assert other != first  # the seed is what decides


def test_over_budget_is_marked_not_crashed(tmp_path):
    """A run that cannot fit the memory budget is marked, and longer lengths are skipped."""
    from attnkit.bench import run_benchmark

    rows = run_benchmark(
        ["linear"],
        [64, 4096, 8192],
        baselines=["softmax:fast=false"],
        progress=False,
        heads=4,
        head_dim=8,
        repeats=1,
        warmup=0,
        budget_gb=0.05,
    )
    status = {(r["spec"], r["length"]): r["status"] for r in rows}
    assert status["softmax:fast=false", 64] == "ok"
    assert (
        status["softmax:fast=false", 4096] == "over budget"
    )  # 4·4096² floats = 256 MB > 50 MB
    assert status["softmax:fast=false", 8192] == "skipped (budget)"
    # only the spec over budget stops: linear attention's state is (4, 8, 8) at any length
    assert [status["linear", n] for n in (64, 4096, 8192)] == ["ok", "ok", "ok"]


def test_causal_train_mode_marks_mechanisms_without_causal_form(tmp_path):
    """--causal --mode train: forward + backward runs; a mechanism with no causal form is marked."""
    from attnkit.bench import run_benchmark

    rows = run_benchmark(
        ["nystrom", "synthesizer_random", "linear"],
        [600],
        progress=False,
        heads=2,
        head_dim=8,
        causal=True,
        mode="train",
        repeats=1,
        warmup=0,
    )
    status = {(r["spec"], r["length"]): r for r in rows}
    assert status["nystrom", 600]["status"] == "no causal"
    # synthesizer_random's max_len (512 by default) follows the measured length
    for spec in ("synthesizer_random", "linear", "softmax", "softmax:fast=false"):
        assert status[spec, 600]["status"] == "ok", status[spec, 600]
        assert status[spec, 600]["time_s"] > 0


def test_budget_summary_on_synthetic_rows():
    from attnkit.bench import budget_summary

    def row(spec, n, t, mb, status="ok"):
        return {
            "spec": spec,
            "length": str(n),
            "status": status,
            "time_s": "" if status != "ok" else str(t),
            "peak_mb": "" if status != "ok" else str(mb),
        }

    rows = [
        row("softmax:fast=false", 1024, 1.0, 100),
        row("softmax:fast=false", 2048, 4.0, 400),
        row("softmax:fast=false", 4096, 0, 0, "over budget"),
        row("linear", 1024, 0.5, 10),
        row("linear", 2048, 0.5, 20),
        row("linear", 4096, 1.0, 40),
        row("lsh", 1024, 2.0, 50),
        row("lsh", 2048, 0, 0, "over budget"),
        row("lsh", 4096, 0, 0, "skipped (budget)"),
    ]
    summary = budget_summary(rows, "softmax:fast=false")
    assert summary["length"] == 2048
    by_spec = {r["spec"]: r for r in summary["rows"]}
    assert by_spec["linear"] == {
        "spec": "linear",
        "speedup": 8.0,
        "memory_ratio": 20.0,
        "longest": 4096,
    }
    assert by_spec["lsh"] == {
        "spec": "lsh",
        "speedup": None,
        "memory_ratio": None,
        "longest": 1024,
    }
    with pytest.raises(ValueError, match="no successful run"):
        budget_summary(rows, "performer")


def test_plots_fit_the_slope_and_skip_missing_runs(tmp_path):
    """The log-log plot labels each line with its fitted exponent; runs that did not happen are
    left out."""
    from attnkit.bench import bubble_chart, plot_ratios, plot_rows

    rows = []
    for n in (256, 512, 1024):
        rows.append(
            {
                "spec": "softmax:fast=false",
                "length": n,
                "status": "ok",
                "time_s": 1e-8 * n**2,
                "peak_mb": 1e-4 * n**2,
                "speedup_vs_softmax_fast-false": 1.0,
                "memory_ratio_vs_softmax_fast-false": 1.0,
            }
        )
        rows.append(
            {
                "spec": "linear",
                "length": n,
                "status": "ok",
                "time_s": 1e-6 * n,
                "peak_mb": 1e-2 * n,
                "speedup_vs_softmax_fast-false": 1e-2 * n,
                "memory_ratio_vs_softmax_fast-false": 1e-2 * n,
            }
        )
    rows.append(
        {
            "spec": "lsh",
            "length": 256,
            "status": "over budget",
            "time_s": "",
            "peak_mb": "",
            "speedup_vs_softmax_fast-false": "",
            "memory_ratio_vs_softmax_fast-false": "",
        }
    )
    fig = plot_rows(rows, "time_s", "time (s)")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["softmax:fast=false (slope 2.00)", "linear (slope 1.00)"]
    fig = plot_ratios(
        rows, "softmax:fast=false", [256, 1024], path=tmp_path / "ratios.png"
    )
    assert (tmp_path / "ratios.png").stat().st_size > 1000
    fig = bubble_chart(
        [
            {"label": "a", "x": 1.0, "y": 50.0, "size": 2.0},
            {"label": "b", "x": 3.0, "y": 60.0, "size": 1.0},
        ],
        xlabel="speed",
        ylabel="accuracy",
        size_label="memory",
    )
    assert len(fig.axes[0].collections) == 2


def test_measure_step_times_a_callable_and_counts_its_memory():
    """What the peers script (scripts/bench_peers.py) uses for code outside attnkit."""
    calls = []

    def step():
        calls.append(torch.ones(512, 1024).sum())  # 2 MiB made and freed

    res = measure_step(step, device="cpu", warmup=2, repeats=3)
    assert len(calls) == 6  # warm-up, timed, and one untimed call counting bytes
    assert res["status"] == "ok" and res["time_s"] > 0
    assert 2.0 <= res["peak_mb"] < 2.01  # the (512, 1024) float32 ones and a sum


def _job(spec, length=32, **extra):
    return dict(
        spec=spec, length=length, batch=1, heads=2, head_dim=8, causal=False,
        dtype="float32", device="cpu", mode="forward", repeats=1, warmup=0, seed=0,
        threads=0, budget_bytes=0, **extra,
    )  # fmt: skip


@pytest.mark.parametrize("how", ["forked", "interpreter"])
def test_both_ways_of_starting_a_worker_give_a_result_and_report_errors(how):
    """A forked worker (Linux) and a new interpreter (elsewhere) answer alike; a worker's
    error comes back as its last lines, a memory limit's kill as over budget."""
    from attnkit.bench.runner import _run_forked, _run_interpreter, measure

    run = _run_forked if how == "forked" else _run_interpreter
    if how == "forked" and not sys.platform.startswith("linux"):
        pytest.skip("the fork server is used on Linux only")
    rc, result, tail = run(_job("linear"), 120)
    assert rc == 0 and result["status"] == "ok" and result["time_s"] > 0, (rc, tail)
    rc, result, tail = run(_job("linear:feature_map=nope"), 120)
    assert rc != 0 and result is None
    assert "feature_map must be one of" in tail[-1], tail
    if how == "forked":
        with pytest.raises(RuntimeError, match="feature_map must be one of"):
            measure("linear:feature_map=nope", 32, heads=2, head_dim=8, repeats=1)
