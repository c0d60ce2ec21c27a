"""``grade --scheduler``: grading on Dask workers (attnkit/grading/distribute.py).

A real ``dask scheduler`` and two ``dask worker`` processes (one thread each) on localhost, on
free ports, torn down at the end. Two ch01 submissions (one per worker: a full and a partial
score) are graded locally and through the cluster, and one worker is SIGKILLed while it
grades: the same grades.csv as the local run, and every student graded exactly once. The
partial one's q1 is wrong and lies to its kernel (tests/fixtures/hostile/cases.py, "forged"):
only the trusted judge, run on the worker, takes q1_visible's point away.

When the suite runs as root, the local run is the ordinary user ``nobody``'s
(:func:`grading.as_nobody`): bubblewrap then sandboxes through a user namespace, with no uid
switch, as on an instructor's laptop; its grades must match the cluster's, run as root.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import runpy
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from grading import (
    NOBODY,
    as_nobody,
    cells_by_grade_id,
    fill,
    make_course,
    open_to_nobody,
    released_notebook,
    solution_cells,
    source_notebook,
)

from attnkit.grading import bwrap

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.xdist_group("distribute")
A = "ch01-soft-lookup"
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
EXPECTED = {"perfect": 12.0, "partial": 9.0}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dask")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    procs = [
        subprocess.Popen(
            [*dask, "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    workers = {}
    for name in ("w1", "w2"):
        workers[name] = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", address]
            + ["--nthreads", "1", "--no-nanny", "--no-dashboard", "--name", name]
            + ["--local-directory", str(tmp / name)],
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    procs += workers.values()
    try:
        with distributed.Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
        yield {"address": address, "workers": workers}
    finally:
        for p in procs:
            p.kill()
            p.wait()


@pytest.fixture(scope="module")
def handed_in(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("handed-in")
    course = make_course(tmp, A)
    released = released_notebook(A)
    answers = solution_cells(source_notebook(A))
    folder = tmp / "in"
    folder.mkdir()
    nbformat.write(fill(released, answers), folder / "perfect.ipynb")
    partial = fill(released, answers)
    cases = runpy.run_path(
        str(Path(__file__).parent / "fixtures" / "hostile" / "cases.py")
    )
    cells_by_grade_id(partial)["q1"].source = cases["NOTEBOOKS"]["forged"][1]["q1"]
    nbformat.write(partial, folder / "partial.ipynb")
    return course, folder


def _grade(course, folder, out, *extra, wait=True, wrap=None):
    cmd = [sys.executable, "-m", "attnkit.grading", "grade", A, str(folder)]
    cmd += ["--course", str(course), "--out", str(out), "--timeout", "60", *extra]
    proc = subprocess.Popen(
        wrap(cmd) if wrap else cmd,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if not wait:
        return proc
    out_text = proc.communicate(timeout=900)[0]
    assert proc.returncode == 0, out_text
    return out_text


def _rows(out: Path) -> list[dict]:
    with open(out / "grades.csv") as f:
        return sorted(csv.DictReader(f), key=lambda r: r["student_id"])


def _grade_locally(course, folder, out: Path) -> str:
    """The local run, ``--jobs 2``; as the ordinary user ``nobody`` when the suite runs as
    root and bubblewrap works (then through bwrap's user namespace, as on a laptop)."""
    if os.geteuid() != 0 or bwrap.probe() is not None:
        return _grade(course, folder, out, "--jobs", "2")
    home, stash = out.parent / "home", out.parent / "stash"
    for path in (out, home):
        path.mkdir()
        os.chown(path, NOBODY, NOBODY)
    stash.mkdir()
    open_to_nobody(out.parent)
    open_to_nobody(course)
    open_to_nobody(folder)
    wrap = functools.partial(as_nobody, home=home, stash=stash)
    return _grade(course, folder, out, "--jobs", "2", "--sandbox", "bwrap", wrap=wrap)


def _grade_killing_a_worker(course, folder, out: Path, cluster) -> str | None:
    """Grade through the cluster and SIGKILL the first worker seen grading, well inside its
    grading; returns its name."""
    address = cluster["address"]
    proc = _grade(course, folder, out, "--scheduler", address, wait=False)
    killed = None
    with distributed.Client(address, timeout="60s") as client:
        deadline = time.monotonic() + 300
        while killed is None and time.monotonic() < deadline:
            busy = {w: tasks for w, tasks in client.processing().items() if tasks}
            names = {
                w: info["name"]
                for w, info in client.scheduler_info()["workers"].items()
            }
            for w in busy:
                if names.get(w) in cluster["workers"]:
                    time.sleep(3)  # well inside its grading
                    killed = names[w]
                    cluster["workers"][killed].send_signal(signal.SIGKILL)
                    break
            time.sleep(0.5)
    text = proc.communicate(timeout=900)[0]
    assert proc.returncode == 0, text
    return killed


@pytest.fixture(scope="module")
def graded(cluster, handed_in, tmp_path_factory):
    """One local run and one run through the cluster that loses a worker mid-batch."""
    course, folder = handed_in
    tmp = tmp_path_factory.mktemp("graded")
    local_text = _grade_locally(course, folder, tmp / "local")
    killed = _grade_killing_a_worker(course, folder, tmp / "dask", cluster)
    return {
        "local": tmp / "local",
        "dask": tmp / "dask",
        "killed": killed,
        "local_text": local_text,
    }


def test_cluster_grades_like_the_local_run(graded):
    local, remote = _rows(graded["local"]), _rows(graded["dask"])
    assert remote == local
    assert {r["student_id"]: float(r["score"]) for r in remote} == EXPECTED
    for (
        s
    ) in EXPECTED:  # the driver wrote each student's feedback from the worker's files
        assert (graded["dask"] / "feedback" / s / A / f"{A}.html").is_file()


def test_a_worker_killed_mid_batch_loses_no_student(graded):
    assert graded["killed"], "no worker ever took a task"
    out = graded["dask"]
    rows = _rows(out)
    assert [r["student_id"] for r in rows] == sorted(EXPECTED)  # each exactly once
    manifest = json.loads((out / ".attnkit-grading" / "manifest.json").read_text())
    assert sorted(manifest) == sorted(EXPECTED)
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:
        subs = [s.student.id for s in gb.find_assignment(A).submissions]
    assert sorted(subs) == sorted(EXPECTED)


@pytest.mark.skipif(
    os.geteuid() != 0 or bwrap.probe() is not None,
    reason="the local run is already an ordinary user's (or has no bubblewrap)",
)
def test_the_local_run_as_an_ordinary_user(graded):
    """The local run was nobody's, sandboxed by bubblewrap through a user namespace: it
    graded (the cluster's grades, run as root, are the same), and its files are nobody's."""
    assert "hard isolation is OFF" not in graded["local_text"]
    assert (graded["local"] / "gradebook.db").stat().st_uid == NOBODY
    manifest = json.loads(
        (graded["local"] / ".attnkit-grading" / "manifest.json").read_text()
    )
    assert manifest["perfect"]["problems"] == []
