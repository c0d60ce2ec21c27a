"""The batch grader run by an ordinary user, not root: bubblewrap then sandboxes through a user
namespace (no uid switch, no ``chown``), as on an instructor's laptop or a shared server.

The suite runs as root in CI, so this test starts the grader as ``nobody`` (uid 65534) with
``setpriv``, in a mount namespace of its own whose ``/root`` holds only the read-only Python
installation the virtual environment points to (``/root`` itself is 0700): the grader and its
sandboxes (the kernel's, the judge's) see the machine as that user would.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from grading import make_course, perfect

from attnkit.grading import bwrap

A = "ch01-soft-lookup"
NOBODY = 65534
BASE = Path(sys.base_prefix).resolve()  # the Python the venv was made from

pytestmark = [
    pytest.mark.skipif(
        os.geteuid() != 0, reason="already not root: the suite is this run"
    ),
    pytest.mark.skipif(
        bwrap.probe() is not None, reason="bubblewrap is not usable here"
    ),
]


def _as_nobody(argv, *, home: Path, stash: Path) -> list[str]:
    """``argv`` run as nobody, in a mount namespace of its own whose ``/root`` is an empty
    tmpfs holding only the Python installation (mounted through ``stash``, an empty folder).

    ``unshare`` and ``mount``, not an outer bubblewrap: a fresh ``/proc`` mounted there would
    stop the grader's own sandboxes from mounting theirs.
    """
    script = ""
    if Path("/root") in BASE.parents:
        script = (
            f'mount --rbind "{BASE}" "{stash}" && '
            "mount -t tmpfs -o mode=755 tmpfs /root && "
            f'mkdir -p "{BASE}" && mount --rbind "{stash}" "{BASE}" && '
        )
    script += f'export HOME="{home}" && exec "$@"'
    return [
        shutil.which("unshare"),
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        "sh",
        shutil.which("setpriv"),
        f"--reuid={NOBODY}",
        f"--regid={NOBODY}",
        "--clear-groups",
        "--",
        *argv,
    ]


def test_grading_as_an_ordinary_user(tmp_path):
    work = tmp_path / "nobody"
    (tmp_path / "stash").mkdir()
    course = make_course(work, A)
    folder = work / "handed-in"
    folder.mkdir()
    nbformat.write(perfect(A), folder / "perfect.ipynb")
    (work / "home").mkdir()
    for root, dirs, files in os.walk(work):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            os.lchown(name, NOBODY, NOBODY)
    work.chmod(0o755)
    for parent in work.parents:  # pytest's folders are root's, 0700: let nobody through
        if parent == Path("/tmp"):
            break
        parent.chmod(parent.stat().st_mode | 0o111)
    out = work / "out"
    argv = [sys.executable, "-m", "attnkit.grading", "grade", A, str(folder)]
    argv += ["--course", str(course), "--out", str(out), "--jobs", "1"]
    argv += ["--timeout", "60", "--sandbox", "bwrap"]
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "TMPDIR": "/tmp",
    }
    proc = subprocess.run(
        _as_nobody(argv, home=work / "home", stash=tmp_path / "stash"),
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "hard isolation is OFF" not in proc.stderr
    with open(out / "grades.csv") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f)}
    manifest = json.loads((out / ".attnkit-grading" / "manifest.json").read_text())
    assert float(rows["perfect"]["score"]) == 12.0, manifest["perfect"]
    assert manifest["perfect"]["problems"] == []
    # graded by nobody: nbgrader's files are its, not root's
    assert (out / "gradebook.db").stat().st_uid == NOBODY
