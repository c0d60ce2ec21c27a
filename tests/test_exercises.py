"""nbgrader round trips and wrong answers for every assignment in solutions/.

Per assignment, one scratch course and one `nbgrader generate_assignment`, `autograde`,
`generate_feedback` and `export` prove what nbgrader must: the perfect student (the solutions
filled into the released notebook) scores full marks, the released notebook as is scores zero,
feedback and export work, and exercises/ is what generate_assignment makes.

The wrong answers of tests/wrong_answers/ (about a dozen per assignment) are tried without a
kernel per answer: one process runs the graded notebook once and, at each question, forks per
answer to run it and every test cell of that question, hidden ones included
(grading.try_answers). One wrong answer per assignment also goes through nbgrader, and the two
must agree cell by cell in three assignments chosen for their different hidden tests (ch01: plain
tensors; ch04: the meta device and a dispatch mode; ch10: a class through the registry); in every
assignment the trial runner must also pass the solution on every test cell, as nbgrader does.
"""

from __future__ import annotations

import csv
import json

import pytest
from forbidden_cases import VARIANTS, one_liner
from grading import (
    EXERCISES,
    assignments,
    autograde,
    autograded_notebook,
    correct_answers,
    fill,
    generate,
    graded_notebook,
    graded_test_cells,
    make_course,
    notebook_name,
    solution_cells,
    source_notebook,
    try_answers,
    wrong_answers,
)

from attnkit.grading import forbidden_names, nbgrader_meta, question_of

ASSIGNMENTS = [pytest.param(a, marks=pytest.mark.xdist_group(a)) for a in assignments()]
_RUNS: dict[str, dict] = {}
_TRIALS: dict[str, dict] = {}


def _questions(nb) -> list[str]:
    return sorted(solution_cells(nb))


# where a wrong answer also goes through nbgrader (each costs a full notebook run in the kernel)
CROSS_CHECKED = {"ch01-soft-lookup", "ch04-multihead", "ch10-comparison"}


def _cross_check(assignment: str) -> tuple[str, int]:
    """The wrong answer also graded by nbgrader: the last question's first one."""
    wrong = wrong_answers(assignment)
    return max(wrong), 0


def _run(assignment: str, tmp_path_factory) -> dict:
    """Generate once, autograde the perfect, the blank and one wrong student, feedback, export."""
    if assignment in _RUNS:
        return _RUNS[assignment]
    course = make_course(tmp_path_factory.mktemp(assignment), assignment)
    released_path = generate(course, assignment)
    released = json.loads(released_path.read_text())
    answers = solution_cells(source_notebook(assignment))
    submissions = {
        "perfect": fill(released, answers),
        "blank": fill(released, {}),
    }
    if assignment in CROSS_CHECKED:
        qid, i = _cross_check(assignment)
        wrong = wrong_answers(assignment)[qid][i][1]
        submissions[f"wrong-{qid}-{i}"] = fill(released, {**answers, qid: wrong})
    # and the rest of the instructor's commands (book/instructor-guide.md)
    scores = autograde(
        course,
        assignment,
        submissions,
        then=[["generate_feedback", assignment, "--force"], ["export"]],
    )
    _RUNS[assignment] = {
        "course": course,
        "released": released,
        "scores": scores,
        "students": list(submissions),
    }
    return _RUNS[assignment]


def _forbidden_trials(assignment: str, source, answers) -> dict[str, list]:
    """Per question: ``(path, code)`` for a one-line call to each forbidden function, and the
    other ways of reaching one (tests/forbidden_cases.py's VARIANTS) as ``("variant:…", code)``."""
    trials = {
        q: [(path, one_liner(answers[q], path)) for path in paths]
        for q, paths in forbidden_names(source).items()
    }
    q, _path, variants = VARIANTS.get(assignment, (None, None, {}))
    for name, code in variants.items():
        trials.setdefault(q, []).append((f"variant:{name}", code))
    return trials


def _trials(assignment: str, tmp_path_factory) -> dict:
    """Per question, tried as that question's answer by the trial runner (one notebook run, a
    fork per answer, the guard on): the solution, each wrong answer, each correct alternative,
    then each one-line call to a forbidden function. ``results[q]`` lists them in that order."""
    if assignment not in _TRIALS:
        source = source_notebook(assignment)
        answers = solution_cells(source)
        wrong = wrong_answers(assignment)
        correct = correct_answers(assignment)
        forbidden = _forbidden_trials(assignment, source, answers)
        tried = {
            q: [answers[q]]
            + [code for _why, code in wrong.get(q, [])]
            + [code for _how, code in correct.get(q, [])]
            + [code for _path, code in forbidden.get(q, [])]
            for q in _questions(source)
        }
        run = try_answers(
            graded_notebook(assignment),
            tried,
            cwd=tmp_path_factory.mktemp(f"{assignment}-trials"),
            details=True,
        )

        def part(q, results):  # the solution's, the wrong, correct and forbidden ones'
            n_w, n_c = len(wrong.get(q, [])), len(correct.get(q, []))
            return {
                "solution": results[0],
                "wrong": results[1 : 1 + n_w],
                "correct": results[1 + n_w : 1 + n_w + n_c],
                "forbidden": results[1 + n_w + n_c :],
            }

        _TRIALS[assignment] = {
            "wrong": wrong,
            "correct": correct,
            "forbidden": forbidden,
            "questions": _questions(source),
            "points": {
                gid: nbgrader_meta(c)["points"]
                for gid, c in graded_test_cells(source).items()
            },
            "results": run["results"],
            "by_kind": {q: part(q, r) for q, r in run["results"].items()},
            "events": {q: part(q, e) for q, e in run["events"].items()},
            "broken": run["broken"],
        }
    return _TRIALS[assignment]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_structure(assignment):
    """≥ 4 questions and ≥ 12 points; each question has a visible and a hidden test; the first
    cell is the setup cell."""
    nb = source_notebook(assignment)
    questions = _questions(nb)
    assert len(questions) >= 4, f"{assignment} has {len(questions)} graded questions"
    tests = graded_test_cells(nb)
    total = sum(c.metadata["nbgrader"]["points"] for c in tests.values())
    assert total >= 12, f"{assignment} is worth {total} points"
    for q in questions:
        mine = {gid: c for gid, c in tests.items() if gid.startswith(q + "_")}
        assert any("### BEGIN HIDDEN TESTS" in c.source for c in mine.values()), (
            f"{q}: no hidden tests"
        )
        assert any("### BEGIN HIDDEN TESTS" not in c.source for c in mine.values()), (
            f"{q}: no visible test"
        )
        assert sum(c.metadata["nbgrader"]["points"] for c in mine.values()) > 0
    first = nb.cells[0] if nb.cells[0].cell_type == "code" else nb.cells[1]
    assert (
        'find_spec("attnkit")' in first.source
        and "cuda" in first.source
        and "manual_seed" in first.source
    )


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_released_notebooks_in_sync(assignment, tmp_path_factory):
    """exercises/ is exactly what nbgrader generate_assignment makes from solutions/."""
    fresh = _run(assignment, tmp_path_factory)["released"]
    committed = json.loads(
        (EXERCISES / assignment / notebook_name(assignment)).read_text()
    )
    assert committed == fresh, (
        f"exercises/{assignment} is stale: run `nbgrader generate_assignment {assignment} --force`"
    )


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_scores_full_marks(assignment, tmp_path_factory):
    scores = _run(assignment, tmp_path_factory)["scores"]["perfect"]
    lost = {gid: s for gid, s in scores.items() if s[0] != s[1]}
    assert not lost, f"the solutions lose points in {lost}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_released_notebook_scores_zero_with_not_implemented(
    assignment, tmp_path_factory
):
    run = _run(assignment, tmp_path_factory)
    scores = run["scores"]["blank"]
    assert sum(s for s, _ in scores.values()) == 0, scores
    nb = autograded_notebook(run["course"], assignment, "blank")
    for gid, cell in graded_test_cells(nb).items():
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert errors, f"{gid} passed on the blank notebook"
        assert all(e.ename == "NotImplementedError" for e in errors), (
            f"{gid} fails on the blank notebook with {[e.ename for e in errors]}, "
            "not NotImplementedError"
        )


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_wrong_answers_lose_points(assignment, tmp_path_factory):
    """Every question has at least one plausible wrong answer, and each loses points on that
    question (every visible and hidden test cell of the question runs against every wrong
    answer)."""
    run = _trials(assignment, tmp_path_factory)
    few = [q for q in run["questions"] if len(run["wrong"].get(q, [])) < 3]
    assert not few, f"fewer than three wrong-answer fixtures for {few}"
    unknown = set(run["wrong"]) - set(run["questions"])
    assert not unknown, f"wrong answers for unknown questions {unknown}"
    for qid, kinds in run["by_kind"].items():
        solution = kinds["solution"]
        # the runner itself: the solution, tried the same way, passes every test of its question
        assert solution and not any(solution.values()), (
            f"{qid}: the solution fails in the trial runner: {solution}"
        )
        full = sum(run["points"][gid] for gid in solution)
        for (why, _code), result in zip(run["wrong"][qid], kinds["wrong"], strict=True):
            assert set(result) == set(solution), (
                f"{qid}: '{why}' did not run every test cell: {result}"
            )
            got = sum(run["points"][gid] for gid, error in result.items() if not error)
            assert got < full, (
                f"{qid}: the wrong answer '{why}' still scores {got}/{full}"
            )


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_correct_alternatives_score_full_marks(assignment, tmp_path_factory):
    """A correct answer written differently from the solution (a loop instead of vectorised code,
    einsum instead of @, another valid order) passes every test of its question: a grader that
    punishes a correct answer is as wrong as one that rewards a wrong one."""
    run = _trials(assignment, tmp_path_factory)
    assert run["correct"], f"{assignment}: no correct alternative in CORRECT_ANSWERS"
    unknown = set(run["correct"]) - set(run["questions"])
    assert not unknown, f"correct alternatives for unknown questions {unknown}"
    for qid, kinds in run["by_kind"].items():
        alternatives = run["correct"].get(qid, [])
        for (how, _code), result in zip(alternatives, kinds["correct"], strict=True):
            failed = {gid: error for gid, error in result.items() if error}
            assert not failed, (
                f"{qid}: the correct alternative '{how}' loses points: {failed}"
            )


def test_cross_checked_assignments_exist():
    assert CROSS_CHECKED <= set(assignments()), CROSS_CHECKED - set(assignments())


@pytest.mark.parametrize(
    "assignment", [a for a in ASSIGNMENTS if a.values[0] in CROSS_CHECKED]
)
def test_trial_runner_agrees_with_nbgrader(assignment, tmp_path_factory):
    """The wrong answer graded by both: nbgrader and the trial runner pass and fail the same
    test cells."""
    qid, i = _cross_check(assignment)
    scores = _run(assignment, tmp_path_factory)["scores"][f"wrong-{qid}-{i}"]
    by_nbgrader = {
        gid: s == m for gid, (s, m) in scores.items() if question_of(gid) == qid
    }
    tried = _trials(assignment, tmp_path_factory)["results"][qid][1 + i]
    assert by_nbgrader == {gid: not error for gid, error in tried.items()}, tried
    assert not all(by_nbgrader.values())


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_one_line_calls_to_every_forbidden_function_score_zero(
    assignment, tmp_path_factory
):
    """For every question and every forbidden function it lists (and tests/forbidden_cases.py's
    other ways of reaching one: an alias, getattr, importlib, a partial, a copied code object, a
    subclass), the answer that calls it fails every test cell of the question with the guard's
    error naming the question and the path, and the guard records exactly those calls."""
    run = _trials(assignment, tmp_path_factory)
    assert run["broken"] == []
    for qid, trials in run["forbidden"].items():
        kinds, events = run["by_kind"][qid], run["events"][qid]["forbidden"]
        for (label, _code), result, seen in zip(
            trials, kinds["forbidden"], events, strict=True
        ):
            path = VARIANTS[assignment][1] if label.startswith("variant:") else label
            assert result and set(result) == set(kinds["solution"]), (
                qid,
                label,
                result,
            )
            for gid, error in result.items():  # every test cell of the question fails
                assert error.startswith("GradingGuardError") and path in error, (
                    qid,
                    label,
                    gid,
                    error,
                )
                assert f"{qid}:" in error, (qid, label, gid, error)
            assert {(e["grade_id"], e["name"]) for e in seen} == {
                (gid, path) for gid in result
            }, (qid, label, seen)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_feedback_and_export(assignment, tmp_path_factory):
    """generate_feedback writes one HTML report per student; export writes every score to
    grades.csv."""
    run = _run(assignment, tmp_path_factory)
    course = run["course"]
    for student in run["students"]:
        html = course / "feedback" / student / assignment / f"{assignment}.html"
        assert html.exists(), f"no feedback for {student}"
    with open(course / "grades.csv") as f:
        rows = {
            r["student_id"]: r
            for r in csv.DictReader(f)
            if r["assignment"] == assignment
        }
    assert set(rows) == set(run["students"])
    perfect = run["scores"]["perfect"]
    assert float(rows["perfect"]["score"]) == pytest.approx(
        sum(s for s, _ in perfect.values())
    )
    assert float(rows["perfect"]["max_score"]) == pytest.approx(
        sum(m for _, m in perfect.values())
    )
    assert float(rows["blank"]["score"]) == 0
