"""The command line of ``python -m attnkit.grading``.

Its two commands: ``check NOTEBOOK`` and ``grade ASSIGNMENT FOLDER``.
"""

from __future__ import annotations

import argparse

from .batch import grade
from .selfcheck import check


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m attnkit.grading",
        description="self-check a notebook, or autograde a folder of submissions",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="run a notebook's visible tests (students)")
    c.add_argument("notebook")
    c.add_argument("--timeout", type=int, default=60, help="seconds per cell")
    g = sub.add_parser("grade", help="autograde a folder of submissions (instructors)")
    g.add_argument("assignment")
    g.add_argument(
        "submissions",
        help="submitted/<student>/<assignment>/ layout or a folder of <student>.ipynb",
    )
    g.add_argument(
        "--course",
        default=".",
        help="the course root (holds nbgrader_config.py and solutions/)",
    )
    g.add_argument(
        "--out",
        default=None,
        help="where the gradebook, autograded/, feedback/ and grades.csv go "
        "(default: the course root)",
    )
    g.add_argument("--jobs", type=int, default=2, help="students graded at once")
    g.add_argument("--timeout", type=int, default=60, help="seconds per cell")
    g.add_argument(
        "--memory", type=float, default=4.0, help="GiB of address space per submission"
    )
    g.add_argument(
        "--disk",
        type=float,
        default=2.0,
        help="GiB a submission may write into its scratch course (checked every 0.2 s; "
        "over it, its grading is stopped: 0 points)",
    )
    g.add_argument(
        "--max-output", type=int, default=100_000, help="characters of output per cell"
    )
    g.add_argument(
        "--feedback",
        choices=("hidden", "full"),
        default="hidden",
        help="hidden (default): each test's points and message, never the hidden tests' "
        "code or tracebacks; full: nbgrader's feedback as it is",
    )
    g.add_argument(
        "--sandbox",
        choices=("auto", "bwrap", "none"),
        default="auto",
        help="bwrap: each student under bubblewrap (no network, read-only system, the course "
        "hidden); none: the in-process guard only; auto (default): bwrap when it works here",
    )
    g.add_argument(
        "--scheduler",
        default=None,
        help="a Dask scheduler (tcp://HOST:8786): grade on its workers; default: this machine",
    )
    args = parser.parse_args(argv)
    if args.command == "check":
        results = check(args.notebook, timeout=args.timeout)
        return 0 if all(r["status"] != "failed" for r in results) else 1
    return grade(
        args.assignment,
        args.submissions,
        course=args.course,
        out=args.out,
        jobs=args.jobs,
        timeout=args.timeout,
        memory_gib=args.memory,
        disk_gib=args.disk,
        max_output=args.max_output,
        feedback=args.feedback,
        sandbox=args.sandbox,
        scheduler=args.scheduler,
    )
