"""Feedback keeps hidden tests hidden (attnkit.grading.feedback), for every assignment.

No extra autograde: each assignment reuses test_exercises' scratch course (same xdist group, same
worker, one ``nbgrader autograde`` of a perfect, a blank and a wrong student) and runs one more
``nbgrader generate_feedback`` with the hiding preprocessor into another folder. The plain
feedback/ that test_exercises generated is the ``--feedback full`` control: the same leak check
must find hidden lines there, so the check is able to see a leak.
"""

from __future__ import annotations

import html
import re

import nbformat
import pytest
import test_exercises
from grading import assignments, nbgrader, solution_cells, source_notebook

from attnkit.grading.cells import is_test_cell, nbgrader_meta
from attnkit.grading.feedback import (
    HideHiddenTests,
    feedback_args,
    hidden_lines,
    hide_hidden_tests,
)

ASSIGNMENTS = [pytest.param(a, marks=pytest.mark.xdist_group(a)) for a in assignments()]


def _text(path) -> str:
    """The HTML's text: scripts and styles dropped (the template's JavaScript has `if (`),
    then tags (pygments splits code into spans); entities decoded."""
    page = re.sub(r"<(script|style)\b.*?</\1>", "", path.read_text(), flags=re.S | re.I)
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def _lines(nb) -> set[str]:
    sources = [
        "".join(c.get("source", "")) for c in nb["cells"]
    ]  # raw JSON: lists of lines
    return {line.strip() for s in sources for line in s.splitlines()}


def _secret(assignment: str, released) -> set[str]:
    """Non-trivial hidden-test lines a student does not already have (the release, the answers)."""
    source = source_notebook(assignment)
    answers = "\n".join(solution_cells(source).values())
    released_text = "\n".join("".join(c.get("source", "")) for c in released["cells"])
    shown = _lines(released) | {line.strip() for line in answers.splitlines()}
    # a line is evidence of a leak only if the student cannot have it anyway: not a piece of
    # what the release and the answers already show (wrapped code makes short fragments
    # such as "return (" that occur everywhere)
    blob = released_text + "\n" + answers
    secret = hidden_lines(source) - shown
    return {line for line in secret if len(line) > 3 and line not in blob}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_feedback_hides_hidden_tests(assignment, tmp_path_factory):
    run = test_exercises._run(assignment, tmp_path_factory)
    course = run["course"]
    nbgrader(
        "generate_feedback",
        assignment,
        "--force",
        "--CourseDirectory.feedback_directory=feedback-hidden",
        *feedback_args("hidden"),
        cwd=course,
    )
    secret = _secret(assignment, run["released"])
    assert secret, f"{assignment}: no hidden test lines found in solutions/"
    failed_somewhere = False
    for student in run["students"]:
        rel = f"{student}/{assignment}/{assignment}.html"
        full = _text(course / "feedback" / rel)
        hidden = _text(course / "feedback-hidden" / rel)
        # the control: nbgrader's own feedback shows the hidden tests
        assert any(line in full for line in secret), f"{assignment}/{student}: control"
        leaks = sorted(line for line in secret if line in hidden)
        assert not leaks, (
            f"{assignment}/{student}: hidden lines in the feedback: {leaks[:5]}"
        )
        graded = nbformat.read(
            course / "autograded" / student / assignment / f"{assignment}.ipynb",
            as_version=4,
        )
        scores = run["scores"][student]
        for cell in graded.cells:
            if not is_test_cell(cell):
                continue
            gid = nbgrader_meta(cell)["grade_id"]
            assert gid in hidden  # each test is named, with its score
            score, points = scores[gid]
            assert f"Score: {float(score):.1f} / {float(points):.1f}" in hidden, gid
            if score >= points:
                continue
            failed_somewhere = True
            errors = [o for o in cell.outputs if o.get("output_type") == "error"]
            assert errors, f"{assignment}/{student}/{gid} failed without an error"
            for e in errors:
                assert e["ename"] in hidden, (student, gid, e["ename"])
                for line in e["evalue"].splitlines():
                    if line.strip():
                        assert line.strip() in hidden, (student, gid, line)
    assert failed_somewhere


def _cell(source, gid, *, points=2, solution=False, outputs=()):
    meta = {
        "grade": not solution,
        "grade_id": gid,
        "solution": solution,
        "points": points,
    }
    cell = nbformat.v4.new_code_cell(source, metadata={"nbgrader": meta})
    cell.outputs = [nbformat.from_dict(o) for o in outputs]
    return cell


def test_hide_hidden_tests_on_a_notebook():
    """Without a kernel: the stub, the one-line error, a warning's source line removed,
    the visible part and the student's own cells kept."""
    hidden = (
        "x = 1\n# More tests run here when your notebook is graded.\n"
        "### BEGIN HIDDEN TESTS\n"
        "ref = secret_reference(queries)\n"
        'assert torch.allclose(answer(queries), ref), f"wrong for L = {L}"\n'
        "### END HIDDEN TESTS\n"
    )
    error = {
        "output_type": "error",
        "ename": "AssertionError",
        "evalue": "wrong for L = 7",
        "traceback": [
            "Cell In[9], line 5\n----> 5 assert torch.allclose(answer(queries), ref)"
        ],
    }
    warn = {
        "output_type": "stream",
        "name": "stderr",
        "text": "/tmp/x.py:4: UserWarning: slow\n  ref = secret_reference(queries)\nok\n",
    }
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        _cell("def answer(q):\n    return q", "q1", solution=True),
        _cell(hidden, "q1_hidden", outputs=[warn, error]),
        _cell("assert answer(1) == 1", "q1_visible", points=1),
    ]
    out, _ = HideHiddenTests().preprocess(nb, {})
    solution, test, visible = out.cells
    assert solution.source == "def answer(q):\n    return q"
    assert visible.source == "assert answer(1) == 1"
    assert "secret_reference" not in test.source and "allclose" not in test.source
    assert test.source.startswith("x = 1\n# q1_hidden: hidden tests (2 points)")
    assert test.outputs[1]["traceback"] == ["AssertionError: wrong for L = 7"]
    assert test.outputs[0]["text"] == "/tmp/x.py:4: UserWarning: slow\nok\n"
    assert hidden_lines(nb) == set()  # nothing hidden is left to find
    bare = nbformat.v4.new_notebook()
    bare.cells = [
        _cell(
            "### BEGIN HIDDEN TESTS\nassert f()\n### END HIDDEN TESTS",
            "q2_hidden",
            outputs=[{**error, "evalue": ""}],
        )
    ]
    hide_hidden_tests(bare)
    assert bare.cells[0].outputs[0]["traceback"] == ["AssertionError (no message)"]


def test_feedback_modes():
    assert feedback_args("full") == []
    assert "HideHiddenTests" in feedback_args("hidden")[0]
    with pytest.raises(ValueError):
        feedback_args("partial")
