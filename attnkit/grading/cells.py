"""What the grader reads from a notebook's cells: test cells, questions, forbidden names."""

from __future__ import annotations

import ast

__all__ = [
    "HIDDEN",
    "nbgrader_meta",
    "is_test_cell",
    "only_comments",
    "question_of",
    "forbidden_names",
    "answer_names",
    "forbidden_sentence",
]

HIDDEN = "### BEGIN HIDDEN TESTS"


def nbgrader_meta(cell) -> dict:
    """The ``nbgrader`` metadata of a cell (empty when it has none)."""
    return cell.get("metadata", {}).get("nbgrader", {})


def is_test_cell(cell) -> bool:
    """A graded code cell that is not a solution: a test cell (visible or hidden)."""
    m = nbgrader_meta(cell)
    return (
        bool(m.get("grade"))
        and not m.get("solution")
        and cell.get("cell_type") == "code"
    )


def only_comments(source: str) -> bool:
    """True when every line is blank or a comment (a hidden test cell in the student's copy)."""
    return all(
        not line.strip() or line.strip().startswith("#") for line in source.splitlines()
    )


def question_of(grade_id: str) -> str:
    """``"q2_hidden"`` -> ``"q2"``."""
    return grade_id.split("_", 1)[0]


def forbidden_names(nb) -> dict[str, list[str]]:
    """``{question: [dotted paths of the attnkit functions its answer must not call]}``.

    Read from each solution cell's metadata,
    ``{"attnkit": {"forbidden": ["attnkit.lsh.sort_by_bucket", ...]}}`` (any depth; a class
    stands for its ``__init__`` and ``forward``). Every solution cell gets an entry, ``[]`` when
    it lists nothing.
    """
    return {
        nbgrader_meta(c)["grade_id"]: list(
            c.get("metadata", {}).get("attnkit", {}).get("forbidden", [])
        )
        for c in nb.cells
        if c.get("cell_type") == "code" and nbgrader_meta(c).get("solution")
    }


def answer_names(nb) -> dict[str, list[str]]:
    """``{question: [functions and classes its solution cell defines]}``: what the tests call."""
    result = {}
    for c in nb.cells:
        if c.get("cell_type") == "code" and nbgrader_meta(c).get("solution"):
            try:
                body = ast.parse(c.source).body
            except SyntaxError:
                body = []
            result[nbgrader_meta(c)["grade_id"]] = [
                n.name
                for n in body
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            ]
    return result


def solution_sources(nb) -> dict[str, str]:
    """``{grade_id: source}`` of the code cells students fill in."""
    return {
        nbgrader_meta(c)["grade_id"]: c.source
        for c in nb.cells
        if c.get("cell_type") == "code" and nbgrader_meta(c).get("solution")
    }


def forbidden_sentence(paths) -> str:
    """The prompt's sentence for a forbidden list: ``Do not call `a`, `b` or `c`.`` ("" if none)."""
    names = [f"`{p}`" for p in paths]
    if not names:
        return ""
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
    return f"Do not call {listed}."
