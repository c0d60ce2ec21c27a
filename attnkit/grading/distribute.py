"""Grading spread over machines with Dask distributed (``grade --scheduler tcp://HOST:8786``).

One Dask task per student. A task carries everything its worker needs (the student's notebook,
the assignment's template gradebook and ``nbgrader_config.py``, the test cells), grades in a
temporary scratch course on the worker (under bubblewrap when the worker has it, exactly as
:func:`attnkit.grading.batch.grade` does locally) and returns the scores, the problems and the
autograded notebook and feedback as bytes. Workers therefore need the course's Python
environment (attnkit, nbgrader, torch), not the course itself nor a shared filesystem.

The driver alone writes the gradebook, ``grades.csv`` and the manifest, one student at a time as
results arrive. A worker that dies mid-task loses nothing: the scheduler runs its tasks again
on another worker, and each student's result is recorded once (the first that arrives; the
gradebook replaces, never adds to, a student's submission anyway).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

from .batch import KERNEL_DB, WORK, _grade_one, choose_sandbox

PARTS = ("autograded", "feedback")
ATTEMPTS = 3  # submissions of one student's grading, when the cluster cancels it


def _files(folder: Path) -> dict[str, bytes]:
    """Plain files under ``folder`` (no links, no special files) as ``{relative path: bytes}``."""
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = Path(root) / name
            if path.is_file() and not path.is_symlink():
                found[str(path.relative_to(folder))] = path.read_bytes()
    return found


# this worker process's judging folder (each student's scratch course is temporary); under
# bubblewrap students see a /tmp of their own, never this one
JUDGE_ROOT = Path(tempfile.gettempdir()) / f"attnkit-judge-{os.getpid()}"


def grade_on_worker(student, notebook: bytes | None, notes, shared) -> dict:
    """One student, on a Dask worker: ``_grade_one`` in a temporary course, files returned."""
    a = shared["assignment"]
    with tempfile.TemporaryDirectory(prefix="attnkit-grade-") as tmp:
        out = Path(tmp)
        work = out / WORK
        template = work / "template"
        template.mkdir(parents=True)
        # the stubbed gradebook (KERNEL_DB) where the hidden tests are stubbed
        stubbed = shared["calls"] is not None
        (template / (KERNEL_DB if stubbed else "gradebook.db")).write_bytes(
            shared["gradebook"]
        )
        (out / "nbgrader_config.py").write_bytes(shared["config"])
        nb_path = None
        if notebook is not None:
            nb_path = out / "in" / f"{a}.ipynb"
            nb_path.parent.mkdir()
            nb_path.write_bytes(notebook)
        use_bwrap = choose_sandbox(shared["sandbox"])
        r = _grade_one(
            student,
            nb_path,
            notes,
            assignment=a,
            out=out,
            work=work,
            template=template,
            tests=shared["tests"],
            deny=shared["deny"] + [str(out), str(JUDGE_ROOT)],
            timeout=shared["timeout"],
            memory=shared["memory"],
            max_output=shared["max_output"],
            threads=shared["threads"],
            feedback=shared["feedback"],
            sandbox=[str(out)] if use_bwrap else None,
            disk=shared["disk"],
            replay=shared["replay"],
            calls=shared["calls"],
            judge_root=JUDGE_ROOT,  # one judge server per worker process, for every student
        )
        scratch = work / "students" / student
        r["files"] = {
            part: _files(scratch / part / student / a) if r["ok"] else {}
            for part in PARTS
        }
        r["worker"] = os.uname().nodename
        return r


def graded(scheduler: str, todo, chosen, problems, common, sandbox: str):
    """Yield each student's result, graded on the cluster at ``scheduler``, as they finish.

    The autograded notebook and feedback of each result are written back into the driver's
    scratch course (``<work>/students/<student>/``), where ``_record`` expects them.
    """
    from distributed import Client, as_completed

    a, work = common["assignment"], common["work"]
    shared = {
        "assignment": a,
        # the stubbed gradebook, where there is one: the workers' students never get another
        "gradebook": (
            common["template"] / KERNEL_DB
            if common["calls"] is not None
            else common["template"] / "gradebook.db"
        ).read_bytes(),
        "config": (common["out"] / "nbgrader_config.py").read_bytes(),
        "sandbox": sandbox,
        **{
            k: common[k]
            for k in (
                "tests",
                "deny",
                "timeout",
                "memory",
                "max_output",
                "threads",
                "feedback",
                "disk",
                "replay",
                "calls",
            )
        },
    }
    run = uuid.uuid4().hex[:8]
    with Client(scheduler, timeout="60s") as client:
        # a list: scattering a dict would make each of its keys a cluster-wide data key,
        # shared by every grade run on this cluster
        data = {}  # the scattered settings; scattered again when a lost worker took them

        def scatter():
            [data["shared"]] = client.scatter([shared], broadcast=True, hash=False)

        def submit(s, attempt):
            return client.submit(
                grade_on_worker,
                s,
                chosen[s].read_bytes() if chosen[s] is not None else None,
                problems[s],
                data["shared"],
                key=f"attnkit-grade-{a}-{s}-{run}-{attempt}",
                pure=False,
            )

        scatter()
        futures = {submit(s, 0): (s, 0) for s in todo}
        seen = set()
        done = as_completed(list(futures))
        for future in done:
            s, attempt = futures[future]
            try:
                r = future.result()
            except Exception as exc:
                # a worker killed early can take the scattered settings with it; Dask then
                # cancels every task for "lost dependencies": scatter them again, resubmit
                if attempt + 1 < ATTEMPTS:
                    scatter()
                    again = submit(s, attempt + 1)
                    futures[again] = (s, attempt + 1)
                    done.add(again)
                    continue
                why = f"{type(exc).__name__}: {exc}"[:200]
                failed = f"grading on the cluster failed ({why})"
                r = {"student": s, "ok": False, "scores": {}, "files": {}}
                r["problems"] = [*problems[s], failed]
            if r["student"] in seen:  # never twice, whatever the cluster does
                continue
            seen.add(r["student"])
            scratch = work / "students" / r["student"]
            shutil.rmtree(scratch, ignore_errors=True)
            for part, files in r.pop("files").items():
                dest = scratch / part / r["student"] / a
                for rel, data in files.items():
                    (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                    (dest / rel).write_bytes(data)
            yield r
