"""A notebook run as the grader's kernel would record it, and the judge, each in a process
of its own (tests/test_grading_replay.py).

Both run in processes forked from a fork server that has imported torch and attnkit and done
nothing else, so neither sees what the other (or an earlier run) left in a module: an answer
cell that registers a class in attnkit's registry registers it in its own process only, as in
the grader, where the kernel and the judge are two processes.
"""

from __future__ import annotations

import contextlib
import io
import json
import multiprocessing
import multiprocessing.forkserver
import warnings
from pathlib import Path

import nbformat

TIMEOUT = 300  # seconds per run
# imported once by the fork server, not by every run: torch.testing.assert_close imports
# torch._dynamo and torch.distributed.tensor on first use (3.5 s)
PRELOAD = [
    "torch",
    "torch._dynamo",
    "torch.distributed.tensor",
    "matplotlib.pyplot",
    "IPython.core.inputtransformer2",
    "attnkit.grading.replay",
    "replay_runs",
]


def code_name(source: str) -> str:
    """The kernel's file name of a cell, as the guard computes it (no folder: one namespace)."""
    from attnkit.grading.replay import cell_name

    return cell_name(source)


def recorder(folder, replay: dict):
    """A recorder given what the kernel is given (:func:`~attnkit.grading.replay.for_kernel`)."""
    from attnkit.grading.replay import Recorder, for_kernel

    return Recorder(str(folder), for_kernel(replay), lambda name: name)


def unstubbed(replay: dict) -> dict:
    """``replay`` with every hidden test run in the kernel, source and all (no stub)."""
    return {**replay, "cells": [{**c, "stub": False} for c in replay["cells"]]}


def _quiet():
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    import matplotlib

    matplotlib.use("Agg")
    return stack


def _rehearse(notebook: str, replay: dict, out: str) -> None:
    import torch

    from attnkit.grading.replay import rehearse

    with _quiet():
        calls, why = rehearse(nbformat.reads(notebook, as_version=4), replay)
    torch.save(calls, out + ".pt")
    Path(out).write_text(json.dumps(why))


def _kernel(notebook: str, replay: dict, folder: str, calls, out: str) -> None:
    """Every code cell of the notebook in one namespace, the recorder told of each; with
    ``calls`` (rehearsed), a stubbed cell runs as its stub does in the grader's kernel."""
    from attnkit.grading.cells import is_test_cell, nbgrader_meta
    from attnkit.grading.replay import _transform, load_calls, stub

    nb = nbformat.reads(notebook, as_version=4)
    rec = recorder(folder, replay)
    stubs = {c["key"] for c in replay["cells"] if c.get("stub")}
    rehearsed = load_calls(calls) if calls else {}
    ns, verdicts = {"__name__": "__main__"}, {}
    with _quiet():
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            if f"c{i}" in stubs:  # what the grader's kernel runs: the calls, no test
                rec.enter(code_name(stub(f"c{i}")), ns)
                rec.run_hidden(f"c{i}", rehearsed.get(f"c{i}", []), ns)
                verdicts[nbgrader_meta(cell)["grade_id"]] = None
                continue
            rec.enter(code_name(cell.source), ns)
            try:
                exec(compile(_transform(cell.source), "<cell>", "exec"), ns)
                failed = None
            except Exception as exc:
                failed = f"{type(exc).__name__}: {exc}"[:500]
            if is_test_cell(cell):
                verdicts[nbgrader_meta(cell)["grade_id"]] = failed
    Path(out).write_text(json.dumps(verdicts))


def _judge(replay: dict, folder: str, calls, out: str) -> None:
    from attnkit.grading.replay import judge, load_calls

    rehearsed = load_calls(calls) if calls else None
    with _quiet():
        verdicts = judge(replay, folder, rehearsed=rehearsed)
    Path(out).write_text(json.dumps(verdicts))


def _forked(target, *args) -> dict:
    ctx = multiprocessing.get_context("forkserver")
    # one fork server per process: one started with other modules (tests/test_bench.py's)
    # is replaced, or every run would import torch._dynamo and the rest again (3.5 s); it has
    # imported torch and attnkit, as this one has, so the other tests can use this one
    server = multiprocessing.forkserver._forkserver
    if server._preload_modules != PRELOAD:
        server._stop()  # (private, but the only way to change a running server's imports)
        ctx.set_forkserver_preload(PRELOAD)
    out = Path(args[-1])
    proc = ctx.Process(target=target, args=args, daemon=True)
    proc.start()
    proc.join(TIMEOUT)
    if proc.is_alive():
        proc.kill()
        proc.join()
    assert proc.exitcode == 0 and out.exists(), (
        f"{target.__name__} ended with {proc.exitcode}"
    )
    return json.loads(out.read_text())


def rehearsed(source, replay: dict, folder: Path) -> tuple[str, dict]:
    """The grader's rehearsal of the instructor's notebook ``source``: ``(path of the calls
    file, {key: why a stubbed cell cannot be one})``."""
    folder.mkdir(parents=True, exist_ok=True)
    out = str(folder / "rehearsal.json")
    why = _forked(_rehearse, nbformat.writes(source), replay, out)
    return out + ".pt", why


def kernel_then_judge(
    nb, replay: dict, folder: Path, calls=None, judged=True
) -> tuple[dict, dict | None]:
    """``(kernel verdicts, judge verdicts)``: ``{grade_id: None or why it failed}``. Without
    ``calls`` (:func:`rehearsed`'s file), no cell is stubbed; with it, the stubbed cells run
    as in the grader (their stub in the kernel, their tests in the judge). ``judged``:
    False runs the kernel alone (the judge's verdicts are None)."""
    folder.mkdir(parents=True, exist_ok=True)
    record = str(folder / "record")
    if calls is None:
        replay = unstubbed(replay)
    kernel = _forked(
        _kernel, nbformat.writes(nb), replay, record, calls, str(folder / "kernel.json")
    )
    if not judged:
        return kernel, None
    return kernel, _forked(_judge, replay, record, calls, str(folder / "judge.json"))
