"""Test glue for the notebook/grading tests: a scratch nbgrader course, filled-in submissions, the
wrong-answer fixtures, and a runner that tries many answers to one question without nbgrader.

What a grader reads from a cell (its nbgrader metadata, whether it is a test cell, the question a
grade_id belongs to) comes from :mod:`attnkit.grading.cells`; nothing here re-implements it.

Conventions every assignment in ``solutions/`` follows (checked by the tests):

* one notebook per assignment: ``solutions/<assignment>/<assignment>.ipynb``;
* question ``qN`` has a solution cell with nbgrader ``grade_id`` ``"qN"`` and test cells
  whose ``grade_id`` starts with ``"qN_"`` (``qN_visible``, ``qN_hidden`` …);
* wrong answers live in ``tests/wrong_answers/<assignment>.py`` as
  ``WRONG_ANSWERS = {"qN": [("what is wrong", "code for the solution cell"), ...]}``.
"""

from __future__ import annotations

import json
import os
import runpy
import select
import shutil
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

import nbformat

from attnkit.grading.batch import STEPS_SCRIPT
from attnkit.grading.cells import (
    answer_names,
    forbidden_names,
    is_test_cell,
    nbgrader_meta,
    question_of,
    solution_sources,
)

# fake cell file names: what the guard's frame walk looks for
CELL_DIR = "/attnkit-trial-cells"

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"
WRONG_DIR = Path(__file__).resolve().parent / "wrong_answers"


def assignments() -> list[str]:
    """Names of the assignments (``chNN-slug``) found in ``solutions/``."""
    return sorted(
        p.name for p in SOLUTIONS.iterdir() if p.is_dir() and p.name.startswith("ch")
    )


def notebook_name(assignment: str) -> str:
    return f"{assignment}.ipynb"


def source_notebook(assignment: str):
    return nbformat.read(
        SOLUTIONS / assignment / notebook_name(assignment), as_version=4
    )


def released_notebook(assignment: str):
    """The committed release in ``exercises/`` (test_exercises checks it is what
    generate_assignment makes)."""
    return nbformat.read(
        EXERCISES / assignment / notebook_name(assignment), as_version=4
    )


def nbgrader(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``nbgrader`` (this interpreter's) in ``cwd``; raise with its log on failure."""
    # nbgrader runs `alembic` (and kernels) from PATH: put this interpreter's bin first
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"nbgrader {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


# runs nbgrader commands one after the other in one interpreter (as the batch grader's
# attnkit.grading.steps does): one start of Python and nbgrader instead of one per command
# (the file is run by path, as the grader does: importing attnkit would import torch)
_IN_ONE = """import json, runpy, sys
run = runpy.run_path(sys.argv[2])["run"]
for argv in json.loads(sys.argv[1]):
    rc = run(argv)
    if rc:
        sys.exit(f"nbgrader {' '.join(argv)} failed: {rc}")
"""


STEPS = str(STEPS_SCRIPT)


def nbgrader_in_one(*commands: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run several ``nbgrader`` commands in one process, in order; raise with the log when
    one fails (the rest are not run)."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    proc = subprocess.run(
        [sys.executable, "-c", _IN_ONE, json.dumps([list(c) for c in commands]), STEPS],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{commands} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def make_course(tmp: Path, assignment: str) -> Path:
    """A scratch course directory holding the config and one assignment's sources."""
    course = tmp / "course"
    course.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copytree(
        SOLUTIONS / assignment, course / "solutions" / assignment, dirs_exist_ok=True
    )
    return course


def generate(course: Path, assignment: str) -> Path:
    """``nbgrader generate_assignment``; returns the released notebook's path."""
    nbgrader("generate_assignment", assignment, "--force", cwd=course)
    return course / "exercises" / assignment / notebook_name(assignment)


def cells_by_grade_id(nb) -> dict[str, nbformat.NotebookNode]:
    return {
        nbgrader_meta(c)["grade_id"]: c
        for c in nb.cells
        if "grade_id" in nbgrader_meta(c)
    }


def solution_cells(nb) -> dict[str, str]:
    """``{grade_id: source}`` of the code cells students fill in."""
    return solution_sources(nb)


def graded_test_cells(nb) -> dict[str, nbformat.NotebookNode]:
    """``{grade_id: cell}`` of the autograded test cells (visible and hidden)."""
    return {nbgrader_meta(c)["grade_id"]: c for c in nb.cells if is_test_cell(c)}


def fill(release_nb, answers: dict[str, str]):
    """A copy of the released notebook with the given solution cells filled in."""
    nb = nbformat.from_dict(release_nb)
    cells = cells_by_grade_id(nb)
    for gid, source in answers.items():
        cells[gid].source = source
    return nb


def wrong_answers(assignment: str) -> dict[str, list[tuple[str, str]]]:
    """``WRONG_ANSWERS`` of tests/wrong_answers/<assignment>.py: ``{qN: [(why, code)]}``."""
    path = WRONG_DIR / f"{assignment.replace('-', '_')}.py"
    return runpy.run_path(str(path))["WRONG_ANSWERS"]


def correct_answers(assignment: str) -> dict[str, list[tuple[str, str]]]:
    """``CORRECT_ANSWERS`` of the same file: correct answers written differently from the
    solution (a loop, einsum, another valid order), ``{qN: [(how, code)]}``; each must score
    full marks."""
    path = WRONG_DIR / f"{assignment.replace('-', '_')}.py"
    return runpy.run_path(str(path)).get("CORRECT_ANSWERS", {})


def autograde(
    course: Path, assignment: str, submissions: dict[str, object], then=()
) -> dict[str, dict[str, tuple[float, float]]]:
    """Autograde several students' notebooks in one nbgrader run, then run the nbgrader
    commands in ``then`` (e.g. ``["export"]``) in the same process.

    Returns ``{student: {grade_id: (score, max_score)}}``.
    """
    from nbgrader.api import Gradebook

    for student, nb in submissions.items():
        folder = course / "submitted" / student / assignment
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, folder / notebook_name(assignment))
    nbgrader_in_one(["autograde", assignment, "--force"], *then, cwd=course)
    scores: dict[str, dict[str, tuple[float, float]]] = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in submissions:
            sub = gb.find_submission_notebook(assignment, assignment, student)
            scores[student] = {g.name: (g.score, g.max_score) for g in sub.grades}
    return scores


def autograded_notebook(course: Path, assignment: str, student: str):
    return nbformat.read(
        course / "autograded" / student / assignment / notebook_name(assignment),
        as_version=4,
    )


NOBODY = 65534  # the ordinary user the grader runs as in tests/test_distribute.py


def as_nobody(argv, *, home: Path, stash: Path) -> list[str]:
    """``argv`` run as ``nobody`` (when the suite runs as root): in a mount namespace of its
    own whose ``/root`` (0700) is an empty tmpfs holding only the Python installation the
    virtual environment points to, mounted through ``stash`` (an empty folder). So the grader
    and its sandboxes see the machine as an ordinary user would: bubblewrap works through a
    user namespace, with no uid switch and no ``chown``.

    ``unshare`` and ``mount``, not an outer bubblewrap: a fresh ``/proc`` mounted there would
    stop the grader's own sandboxes from mounting theirs.
    """
    base = Path(sys.base_prefix).resolve()
    script = ""
    if Path("/root") in base.parents:
        script = (
            f'mount --rbind "{base}" "{stash}" && '
            "mount -t tmpfs -o mode=755 tmpfs /root && "
            f'mkdir -p "{base}" && mount --rbind "{stash}" "{base}" && '
        )
    script += f'export HOME="{home}" && exec "$@"'
    who = [f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]
    return [shutil.which("unshare"), "--mount", "--propagation", "private"] + [
        "sh",
        "-c",
        script,
        "sh",
        shutil.which("setpriv"),
        *who,
        *argv,
    ]


def open_to_nobody(path: Path) -> None:
    """Let ``nobody`` through ``path``'s parents (pytest's folders are 0700) up to ``/tmp``."""
    for parent in [path, *path.parents]:
        if parent in (Path("/tmp"), Path("/")):
            break
        parent.chmod(parent.stat().st_mode | 0o111)


def perfect(assignment: str):
    """The release with every solution cell filled in from ``solutions/``: a perfect submission."""
    return fill(
        released_notebook(assignment), solution_cells(source_notebook(assignment))
    )


# --- trying answers without nbgrader -------------------------------------------------------------


def graded_notebook(assignment: str):
    """What ``nbgrader autograde`` runs for the perfect student: the release with the solutions
    filled in and every graded cell (visible and hidden tests) restored from ``solutions/``."""
    source = source_notebook(assignment)
    nb = fill(released_notebook(assignment), solution_cells(source))
    originals = graded_test_cells(source)
    for gid, cell in graded_test_cells(nb).items():
        cell.source = originals[gid].source
    return nb


def try_answers(
    nb,
    trials: dict[str, list[str]],
    *,
    cwd: Path,
    timeout: float = 120.0,
    details: bool = False,
) -> dict:
    """Try each answer in ``trials[qN]`` as the solution cell ``qN`` of the graded notebook ``nb``.

    One fresh Python process runs the notebook's cells top to bottom once (the perfect answers).
    At each question's solution cell it forks once per trial: the child, holding a copy of
    everything run so far (namespace, RNG state, imported modules), runs the trial's code as the
    solution cell, then every following cell up to the question's last test cell, as
    ``nbgrader autograde`` would, and reports each test cell of the question. Torch runs on one
    thread in that process (forking after multithreaded OpenMP work can hang).

    As in the grader's kernel, the guard (:class:`attnkit.grading.sandbox.Tripwires`, built from
    the solution cells' forbidden lists) is on for the whole run: while a question's test cells
    run, a call to one of its forbidden attnkit functions from anywhere but the test cell itself
    fails that test with ``GradingGuardError``.

    Returns ``{qN: [{test grade_id: "" if passed else "ErrorName: message"} per trial]}``; with
    ``details``, ``{"results": that, "events": {qN: [the guard's events per trial]},
    "broken": [forbidden paths the guard could not wire]}``.
    """
    forbid, answers = forbidden_names(nb), answer_names(nb)
    cells = []
    for c in nb.cells:
        if c.cell_type != "code":
            continue
        gid, test = nbgrader_meta(c).get("grade_id"), is_test_cell(c)
        q = question_of(gid) if test else None
        cells.append(
            {
                "grade_id": gid,
                "source": c.source,
                "test": test,
                "guard": {
                    "grade_id": gid,
                    "forbidden": forbid.get(q, []),
                    "answers": answers.get(q, []),
                }
                if test
                else None,
            }
        )
    plan = cwd / "trials.json"
    out = cwd / "results.json"
    plan.write_text(
        json.dumps(
            {"cells": cells, "trials": trials, "timeout": timeout, "out": str(out)}
        )
    )
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
    }
    env.pop("ATTNKIT_GRADING", None)
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
        f"import grading; grading._trial_runner({str(plan)!r})"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True
    )
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(
            f"the trial runner failed ({proc.returncode}):\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    payload = json.loads(out.read_text())
    return payload if details else payload["results"]


def _cell_name(i: int) -> str:
    return f"{CELL_DIR}/cell{i}.py"


def _run_cell(cells, i: int, ns: dict, wires, source: str | None = None) -> str:
    """Run cell ``i`` (or ``source`` in its place) in ``ns`` under the guard; "" when it ran,
    else the error as nbgrader shows its name."""
    try:
        wires.enter(_cell_name(i), cells[i]["guard"])
        code = cells[i]["source"] if source is None else source
        exec(compile(code, _cell_name(i), "exec"), ns)  # noqa: S102 - the course's notebooks
        return ""
    except BaseException as exc:  # noqa: BLE001 - a cell's error is its result, as in a kernel
        return f"{type(exc).__name__}: {str(exc)[:300]}"


def _trial(cells, start, last, question, code, ns, wires, events, write_fd) -> None:
    """In the forked child: the trial as solution cell ``start``, then cells up to ``last``."""
    results = {}
    del events[:]  # the parent's, copied by the fork
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        _run_cell(cells, start, ns, wires, source=code)
        for i in range(start + 1, last + 1):
            error = _run_cell(cells, i, ns, wires)
            if cells[i]["test"] and question_of(cells[i]["grade_id"]) == question:
                results[cells[i]["grade_id"]] = error
        got = {"results": results, "events": events}
        os.write(write_fd, json.dumps(got).encode())
    except BaseException:  # noqa: BLE001
        os.write(write_fd, json.dumps({"runner": traceback.format_exc()}).encode())
    finally:
        os._exit(0)


def _fork_trial(cells, start, last, question, code, ns, wires, events, timeout):
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _trial(cells, start, last, question, code, ns, wires, events, write_fd)
    os.close(write_fd)
    chunks, deadline = [], time.monotonic() + timeout
    while True:
        ready, _, _ = select.select(
            [read_fd], [], [], max(0.0, deadline - time.monotonic())
        )
        if not ready:  # too slow: nbgrader's cell timeout would fail it too
            os.kill(pid, signal.SIGKILL)
            break
        chunk = os.read(read_fd, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    tests = [
        c["grade_id"]
        for c in cells[start + 1 : last + 1]
        if c["test"] and question_of(c["grade_id"]) == question
    ]
    try:
        got = json.loads(b"".join(chunks)) if chunks else {}
    except ValueError:
        got = {}
    if "runner" in got:
        raise RuntimeError(got["runner"])
    why = f"the trial did not finish (status {status}, timeout {timeout}s)"
    results = got.get("results", {})
    return {gid: results.get(gid, why) for gid in tests}, got.get("events", [])


def _trial_runner(plan_path: str) -> None:
    """The trial process (see :func:`try_answers`)."""
    import torch  # the notebooks' setup imports it anyway; one thread, so that forking is safe

    from attnkit.grading.sandbox import Tripwires

    torch.set_num_threads(1)
    plan = json.loads(Path(plan_path).read_text())
    cells, trials, timeout = plan["cells"], plan["trials"], plan["timeout"]
    ns: dict = {"__name__": "__main__", "__builtins__": __builtins__}
    events: list[dict] = []
    wires = Tripwires(
        [c["guard"] for c in cells if c["test"]],
        CELL_DIR,
        lambda kind, **info: events.append({"kind": kind, **info}),
        lambda: ns,
    )
    results: dict[str, list[dict]] = {}
    trial_events: dict[str, list[list[dict]]] = {}
    last = max(
        j
        for j, c in enumerate(cells)
        if c["test"] and question_of(c["grade_id"]) in trials
    )
    for i, cell in enumerate(
        cells[: last + 1]
    ):  # not beyond: the self-check cell has nothing to try
        question = cell["grade_id"]
        if question in trials:
            tests = [
                j
                for j, c in enumerate(cells)
                if c["test"] and question_of(c["grade_id"]) == question
            ]
            if not tests or tests[0] < i:
                raise RuntimeError(
                    f"{question}: its test cells must follow its solution cell"
                )
            tried = [
                _fork_trial(
                    cells, i, tests[-1], question, code, ns, wires, events, timeout
                )
                for code in trials[question]
            ]
            results[question] = [r for r, _ in tried]
            trial_events[question] = [e for _, e in tried]
        _run_cell(cells, i, ns, wires)  # as nbgrader: errors do not stop the run
    payload = {"results": results, "events": trial_events, "broken": wires.broken}
    Path(plan["out"]).write_text(json.dumps(payload))
