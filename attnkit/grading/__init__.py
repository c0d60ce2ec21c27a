"""Self-check for students, batch autograding for instructors (nbgrader does the grading).

Students, in a terminal or in the notebook's last cell::

    python -m attnkit.grading check exercises/ch01-soft-lookup/ch01-soft-lookup.ipynb
    from attnkit.grading import self_check; self_check()

Instructors, from the course root (the directory holding ``nbgrader_config.py``)::

    python -m attnkit.grading grade ch01-soft-lookup path/to/submissions --jobs 2

Modules: ``cells`` (what the grader reads from a notebook: test cells, questions, forbidden
names), ``selfcheck`` (run the visible tests), ``batch`` (grade a folder of submissions),
``sandbox`` (the guard installed in each student's kernel), ``cli`` (the command line).
nbformat, nbclient and nbgrader come with the ``grade`` extra (``pip install "attnkit[grade]"``).
"""

from .batch import grade
from .cells import HIDDEN, forbidden_names, is_test_cell, nbgrader_meta, question_of
from .cli import main
from .selfcheck import check, self_check

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
