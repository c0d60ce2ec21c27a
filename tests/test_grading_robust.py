"""attnkit.grading: the students' self-check and the instructors' batch grading of hostile
submissions.

One batch run (``python -m attnkit.grading grade``, 2 jobs) grades every case of
tests/fixtures/hostile/cases.py together with legitimate students; then a second run must
re-grade nothing and change nothing (resumption without double counting).
"""

from __future__ import annotations

import csv
import json
import os
import runpy
import shutil
import socket
import subprocess
import sys
from copy import deepcopy
from pathlib import Path

import nbformat
import pytest
from grading import (
    SOLUTIONS,
    assignments,
    cells_by_grade_id,
    fill,
    make_course,
    released_notebook,
    solution_cells,
    source_notebook,
)

A = "ch01-soft-lookup"
CASES = runpy.run_path(str(Path(__file__).parent / "fixtures" / "hostile" / "cases.py"))
pytestmark = pytest.mark.xdist_group("grading_robust")
# the OS-sandbox cases join the batch only where bubblewrap works (see cases.py);
# ATTNKIT_TEST_SANDBOX=none grades the batch with the in-process guard alone, as without bwrap
BWRAP = (
    os.environ.get("ATTNKIT_TEST_SANDBOX") != "none"
    and __import__("attnkit.grading.bwrap", fromlist=["probe"]).probe() is None
)
if BWRAP:
    CASES["NOTEBOOKS"].update(CASES["BWRAP_NOTEBOOKS"])
    CASES["EXPECTED"].update(CASES["BWRAP_EXPECTED"])
LIMITS = [
    "--sandbox",
    "bwrap" if BWRAP else "none",
    "--disk",
    str(CASES["DISK_QUOTA_GIB"]),
]
NBFORMAT3 = {
    "nbformat": 3,
    "nbformat_minor": 0,
    "metadata": {"name": ""},
    "worksheets": [{"cells": [{"cell_type": "code", "input": "x = 1", "outputs": []}]}],
}


def _grade(*args, cwd):
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    return subprocess.run(
        [sys.executable, "-m", "attnkit.grading", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def _build(folder: Path, released, answers):
    for where, edits in CASES["NOTEBOOKS"].values():
        nb = fill(released, answers)
        cells = cells_by_grade_id(nb)
        for gid, source in edits.items():
            if (
                gid == "@copy"
            ):  # Jupyter's copy/paste: the same metadata, grade_id and all
                nb.cells.insert(
                    nb.cells.index(cells[source]) + 1, deepcopy(cells[source])
                )
            elif gid == "@schema":
                for c in nb.cells:
                    if "nbgrader" in c.metadata:
                        c.metadata.nbgrader.schema_version = source
            elif source is None:
                nb.cells.remove(cells[gid])
            else:
                cells[gid].source = source
        path = folder / where.format(a=A)
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
    old = folder / "duplicate.ipynb"  # the older of two copies: the blank release
    nbformat.write(released, old)
    os.utime(old, (1_600_000_000, 1_600_000_000))
    (folder / "malformed.ipynb").write_text(
        '{"cells": [ {"cell_type": "code", "source": "x = 1"'
    )
    (folder / "empty").mkdir()
    for where, what in CASES["SPECIAL"].values():
        path = folder / where.format(a=A)
        path.parent.mkdir(parents=True, exist_ok=True)
        if what == "fifo":
            os.mkfifo(path)
        elif what.startswith("link:"):
            path.symlink_to(folder / what[5:].format(a=A))
        elif what.startswith("sparse:"):
            with open(path, "wb") as f:
                f.truncate(int(what[7:]))
        elif what == "garbage":
            path.write_bytes(bytes(range(256)) * 40)
        elif what == "nbformat3":
            path.write_text(json.dumps(NBFORMAT3))
    # not submissions, but listed in the summary
    (folder / "notes.txt").write_text("not a notebook")
    (folder / ".ipynb_checkpoints").mkdir()


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    course = make_course(tmp, A)
    # the committed release (test_exercises checks it is what generate_assignment makes);
    # the batch grader runs its own generate_assignment for the gradebook
    released = released_notebook(A)
    answers = solution_cells(source_notebook(A))
    folder = tmp / "handed-in"
    _build(folder, released, answers)
    out = tmp / "grading"
    # for the OS-sandbox cases: where the instructor's files are, and a server on host loopback
    os.environ.update(
        HOSTILE_COURSE=str(course),
        HOSTILE_OUT=str(out),
        HOSTILE_FOLDER=str(folder),
        HOSTILE_HOME=str(Path.home()),
    )
    (course / ".git").mkdir()
    (course / ".git" / "config").write_text("[core]\n")
    server = socket.create_server(("127.0.0.1", CASES["LOOPBACK_PORT"]))
    server.settimeout(0.1)
    batch = ("grade", A, str(folder), "--course", str(course), "--out", str(out))
    first = _grade(*batch, "--jobs", "2", "--timeout", "20", *LIMITS, cwd=tmp)
    manifest = json.loads((out / ".attnkit-grading" / "manifest.json").read_text())
    with open(out / "grades.csv") as f:
        grades = {r["student_id"]: r for r in csv.DictReader(f)}
    try:
        server.accept()
        reached = True  # a sandboxed student reached the host's loopback
    except TimeoutError:
        reached = False
    server.close()
    second = _grade(*batch, *LIMITS, cwd=tmp)
    with open(out / "grades.csv") as f:
        regraded = {r["student_id"]: r for r in csv.DictReader(f)}
    return {
        "out": out,
        "first": first,
        "second": second,
        "manifest": manifest,
        "grades": grades,
        "regraded": regraded,
        "folder": folder,
        "loopback_reached": reached,
        "course": course,
    }


@pytest.mark.parametrize("case", sorted(CASES["EXPECTED"]))
def test_hostile_case_outcome(batch, case):
    """Each case: the intended score in the gradebook's export, and its problems recorded."""
    assert batch["first"].returncode == 0, batch["first"].stdout + batch["first"].stderr
    score, messages = CASES["EXPECTED"][case]
    assert float(batch["grades"][case]["score"]) == score, batch["manifest"].get(case)
    assert float(batch["grades"][case]["max_score"]) == 12
    problems = " | ".join(batch["manifest"][case]["problems"])
    for m in messages:
        assert m in problems, f"{case}: '{m}' not in {problems!r}"
    if case in ("perfect", "partial"):
        assert not problems, problems
    assert case in batch["first"].stdout  # in the summary table
    feedback = batch["out"] / "feedback" / case / A / f"{A}.html"
    assert feedback.exists()
    if messages:
        assert messages[0].split()[0] in feedback.read_text()


def test_intake_bounded_and_nothing_lost(batch):
    """Every entry of the folder is in the summary; no big file was copied; no shell ran."""
    with open(batch["out"] / f"summary-{A}.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    listed = " | ".join(r["files"] for r in rows)
    for entry in os.listdir(batch["folder"]):
        assert entry in listed, (entry, listed)
    students = [r["student"] for r in rows if r["student"]]
    assert len(students) == len(set(students)) == len(CASES["EXPECTED"])
    assert set(students) == set(batch["grades"]) == set(CASES["EXPECTED"])
    for path in batch["out"].rglob("*"):
        assert path.is_symlink() or not path.is_file() or path.stat().st_size < 2**24, (
            path
        )
    assert not list(batch["folder"].parent.rglob("PWNED"))


def test_guard_log_read_defensively(tmp_path):
    from attnkit.grading.batch import _guard_notes

    log = tmp_path / "guard.log"
    log.write_text(
        '{"kind": "denied", "what": "open", "path": "/x"}\n'
        "not json\n[1, 2]\n"
        '{"kind": "restored", "names": 5}\n'
        '{"kind": "forbidden-call"}\n'
        "\xff\n"
    )
    notes = _guard_notes(log)
    assert "refused: open /x" in notes
    assert any("malformed line(s)" in n for n in notes), notes
    assert any("does not say the guard started" in n for n in notes), notes
    installed = tmp_path / "installed.log"
    installed.write_text('{"kind": "installed", "tests": []}\n')
    assert _guard_notes(installed) == []
    installed.write_text('{"kind": "guard-broken", "why": "names"}\n')
    assert "could not tell the tests' cells apart" in " ".join(_guard_notes(installed))
    fifo = tmp_path / "fifo.log"
    os.mkfifo(fifo)
    assert "not read" in _guard_notes(fifo)[0]  # never opened: no hang
    assert _guard_notes(tmp_path / "none.log") == []


def test_bounds_kept_the_autograded_notebook_small(batch):
    graded = batch["out"] / "autograded" / "bounds" / A / f"{A}.ipynb"
    assert graded.stat().st_size < 500_000
    assert "output cut" in graded.read_text()


def test_nothing_written_outside(batch):
    """The six probes of "outside" each failed with an OSError (the guard's PermissionError,
    or under bubblewrap a path not there or not writable): nothing read, written or deleted
    outside its scratch course, with bubblewrap and without."""
    text = _q1_output(batch, "outside")
    assert "NOT REFUSED" not in text and text.count("refused:") == 6, text
    assert not (Path.home() / "attnkit-hostile-was-here.txt").exists()
    assert (batch["out"] / "gradebook.db").exists()
    assert (batch["folder"] / "perfect.ipynb").exists()


def test_disk_quota_stopped_the_student_and_deleted_its_files(batch):
    """The student "disk" wrote past the batch's --disk quota: stopped (0 and the note, see
    EXPECTED), its scratch course deleted, nothing of it copied; the students graded beside it
    score as they do alone (their EXPECTED)."""
    assert not (batch["out"] / ".attnkit-grading" / "students" / "disk").exists()
    assert not (batch["out"] / "autograded" / "disk").exists()


def test_rerun_grades_nothing_and_changes_nothing(batch):
    assert batch["second"].returncode == 0, batch["second"].stderr
    assert (
        f"{len(batch['manifest'])} already graded, grading 0" in batch["second"].stdout
    )
    assert batch["regraded"] == batch["grades"]


def test_empty_submissions_folder(tmp_path):
    course = make_course(tmp_path, A)
    (tmp_path / "none").mkdir()
    proc = _grade(
        "grade", A, str(tmp_path / "none"), "--course", str(course), cwd=tmp_path
    )
    assert proc.returncode == 2 and "no submissions found" in proc.stderr
    assert not (course / "gradebook.db").exists()


def test_check_reports_visible_tests(tmp_path):
    """The student's command: per question passed/failed, the message, the points; hidden tests
    only counted."""
    released = released_notebook(A)
    answers = solution_cells(source_notebook(A))
    answers["q2"] = "def loo_error(x, y, sigma):\n    return x.no_such_attribute"
    nbformat.write(fill(released, answers), tmp_path / f"{A}.ipynb")
    proc = _grade("check", str(tmp_path / f"{A}.ipynb"), cwd=tmp_path)
    assert proc.returncode == 1
    assert (
        "visible tests 3/4 points passed (8 more points in hidden tests" in proc.stdout
    )
    q2 = [line for line in proc.stdout.splitlines() if "q2_visible" in line][0]
    assert "FAILED" in q2 and "AttributeError" in q2 and "1 pt" in q2
    assert sum("passed  q" in line for line in proc.stdout.splitlines()) == 3


def test_forbidden_names_read_from_the_notebooks():
    """forbidden_names reads the solution cells' metadata (dotted paths), question by question:
    on a hand-made notebook, and on every assignment against a plain JSON reading."""
    import json

    from attnkit.grading import forbidden_names

    def solution(gid, forbidden=None):
        meta = {
            "nbgrader": {
                "grade": False,
                "grade_id": gid,
                "solution": True,
                "locked": False,
            }
        }
        if forbidden is not None:
            meta["attnkit"] = {"forbidden": forbidden}
        return nbformat.v4.new_code_cell("pass", metadata=meta)

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            "Do not call `attnkit.masked_softmax`."
        ),  # prose: ignored
        solution("q1", ["attnkit.lsh.sort_by_bucket", "attnkit.hashing.angular_hash"]),
        solution("q2", []),
        solution("q3"),
    ]
    assert forbidden_names(nb) == {
        "q1": ["attnkit.lsh.sort_by_bucket", "attnkit.hashing.angular_hash"],
        "q2": [],
        "q3": [],
    }
    for a in assignments():
        raw = json.loads((SOLUTIONS / a / f"{a}.ipynb").read_text())
        expected = {
            c["metadata"]["nbgrader"]["grade_id"]: c["metadata"]
            .get("attnkit", {})
            .get("forbidden", [])
            for c in raw["cells"]
            if c["metadata"].get("nbgrader", {}).get("solution")
            and c["cell_type"] == "code"
        }
        assert forbidden_names(source_notebook(a)) == expected, a


def test_collect_both_layouts(tmp_path):
    from attnkit.grading.batch import collect, student_id

    assert student_id("Ana María (2)") == "Ana_Maria"
    assert student_id("--help") == "help" and student_id("../../etc/x") == "etc_x"
    assert student_id("a\u200bb") == "a_u200b_b" != student_id("ab")
    assert student_id("\u738b\u82b3") == "u738b_u82b3"
    assert student_id("...") == "student"
    (tmp_path / "x" / A).mkdir(parents=True)
    (tmp_path / "x" / A / f"{A}.ipynb").write_text("{}")
    (tmp_path / "x" / A / "copy.ipynb").write_text("{}")
    (tmp_path / "y.ipynb").write_text("{}")
    (tmp_path / "z").mkdir()
    chosen, problems = collect(tmp_path, A)
    assert chosen["x"].name == f"{A}.ipynb" and "duplicate" in problems["x"][0]
    assert chosen["y"].name == "y.ipynb" and not problems["y"]
    assert chosen["z"] is None and "no notebook" in problems["z"][0]


def test_self_check_finds_the_notebook_and_stays_quiet_while_grading(
    tmp_path, monkeypatch, capsys
):
    from attnkit.grading import selfcheck as grading

    nb = tmp_path / f"{A}.ipynb"
    nb.write_text("{}")
    monkeypatch.setenv("JPY_SESSION_NAME", str(nb))
    assert grading._this_notebook() == nb
    monkeypatch.setenv("ATTNKIT_GRADING", "1")
    assert grading.self_check() is None
    assert "skipped" in capsys.readouterr().out


def _q1_output(batch, case):
    nb = nbformat.read(
        batch["out"] / "autograded" / case / A / f"{A}.ipynb", as_version=4
    )
    return "".join(o.get("text", "") for o in cells_by_grade_id(nb)["q1"].outputs)


@pytest.mark.skipif(not BWRAP, reason="bubblewrap is not usable here")
def test_os_sandbox_held(batch):
    """The bubblewrap cases, past the in-process guard: nothing secret read, nothing written
    where a later kernel would load it, no server reached, /tmp and processes bounded, and the
    background process killed with its student."""
    text = _q1_output(batch, "escape")
    assert "control: unguarded shell runs" in text, text  # the probes really ran
    assert "LEAK" not in text and text.count("blocked: ") == 12, text
    assert "No space left on device" in text, text
    assert not batch["loopback_reached"]
    import sysconfig

    import attnkit

    purelib = Path(sysconfig.get_paths()["purelib"])
    assert not (purelib / "sitecustomize.py").exists()
    assert not (purelib / "zz-hostile.pth").exists()
    assert "raise SystemExit" not in Path(attnkit.__file__).read_text()
    bomb = _q1_output(batch, "forkbomb")
    assert "fork bomb bounded after" in bomb and "NOT BOUNDED" not in bomb, bomb
    # the beating background process died when its student's grading ended
    scratch = batch["out"] / ".attnkit-grading" / "students" / "escape"
    beat = scratch / "box" / "cwd" / "beat"  # the kernel's working folder, on the host
    feedback = batch["out"] / "feedback" / "escape" / A / f"{A}.html"
    assert beat.exists()
    assert beat.stat().st_mtime <= feedback.stat().st_mtime + 2


def test_hidden_tests_never_reach_the_kernel(batch):
    """``peek`` prints every cell source its kernel holds (the line cache, the calling
    frames, the input history) each time the tests call its q1 or q2. None of the lines of
    the hidden tests is in its graded notebook (all four are stubbed); the stubs' are: the
    probe finds what is there to find."""
    from attnkit.grading.feedback import hidden_lines
    from attnkit.grading.replay import plan

    nb = nbformat.read(
        batch["out"] / "autograded" / "peek" / A / f"{A}.ipynb", as_version=4
    )
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "peek: " in text and "hidden_calls(" in text, text[:2000]
    source = source_notebook(A)
    stubbed = {c["grade_id"] for c in plan(source)["cells"] if c["stub"]}
    assert {"q1_hidden", "q2_hidden", "q3_hidden", "q4_hidden"} <= stubbed
    released = {
        line for c in released_notebook(A).cells for line in c.source.splitlines()
    }
    secret = {line for line in hidden_lines(source) if len(line) > 20} - released
    assert len(secret) > 50
    assert not [line for line in secret if line in text]


def test_with_full_feedback_a_hidden_tests_helper_trips_the_guard(batch, tmp_path):
    """With ``--feedback full`` nothing is stubbed: the hidden tests run in the kernel, their
    reference helpers with them. ``borrow`` calls them from its answers: the guard's tripwire
    stops each call, with a note, and the judge's verdict cannot bring the points back."""
    folder = tmp_path / "handed-in"
    folder.mkdir()
    shutil.copy(batch["folder"] / "borrow.ipynb", folder / "borrow.ipynb")
    out = tmp_path / "grading"
    run = _grade(
        *("grade", A, str(folder), "--course", str(batch["course"]), "--out", str(out)),
        *("--feedback", "full", "--timeout", "20", *LIMITS),
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    manifest = json.loads((out / ".attnkit-grading" / "manifest.json").read_text())
    problems = " | ".join(manifest["borrow"]["problems"])
    for q, helper in (("q1", "_reference"), ("q2", "_loo"), ("q4", "_reference")):
        assert f"{q} calls the test's own {helper}" in problems, problems
    with open(out / "grades.csv") as f:
        (row,) = csv.DictReader(f)
    assert float(row["score"]) == float(batch["grades"]["borrow"]["score"])
