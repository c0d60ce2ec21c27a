"""Forbidden attnkit calls are data: the solution cell lists them, the prompt says them, the guard
refuses them.

* every solution cell has ``{"attnkit": {"forbidden": [dotted paths]}}`` metadata, every path
  resolves, the released notebook keeps it, and the question's prompt has exactly the sentence
  :func:`attnkit.grading.cells.forbidden_sentence` writes from the list;
* for EVERY question of every chapter and EVERY listed function, the submission whose answer is a
  one-line call to that function fails every test cell of that question (0 points) with the guard's
  error naming the path, while the reference solutions pass every test (the hidden tests may call
  the references themselves). One subprocess per chapter runs the notebook's cells in a plain
  namespace with the guard's :class:`~attnkit.grading.sandbox.Tripwires` (the class the grader and
  the self-check install in the kernel), no kernel and no nbgrader run per submission;
* one real ``python -m attnkit.grading grade`` batch and one ``check`` (self-check) on ch06 prove
  the grader and the students' self-check refuse them too.
"""

from __future__ import annotations

import ast
import csv
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
# fake cell file names: what the guard's frame walk looks for
CELL_DIR = "/attnkit-forbidden-test-cells"
# other ways to reach a forbidden function, each refused as well:
# {assignment: (question, path, {name: answer})}
VARIANTS = {
    "ch06-lsh": (
        "q4",
        "attnkit.reversible.chunked_feed_forward",
        {
            "from-import-as": "from attnkit.reversible import chunked_feed_forward as f\n"
            "def ffn_hidden_chunks(x, W1, b1, W2, b2, chunk):\n"
            "    return f(x, lambda p: torch.relu(p @ W1 + b1) @ W2 + b2, chunk)",
            "getattr": "def ffn_hidden_chunks(x, W1, b1, W2, b2, chunk):\n"
            "    return getattr(attnkit.reversible, 'chunked_feed_forward')(\n"
            "        x, lambda p: torch.relu(p @ W1 + b1) @ W2 + b2, chunk)",
            "import_module": "import importlib\ndef ffn_hidden_chunks(x, W1, b1, W2, b2, chunk):\n"
            "    return importlib.import_module('attnkit.reversible').chunked_feed_forward(\n"
            "        x, lambda p: torch.relu(p @ W1 + b1) @ W2 + b2, chunk)",
            "module-alias": "import attnkit.reversible as R\n"
            "def ffn_hidden_chunks(x, W1, b1, W2, b2, chunk):\n"
            "    return R.chunked_feed_forward(\n"
            "        x, lambda p: torch.relu(p @ W1 + b1) @ W2 + b2, chunk)",
            "top-level-alias": "ffn_hidden_chunks = lambda x, W1, b1, W2, b2, chunk: "
            "attnkit.reversible.chunked_feed_forward(\n"
            "    x, lambda p: torch.relu(p @ W1 + b1) @ W2 + b2, chunk)",
            "partial": "import functools\n"
            "_f = functools.partial(attnkit.reversible.chunked_feed_forward)\n"
            "def ffn_hidden_chunks(x, W1, b1, W2, b2, chunk):\n"
            "    return _f(x, lambda p: torch.relu(p @ W1 + b1) @ W2 + b2, chunk)",
            "copied-code": "import types\n_f = attnkit.reversible.chunked_feed_forward\n"
            "_g = types.FunctionType(_f.__code__, _f.__globals__)\n"
            "def ffn_hidden_chunks(x, W1, b1, W2, b2, chunk):\n"
            "    return _g(x, lambda p: torch.relu(p @ W1 + b1) @ W2 + b2, chunk)",
        },
    ),
    "ch08-performer": (
        "q4",
        "attnkit.random_features.PerformerAttention",
        {
            "subclass": "class _P(attnkit.random_features.PerformerAttention):\n    pass\n"
            "def causal_favor(q, k, v, omega):\n    return _P(n_features=omega.shape[0])(q, k, v)",
        },
    ),
}


def _module_part(path: str) -> str:
    import importlib

    parts = path.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            importlib.import_module(".".join(parts[:i]))
            return ".".join(parts[:i])
        except ImportError:
            continue
    raise ImportError(path)


def one_liner(solution: str, path: str) -> str:
    """The solution cell with every function it defines replaced by a one-line call to ``path``."""
    names = [n.name for n in ast.parse(solution).body if isinstance(n, ast.FunctionDef)]
    defs = "".join(
        f"def {n}(*args, **kwargs):\n    return {path}(*args, **kwargs)\n\n\n"
        for n in names
    )
    return f"import attnkit\nimport {_module_part(path)}\n\n\n{defs}"


# ------------------------------------------------------- the worker (one subprocess per chapter)


def _worker(assignment: str) -> dict:
    os.environ.update(ATTNKIT_SELF_CHECK="1", MPLBACKEND="Agg")
    import nbformat

    from attnkit.grading.cells import (
        answer_names,
        forbidden_names,
        is_test_cell,
        nbgrader_meta,
        question_of,
    )
    from attnkit.grading.sandbox import Tripwires

    nb = nbformat.read(SOLUTIONS / assignment / f"{assignment}.ipynb", as_version=4)
    forbid, answers = forbidden_names(nb), answer_names(nb)
    cells = [
        (f"{CELL_DIR}/cell{i}.py", c)
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and "self_check(" not in c.source
    ]
    tests = [
        {
            "grade_id": nbgrader_meta(c)["grade_id"],
            "source": c.source,
            "forbidden": forbid[question_of(nbgrader_meta(c)["grade_id"])],
            "answers": answers[question_of(nbgrader_meta(c)["grade_id"])],
        }
        for _, c in cells
        if is_test_cell(c)
    ]
    by_file = {
        f: t for (f, c), t in zip([fc for fc in cells if is_test_cell(fc[1])], tests)
    }
    events: list[dict] = []
    ns: dict = {"__name__": "__main__"}
    wires = Tripwires(
        tests,
        CELL_DIR,
        lambda kind, **info: events.append({"kind": kind, **info}),
        lambda: ns,
    )

    def run(fname, source):
        try:
            wires.enter(fname, by_file.get(fname))
            exec(compile(source, fname, "exec"), ns)
            return None
        except BaseException as exc:  # noqa: BLE001  (a test cell's outcome)
            return [type(exc).__name__, str(exc)[:300]]

    solution_file = {
        nbgrader_meta(c)["grade_id"]: f
        for f, c in cells
        if nbgrader_meta(c).get("solution")
    }
    test_cells = {
        q: [
            (f, c)
            for f, c in cells
            if is_test_cell(c) and question_of(nbgrader_meta(c)["grade_id"]) == q
        ]
        for q in forbid
    }
    out = {"broken": wires.broken, "reference": {}, "submissions": {}}
    for f, c in cells:  # the reference solutions, every cell in order
        outcome = run(f, c.source)
        if is_test_cell(c) or outcome:
            out["reference"][nbgrader_meta(c).get("grade_id", f)] = outcome
    snapshot = dict(ns)
    submissions = [
        (
            q,
            path,
            one_liner(next(c.source for f, c in cells if f == solution_file[q]), path),
        )
        for q, paths in forbid.items()
        for path in paths
    ]
    q_var, _, variants = VARIANTS.get(assignment, (None, None, {}))
    submissions += [(q_var, f"variant:{name}", src) for name, src in variants.items()]
    for q, label, source in submissions:
        ns.clear()
        ns.update(snapshot)
        del events[:]
        defined = run(solution_file[q], source)
        outcomes = {
            nbgrader_meta(c)["grade_id"]: run(f, c.source) for f, c in test_cells[q]
        }
        out["submissions"][f"{q} {label}"] = {
            "defined": defined,
            "tests": outcomes,
            "events": list(events),
        }
    return out


# ---------------------------------------------------------------- the tests

import re  # noqa: E402

import nbformat  # noqa: E402
import pytest  # noqa: E402

from attnkit.grading.cells import forbidden_names, forbidden_sentence, nbgrader_meta  # noqa: E402

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


def _run_worker(a: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, __file__, a],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert "RESULT " in proc.stdout, proc.stdout[-2000:] + proc.stderr[-3000:]
    return json.loads(proc.stdout.split("RESULT ", 1)[1])


@pytest.fixture(scope="module")
def workers():
    with ThreadPoolExecutor(2) as pool:
        return dict(zip(ASSIGNMENTS, pool.map(_run_worker, ASSIGNMENTS)))


@pytest.mark.parametrize("a", ASSIGNMENTS)
def test_one_line_calls_to_every_forbidden_function_score_zero(workers, a):
    r = workers[a]
    assert r["broken"] == []
    assert r["reference"] and not any(r["reference"].values()), (
        f"the reference solutions fail: {r['reference']}"
    )
    expected = {
        f"{q} {p}"
        for q, ps in forbidden_names(_read("solutions", a)).items()
        for p in ps
    }
    expected |= {
        f"{VARIANTS[a][0]} variant:{v}" for v in VARIANTS.get(a, (None, None, {}))[2]
    }
    assert set(r["submissions"]) == expected
    for label, sub in r["submissions"].items():
        q, path = label.split(" ", 1)
        path = VARIANTS[a][1] if path.startswith("variant:") else path
        assert sub["defined"] is None, (
            label,
            sub["defined"],
        )  # the answer cell itself runs
        assert sub["tests"], label
        for gid, outcome in sub[
            "tests"
        ].items():  # every test cell of the question fails: 0 points
            assert (
                outcome
                and outcome[0] == "GradingGuardError"
                and path in outcome[1]
                and q in outcome[1]
            ), (label, gid, outcome)
        assert {(e["grade_id"], e["name"]) for e in sub["events"]} == {
            (gid, path) for gid in sub["tests"]
        }


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
        and grades["aliases"] == points["q3"] + points["q4"]
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
    assert sum("passed  q" in line for line in lines) == 3, (
        proc.stdout
    )  # q1, q2, q3 visible
    assert "note:" not in proc.stdout, proc.stdout


if __name__ == "__main__":
    print("RESULT " + json.dumps(_worker(sys.argv[1])))
    sys.stdout.flush()
    os._exit(0)  # the tripwired process ends here
