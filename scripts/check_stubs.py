"""Every wrong answer's verdict from each stubbed hidden test, out of the kernel and in it.

    python scripts/check_stubs.py [ASSIGNMENT ...]

The grader runs a hidden test out of the student's kernel when it can: the kernel runs a stub
that calls the answers with the rehearsed arguments, and the judge runs the test on what was
recorded (see attnkit/grading/replay.py). For every wrong answer of tests/wrong_answers/
(question by question, the i-th wrong answer of each in one notebook), this compares the
verdict each stubbed test gives that way with the verdict the same test gives run in the
kernel, source and all. ``make test`` checks the first wrong answer of each question; this
checks them all (about 10 minutes on two cores). Exit status 1 if any verdict differs.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def main(argv=None) -> int:
    from grading import assignments, source_notebook, wrong_answers
    from replay_runs import kernel_then_judge, rehearsed
    from test_grading_replay import with_answers

    from attnkit.grading.replay import plan

    names = (sys.argv[1:] if argv is None else argv) or assignments()
    total = failed = 0
    differ = []
    with tempfile.TemporaryDirectory() as tmp:
        for a in names:
            source = source_notebook(a)
            replay = plan(source)
            calls, why = rehearsed(source, replay, Path(tmp) / a / "rehearsal")
            for cell in replay["cells"]:
                cell["stub"] = cell["stub"] and cell["key"] not in why
            stubbed = {c["grade_id"] for c in replay["cells"] if c["stub"]}
            wrong = wrong_answers(a)
            for i in range(max(map(len, wrong.values()))):
                nb = with_answers(
                    a, {q: w[i][1] for q, w in wrong.items() if i < len(w)}
                )
                folder = Path(tmp) / a / str(i)
                inside, _ = kernel_then_judge(nb, replay, folder / "in", judged=False)
                _, outside = kernel_then_judge(nb, replay, folder / "out", calls)
                for g in sorted(stubbed):
                    total += 1
                    failed += outside[g] is not None
                    if (outside[g] is None) != (inside[g] is None):
                        differ.append((a, i, g, inside[g], outside[g]))
            print(f"{a}: {total} verdicts so far, {len(differ)} differ", flush=True)
    print(f"{total} verdicts of stubbed tests, {failed} failures, {len(differ)} differ")
    for a, i, g, inside, outside in differ:
        print(f"  {a} wrong answer {i}, {g}: in the kernel {inside!r}, out {outside!r}")
    return 1 if differ else 0


if __name__ == "__main__":  # (the test harness forks its runs from a fork server)
    sys.exit(main())
