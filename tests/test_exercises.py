"""nbgrader round trips for every assignment in solutions/.

For each assignment, one scratch course is built and one `nbgrader autograde` run grades:
the perfect student (the solutions filled into the released notebook), the released
notebook as is, and one student per wrong answer in tests/wrong_answers/.
"""
from __future__ import annotations

import csv
import json

import nbformat
import pytest

from grading import (
    EXERCISES,
    SOLUTIONS,
    assignments,
    autograde,
    autograded_notebook,
    cells_by_grade_id,
    fill,
    generate,
    graded_test_cells,
    make_course,
    nbgrader,
    notebook_name,
    solution_cells,
    wrong_answers,
)

ASSIGNMENTS = [pytest.param(a, marks=pytest.mark.xdist_group(a)) for a in assignments()]
_RUNS: dict[str, dict] = {}


def _questions(nb) -> list[str]:
    return sorted(solution_cells(nb))


def _run(assignment: str, tmp_path_factory) -> dict:
    """Generate, then autograde every kind of submission once per assignment."""
    if assignment in _RUNS:
        return _RUNS[assignment]
    course = make_course(tmp_path_factory.mktemp(assignment), assignment)
    released_path = generate(course, assignment)
    released = nbformat.read(released_path, as_version=4)
    source = nbformat.read(SOLUTIONS / assignment / notebook_name(assignment), as_version=4)
    answers = solution_cells(source)
    submissions = {"perfect": fill(released, answers), "blank": released}
    wrong = wrong_answers(assignment)
    for qid, cases in wrong.items():
        for i, (_why, code) in enumerate(cases):
            submissions[f"wrong-{qid}-{i}"] = fill(released, {**answers, qid: code})
    scores = autograde(course, assignment, submissions)
    # the rest of the instructor's commands (book/instructor-guide.md)
    nbgrader("generate_feedback", assignment, "--force", cwd=course)
    nbgrader("export", cwd=course)
    _RUNS[assignment] = {"course": course, "released": released_path, "source": source,
                         "scores": scores, "wrong": wrong, "students": list(submissions)}
    return _RUNS[assignment]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_structure(assignment):
    """≥ 3 questions; each has a visible and a hidden test; the first cell is the setup cell."""
    nb = nbformat.read(SOLUTIONS / assignment / notebook_name(assignment), as_version=4)
    questions = _questions(nb)
    assert len(questions) >= 3, f"{assignment} has {len(questions)} graded questions"
    tests = graded_test_cells(nb)
    for q in questions:
        mine = {gid: c for gid, c in tests.items() if gid.startswith(q + "_")}
        assert any("### BEGIN HIDDEN TESTS" in c.source for c in mine.values()), f"{q}: no hidden tests"
        assert any("### BEGIN HIDDEN TESTS" not in c.source for c in mine.values()), f"{q}: no visible test"
        assert sum(c.metadata["nbgrader"]["points"] for c in mine.values()) > 0
    first = nb.cells[0] if nb.cells[0].cell_type == "code" else nb.cells[1]
    assert "find_spec(\"attnkit\")" in first.source and "cuda" in first.source and "manual_seed" in first.source


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_released_notebooks_in_sync(assignment, tmp_path_factory):
    """exercises/ is exactly what nbgrader generate_assignment makes from solutions/."""
    run = _run(assignment, tmp_path_factory)
    fresh = json.loads(run["released"].read_text())
    committed = json.loads((EXERCISES / assignment / notebook_name(assignment)).read_text())
    assert committed == fresh, (
        f"exercises/{assignment} is stale: run `nbgrader generate_assignment {assignment} --force`"
    )


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_scores_full_marks(assignment, tmp_path_factory):
    scores = _run(assignment, tmp_path_factory)["scores"]["perfect"]
    lost = {gid: s for gid, s in scores.items() if s[0] != s[1]}
    assert not lost, f"the solutions lose points in {lost}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_released_notebook_scores_zero_with_not_implemented(assignment, tmp_path_factory):
    run = _run(assignment, tmp_path_factory)
    scores = run["scores"]["blank"]
    assert sum(s for s, _ in scores.values()) == 0, scores
    nb = autograded_notebook(run["course"], assignment, "blank")
    for gid, cell in graded_test_cells(nb).items():
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert errors, f"{gid} passed on the blank notebook"
        assert all(e.ename == "NotImplementedError" for e in errors), (
            f"{gid} fails on the blank notebook with {[e.ename for e in errors]}, not NotImplementedError"
        )


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_wrong_answers_lose_points(assignment, tmp_path_factory):
    """Every question has at least one plausible wrong answer, and each loses points on that question."""
    run = _run(assignment, tmp_path_factory)
    questions = _questions(run["source"])
    missing = [q for q in questions if not run["wrong"].get(q)]
    assert not missing, f"no wrong-answer fixture for {missing}"
    for qid, cases in run["wrong"].items():
        assert qid in questions, f"wrong answers for unknown question {qid}"
        for i, (why, _code) in enumerate(cases):
            scores = run["scores"][f"wrong-{qid}-{i}"]
            mine = [s for gid, s in scores.items() if gid.startswith(qid + "_")]
            got, full = sum(s for s, _ in mine), sum(m for _, m in mine)
            assert got < full, f"{qid}: the wrong answer '{why}' still scores {got}/{full}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_feedback_and_export(assignment, tmp_path_factory):
    """generate_feedback writes one HTML report per student; export writes every score to grades.csv."""
    run = _run(assignment, tmp_path_factory)
    course = run["course"]
    for student in run["students"]:
        html = course / "feedback" / student / assignment / f"{assignment}.html"
        assert html.exists(), f"no feedback for {student}"
    with open(course / "grades.csv") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f) if r["assignment"] == assignment}
    assert set(rows) == set(run["students"])
    perfect = run["scores"]["perfect"]
    assert float(rows["perfect"]["score"]) == pytest.approx(sum(s for s, _ in perfect.values()))
    assert float(rows["perfect"]["max_score"]) == pytest.approx(sum(m for _, m in perfect.values()))
    assert float(rows["blank"]["score"]) == 0
