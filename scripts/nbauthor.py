"""Build nbgrader source notebooks from Python (authoring aid for solutions/).

Usage from a scratch script::

    from nbauthor import md, setup, solution, tests, write
    write("solutions/ch01-soft-lookup/ch01-soft-lookup.ipynb", [
        md("# Chapter 1 exercises ..."), setup(),
        md("## Q1 ..."),
        solution("q1", "def f(x):\\n    ### BEGIN SOLUTION\\n    ...\\n    ### END SOLUTION"),
        tests("q1_visible", "assert ...", points=1),
        tests("q1_hidden", "### BEGIN HIDDEN TESTS\\n...\\n### END HIDDEN TESTS", points=2),
    ])

After editing solutions/, regenerate the release from the repo root:
``nbgrader generate_assignment chNN-slug --force``.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

REPO_URL = "https://github.com/attention-course/attention-course"

SETUP = f"""# Setup: runs as is locally (attnkit installed by `make`) and on Colab (installed here).
import importlib.util, subprocess, sys
if importlib.util.find_spec("attnkit") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                    "attnkit @ git+{REPO_URL}"], check=True)
import torch
import attnkit
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
torch.manual_seed(0)
print(f"attnkit {{attnkit.__version__}}, torch {{torch.__version__}}, device: {{device}}")"""


def _meta(
    grade_id: str,
    *,
    grade: bool,
    solution: bool,
    locked: bool,
    points: float | None = None,
) -> dict:
    m = {
        "grade": grade,
        "solution": solution,
        "locked": locked,
        "grade_id": grade_id,
        "schema_version": 3,
    }
    if points is not None:
        m["points"] = points
    return {"nbgrader": m}


def md(text: str):
    return nbformat.v4.new_markdown_cell(text.strip("\n"))


def code(source: str):
    """A plain code cell (not graded, editable)."""
    return nbformat.v4.new_code_cell(source.strip("\n"))


def setup(extra: str = ""):
    """The locked first code cell every exercise notebook starts with."""
    src = SETUP + ("\n" + extra.strip("\n") if extra else "")
    return nbformat.v4.new_code_cell(
        src, metadata=_meta("setup", grade=False, solution=False, locked=True)
    )


def solution(grade_id: str, source: str):
    """The cell a student fills in; put the answer between ### BEGIN/END SOLUTION."""
    return nbformat.v4.new_code_cell(
        source.strip("\n"),
        metadata=_meta(grade_id, grade=False, solution=True, locked=False),
    )


def tests(grade_id: str, source: str, *, points: float):
    """A locked, autograded test cell (hidden tests go between ### BEGIN/END HIDDEN TESTS)."""
    return nbformat.v4.new_code_cell(
        source.strip("\n"),
        metadata=_meta(
            grade_id, grade=True, solution=False, locked=True, points=points
        ),
    )


def write(path: str | Path, cells) -> None:
    nb = nbformat.v4.new_notebook(cells=list(cells))
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    nb.metadata["language_info"] = {"name": "python"}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
