"""One student's nbgrader steps, ``autograde`` then ``generate_feedback``, in one process.

Run by :mod:`attnkit.grading.batch` in the student's scratch course, by its path, so that
neither attnkit nor torch is imported (2–3 s); under bubblewrap only the kernel nbgrader starts
is sandboxed (:mod:`attnkit.grading.kernelbox`), not this process::

    python .../attnkit/grading/steps.py [--only autograde|feedback] ASSIGNMENT STUDENT
        [nbgrader options for autograde] -- [nbgrader options for generate_feedback]

``--only``: one of the two steps (the grader judges the student between them, so that the
feedback shows the judge's verdicts).

It imports nothing from attnkit: keep it so.

Two ``nbgrader`` commands cost two interpreter starts and two imports of nbgrader (about 2 s
each); here nbgrader's application runs twice in one interpreter, reset in between (as
nbgrader's own test suite runs it). Feedback is generated only when autograde succeeded. The
exit status is autograde's (0: graded); a failed feedback step exits with 3. Each step's
seconds are printed as ``attnkit-steps: <step> <seconds>`` for the grader's manifest.
"""

from __future__ import annotations

import sys
import time


def run(argv: list[str]) -> int:
    """Run ``nbgrader <argv>`` in this process; returns its exit status."""
    from jupyter_core.application import NoStart
    from nbgrader.apps.nbgraderapp import NbGraderApp

    app = NbGraderApp.instance()
    try:
        app.initialize(argv)
        app.start()
        return 0
    except NoStart:  # how jupyter_core's application ends after a subcommand ran
        return 0
    except SystemExit as stop:  # nbgrader's fail() exits
        return stop.code if isinstance(stop.code, int) else 1
    finally:
        app.reset()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    only = None
    if argv[:1] == ["--only"] and len(argv) > 1:
        only, argv = argv[1], argv[2:]
    if len(argv) < 2 or only not in (None, "autograde", "feedback"):
        print(__doc__, file=sys.stderr)
        return 2
    assignment, student, rest = argv[0], argv[1], argv[2:]
    cut = rest.index("--") if "--" in rest else len(rest)
    grade_opts, feedback_opts = rest[:cut], rest[cut + 1 :]
    common = [assignment, "--student", student, "--force"]
    if only != "feedback":
        start = time.monotonic()
        rc = run(["autograde", *common, *grade_opts])
        print(f"attnkit-steps: autograde {time.monotonic() - start:.2f}", flush=True)
        if rc != 0 or only == "autograde":
            return rc
    start = time.monotonic()
    rc = run(["generate_feedback", *common, *feedback_opts])
    print(f"attnkit-steps: feedback {time.monotonic() - start:.2f}", flush=True)
    return 0 if rc == 0 else 3


if __name__ == "__main__":
    sys.exit(main())
