"""Re-measure every timing table the book ships in ``book/data/`` in one sitting.

    flock /tmp/attnkit-bench.lock .venv/bin/python scripts/measure_book.py [--only NAME ...]

Run it on a quiet machine (nothing else running: the load average is recorded before and
after each run, and a table measured while other work shared the CPU must not be
committed). Each (mechanism, length) runs in its own process (``attnkit.bench``); the
baselines (the textbook softmax and PyTorch's fused SDPA) are measured in the same run as
the mechanisms they are divided into, so every ratio comes from one run. Runs that share
their settings are measured once and split into the chapters' CSVs by spec.

Writes the CSVs listed in ``RUNS`` and ``book/data/measurements.json`` (date, machine,
load averages, torch version, commit, the settings of every run), which the measurement
appendix (``book/measurement.md``) reads.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

from attnkit.bench.runner import approximation_errors, run_benchmark

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "book" / "data"
TEXTBOOK, SDPA = "softmax:fast=false", "softmax"
BASELINES = [TEXTBOOK, SDPA]
LONG = [1024, 2048, 4096, 8192, 16384, 32768]
SHORT = [128, 256, 512, 1024, 2048, 4096]
LOCAL, LOCAL_DENSE = "local:window=256", "local:window=256,blocked=false"
STRIDED, BIGBIRD = "strided:stride=64", "bigbird:window=64,block_size=64,num_random=3"
LSH, PERFORMER = "lsh:bucket_size=64,n_hashes=2", "performer:n_features=256"
CH10 = [
    TEXTBOOK,
    SDPA,
    LOCAL,
    LSH,
    "linear",
    PERFORMER,
    "rfa",
    "nystrom",
    "synthesizer_dense",
    "synthesizer_random",
    "synthesizer_factorized_dense",
    "synthesizer_factorized_random",
    "synthesizer_mixture",
]
COMMON = dict(batch=1, heads=4, head_dim=64, dtype="float32", repeats=3, warmup=1)
BUDGET_GB = (
    12.0  # the textbook softmax fits at n = 16384 (two 4 GiB n×n tensors), not 32768
)

# name → (settings, specs, {csv name: (specs kept, lengths kept or None, with ratios)})
RUNS = {
    "noncausal": (
        dict(causal=False, lengths=LONG, baselines=BASELINES),
        CH10[2:],
        {
            "ch06_bench.csv": ([*BASELINES, LSH], None, True),
            "ch08_bench.csv": ([*BASELINES, PERFORMER], None, True),
            "ch10_bench.csv": (CH10, None, True),
            "ch07_bench_noncausal.csv": (["linear"], None, False),
        },
    ),
    "sparse": (
        dict(causal=False, lengths=LONG, baselines=BASELINES),
        [LOCAL, LOCAL_DENSE, STRIDED, BIGBIRD],
        {
            "ch05_bench.csv": (
                [*BASELINES, LOCAL, LOCAL_DENSE, STRIDED, BIGBIRD],
                None,
                True,
            )
        },
    ),
    "linear_65536": (
        dict(causal=False, lengths=[65536], baselines=[]),
        ["linear"],
        {"ch07_bench_noncausal.csv": (["linear"], None, False)},
    ),
    "causal": (
        dict(causal=True, lengths=LONG, baselines=BASELINES),
        ["linear", "linear:causal_form=cumsum", PERFORMER, LOCAL, LSH],
        {
            "ch08_bench_causal.csv": ([*BASELINES, PERFORMER], None, True),
            "ch10_bench_causal.csv": (
                [*BASELINES, "linear", PERFORMER, LOCAL, LSH],
                None,
                True,
            ),
            "ch07_bench_causal.csv": (
                ["linear", "linear:causal_form=cumsum"],
                [1024, 4096, 16384],
                False,
            ),
        },
    ),
    "causal_recurrent": (
        dict(
            causal=True, lengths=[1024, 4096, 16384], baselines=[], repeats=1, warmup=0
        ),
        ["linear:causal_form=recurrent"],
        {"ch07_bench_causal.csv": (["linear:causal_form=recurrent"], None, False)},
    ),
    # runs of a millisecond or less: more repeats, or the median still shows the machine
    "crossover": (
        dict(causal=False, lengths=SHORT, baselines=BASELINES, repeats=9, warmup=3),
        ["linear"],
        {"ch07_bench_crossover.csv": ([*BASELINES, "linear"], None, True)},
    ),
    "crossover_causal": (
        dict(causal=True, lengths=SHORT, baselines=BASELINES, repeats=9, warmup=3),
        ["linear"],
        {"ch07_bench_crossover_causal.csv": ([*BASELINES, "linear"], None, True)},
    ),
}
PLAIN = ["spec", "length", "time_s", "peak_mb", "status"]


def machine() -> dict:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(
            os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
        ),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "commit": commit,
    }


def write(
    data: Path, name: str, rows: list[dict], ratios: bool, keep_old=False
) -> None:
    """Write ``rows`` to ``data/name``; with ``keep_old``, rows of the existing file whose
    (spec, length) was not re-measured stay (for ``--only``)."""
    fields = list(rows[0]) if ratios else PLAIN
    if keep_old and (data / name).exists():
        new = {(r["spec"], int(r["length"])) for r in rows}
        with open(data / name) as f:
            old = [
                r for r in csv.DictReader(f) if (r["spec"], int(r["length"])) not in new
            ]
        rows = old + rows
    with open(data / name, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="*", choices=sorted(RUNS), help="runs to redo")
    p.add_argument("--data", type=Path, default=DATA, help="where the CSVs go")
    a = p.parse_args(argv)
    log_path = a.data / "measurements.json"
    log = json.loads(log_path.read_text()) if log_path.exists() else {"runs": {}}
    log["machine"] = machine()
    tables: dict[str, list[dict]] = {}
    for name in a.only or RUNS:
        settings, specs, outputs = RUNS[name]
        settings = {**COMMON, **settings}
        lengths, baselines = settings.pop("lengths"), settings.pop("baselines")
        load_before, t0 = os.getloadavg(), time.time()
        print(f"== {name}: {specs} at {lengths}", flush=True)
        rows = run_benchmark(
            specs,
            lengths,
            baselines=baselines,
            progress=False,
            budget_gb=BUDGET_GB,
            **settings,
        )
        log["runs"][name] = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t0)),
            "commit": log["machine"]["commit"],  # `--only` re-measures some runs later
            "minutes": round((time.time() - t0) / 60, 1),
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in os.getloadavg()],
            "specs": specs,
            "baselines": baselines,
            "lengths": lengths,
            "budget_gb": BUDGET_GB,
            **settings,
        }
        for csv_name, (keep, at, ratios) in outputs.items():
            picked = [
                r
                for r in rows
                if r["spec"] in keep and (at is None or r["length"] in at)
            ]
            tables.setdefault(csv_name, []).append((picked, ratios))
        if name == "noncausal":
            errors = approximation_errors(CH10, length=1024, heads=4, head_dim=64)
            write(a.data, "ch10_error.csv", errors, True)
    for csv_name, parts in tables.items():
        rows = [r for picked, _ in parts for r in picked]
        write(a.data, csv_name, rows, parts[0][1], keep_old=bool(a.only))
        print(f"wrote {a.data / csv_name} ({len(rows)} rows)")
    log_path.write_text(json.dumps(log, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
