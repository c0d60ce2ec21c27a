"""Helpers to run nbgrader round trips on the course's assignments in a scratch course.

Conventions every assignment in ``solutions/`` follows (checked by the tests):

* one notebook per assignment: ``solutions/<assignment>/<assignment>.ipynb``;
* question ``qN`` has a solution cell with nbgrader ``grade_id`` ``"qN"`` and test cells
  whose ``grade_id`` starts with ``"qN_"`` (``qN_visible``, ``qN_hidden`` …);
* wrong answers live in ``tests/wrong_answers/<assignment>.py`` as
  ``WRONG_ANSWERS = {"qN": [("what is wrong", "code for the solution cell"), ...]}``.
"""
from __future__ import annotations

import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"
WRONG_DIR = Path(__file__).resolve().parent / "wrong_answers"


def assignments() -> list[str]:
    """Names of the assignments (``chNN-slug``) found in ``solutions/``."""
    return sorted(p.name for p in SOLUTIONS.iterdir() if p.is_dir() and p.name.startswith("ch"))


def notebook_name(assignment: str) -> str:
    return f"{assignment}.ipynb"


def nbgrader(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``nbgrader`` (this interpreter's) in ``cwd``; raise with its log on failure."""
    # nbgrader runs `alembic` (and kernels) from PATH: put this interpreter's bin first
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args], cwd=cwd, capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def make_course(tmp: Path, assignment: str) -> Path:
    """A scratch course directory holding the config and one assignment's sources."""
    course = tmp / "course"
    course.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copytree(SOLUTIONS / assignment, course / "solutions" / assignment, dirs_exist_ok=True)
    return course


def generate(course: Path, assignment: str) -> Path:
    """``nbgrader generate_assignment``; returns the released notebook's path."""
    nbgrader("generate_assignment", assignment, "--force", cwd=course)
    return course / "exercises" / assignment / notebook_name(assignment)


def cells_by_grade_id(nb) -> dict[str, nbformat.NotebookNode]:
    return {
        c.metadata["nbgrader"]["grade_id"]: c
        for c in nb.cells
        if "nbgrader" in c.metadata and "grade_id" in c.metadata["nbgrader"]
    }


def solution_cells(nb) -> dict[str, str]:
    """``{grade_id: source}`` of the code cells students fill in."""
    return {
        gid: c.source
        for gid, c in cells_by_grade_id(nb).items()
        if c.metadata["nbgrader"].get("solution") and c.cell_type == "code"
    }


def graded_test_cells(nb) -> dict[str, nbformat.NotebookNode]:
    """``{grade_id: cell}`` of the autograded test cells."""
    return {
        gid: c
        for gid, c in cells_by_grade_id(nb).items()
        if c.metadata["nbgrader"].get("grade") and not c.metadata["nbgrader"].get("solution")
    }


def fill(release_nb, answers: dict[str, str]):
    """A copy of the released notebook with the given solution cells filled in."""
    nb = nbformat.from_dict(release_nb)
    cells = cells_by_grade_id(nb)
    for gid, source in answers.items():
        cells[gid].source = source
    return nb


def wrong_answers(assignment: str) -> dict[str, list[tuple[str, str]]]:
    path = WRONG_DIR / f"{assignment.replace('-', '_')}.py"
    return runpy.run_path(str(path))["WRONG_ANSWERS"]


def autograde(course: Path, assignment: str, submissions: dict[str, object]) -> dict[str, dict[str, tuple[float, float]]]:
    """Autograde several students' notebooks in one nbgrader run.

    Returns ``{student: {grade_id: (score, max_score)}}``.
    """
    from nbgrader.api import Gradebook

    for student, nb in submissions.items():
        folder = course / "submitted" / student / assignment
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, folder / notebook_name(assignment))
    nbgrader("autograde", assignment, "--force", cwd=course)
    scores: dict[str, dict[str, tuple[float, float]]] = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in submissions:
            sub = gb.find_submission_notebook(assignment, assignment, student)
            scores[student] = {g.name: (g.score, g.max_score) for g in sub.grades}
    return scores


def autograded_notebook(course: Path, assignment: str, student: str):
    return nbformat.read(course / "autograded" / student / assignment / notebook_name(assignment), as_version=4)
