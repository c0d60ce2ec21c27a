"""The trusted judge of one student: the instructor's cells replayed with the student's results.

Run by :mod:`attnkit.grading.batch` by its path, in a folder of its own that the student's
processes never saw (under bubblewrap when it is used), after they are all gone::

    python .../attnkit/grading/judge.py

The folder holds ``plan.json`` (:func:`attnkit.grading.replay.plan` of the instructor's
notebook, written by the grader) and ``record/`` (the student's recording, copied by the grader:
plain files only, bounded). It writes ``verdicts.json``: ``{grade_id: null or why it failed}``.
The cells' own output is discarded. See :mod:`attnkit.grading.replay` for what this guarantees.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import warnings

if __name__ == "__main__":  # run by path: this folder must not shadow top-level modules
    sys.path.pop(0)


def main() -> int:
    import matplotlib

    matplotlib.use("Agg")
    import torch

    from attnkit.grading.replay import judge

    threads = int(os.environ.get("OMP_NUM_THREADS", "1") or 1)
    torch.set_num_threads(max(1, threads))
    with open("plan.json") as f:
        replay = json.load(f)
    with (
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        verdicts = judge(replay, "record")
    with open("verdicts.json", "w") as f:
        json.dump(verdicts, f)
    print(
        f"attnkit-judge: {sum(v is None for v in verdicts.values())}/{len(verdicts)} passed"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
