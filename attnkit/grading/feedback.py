"""Feedback that keeps hidden tests hidden (nbgrader issue #917).

``nbgrader autograde`` puts every test cell back from the gradebook, hidden tests included, and
``nbgrader generate_feedback`` renders the autograded notebook as it is: the student would read
the hidden tests' source and, in a failed test's traceback, the lines around the failing assertion.

:class:`HideHiddenTests` is an nbconvert preprocessor, plugged into nbgrader's own extension point
(the feedback exporter's ``preprocessors``, see :func:`feedback_args`). On the copy of the notebook
that is rendered (the autograded notebook on disk is left as it is, for the instructor), it

* replaces the source of every test cell that holds hidden tests by a stub naming the test
  (``q2_hidden``) and its points; the visible part before ``### BEGIN HIDDEN TESTS`` stays;
* replaces the traceback of an error in such a cell by one line, the exception's type and its
  message (``AssertionError: sigma = 0.3: LOO error 0.41, expected 0.39``): the message written
  for the student stays, the assertion's expression and the hidden code around it go;
* removes, in every output of the notebook, any line that is a line of hidden test code
  (a warning prints its source line; a student's function could print its caller's).

nbgrader's feedback template still shows each test cell's points and score. ``--feedback full``
of ``python -m attnkit.grading grade`` leaves nbgrader's behaviour as it is.
"""

from __future__ import annotations

from nbconvert.preprocessors import Preprocessor

from .cells import HIDDEN, is_test_cell, nbgrader_meta

__all__ = ["HideHiddenTests", "hide_hidden_tests", "hidden_lines", "feedback_args"]

END = "### END HIDDEN TESTS"
TRIVIAL = {"", "pass", "else:", "try:", "finally:", ")", "]", "}", "return", '"""'}
_TEXT_KEYS = ("text/plain", "text/html", "text/markdown", "text/latex")


def _split(source: str) -> tuple[str, list[str]]:
    """``(the visible part before the hidden block, [lines inside hidden blocks])``."""
    visible, hidden, inside = [], [], False
    for line in source.splitlines():
        if line.strip() == HIDDEN:
            inside = True
        elif line.strip() == END:
            inside = False
        elif inside:
            hidden.append(line)
        else:
            visible.append(line)
    return "\n".join(visible).rstrip(), hidden


def hidden_lines(nb) -> set[str]:
    """The stripped, non-trivial lines of every hidden test block of a notebook."""
    lines = set()
    for cell in nb.cells:
        if cell.get("cell_type") == "code" and HIDDEN in cell.get("source", ""):
            lines |= {line.strip() for line in _split(cell.source)[1]}
    return {line for line in lines if line not in TRIVIAL and not line.startswith("#")}


def _scrub(text, secret: set[str]):
    if not isinstance(text, str) or not secret:
        return text
    kept = [
        line
        for line in text.splitlines(keepends=True)
        if line.strip() not in secret or not line.strip()
    ]
    return "".join(kept)


def _scrub_output(out, secret: set[str]) -> None:
    if "text" in out:
        out["text"] = _scrub(out["text"], secret)
    for key in _TEXT_KEYS:
        if key in out.get("data", {}):
            value = out["data"][key]
            if isinstance(value, list):
                value = "".join(value)
            out["data"][key] = _scrub(value, secret)
    if out.get("output_type") == "error":
        out["traceback"] = [_scrub(t, secret) for t in out.get("traceback", [])]


def _short_error(out) -> None:
    """An error output reduced to ``Type: message`` (no frames, no source lines)."""
    ename, evalue = out.get("ename", "Error"), out.get("evalue", "")
    out["traceback"] = [f"{ename}: {evalue}" if evalue else f"{ename} (no message)"]


def hide_hidden_tests(nb):
    """Hide the hidden tests of an autograded notebook in place (see the module); returns it."""
    secret = hidden_lines(nb)
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        if is_test_cell(cell) and HIDDEN in cell.source:
            meta = nbgrader_meta(cell)
            visible, _ = _split(cell.source)
            visible = "\n".join(
                line
                for line in visible.splitlines()
                if "more tests run here" not in line.lower()
            ).rstrip()
            stub = (
                f"# {meta.get('grade_id', 'test')}: hidden tests "
                f"({meta.get('points', 0):g} points), not shown; "
                "a failure shows its message below"
            )
            cell.source = f"{visible}\n{stub}" if visible.strip() else stub
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    _short_error(out)
        for out in cell.get("outputs", []):
            _scrub_output(out, secret)
    return nb


class HideHiddenTests(Preprocessor):
    """The nbconvert preprocessor nbgrader's feedback exporter runs (see the module)."""

    def preprocess(self, nb, resources):
        return hide_hidden_tests(nb), resources


def feedback_args(mode: str = "hidden") -> list[str]:
    """Extra ``nbgrader generate_feedback`` arguments for a feedback mode (``hidden`` or
    ``full``): nbgrader's HTML exporter runs :class:`HideHiddenTests` before rendering."""
    if mode == "full":
        return []
    if mode != "hidden":
        raise ValueError(f"feedback mode {mode!r}: expected 'hidden' or 'full'")
    return [f"--HTMLExporter.preprocessors=['{__name__}.HideHiddenTests']"]
