"""What the grader reads from a notebook's cells: test cells, questions, forbidden names."""
from __future__ import annotations

import ast
import re

import attnkit

__all__ = ["HIDDEN", "nbgrader_meta", "is_test_cell", "only_comments", "question_of", "forbidden_names"]

HIDDEN = "### BEGIN HIDDEN TESTS"


def nbgrader_meta(cell) -> dict:
    """The ``nbgrader`` metadata of a cell (empty when it has none)."""
    return cell.get("metadata", {}).get("nbgrader", {})


def is_test_cell(cell) -> bool:
    """A graded code cell that is not a solution: a test cell (visible or hidden)."""
    m = nbgrader_meta(cell)
    return bool(m.get("grade")) and not m.get("solution") and cell.get("cell_type") == "code"


def only_comments(source: str) -> bool:
    """True when every line is blank or a comment (a hidden test cell in the student's copy)."""
    return all(not line.strip() or line.strip().startswith("#") for line in source.splitlines())


def question_of(grade_id: str) -> str:
    """``"q2_hidden"`` -> ``"q2"``."""
    return grade_id.split("_", 1)[0]


def forbidden_names(nb) -> dict[str, list[str]]:
    """``{question: [attnkit names its solution must not call]}``, read from the notebook itself.

    A name is forbidden for question ``qN`` when the solution cell ``qN`` defines a function or
    class of the same name as one of attnkit's, or when a markdown cell of the question's section
    says "Do not call `attnkit.NAME`" (the convention of the course's notebooks).
    """
    result: dict[str, list[str]] = {}
    pending: list[str] = []  # markdown seen since the previous solution cell
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            pending.append(cell.source)
        elif nbgrader_meta(cell).get("solution") and cell.cell_type == "code":
            names = set()
            try:
                tree = ast.parse(cell.source)
                names |= {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
            except SyntaxError:
                pass
            for text in pending:
                for sentence in re.findall(r"[Dd]o (?:\*\*)?not(?:\*\*)? call(.*?)(?:\.\s|\.$|$)", text, re.S):
                    names |= set(re.findall(r"attnkit\.(\w+)", sentence))
            result[nbgrader_meta(cell)["grade_id"]] = sorted(n for n in names if hasattr(attnkit, n))
            pending = []
    return result
