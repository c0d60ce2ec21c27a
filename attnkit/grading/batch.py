"""Batch autograding behind ``python -m attnkit.grading grade`` (see book/instructor-guide.md).

Each student is autograded by plain ``nbgrader autograde`` + ``generate_feedback`` in a scratch
course of its own (``<out>/.attnkit-grading/students/<student>/``: a copy of the config and of a
template gradebook), in a process group with a memory limit, a wall-clock limit and the kernel
guard of :mod:`attnkit.grading.sandbox`. Only this process writes the course's gradebook: it
copies each finished student's scores into it (replacing that student's earlier submission,
never adding to it) and records the notebook's hash in a manifest, so a re-run grades only
what is new or unfinished.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from .cells import (
    HIDDEN,
    answer_names,
    forbidden_names,
    is_test_cell,
    nbgrader_meta,
    question_of,
)
from .feedback import feedback_args

WORK = ".attnkit-grading"
SUSPICIOUS = [  # (pattern in a solution cell, what it is): flagged for a human, never scored
    (
        r"\b(torch|np|numpy|attnkit|math|builtins|testing)\.[\w.]+\s*=[^=]",
        "replaces a library attribute",
    ),
    (r"\bsetattr\s*\(", "setattr"),
    (r"get_ipython|set_custom_exc|excepthook", "touches IPython"),
    (r"\b_exit\b|\babort\b|ctypes|faulthandler", "exits or crashes the kernel"),
    (r"\bsubprocess\b|os\.system|socket|urllib|requests", "processes or network"),
    (r"open\s*\(\s*['\"](/|\.\.)", "opens a file outside the submission"),
]


def _env(extra=None) -> dict:
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        **(extra or {}),
    }


def _nbgrader(*args, cwd, env=None, timeout=None, memory=None):
    """Run nbgrader in its own process group (killed whole on timeout); returns (rc, output)."""

    def limits():
        if memory:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    proc = subprocess.Popen(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=cwd,
        env=env or _env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=limits,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, rc = proc.communicate()[0] + f"\n[grader] stopped after {timeout} s", -9
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # a kernel left behind
    except ProcessLookupError:
        pass
    return rc, out


def student_id(name: str) -> str:
    """A file or folder name -> a gradebook id.

    Copy suffixes like " (1)" are dropped and odd characters replaced.
    """
    name = re.sub(r"\s*\(\d+\)$", "", name)
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_.") or "student"


def collect(folder: Path, assignment: str):
    """``{student: notebook path or None}`` and ``{student: [problems]}`` from either layout."""
    found: dict[str, list[Path]] = {}
    for entry in sorted(Path(folder).iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix == ".ipynb":
            found.setdefault(student_id(entry.stem), []).append(entry)
        elif entry.is_dir():
            nbs = sorted(
                p for p in entry.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
            )
            found.setdefault(student_id(entry.name), []).extend(nbs)
    expected = f"{assignment}.ipynb"
    chosen, problems = {}, {}
    for student, paths in found.items():
        notes = problems.setdefault(student, [])
        if not paths:
            chosen[student] = None
            notes.append("no notebook in the submission folder: 0 points")
            continue
        exact = [p for p in paths if p.name == expected]
        pick = max(exact or paths, key=lambda p: (p.stat().st_mtime, str(p)))
        if len(paths) > 1:
            notes.append(
                f"duplicate submission ({', '.join(p.name for p in paths)}): graded {pick.name}, "
                f"the {'one with the assignment name' if exact else 'newest'}; ignored the others"
            )
        if pick.parent != Path(folder) and pick.name != expected:
            notes.append(
                f"notebook named {pick.name}, expected {expected}: graded anyway"
            )
        chosen[student] = pick
    return chosen, problems


def _intake_notes(nb, release) -> list[str]:
    """Edited or deleted test cells and suspicious solution code.

    nbgrader restores edited tests.
    """
    notes = []
    mine = {
        nbgrader_meta(c).get("grade_id"): c
        for c in nb.cells
        if nbgrader_meta(c).get("grade_id")
    }
    for c in release.cells:
        gid = nbgrader_meta(c).get("grade_id")
        if not is_test_cell(c):
            continue
        if gid not in mine:
            notes.append(f"test cell {gid} was deleted: 0 points for it")
        elif mine[gid].source.strip() != c.source.strip() and HIDDEN not in c.source:
            notes.append(f"test cell {gid} was edited: graded with the original")
    for gid, c in mine.items():
        if nbgrader_meta(c).get("solution"):
            for pattern, what in SUSPICIOUS:
                if re.search(pattern, c.source):
                    notes.append(
                        f"cell {gid}: suspicious code ({what}), check it by hand"
                    )
    return notes


def _guard_notes(log: Path) -> list[str]:
    notes = []
    if not log.exists():
        return notes
    for line in log.read_text().splitlines():
        e = json.loads(line)
        where = f" in {e['grade_id']}" if e.get("grade_id") else ""
        if e["kind"] == "restored":
            notes.append(
                f"the grader put back {', '.join(e['names'][:5])} replaced by the submission{where}"
            )
        elif e["kind"] == "forbidden-call":
            q = question_of(e["grade_id"] or "q?")
            how = f"defines {e['answer']} as" if e.get("answer") else "calls"
            notes.append(
                f"{q} {how} {e['name']}, which {q} may not use "
                "(forbidden in its solution cell): no points"
            )
        elif e["kind"] == "forbidden-unresolved":
            notes.append(f"the grader could not enforce the forbidden call {e['name']}")
        elif e["kind"] == "output-cut":
            notes.append(f"output cut at {e['cap']} characters in a cell")
        elif e["kind"] == "denied":
            notes.append(f"refused: {e['what']} {e.get('path', '')}".strip())
    return list(dict.fromkeys(notes))


def _grade_one(
    student,
    nb_path,
    notes,
    *,
    assignment,
    out,
    work,
    template,
    tests,
    deny,
    timeout,
    memory,
    max_output,
    threads,
    feedback="hidden",
):
    """Autograde one student in a scratch course; returns {student, ok, scores, problems}."""
    result = {"student": student, "ok": False, "scores": {}, "problems": list(notes)}
    if nb_path is None:
        return result
    scratch = work / "students" / student
    shutil.rmtree(scratch, ignore_errors=True)
    (scratch / "submitted" / student / assignment).mkdir(parents=True)
    shutil.copy(out / "nbgrader_config.py", scratch)
    shutil.copy(template / "gradebook.db", scratch)
    shutil.copy(
        nb_path, scratch / "submitted" / student / assignment / f"{assignment}.ipynb"
    )
    tmp, startup = scratch / "tmp", scratch / "ipython" / "profile_default" / "startup"
    tmp.mkdir()
    startup.mkdir(parents=True)
    cwd = scratch / "autograded" / student / assignment
    cfg = {
        "log": str(scratch / "guard.log"),
        "allow_write": [str(cwd), str(tmp)],
        "deny_read": deny + [str(scratch)],
        "tests": tests,
        "max_output": max_output,
    }
    (scratch / "guard.json").write_text(json.dumps(cfg))
    (startup / "00-attnkit-guard.py").write_text(
        "import attnkit.grading.sandbox as _g\n"
        f"_g.install({str(scratch / 'guard.json')!r})\n"
        "del _g\n"
    )
    (startup.parent / "ipython_kernel_config.py").write_text(
        "c.HistoryManager.enabled = False\n"
    )
    env = _env(
        {
            "IPYTHONDIR": str(scratch / "ipython"),
            "ATTNKIT_GRADING": "1",
            "TMPDIR": str(tmp),
            "MPLCONFIGDIR": str(tmp),
            "MPLBACKEND": "Agg",
            "PYTHONDONTWRITEBYTECODE": "1",
            "OMP_NUM_THREADS": str(threads),
        }
    )
    rc, log = _nbgrader(
        "autograde",
        assignment,
        "--student",
        student,
        "--force",
        f"--Execute.timeout={timeout}",
        cwd=scratch,
        env=env,
        timeout=timeout * (len(tests) + 10),
        memory=memory,
    )
    result["problems"] += _guard_notes(scratch / "guard.log")
    graded = cwd / f"{assignment}.ipynb"
    if rc != 0 or not graded.exists():
        why = (
            "the kernel died"
            if "DeadKernel" in log or "UnresponsiveKernel" in log
            else "grading failed"
        )
        result["problems"].append(
            f"{why} (os._exit, a crash, or over the time/memory limit): 0 points; "
            f"nbgrader said: {log.strip().splitlines()[-1][:200] if log.strip() else rc}"
        )
        return result
    import nbformat
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{scratch / 'gradebook.db'}") as gb:
        sub = gb.find_submission_notebook(assignment, assignment, student)
        result["scores"] = {
            g.name: (float(g.auto_score or 0.0), float(g.max_score)) for g in sub.grades
        }
    if result["problems"]:  # the student reads the notes at the top of the feedback
        nb = nbformat.read(graded, as_version=4)
        nb.cells.insert(
            0,
            nbformat.v4.new_markdown_cell(
                "**Grading notes**\n\n"
                + "\n".join(f"* {p}" for p in result["problems"])
            ),
        )
        nbformat.write(nb, graded)
    _nbgrader(
        "generate_feedback",
        assignment,
        "--student",
        student,
        "--force",
        *feedback_args(feedback),  # hidden tests stay hidden unless "full"
        cwd=scratch,
        env=env,
        timeout=300,
    )
    result["ok"] = True
    return result


def _record(out: Path, assignment: str, r: dict, work: Path) -> None:
    """Put one student's result into the course: gradebook (replacing), autograded/, feedback/."""
    from nbgrader.api import Gradebook, MissingEntry

    student = r["student"]
    db = f"sqlite:///{out / 'gradebook.db'}"
    warnings.filterwarnings(
        "ignore", message=".*not in session.*"
    )  # nbgrader's add_submission, harmless
    with Gradebook(db) as gb:
        gb.update_or_create_student(student)
        try:
            gb.remove_submission(
                assignment, student
            )  # replace, never add to, an earlier grading
        except MissingEntry:
            pass
    if r["ok"]:
        with Gradebook(db) as gb:
            gb.add_submission(assignment, student)
            for name, (score, _) in r["scores"].items():
                grade = gb.find_grade(name, assignment, assignment, student)
                grade.auto_score = min(
                    max(score, 0.0), grade.max_score
                )  # a scratch gradebook is not trusted
                grade.needs_manual_grade = False
            gb.db.commit()
    for part in ("autograded", "feedback"):
        dest = out / part / student / assignment
        shutil.rmtree(dest, ignore_errors=True)
        src = work / "students" / student / part / student / assignment
        if r["ok"] and src.exists():
            shutil.copytree(src, dest)
        elif part == "feedback":
            dest.mkdir(parents=True)
            items = "".join(f"<li>{p}</li>" for p in r["problems"])
            (dest / f"{assignment}.html").write_text(
                f"<h1>{assignment}: 0 points</h1><ul>{items}</ul>\n"
            )


def grade(
    assignment,
    submissions,
    *,
    course=".",
    out=None,
    jobs=2,
    timeout=60,
    memory_gib=4.0,
    max_output=100_000,
    feedback="hidden",
) -> int:
    import nbformat
    from tqdm import tqdm

    course = Path(course).resolve()
    out = Path(out).resolve() if out else course
    submissions = Path(submissions).resolve()
    source = course / "solutions" / assignment
    if not (course / "nbgrader_config.py").exists() or not source.is_dir():
        print(
            f"{course} is not a course root with solutions/{assignment}/",
            file=sys.stderr,
        )
        return 2
    chosen, problems = (
        collect(submissions, assignment) if submissions.is_dir() else ({}, {})
    )
    if not chosen:
        print(f"no submissions found in {submissions}: nothing graded", file=sys.stderr)
        return 2
    work = out / WORK
    template = work / "template"
    if out != course:
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(course / "nbgrader_config.py", out)
        shutil.copytree(source, out / "solutions" / assignment, dirs_exist_ok=True)
    if not (
        template / "gradebook.db"
    ).exists():  # the assignment's cells and checksums, once
        shutil.rmtree(template, ignore_errors=True)
        shutil.copytree(source, template / "solutions" / assignment)
        shutil.copy(course / "nbgrader_config.py", template)
        rc, log = _nbgrader("generate_assignment", assignment, "--force", cwd=template)
        if rc:
            print(log, file=sys.stderr)
            return 2
    if not (out / "gradebook.db").exists():
        shutil.copy(template / "gradebook.db", out / "gradebook.db")
    release = nbformat.read(
        template / "exercises" / assignment / f"{assignment}.ipynb", as_version=4
    )
    src_nb = nbformat.read(source / f"{assignment}.ipynb", as_version=4)
    forbid, answers = (
        forbidden_names(src_nb),
        answer_names(src_nb),
    )  # solutions/: not editable
    tests = [
        {
            "grade_id": nbgrader_meta(c)["grade_id"],
            "source": c.source,
            "forbidden": forbid.get(question_of(nbgrader_meta(c)["grade_id"]), []),
            "answers": answers.get(question_of(nbgrader_meta(c)["grade_id"]), []),
        }
        for c in src_nb.cells
        if is_test_cell(c)
    ]
    shas = {}
    for student, path in list(chosen.items()):
        if path is None:
            continue
        data = path.read_bytes()
        shas[student] = hashlib.sha256(data).hexdigest()
        try:
            nb = nbformat.reads(data.decode("utf-8"), as_version=4)
            nbformat.validate(nb)
        except Exception as exc:  # malformed JSON, not a notebook, bad encoding
            problems[student].append(
                f"not a readable notebook ({type(exc).__name__}: {str(exc)[:120]}): 0 points"
            )
            chosen[student] = None
            continue
        problems[student] += _intake_notes(nb, release)
        dest = out / "submitted" / student / assignment / f"{assignment}.ipynb"
        if dest.resolve() != path.resolve():
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
    manifest_path = work / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    todo = [s for s in chosen if manifest.get(s, {}).get("sha") != shas.get(s, "none")]
    # the instructor's state, not the whole course root: that may hold .venv and attnkit itself
    private = (
        "solutions",
        "source",
        "submitted",
        "autograded",
        "feedback",
        "gradebook.db",
        "grades.csv",
        "nbgrader_config.py",
        WORK,
    )
    deny = sorted(
        {str(root / p) for root in (course, out) for p in private} | {str(submissions)}
    )
    common = dict(
        assignment=assignment,
        out=out,
        work=work,
        template=template,
        tests=tests,
        deny=deny,
        timeout=timeout,
        memory=int(memory_gib * 2**30),
        max_output=max_output,
        threads=1 if jobs > 1 else 2,
        feedback=feedback,
    )
    print(
        f"{assignment}: {len(chosen)} submissions, {len(chosen) - len(todo)} already graded, "
        f"grading {len(todo)} with {jobs} jobs"
    )
    with (
        ThreadPoolExecutor(max(1, jobs)) as pool,
        tqdm(total=len(todo), unit="student") as bar,
    ):
        futures = [
            pool.submit(_grade_one, s, chosen[s], problems[s], **common) for s in todo
        ]
        for future in as_completed(futures):
            r = future.result()
            _record(out, assignment, r, work)
            manifest[r["student"]] = {
                "sha": shas.get(r["student"], "none"),
                "ok": r["ok"],
                "scores": r["scores"],
                "problems": r["problems"],
            }
            manifest_path.write_text(
                json.dumps(manifest, indent=1)
            )  # after the gradebook: a crash re-grades
            bar.update()
    _nbgrader("export", "--to", str(out / "grades.csv"), cwd=out)
    return _summary(out, assignment, {s: manifest[s] for s in chosen})


def _summary(out: Path, assignment: str, rows: dict) -> int:
    full = max(
        (sum(m for _, m in r["scores"].values()) for r in rows.values() if r["scores"]),
        default=0,
    )
    with open(out / f"summary-{assignment}.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", "score", "max_score", "problems"])
        print(f"\n{'student':<24} {'score':>7}  problems")
        for s, r in sorted(rows.items()):
            score = sum(v for v, _ in r["scores"].values())
            w.writerow([s, f"{score:g}", f"{full:g}", " | ".join(r["problems"])])
            print(f"{s:<24} {score:>4g}/{full:g}  {'; '.join(r['problems']) or '-'}")
    print(
        f"\ngrades: {out / 'grades.csv'}  "
        f"summary: {out / f'summary-{assignment}.csv'}  "
        f"feedback: {out / 'feedback'}"
    )
    return 0
