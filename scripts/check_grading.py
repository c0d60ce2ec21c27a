"""Grade the solution and the blank release of every chapter through the whole grader.

    python scripts/check_grading.py [--sandbox auto|bwrap|none] [ASSIGNMENT ...]

For each assignment (all of ``solutions/`` by default) it makes a scratch course, hands in two
notebooks — the release with the solution cells filled in, and the release as it is — and runs
``python -m attnkit.grading grade`` on them: the sandbox, the guard in the kernel, the trusted
judge. The solution must get every point with no grading note, the blank release none, and
every hidden test cell must be stubbed (out of the kernel). Run it after changing an exercise
(a test that cannot be replayed or stubbed, a helper the guard refuses, a recorded result that
is not plain data all show here). About 30 s per chapter on two cores.
Exit status 1 if any chapter is off.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from grading import (  # noqa: E402  (the tests' helpers build courses and submissions)
    assignments,
    fill,
    make_course,
    released_notebook,
    solution_cells,
    source_notebook,
)


def check(assignment: str, sandbox: str, tmp: Path) -> list[str]:
    """What is wrong with grading ``assignment``'s solution and blank release ([] if nothing)."""
    course = make_course(tmp, assignment)
    folder = tmp / "handed-in"
    folder.mkdir()
    released = released_notebook(assignment)
    answers = solution_cells(source_notebook(assignment))
    nbformat.write(fill(released, answers), folder / "solution.ipynb")
    nbformat.write(released, folder / "blank.ipynb")
    out = tmp / "out"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    run = subprocess.run(
        [sys.executable, "-m", "attnkit.grading", "grade", assignment, str(folder)]
        + ["--course", str(course), "--out", str(out), "--sandbox", sandbox],
        env=env,
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        return [f"grade exited with {run.returncode}: {run.stderr.strip()[-300:]}"]
    manifest = json.loads((out / ".attnkit-grading" / "manifest.json").read_text())
    # a hidden test cell the rehearsal could not stub (it runs in the kernel), and why
    wrong = [
        line.strip()
        for line in run.stderr.splitlines()
        if "'s hidden tests run in the kernel:" in line
    ]
    for student, full in (("solution", True), ("blank", False)):
        record = manifest[student]
        scores = record["scores"]
        got = sum(s for s, _ in scores.values())
        most = sum(m for _, m in scores.values())
        if not scores or got != (most if full else 0):
            wrong.append(f"{student}: {got:g} of {most:g} points")
        if full and record["problems"]:
            wrong.append(f"{student}: " + "; ".join(record["problems"]))
    return wrong


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*")
    parser.add_argument("--sandbox", default="auto", choices=["auto", "bwrap", "none"])
    args = parser.parse_args(argv)
    status = 0
    for assignment in args.assignments or assignments():
        with tempfile.TemporaryDirectory() as tmp:
            wrong = check(assignment, args.sandbox, Path(tmp))
        print(f"{assignment}: {'; '.join(wrong) if wrong else 'ok'}", flush=True)
        status |= bool(wrong)
    return status


if __name__ == "__main__":
    sys.exit(main())
