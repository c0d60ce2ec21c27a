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


def _quiet():
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    import matplotlib

    matplotlib.use("Agg")
    return stack


def _kernel(notebook: str, replay: dict, folder: str, out: str) -> None:
    """Every code cell of the notebook in one namespace, the recorder told of each."""
    from attnkit.grading.cells import is_test_cell, nbgrader_meta
    from attnkit.grading.replay import _transform

    nb = nbformat.reads(notebook, as_version=4)
    rec = recorder(folder, replay)
    ns, verdicts = {"__name__": "__main__"}, {}
    with _quiet():
        for cell in nb.cells:
            if cell.cell_type != "code":
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


def _judge(replay: dict, folder: str, out: str) -> None:
    from attnkit.grading.replay import judge

    with _quiet():
        verdicts = judge(replay, folder)
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


def kernel_then_judge(nb, replay: dict, folder: Path) -> tuple[dict, dict]:
    """``(kernel verdicts, judge verdicts)``: ``{grade_id: None or why it failed}``."""
    folder.mkdir(parents=True, exist_ok=True)
    record = str(folder / "record")
    kernel = _forked(
        _kernel, nbformat.writes(nb), replay, record, str(folder / "kernel.json")
    )
    judged = _forked(_judge, replay, record, str(folder / "judge.json"))
    return kernel, judged
