"""Self-check for students, batch autograding for instructors (nbgrader does the grading).

Students, in a terminal or in the notebook's last cell::

    python -m attnkit.grading check exercises/ch01-soft-lookup/ch01-soft-lookup.ipynb
    from attnkit.grading import self_check; self_check()

Instructors, from the course root (the directory holding ``nbgrader_config.py``)::

    python -m attnkit.grading grade ch01-soft-lookup path/to/submissions --jobs 2

Modules: ``cells`` (what the grader reads from a notebook: test cells, questions, forbidden
names), ``selfcheck`` (run the visible tests), ``batch`` (grade a folder of submissions),
``sandbox`` (the guard installed in each student's kernel), ``bwrap`` (the operating-system
sandbox), ``quota`` (the per-student disk quota), ``cli`` (the command line).
nbformat, nbclient and nbgrader come with the ``grade`` extra (``pip install "attnkit[grade]"``).
"""

import importlib

from .cells import HIDDEN, forbidden_names, is_test_cell, nbgrader_meta, question_of
from .selfcheck import check, self_check

# ``grade`` and ``main`` load nbconvert (the feedback preprocessor) and nbgrader: they are
# imported when first used, so that the self-check cell every notebook ends with
# (``from attnkit.grading import self_check``) loads neither (0.7 s of CPU less per kernel).
_ON_FIRST_USE = {"grade": "batch", "main": "cli"}


def __getattr__(name: str):
    if name in _ON_FIRST_USE:
        return getattr(
            importlib.import_module(f".{_ON_FIRST_USE[name]}", __name__), name
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "HIDDEN",
    "check",
    "forbidden_names",
    "grade",
    "is_test_cell",
    "main",
    "nbgrader_meta",
    "question_of",
    "self_check",
]
