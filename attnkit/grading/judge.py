"""The trusted judge: the instructor's cells replayed with a student's recorded results.

Run by :mod:`attnkit.grading.batch` by its path (under bubblewrap when it is used), after the
student's processes are all gone, in a folder of its own that the student never saw. The
folder holds ``plan.json`` (:func:`attnkit.grading.replay.plan` of the instructor's notebook,
written by the grader) and ``record/`` (the student's recording, copied by the grader: plain
files only, bounded). The judge writes ``verdicts.json`` there: ``{grade_id: null or why it
failed}``. It may hold ``calls.pt`` too (the rehearsed calls of the stubbed hidden tests,
written by the grader). The cells' own output is discarded. See :mod:`attnkit.grading.replay`
for what this guarantees. Three ways to run it::

    python .../attnkit/grading/judge.py            # one student, in the current folder
    python .../attnkit/grading/judge.py --serve ROOT
    python .../attnkit/grading/judge.py --rehearse # once per assignment, in the grader's folder

``--rehearse`` reads ``source.ipynb`` (the instructor's notebook) and ``plan.json`` and writes
``calls.pt`` and ``rehearsal.json`` (:func:`attnkit.grading.replay.rehearse`).

``--serve`` judges many students with one start-up: it imports torch, attnkit and what the
tests import on first use (``torch.testing`` imports ``torch._dynamo`` and
``torch.distributed.tensor``, 3–4 s), does nothing else, and for each line
``NAME SECONDS MEMORY`` read from its standard input forks a child that judges ``ROOT/NAME``
under an alarm of ``SECONDS`` and an address-space limit of ``MEMORY`` bytes, then writes
``done NAME EXIT_CODE`` to its standard output (a child killed by the alarm: ``-14``). The
children never share a thread pool with it (it never runs an operator), as in
:mod:`attnkit.bench.runner`'s fork server. It ends when its input is closed and its children
have ended.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
import warnings

if __name__ == "__main__":  # run by path: this folder must not shadow top-level modules
    sys.path.pop(0)

NAME = re.compile(
    r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,200}$"
)  # a student id (batch.student_id)


def _imports() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    import torch  # noqa: F401
    import torch._dynamo  # noqa: F401  (torch.manual_seed and more import it on first use)
    import torch.distributed.tensor  # noqa: F401  (torch.testing.assert_close does)
    from IPython.core.inputtransformer2 import TransformerManager  # noqa: F401

    import attnkit  # noqa: F401
    import attnkit.grading.replay  # noqa: F401


def main() -> int:
    """Judge the student whose folder is the current directory."""
    _imports()

    from attnkit.grading.replay import judge, load_calls

    _threads()
    with open("plan.json") as f:
        replay = json.load(f)
    # the grader's, never the student's
    rehearsed = load_calls("calls.pt") if os.path.exists("calls.pt") else None
    with _quiet():
        verdicts = judge(replay, "record", rehearsed=rehearsed)
    with open("verdicts.json", "w") as f:
        json.dump(verdicts, f)
    passed = sum(v is None for v in verdicts.values())
    print(f"attnkit-judge: {passed}/{len(verdicts)} passed")
    return 0


def _threads() -> None:
    import torch

    threads = int(os.environ.get("OMP_NUM_THREADS", "1") or 1)
    torch.set_num_threads(max(1, threads))


def _quiet() -> contextlib.ExitStack:
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    return stack


def rehearse_main() -> int:
    """The rehearsal of the stubbed hidden tests, in the current folder (see the module)."""
    _imports()
    import nbformat
    import torch

    from attnkit.grading.replay import rehearse

    _threads()
    nb = nbformat.read("source.ipynb", as_version=4)
    with open("plan.json") as f:
        replay = json.load(f)
    with _quiet():
        calls, why = rehearse(nb, replay)
    torch.save(calls, "calls.pt")
    with open("rehearsal.json", "w") as f:
        json.dump(why, f)
    print(f"attnkit-rehearse: {len(calls)} cells, {len(why)} kept in the kernel")
    return 0


def _child(root: str, name: str, seconds: int, memory: int) -> None:
    """In a forked child: judge ``root/name``; never returns."""
    import resource
    import signal
    import traceback

    code = 1
    try:
        signal.alarm(max(1, seconds))  # no handler: the alarm ends the process
        if memory > 0:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        os.chdir(os.path.join(root, name))
        log = os.open("judge.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        code = main()
    except BaseException:
        with contextlib.suppress(Exception):
            traceback.print_exc()
    finally:
        os._exit(code)


def serve(root: str) -> int:
    """Judge the folders named on standard input, each in a child forked from here."""
    import selectors
    import time

    _imports()
    root = os.path.realpath(root)
    children: dict[int, str] = {}
    pending, reading = b"", True
    selector = selectors.DefaultSelector()
    selector.register(0, selectors.EVENT_READ)
    while reading or children:
        if reading and selector.select(timeout=0.05):
            data = os.read(0, 65536)
            reading = bool(data)
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                parts = line.decode("ascii", "replace").split()
                try:
                    name, seconds, memory = parts[0], int(parts[1]), int(parts[2])
                except (IndexError, ValueError):
                    continue
                if len(parts) != 3 or not NAME.match(name):
                    continue
                pid = os.fork()
                if pid == 0:
                    _child(root, name, seconds, memory)
                children[pid] = name
        elif not reading:
            time.sleep(0.05)
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            name = children.pop(pid, "?")
            os.write(1, f"done {name} {os.waitstatus_to_exitcode(status)}\n".encode())
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"] and len(sys.argv) == 3:
        sys.exit(serve(sys.argv[2]))
    if sys.argv[1:] == ["--rehearse"]:
        sys.exit(rehearse_main())
    sys.exit(main())
