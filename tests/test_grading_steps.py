"""attnkit.grading.steps (a student's autograde and feedback in one process) and what the
batch grader reads back from it. The whole path runs in tests/test_grading_robust.py's batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from attnkit.grading.batch import STEPS, _note_feedback, _step_seconds


def test_step_seconds_are_read_as_hints_within_the_measured_total():
    log = (
        "[AutogradeApp | INFO] ...\n"
        f"{STEPS} autograde 9.51\n"
        f"{STEPS} feedback 1.20\n"
        f"{STEPS} feedback 1e9\n"  # not a plain number: ignored
        f"   {STEPS} autograde 3.0\n"  # not at the start of a line: ignored
    )
    assert _step_seconds(log, 12.0) == {
        "total": 12.0,
        "autograde": 9.51,
        "feedback": 1.2,
    }
    # a student printing a larger number than the measured total is not believed
    assert _step_seconds(f"{STEPS} autograde 99.0\n", 12.0) == {"total": 12.0}
    assert _step_seconds("", 3.456) == {"total": 3.46}


def test_notes_go_at_the_top_of_the_feedback_page_escaped(tmp_path):
    page = tmp_path / "feedback.html"
    page.write_text('<html><head></head><body class="x">\n<h1>Score</h1></body></html>')
    _note_feedback(page, tmp_path, ["q1 calls <script>x</script>", "output cut"])
    text = page.read_text()
    assert text.index("Grading notes") < text.index("<h1>Score</h1>")
    assert text.index('<body class="x">') < text.index("Grading notes")
    assert "&lt;script&gt;x&lt;/script&gt;" in text and "<script>" not in text
    assert "<li>output cut</li>" in text


def test_a_feedback_page_that_is_a_link_is_left_alone(tmp_path):
    outside = tmp_path.parent / f"{tmp_path.name}-outside.html"
    outside.write_text("<body>the instructor's file</body>")
    page = tmp_path / "feedback.html"
    page.symlink_to(outside)
    _note_feedback(page, tmp_path, ["a note"])
    assert outside.read_text() == "<body>the instructor's file</body>"
    assert page.is_symlink()


def test_a_failed_autograde_stops_before_feedback(tmp_path):
    """No course here: autograde fails, its status is returned, feedback never runs."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "attnkit.grading.steps", "nothing-here", "someone"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode not in (0, 3), out
    assert f"{STEPS} autograde" in out
    assert f"{STEPS} feedback" not in out


def test_a_graded_student_without_a_feedback_page_is_not_told_zero():
    """The steps process exits 3 when autograde worked and feedback did not: the grader's own
    page then shows the recorded score (clipped as in the gradebook), not "0 points"."""
    from attnkit.grading.batch import STEPS_NO_FEEDBACK, _fallback_page

    assert STEPS_NO_FEEDBACK == 3
    graded = {
        "ok": True,
        "scores": {
            "q1_visible": (1.0, 1.0),
            "q1_hidden": (5.0, 2.0),
            "q2_hidden": (0.0, 2.0),
        },
        "problems": ["q2 <calls> a reference"],
    }
    page = _fallback_page("ch01-soft-lookup", graded)
    assert "<h1>ch01-soft-lookup: 3 of 5 points</h1>" in page, page
    assert "q1_hidden: 2 of 2" in page and "0 points" not in page
    assert "q2 &lt;calls&gt; a reference" in page
    failed = {"ok": False, "scores": {}, "problems": ["the kernel died"]}
    assert "<h1>ch01-soft-lookup: 0 points</h1>" in _fallback_page(
        "ch01-soft-lookup", failed
    )
