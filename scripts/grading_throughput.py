"""Where a student's grading time goes, and seconds per submission, for one chapter.

    .venv/bin/python scripts/grading_throughput.py [--assignment ch01-soft-lookup] [--students 4]

Run it on a quiet machine: the load average is printed before and after. In one run it
measures (1) the start-up cost of each process a grading needs (Python, nbgrader, torch,
attnkit, the kernel's guard), each the median of three runs, and (2) the same N perfect
submissions graded by ``python -m attnkit.grading grade`` with ``--jobs 1``, ``--jobs 2`` and
through a two-worker Dask cluster on localhost (one thread per worker), each into a fresh
output folder: wall seconds, seconds per submission, and the mean seconds of a student's
whole grading and of its stages (``nbgrader autograde`` with its sandboxed kernel, the trusted
judge, then ``generate_feedback``), read from the grader's manifest. The instructor guide
reports it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from attnkit.grading.cells import nbgrader_meta, solution_sources

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {
    **os.environ,
    "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    "OMP_NUM_THREADS": "1",
}
IMPORTS = {
    "python": "pass",
    "nbgrader": "import nbgrader.apps",
    "torch": "import torch",
    "attnkit": "import attnkit",
    "the kernel's guard": "import attnkit.grading.sandbox",
}


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _perfect(assignment: str):
    """The released notebook with every solution cell of solutions/ filled in."""
    name = f"{assignment}.ipynb"
    source = nbformat.read(ROOT / "solutions" / assignment / name, as_version=4)
    answers = solution_sources(source)
    nb = nbformat.read(ROOT / "exercises" / assignment / name, as_version=4)
    for cell in nb.cells:
        gid = nbgrader_meta(cell).get("grade_id")
        if gid in answers:
            cell.source = answers[gid]
    return nb


def _import_seconds(statement: str) -> float:
    times = []
    for _ in range(3):
        start = time.monotonic()
        subprocess.run([sys.executable, "-c", statement], env=ENV, check=True)
        times.append(time.monotonic() - start)
    return statistics.median(times)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _grade(assignment, course, folder, out, extra) -> float:
    cmd = [sys.executable, "-m", "attnkit.grading", "grade", assignment, str(folder)]
    cmd += ["--course", str(course), "--out", str(out), *extra]
    start = time.monotonic()
    subprocess.run(cmd, env=ENV, check=True, capture_output=True, text=True)
    return time.monotonic() - start


def _stages(out: Path) -> dict[str, float]:
    manifest = json.loads((out / ".attnkit-grading" / "manifest.json").read_text())
    stages = [r.get("seconds", {}) for r in manifest.values()]
    return {
        k: statistics.mean(s[k] for s in stages)
        for k in ("total", "autograde", "feedback", "judge")
    }


def _cluster(tmp: Path):
    """A scheduler and two one-thread workers on localhost; returns (address, processes)."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler"]
            + ["--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    for name in ("w1", "w2"):
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", address]
                + ["--nthreads", "1", "--no-nanny", "--no-dashboard", "--name", name]
                + ["--local-directory", str(tmp / name)],
                env=ENV,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    import distributed

    with distributed.Client(address, timeout="60s") as client:
        client.wait_for_workers(2, timeout=120)
    return address, procs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="ch01-soft-lookup")
    parser.add_argument("--students", type=int, default=4)
    args = parser.parse_args(argv)
    a = args.assignment
    print(f"load average before: {_load()}")
    print("\n| process start-up | seconds (median of 3) |\n|---|---|")
    for what, statement in IMPORTS.items():
        print(f"| {what} | {_import_seconds(statement):.2f} |")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        course = tmp / "course"
        (course / "solutions").mkdir(parents=True)
        shutil.copy(ROOT / "nbgrader_config.py", course)
        shutil.copytree(ROOT / "solutions" / a, course / "solutions" / a)
        folder = tmp / "in"
        folder.mkdir()
        perfect = _perfect(a)
        for i in range(args.students):
            nbformat.write(perfect, folder / f"student{i + 1}.ipynb")
        runs = {"--jobs 1": ["--jobs", "1"], "--jobs 2": ["--jobs", "2"]}
        print(f"\n{a}, {args.students} perfect submissions, timeout 60 s per cell")
        print(
            "\n| run | wall s | s per submission | a student's grading s | autograde s "
            "| feedback s | judge s |\n|---|---|---|---|---|---|---|"
        )
        for name, extra in runs.items():
            out = tmp / name.replace(" ", "").replace("-", "")
            wall = _grade(a, course, folder, out, extra)
            st = _stages(out)
            print(
                f"| {name} | {wall:.1f} | {wall / args.students:.1f} | {st['total']:.1f} "
                f"| {st['autograde']:.1f} | {st['feedback']:.1f} | {st['judge']:.1f} |"
            )
        address, procs = _cluster(tmp)
        try:
            out = tmp / "dask"
            wall = _grade(a, course, folder, out, ["--scheduler", address])
            st = _stages(out)
            print(
                f"| Dask, 2 workers | {wall:.1f} | {wall / args.students:.1f} "
                f"| {st['total']:.1f} | {st['autograde']:.1f} | {st['feedback']:.1f} "
                f"| {st['judge']:.1f} |"
            )
        finally:
            for p in procs:
                p.kill()
                p.wait()
    print(f"\nload average after: {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
