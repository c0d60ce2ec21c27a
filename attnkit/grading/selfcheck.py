"""Self-check for students: run a notebook's visible tests in a fresh kernel.

Students, in a terminal or in the notebook's last cell::

    python -m attnkit.grading check exercises/ch01-soft-lookup/ch01-soft-lookup.ipynb
    from attnkit.grading import self_check; self_check()

Instructors, from the course root (the directory holding ``nbgrader_config.py``)::

    python -m attnkit.grading grade ch01-soft-lookup path/to/submissions --jobs 2

``check`` runs the notebook top to bottom in a fresh kernel and reports every *visible* test
cell (hidden ones only exist in the instructor's copy). ``grade`` is in
:mod:`attnkit.grading.batch`. nbformat, nbclient and nbgrader are imported inside the
functions: they come with the ``grade`` extra (``pip install "attnkit[grade]"``), not with
attnkit itself.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .cells import (
    HIDDEN,
    answer_names,
    forbidden_names,
    is_test_cell,
    nbgrader_meta,
    only_comments,
    question_of,
)


def check(path, *, timeout: int = 60, stream=None) -> list[dict]:
    """Run a notebook in a fresh kernel; report each visible test cell.

    Each visible test cell is reported as passed or failed, with its points.

    Returns one dict per graded test cell: grade_id, question, points, status
    ("passed", "failed" or "hidden"), message (the error, for failed cells).
    """
    import nbformat
    from nbclient import NotebookClient

    stream = stream or sys.stdout
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    for (
        cell
    ) in nb.cells:  # the instructor's copy: the student's view has no hidden tests
        if is_test_cell(cell) and HIDDEN in cell.source:
            cell.source = "# hidden tests: run when your notebook is graded"
    nb.cells.insert(
        0, _tripwire_cell(nb)
    )  # the forbidden calls, enforced as when grading
    env = {**os.environ, "ATTNKIT_SELF_CHECK": "1", "MPLBACKEND": "Agg"}
    client = NotebookClient(
        nb,
        timeout=timeout,
        allow_errors=True,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent.resolve())}},
    )
    try:
        client.execute(env=env)
    except Exception as exc:  # a dead kernel: report what ran
        print(f"the kernel stopped: {type(exc).__name__}: {exc}", file=stream)
    results, problems = [], []
    guard = [
        o for o in nb.cells.pop(0).get("outputs", []) if o.get("output_type") == "error"
    ]
    if guard:
        problems.append(
            f"forbidden calls not checked ({guard[0].ename}: {guard[0].evalue})"
        )
    for cell in nb.cells:
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        message = f"{errors[0].ename}: {errors[0].evalue}".strip() if errors else ""
        if is_test_cell(cell):
            gid = nbgrader_meta(cell)["grade_id"]
            hidden = only_comments(cell.source)
            ran = cell.get("execution_count") is not None
            status = "hidden" if hidden else "failed" if errors or not ran else "passed"
            results.append(
                {
                    "grade_id": gid,
                    "question": question_of(gid),
                    "points": nbgrader_meta(cell).get("points", 0),
                    "status": status,
                    "message": message or ("" if ran else "did not run"),
                }
            )
        elif errors and nbgrader_meta(cell).get("grade_id"):
            problems.append(f"cell {nbgrader_meta(cell)['grade_id']} raised {message}")
    _print_report(path.name, results, problems, stream)
    return results


def _tripwire_cell(nb):
    """A first cell that installs :class:`~attnkit.grading.sandbox.Tripwires` for this notebook."""
    import json

    import nbformat

    forbid, answers = forbidden_names(nb), answer_names(nb)
    tests = [
        {
            "grade_id": nbgrader_meta(c)["grade_id"],
            "source": c.source,
            "forbidden": forbid.get(question_of(nbgrader_meta(c)["grade_id"]), []),
            "answers": answers.get(question_of(nbgrader_meta(c)["grade_id"]), []),
        }
        for c in nb.cells
        if is_test_cell(c)
    ]
    return nbformat.v4.new_code_cell(
        "import json as _json, attnkit.grading.sandbox as _g\n"
        f"_g.install_tripwires(_json.loads({json.dumps(tests)!r}))\ndel _json, _g"
    )


def _print_report(name, results, problems, stream) -> None:
    visible = [r for r in results if r["status"] != "hidden"]
    got = sum(r["points"] for r in visible if r["status"] == "passed")
    hidden = sum(r["points"] for r in results if r["status"] == "hidden")
    print(
        f"{name}: visible tests {got:g}/{sum(r['points'] for r in visible):g} points passed"
        f" ({hidden:g} more points in hidden tests, run when your notebook is graded)",
        file=stream,
    )
    for r in visible:
        line = (
            f"  {r['question']:<4} "
            f"{r['status'].upper() if r['status'] == 'failed' else r['status']:<7}"
            f" {r['grade_id']:<12} {r['points']:g} pt"
        )
        print(
            line + (f"  {r['message'][:300]}" if r["status"] == "failed" else ""),
            file=stream,
        )
    for p in problems:
        print(f"  note: {p[:300]}", file=stream)


def _this_notebook() -> Path | None:
    """The running notebook's file, where the front end tells (Jupyter, VS Code, Colab)."""
    try:
        ns = get_ipython().user_ns  # noqa: F821
    except NameError:
        ns = {}
    if ns.get("__vsc_ipynb_file__"):
        return Path(ns["__vsc_ipynb_file__"])
    session = os.environ.get("JPY_SESSION_NAME")
    if session:
        for candidate in (Path(session), Path.cwd() / Path(session).name):
            if candidate.suffix == ".ipynb" and candidate.exists():
                return candidate
    if (
        "google.colab" in sys.modules
    ):  # Colab keeps the notebook in the browser: ask for it
        import json
        import tempfile

        from google.colab import _message  # type: ignore[import-not-found]

        content = _message.blocking_request("get_ipynb", timeout_sec=30)["ipynb"]
        path = Path(tempfile.mkdtemp()) / "colab.ipynb"
        path.write_text(json.dumps(content))
        return path
    return None


def self_check(path=None, *, timeout: int = 60):
    """Check the notebook this is called from (save it first), or ``path``; prints the report.

    Does nothing inside a check or a grading run (the notebook's own self-check cell runs
    there too).
    """
    if os.environ.get("ATTNKIT_SELF_CHECK") or os.environ.get("ATTNKIT_GRADING"):
        print("self-check skipped (already checking or grading this notebook)")
        return None
    path = Path(path) if path else _this_notebook()
    if path is None:
        print(
            "self_check: cannot tell which notebook this is; save it and call "
            "self_check('path/to/chNN-slug.ipynb')"
        )
        return None
    print(f"checking {path} (the version saved on disk) in a fresh kernel ...")
    return check(path, timeout=timeout)
