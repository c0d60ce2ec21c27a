"""Forbidden attnkit calls are data: the solution cell lists them, the prompt says them, the guard
refuses them.

* every solution cell has ``{"attnkit": {"forbidden": [dotted paths]}}`` metadata, every path
  resolves, the released notebook keeps it, and the question's prompt has exactly the sentence
  :func:`attnkit.grading.cells.forbidden_sentence` writes from the list;
* for EVERY question of every chapter and EVERY listed function, the submission whose answer is a
  one-line call to that function fails every test cell of that question (0 points) with the
  guard's error naming the path: tried by the trial runner of tests/test_exercises.py (which runs
  each notebook once, under the guard's :class:`~attnkit.grading.sandbox.Tripwires`, and forks per
  answer), in ``test_one_line_calls_to_every_forbidden_function_score_zero`` there;
* one real ``python -m attnkit.grading grade`` batch and one ``check`` (self-check) on ch06 prove
  the grader and the students' self-check refuse them too.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from forbidden_cases import one_liner

from attnkit.grading.cells import forbidden_names, forbidden_sentence, nbgrader_meta

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"

ASSIGNMENTS = sorted(
    p.name for p in SOLUTIONS.iterdir() if p.is_dir() and p.name.startswith("ch")
)
SENTENCE = re.compile(r"do not call\s+(?:`[^`]+`(?:\s*(?:,|/|or|and)\s*)*)+\.", re.I)
pytestmark = pytest.mark.xdist_group("forbidden")


def _read(folder: str, a: str):
    return nbformat.read(ROOT / folder / a / f"{a}.ipynb", as_version=4)


@pytest.mark.parametrize("a", ASSIGNMENTS)
def test_every_solution_cell_lists_its_forbidden_calls_and_the_prompt_says_them(a):
    from attnkit.grading.sandbox import _targets, resolve

    nb = _read("solutions", a)
    prompt: list[str] = []
    seen = set()
    for i, cell in enumerate(nb.cells):
        if (
            cell.cell_type == "markdown" and i > 0
        ):  # cell 0 is the chapter's introduction
            prompt.append(cell.source)
        elif cell.cell_type == "code" and nbgrader_meta(cell).get("solution"):
            q = nbgrader_meta(cell)["grade_id"]
            meta = cell.metadata.get("attnkit", {})
            assert set(meta) == {"forbidden"} and isinstance(meta["forbidden"], list), (
                a,
                q,
                meta,
            )
            paths = meta["forbidden"]
            assert len(set(paths)) == len(paths), (a, q, paths)
            for path in paths:
                assert path.startswith("attnkit."), (a, q, path)
                assert _targets(resolve(path)), (
                    f"{a} {q}: {path} is not a function or class"
                )
            said = [
                " ".join(m.group(0).split())
                for text in prompt
                for m in SENTENCE.finditer(text)
            ]
            assert said == ([forbidden_sentence(paths)] if paths else []), (
                a,
                q,
                said,
                paths,
            )
            seen.add(q)
            prompt = []
    assert seen and seen == set(forbidden_names(nb))
    assert forbidden_names(_read("exercises", a)) == forbidden_names(nb), (
        "regenerate exercises/"
    )


def _course(tmp: Path, a: str) -> Path:
    course = tmp / "course"
    (course / "solutions").mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(SOLUTIONS / a, course / "solutions" / a)
    return course


def _submission(a: str, answers: dict[str, str]):
    """The released notebook with ``answers`` in their solution cells, the solutions elsewhere."""
    nb = _read("exercises", a)
    solutions = {
        nbgrader_meta(c).get("grade_id"): c.source
        for c in _read("solutions", a).cells
        if nbgrader_meta(c).get("solution")
    }
    for c in nb.cells:
        gid = nbgrader_meta(c).get("grade_id")
        if nbgrader_meta(c).get("solution"):
            c.source = answers.get(gid, solutions[gid])
    return nb


CH06 = "ch06-lsh"
CH06_SUBMISSIONS = {  # the other questions answered with the solutions: only these lose points
    "oneliner": {
        "q4": one_liner(
            "def ffn_hidden_chunks(x, W1, b1, W2, b2, chunk):\n    pass\n",
            "attnkit.reversible.chunked_feed_forward",
        )
    },
    "aliases": {
        "q2": "from attnkit.lsh import lsh_attention_naive as h\n"
        "def bucket_attention(x, v, buckets, causal=False):\n"
        "    L = x.shape[0]\n"
        "    b = buckets.reshape(1, 1, 1, L)\n"
        "    k = x / x.norm(dim=-1, keepdim=True)\n"
        "    return h(x[None, None], k[None, None], v[None, None], b, b, bucket_size=L,\n"
        "             causal=causal, not_self=True)[0][0, 0]",
        "q1": "candidate_rate = attnkit.hashing.hyperplane_collision_probability",
    },
}


def test_the_batch_grader_refuses_them(tmp_path):
    """One real ``python -m attnkit.grading grade`` run (nbgrader, the kernel guard) on ch06."""
    course = _course(tmp_path, CH06)
    folder = tmp_path / "handed-in"
    folder.mkdir()
    for student, answers in CH06_SUBMISSIONS.items():
        nbformat.write(_submission(CH06, answers), folder / f"{student}.ipynb")
    out = tmp_path / "grading"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "attnkit.grading",
            "grade",
            CH06,
            str(folder),
            "--course",
            str(course),
            "--out",
            str(out),
            "--jobs",
            "2",
            "--timeout",
            "60",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    manifest = json.loads((out / ".attnkit-grading" / "manifest.json").read_text())
    with open(out / "grades.csv") as f:
        grades = {r["student_id"]: float(r["score"]) for r in csv.DictReader(f)}

    def lost(student):
        return {
            g.split("_")[0]
            for g, (score, full) in manifest[student]["scores"].items()
            if score < full
        }

    points = {}
    for g, (_, full) in manifest["oneliner"]["scores"].items():
        points[g.split("_")[0]] = points.get(g.split("_")[0], 0) + full
    assert (
        lost("oneliner") == {"q4"}
        and grades["oneliner"] == sum(points.values()) - points["q4"]
    )
    assert (
        lost("aliases") == {"q1", "q2"}
        and grades["aliases"] == sum(points.values()) - points["q1"] - points["q2"]
    )
    assert any(
        "q4 calls attnkit.reversible.chunked_feed_forward" in p
        for p in manifest["oneliner"]["problems"]
    )
    assert any(
        "q2 calls attnkit.lsh.lsh_attention_naive" in p
        for p in manifest["aliases"]["problems"]
    )
    assert any(
        "q1 defines candidate_rate as attnkit.hashing.hyperplane_collision_probability"
        in p
        for p in manifest["aliases"]["problems"]
    )
    for student in ("oneliner", "aliases"):  # the feedback says why
        feedback = (out / "feedback" / student / CH06 / f"{CH06}.html").read_text()
        assert "may not use" in feedback


def test_the_self_check_refuses_them(tmp_path):
    path = tmp_path / f"{CH06}.ipynb"
    nbformat.write(_submission(CH06, CH06_SUBMISSIONS["oneliner"]), path)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "attnkit.grading", "check", str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    q4 = [line for line in lines if "q4_visible" in line][0]
    assert (
        "FAILED" in q4
        and "GradingGuardError" in q4
        and "attnkit.reversible.chunked_feed_forward" in q4
    ), proc.stdout
    visible = [line for line in lines if "_visible" in line]
    assert sum("passed  q" in line for line in lines) == len(visible) - 1, (
        proc.stdout
    )  # every visible test but q4's
    assert "note:" not in proc.stdout, proc.stdout
