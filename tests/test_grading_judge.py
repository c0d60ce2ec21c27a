"""The judge as the grader runs it: the judge server (judge.py --serve) and, when no server
can be used, a judge process of its own; the points the kernel gave and the judge did not
are taken away (attnkit.grading.batch._judge)."""

from __future__ import annotations

import json
import os
import sys

import nbformat
import pytest
from replay_runs import code_name
from replay_runs import recorder as make_recorder

from attnkit.grading import batch, judging
from attnkit.grading.replay import plan

pytestmark = pytest.mark.xdist_group("grading_judge")

SETUP = "import torch\nx = torch.arange(4.0)"
ANSWER = "def f(x):\n    return 2 * x"
TESTS = {
    "q1_visible": "assert f(x).shape == x.shape, 'same shape'",
    "q1_hidden": "assert torch.allclose(f(x), x * 2), 'double it'",
}


def _course_notebook(tests=TESTS):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(SETUP),
        nbformat.v4.new_code_cell(
            ANSWER, metadata={"nbgrader": {"solution": True, "grade_id": "q1"}}
        ),
    ] + [
        nbformat.v4.new_code_cell(
            source, metadata={"nbgrader": {"grade": True, "grade_id": gid}}
        )
        for gid, source in tests.items()
    ]
    return nb


def _record(folder, answer, tests=TESTS):
    """Run the notebook with ``answer`` as the kernel would, recording into ``folder``."""
    nb = _course_notebook(tests)
    replay = plan(nb)
    recorder = make_recorder(str(folder), replay)
    ns = {"__name__": "__main__"}
    for cell in nb.cells:
        source = (
            answer if cell.metadata.get("nbgrader", {}).get("solution") else cell.source
        )
        recorder.enter(code_name(source), ns)
        try:
            exec(source, ns)
        except AssertionError:
            pass  # the kernel's verdict is not what is tested here
    return replay


def _env():
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}",
    }


def _student(root, name, answer, judged=TESTS):
    """A judge's folder: the recording of ``answer`` under TESTS, and a plan whose tests are
    ``judged`` (a test that only the judge runs slowly, say)."""
    folder = root / name
    replay = _record(folder / "record", answer)
    for cell in replay["cells"]:
        cell["source"] = judged.get(cell["grade_id"], cell["source"])
    (folder / "plan.json").write_text(json.dumps(replay))
    return folder


def test_the_server_judges_students_side_by_side_and_stops_a_slow_one(tmp_path):
    root = tmp_path / "judge"
    root.mkdir()
    _student(root, "right", ANSWER)
    _student(root, "wrong", "def f(x):\n    return x + 1")
    slow = dict(TESTS, q1_hidden="import time\ntime.sleep(60)")
    _student(root, "slow", ANSWER, slow)
    server = judging.server(root, _env(), None)
    assert server is not None
    try:
        assert server.judge("../etc", 30, 0) is None  # not a student id: refused here
        codes = {}
        import threading

        def one(name, seconds):
            codes[name] = server.judge(name, seconds, 4 * 2**30)

        threads = [
            threading.Thread(target=one, args=(n, s))
            for n, s in (("right", 120), ("wrong", 120), ("slow", 5))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        judging.close_all()
    assert codes == {"right": 0, "wrong": 0, "slow": -14}, codes  # -14: the alarm
    verdicts = {
        n: json.loads((root / n / "verdicts.json").read_text())
        for n in codes
        if n != "slow"
    }
    assert verdicts["right"] == {"q1_visible": None, "q1_hidden": None}
    assert verdicts["wrong"]["q1_visible"] is None
    assert verdicts["wrong"]["q1_hidden"].startswith("AssertionError: double it")
    assert server.proc.poll() is not None  # the server ended with its input


@pytest.mark.parametrize("with_server", [True, False])
def test_points_the_judge_does_not_confirm_are_taken_away(
    tmp_path, monkeypatch, with_server
):
    """A wrong answer whose kernel (or scratch gradebook) claimed full marks keeps only what
    the judge confirms; with no server, a judge process of its own decides the same."""
    if not with_server:
        monkeypatch.setattr(judging, "server", lambda *args, **kwargs: None)
    scratch = tmp_path / "scratch"
    replay = _record(scratch / "box" / "record", "def f(x):\n    return x + 1")
    result = {
        "scores": {"q1_visible": (1.0, 1.0), "q1_hidden": (2.0, 2.0)},
        "problems": [],
    }
    try:
        batch._judge(
            result,
            scratch / "box" / "record",
            tmp_path / "work" / "judge" / "student",
            replay,
            env=_env(),
            timeout=60,
            memory=4 * 2**30,
            sandbox=None,
        )
    finally:
        judging.close_all()
    assert result["scores"] == {"q1_visible": (1.0, 1.0), "q1_hidden": (0.0, 2.0)}
    (note,) = result["problems"]
    assert note.startswith("q1_hidden passed in the kernel but not when replayed")
    assert "double it" in note
    assert not (
        tmp_path / "work" / "judge" / "student"
    ).exists()  # removed after reading
