"""Batch autograding behind ``python -m attnkit.grading grade`` (see book/instructor-guide.md).

Each student is autograded by plain ``nbgrader autograde`` + ``generate_feedback`` in a scratch
course of its own (``<out>/.attnkit-grading/students/<student>/``: a copy of the config and of a
template gradebook), in a process group with a memory limit, a wall-clock limit, a disk quota
(:mod:`attnkit.grading.quota`) and the kernel guard of :mod:`attnkit.grading.sandbox`. Only
this process writes the course's gradebook: it copies each finished student's scores into it
(replacing that student's earlier submission, never adding to it) and records the notebook's
hash in a manifest, so a re-run grades only what is new or unfinished.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import html
import json
import os
import re
import resource
import secrets
import shutil
import stat
import subprocess
import sys
import time
import unicodedata
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
from .quota import DISK_BYTES, DiskQuota, kill_tree, remove

WORK = ".attnkit-grading"
MAX_NOTEBOOK = (
    20 * 2**20
)  # bytes: a notebook with its outputs is a few MB; larger is not read
MAX_LOG = 2**20  # bytes of the guard's log read
MAX_FOLDERS = 200  # folders walked in one student's submission
JUNK = {".ipynb_checkpoints", ".DS_Store", ".git", "__MACOSX", "Thumbs.db", WORK}
FILE_BYTES = 2**30  # largest file a student may write
# attnkit.grading.steps prints "attnkit-steps: <step> <seconds>" after each step
STEPS = "attnkit-steps:"
STEPS_SCRIPT = Path(__file__).with_name("steps.py")  # run by path: no torch import
JUDGE_SCRIPT = Path(__file__).with_name("judge.py")  # the trusted replay (replay.py)
# the template gradebook with the hidden tests stubbed (rehearsal), the one students get
KERNEL_DB = "kernel.db"
MAX_RECORD = 512 * 2**20  # bytes of a student's recording the judge is given
MAX_RECORD_FILES = 20_000
STEPS_NO_FEEDBACK = 3  # its exit status when autograde worked and feedback did not
FEEDBACK_SECONDS = 300  # the feedback step's share of a student's wall-clock limit
MAX_FEEDBACK = 64 * 2**20  # bytes of a feedback page the grader reads to add its notes
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


def _nbgrader(
    *args,
    cwd,
    env=None,
    timeout=None,
    memory=None,
    sandbox=None,
    nproc=False,
    quota=None,
    script=None,
):
    """Run ``python -m nbgrader <args>`` (or ``python <script> <args>``: the file of
    :mod:`attnkit.grading.steps`, run by its path so that attnkit and torch are not imported)
    in its own process group (killed whole on timeout); returns (rc, output).

    ``sandbox``: ``{"writable", "private", "uid"}`` runs it under bubblewrap
    (:func:`attnkit.grading.bwrap.wrap`), with ``RLIMIT_NPROC`` as well (``nproc``: that
    limit alone, for a sandbox started later, the kernel's). ``quota``: a
    :class:`attnkit.grading.quota.DiskQuota` watching the student's scratch course while it
    runs; with it, no file may grow past ``RLIMIT_FSIZE`` (``FILE_BYTES``).
    """
    argv = [sys.executable, *([str(script)] if script else ["-m", "nbgrader"]), *args]
    from .bwrap import NPROC

    if sandbox is not None:
        from .bwrap import wrap

        argv = wrap(argv, cwd=cwd, **sandbox)

    def limits():
        if memory:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        if sandbox is not None or nproc:
            resource.setrlimit(resource.RLIMIT_NPROC, (NPROC, NPROC))
        if quota is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_BYTES, FILE_BYTES))

    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env or _env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
        preexec_fn=limits,
    )
    watch = quota.watch(proc.pid) if quota else contextlib.nullcontext()
    try:
        with watch:
            out, _ = proc.communicate(timeout=timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        kill_tree(proc.pid)
        out, rc = proc.communicate()[0] + f"\n[grader] stopped after {timeout} s", -9
    kill_tree(proc.pid)  # a kernel left behind, in a session of its own
    return rc, out


def student_id(name: str) -> str:
    """A file or folder name -> a gradebook id: ASCII letters, digits, ``_ . -``.

    Copy suffixes like " (1)" are dropped; accents are dropped (``María`` -> ``Maria``); a
    character with no ASCII form (CJK, a zero-width space) becomes its code point (``_u738b_``),
    so different names stay different; an id never starts with ``-`` or ``.`` (an option, a
    hidden file). Names that still collide are told apart by :func:`collect`.
    """
    name = re.sub(r"\s*\(\d+\)$", "", unicodedata.normalize("NFC", name))
    out = []
    for ch in name:
        if ch.isascii():
            out.append(ch if ch.isalnum() or ch in "_.-" else "_")
            continue
        plain = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
        plain = re.sub(r"[^A-Za-z0-9]", "", plain)
        out.append(plain or f"_u{ord(ch):04x}_")
    sid = re.sub(r"_{2,}", "_", "".join(out)).strip("_.-")
    return sid or "student"


def _special(path: Path, inside: Path) -> str | None:
    """Why the grader will not read ``path`` (a FIFO, a device, a link out of ``inside``), or
    None for a plain file or folder. Never opens it."""
    try:
        mode = os.lstat(path).st_mode
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    if stat.S_ISLNK(mode):
        real = os.path.realpath(path)
        if not (real + os.sep).startswith(os.path.realpath(inside) + os.sep):
            return "a link out of the submission"
        try:
            mode = os.stat(path).st_mode
        except OSError:
            return "a broken link"
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a plain file"


def _notebooks(entry: Path, notes: list[str], folder: Path) -> list[Path]:
    """The notebooks in a student's folder (no link followed out of it, special files refused)."""
    found = []
    for n, (root, dirs, files) in enumerate(os.walk(entry)):
        dirs[:] = sorted(d for d in dirs if d not in JUNK)
        if n > MAX_FOLDERS:
            notes.append(f"more than {MAX_FOLDERS} folders: looked no further")
            break
        for name in sorted(files):
            path = Path(root) / name
            why = _special(path, entry)
            if why and (
                name.endswith(".ipynb") or why != "a link out of the submission"
            ):
                notes.append(f"refused {path.relative_to(folder)}: {why}")
            elif not why and name.endswith(".ipynb"):
                found.append(path)
    return found


def collect(folder: Path, assignment: str, files: dict | None = None):
    """``{student: notebook path or None}`` and ``{student: [problems]}`` from either layout.

    ``files`` (when given) is filled with ``{student or "(not a submission)": [what was
    given]}``: every entry of the folder, so the summary can list each one.
    """
    folder = Path(folder)
    files = {} if files is None else files
    entries: dict[str, list] = {}  # id -> [(base name, entry, notebooks, notes)]
    for entry in sorted(folder.iterdir()):
        name = entry.name
        if name in JUNK or name.startswith("._"):  # editors' and archivers' leftovers
            files.setdefault("(not a submission)", []).append(f"{name} (ignored)")
            continue
        notes: list[str] = []
        why = _special(entry, folder)
        if why:
            base, nbs = Path(name).stem if name.endswith(".ipynb") else name, []
            notes.append(f"refused {name}: {why}: 0 points")
        elif entry.is_dir():
            base, nbs = name, _notebooks(entry, notes, folder)
        elif name.endswith(".ipynb"):
            base, nbs = name[: -len(".ipynb")], [entry]
        else:
            files.setdefault("(not a submission)", []).append(
                f"{name} (not a notebook)"
            )
            continue
        base = re.sub(r"\s*\(\d+\)$", "", unicodedata.normalize("NFC", base))
        entries.setdefault(student_id(base), []).append((base, entry, nbs, notes))
    found: dict[str, list[Path]] = {}
    problems: dict[str, list[str]] = {}
    for sid, group in entries.items():
        bases = sorted({b for b, *_ in group})
        for base, entry, nbs, notes in group:
            student = sid
            if (
                len(bases) > 1 and base != sid
            ):  # stable: the id depends on the name only
                student = f"{sid}-{hashlib.sha256(base.encode()).hexdigest()[:6]}"
                notes.append(
                    f"the names {' and '.join(repr(b) for b in bases)} both become the id "
                    f"{sid}: {base!r} graded as {student}"
                )
            found.setdefault(student, []).extend(nbs)
            problems.setdefault(student, []).extend(notes)
            files.setdefault(student, []).append(entry.name)
    expected = f"{assignment}.ipynb"
    chosen = {}
    for student, paths in found.items():
        notes = problems[student]
        if not paths:
            chosen[student] = None
            if not any(n.startswith("refused") and "0 points" in n for n in notes):
                notes.append("no notebook in the submission folder: 0 points")
            continue
        exact = [p for p in paths if p.name == expected]
        pick = max(exact or paths, key=lambda p: (p.lstat().st_mtime, str(p)))
        if len(paths) > 1:
            notes.append(
                f"duplicate submission ({', '.join(p.name for p in paths)}): graded {pick.name}, "
                f"the {'one with the assignment name' if exact else 'newest'}; ignored the others"
            )
        if pick.parent != folder and pick.name != expected:
            notes.append(
                f"notebook named {pick.name}, expected {expected}: graded anyway"
            )
        chosen[student] = pick
    return chosen, problems


def _read_submission(path: Path):
    """``(notebook, raw bytes, None)`` or ``(None, raw bytes or None, why it is refused)``."""
    size = os.lstat(path).st_size
    if size > MAX_NOTEBOOK:
        return (
            None,
            None,
            (
                f"the notebook is {size / 2**20:.0f} MiB, over the {MAX_NOTEBOOK / 2**20:.0f} MiB "
                "limit (clear the outputs and resubmit): not read, 0 points"
            ),
        )
    with open(path, "rb") as f:
        data = f.read(MAX_NOTEBOOK + 1)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, data, "not a notebook: binary data, not UTF-8 JSON text: 0 points"
    try:
        raw = json.loads(text)
    except ValueError as exc:
        return None, data, f"not a readable notebook (broken JSON: {exc}): 0 points"
    if not isinstance(raw, dict) or "cells" not in raw and "worksheets" not in raw:
        return None, data, "not a notebook: JSON without cells: 0 points"
    if raw.get("nbformat") != 4:
        return (
            None,
            data,
            (
                f"nbformat {raw.get('nbformat')!r} notebook (the release is nbformat 4): open it "
                "in Jupyter, save it, and resubmit: 0 points"
            ),
        )
    import nbformat

    try:
        nb = nbformat.reads(text, as_version=4)  # joins list-of-lines sources, as saved
        nbformat.validate(nb)
    except Exception as exc:  # noqa: BLE001  (any defect of the file is a note)
        return (
            None,
            data,
            (
                f"not a readable notebook ({type(exc).__name__}: {str(exc)[:120]}): 0 points"
            ),
        )
    return nb, data, None


def _clean(nb) -> list[str]:
    """Old nbgrader metadata upgraded, copied cells (same grade_id) reduced to one: notes."""
    from nbgrader.nbgraderformat import MetadataValidator

    notes = []
    if any(
        nbgrader_meta(c).get("schema_version", 0) != 3
        for c in nb.cells
        if nbgrader_meta(c)
    ):
        try:
            MetadataValidator().upgrade_notebook_metadata(nb)
            notes.append(
                "old nbgrader metadata in the notebook: upgraded, graded as usual"
            )
        except Exception as exc:  # noqa: BLE001
            notes.append(
                f"nbgrader metadata could not be upgraded ({exc}): check by hand"
            )
    by_id: dict[str, list] = {}
    for c in nb.cells:
        if nbgrader_meta(c).get("grade_id"):
            by_id.setdefault(nbgrader_meta(c)["grade_id"], []).append(c)
    for gid, cells in by_id.items():
        if (
            len(cells) > 1
        ):  # Jupyter copies a cell with its metadata: keep the last one graded
            for c in cells[:-1]:
                del c.metadata["nbgrader"]
            notes.append(
                f"cell {gid} appears {len(cells)} times (a copied cell): graded the last one"
            )
    return notes


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
    """Notes from the guard's log, read defensively: a malformed line is a note, never a crash."""
    why = _special(log, log.parent) if os.path.lexists(log) else None
    if not os.path.lexists(log):
        return []
    if why or not log.is_file():
        return [
            f"the guard's log was replaced ({why or 'a folder'}): not read, check by hand"
        ]
    with open(log, "rb") as f:
        data = f.read(MAX_LOG)
    notes, bad, installed = [], 0, False
    for line in data.decode("utf-8", "replace").splitlines():
        try:
            e = json.loads(line)
            if not isinstance(e, dict):
                raise ValueError
            kind, gid = str(e.get("kind")), e.get("grade_id")
            where = f" in {gid}" if gid else ""
            if kind == "installed":
                installed = True
            elif kind == "restored":
                names = [str(n) for n in list(e.get("names") or [])[:5]]
                notes.append(
                    f"the grader put back {', '.join(names)} replaced by the submission{where}"
                )
            elif kind == "forbidden-call" and str(e.get("name")).startswith("the test"):
                q = question_of(str(gid or "q?"))
                notes.append(f"{q} calls {e.get('name')}: no points")
            elif kind == "forbidden-call":
                q = question_of(str(gid or "q?"))
                how = f"defines {e['answer']} as" if e.get("answer") else "calls"
                notes.append(
                    f"{q} {how} {e.get('name')}, which {q} may not use "
                    "(forbidden in its solution cell): no points"
                )
            elif kind == "forbidden-unresolved":
                notes.append(
                    f"the grader could not enforce the forbidden call {e.get('name')}"
                )
            elif kind == "guard-broken":
                notes.append(
                    f"the guard could not tell the tests' cells apart ({e.get('why')}): "
                    "check by hand"
                )
            elif kind == "record-failed":
                notes.append(
                    "the grader could not record the answers' results in a cell "
                    "(the replay has none for it)"
                )
            elif kind == "output-cut":
                notes.append(f"output cut at {e.get('cap')} characters in a cell")
            elif kind == "denied":
                notes.append(f"refused: {e.get('what')} {e.get('path', '')}".strip())
        except (ValueError, TypeError, KeyError, AttributeError):
            bad += 1
    if bad:
        notes.append(
            f"{bad} malformed line(s) in the guard's log: ignored, check by hand"
        )
    if len(data) >= MAX_LOG:
        notes.append(f"the guard's log is over {MAX_LOG} bytes: read no further")
    elif not installed:  # its first line, written before any of the student's code ran
        notes.append(
            "the guard's log does not say the guard started in the kernel "
            "(or the submission emptied it): check by hand"
        )
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
    sandbox=None,
    disk=DISK_BYTES,
    replay=None,
    judge_root=None,
    calls=None,
):
    """Autograde one student in a scratch course; returns {student, ok, scores, problems}.

    ``sandbox``: None (the in-process guard only) or the directories bubblewrap hides.
    ``replay``: :func:`attnkit.grading.replay.plan` of the instructor's notebook (None: no
    trusted judge). ``judge_root``: where the judges' folders go (one judge server per
    process and root; default ``<work>/judge``). ``calls``: the rehearsed calls of the
    stubbed hidden tests (``calls.pt``'s bytes, :func:`rehearsal`).
    """
    if sandbox is None:
        slot = contextlib.nullcontext()
    else:
        from .bwrap import Slot

        slot = Slot()  # a per-sandbox uid, held while this student is graded
    with slot as held:
        return _grade_one_in(
            student,
            nb_path,
            notes,
            assignment=assignment,
            out=out,
            work=work,
            template=template,
            tests=tests,
            deny=deny,
            timeout=timeout,
            memory=memory,
            max_output=max_output,
            threads=threads,
            feedback=feedback,
            sandbox=None if sandbox is None else {"private": sandbox, "uid": held.uid},
            disk=disk,
            replay=replay,
            judge_root=judge_root,
            calls=calls,
        )


def _regular(path: Path, inside: Path) -> bool:
    """A plain file really inside ``inside`` (no symlink anywhere): safe for the grader to use."""
    rel = os.path.relpath(path, inside)
    return (
        not rel.startswith(os.pardir)
        and os.path.realpath(path) == os.path.join(os.path.realpath(inside), rel)
        and path.is_file()
        and not path.is_symlink()
    )


def _grade_one_in(
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
    sandbox,
    disk=DISK_BYTES,
    replay=None,
    judge_root=None,
    calls=None,
):
    result = {"student": student, "ok": False, "scores": {}, "problems": list(notes)}
    if nb_path is None:
        return result
    # wall-clock seconds per stage, kept in the manifest (the instructor guide's throughput)
    seconds = result["seconds"] = {}
    start = time.monotonic()
    scratch = work / "students" / student
    shutil.rmtree(scratch, ignore_errors=True)
    (scratch / "submitted" / student / assignment).mkdir(parents=True)
    shutil.copy(out / "nbgrader_config.py", scratch)
    # the stubbed gradebook where there is one: the hidden tests' source never reaches the kernel
    kernel_db = template / KERNEL_DB
    shutil.copy(
        kernel_db if calls is not None else template / "gradebook.db",
        scratch / "gradebook.db",
    )
    shutil.copy(
        nb_path, scratch / "submitted" / student / assignment / f"{assignment}.ipynb"
    )
    cwd = scratch / "autograded" / student / assignment
    # what the kernel may see: scratch/box (under bubblewrap, nothing else of the scratch course)
    box = scratch / "box"
    tmp, record, log = box / "tmp", box / "record", box / "log" / "guard.log"
    startup = box / "ipython" / "profile_default" / "startup"
    for folder in (tmp, record, log.parent, startup):
        folder.mkdir(parents=True)
    options, extra, sockets = [], {}, None
    if sandbox is not None:
        from .kernelbox import prepare

        options, extra, sockets = prepare(scratch, box, cwd, sandbox)
    from .replay import cell_name, for_kernel

    if calls is not None:
        (box / "calls.pt").write_bytes(calls)
    cfg = {
        "log": str(log),
        "allow_write": [str(cwd), str(tmp), str(record)]
        + (["/tmp"] if sandbox else []),
        "deny_read": deny + [str(scratch)],
        "tests": tests,
        "probe": {"source": "pass", "name": cell_name("pass")},
        "max_output": max_output,
        "replay": replay
        and {
            **for_kernel(replay),
            "folder": str(record),
            "calls": str(box / "calls.pt") if calls is not None else None,
        },
    }
    (box / "guard.json").write_text(json.dumps(cfg))
    (startup / "00-attnkit-guard.py").write_text(
        "import attnkit.grading.sandbox as _g\n"
        f"_g.install({str(box / 'guard.json')!r})\n"
        "del _g\n"
    )
    (startup.parent / "ipython_kernel_config.py").write_text(
        "c.HistoryManager.enabled = False\n"
    )
    env = _env(
        {
            "IPYTHONDIR": str(box / "ipython"),
            "ATTNKIT_GRADING": "1",
            "TMPDIR": str(tmp),
            "MPLCONFIGDIR": str(tmp),
            "MPLBACKEND": "Agg",
            "PYTHONDONTWRITEBYTECODE": "1",
            "OMP_NUM_THREADS": str(threads),
            "TORCH_COMPILE_DISABLE": "1",  # torch.compile in an answer runs eagerly: same result
            **extra,
        }
    )
    quota = DiskQuota(scratch, disk)  # watched from here, out of the student's reach
    if sandbox is not None:
        from .bwrap import give

        give(box, sandbox["uid"])  # the kernel's; the rest of the scratch course is not
    # autograde, then feedback, in one process (one interpreter start, not two); under
    # bubblewrap nbgrader runs here, as the grader, and only the kernel it starts is sandboxed.
    # With a judge, the feedback waits for its verdicts: two processes
    split = bool(replay)
    try:
        rc, log_text = _nbgrader(
            *(["--only", "autograde"] if split else []),
            assignment,
            student,
            f"--Execute.timeout={timeout}",
            *options,
            "--",
            *feedback_args(feedback),  # hidden tests stay hidden unless "full"
            script=STEPS_SCRIPT,
            cwd=scratch,
            env=env,
            timeout=timeout * (len(tests) + 10) + (0 if split else FEEDBACK_SECONDS),
            memory=memory,
            nproc=sandbox is not None,
            quota=quota,
        )
    finally:
        if sockets is not None:
            shutil.rmtree(sockets, ignore_errors=True)
    seconds.update(_step_seconds(log_text, time.monotonic() - start))
    result["problems"] += _guard_notes(log)
    if not os.path.lexists(log) and rc in (0, STEPS_NO_FEEDBACK):
        result["problems"].append(
            "the guard's log is missing (the guard did not start in the kernel, or the "
            "submission deleted its log): check by hand"
        )
    if quota.note:
        return _over_quota(result, quota)
    graded = cwd / f"{assignment}.ipynb"
    if (
        sandbox is not None
        and rc in (0, STEPS_NO_FEEDBACK)
        and not (
            _regular(graded, scratch) and _regular(scratch / "gradebook.db", scratch)
        )
    ):
        rc, log_text = (
            1,
            "the graded notebook or the scratch gradebook was replaced by a link",
        )
    if rc not in (0, STEPS_NO_FEEDBACK) or not graded.exists():
        why = (
            "the kernel died"
            if "DeadKernel" in log_text or "UnresponsiveKernel" in log_text
            else "grading failed"
        )
        last = [
            line for line in log_text.strip().splitlines() if not line.startswith(STEPS)
        ]
        result["problems"].append(
            f"{why} (os._exit, a crash, or over the time/memory limit): 0 points; "
            f"nbgrader said: {last[-1][:200] if last else rc}"
        )
        return result
    import nbformat
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{scratch / 'gradebook.db'}") as gb:
        sub = gb.find_submission_notebook(assignment, assignment, student)
        result["scores"] = {
            g.name: (float(g.auto_score or 0.0), float(g.max_score)) for g in sub.grades
        }
    if replay:  # the kernel's passes, confirmed (or not) out of the student's reach
        started = time.monotonic()
        failed = _judge(
            result,
            record,
            (judge_root or work / "judge") / f"{student}.{secrets.token_hex(4)}",
            replay,
            env=env,
            timeout=timeout,
            memory=memory,
            sandbox=sandbox,
            calls=calls,
        )
        seconds["judge"] = round(time.monotonic() - started, 2)
        _show_verdicts(scratch, graded, assignment, student, failed)
        started = time.monotonic()
        _, feedback_log = _nbgrader(
            "--only",
            "feedback",
            assignment,
            student,
            "--",
            *feedback_args(feedback),
            script=STEPS_SCRIPT,
            cwd=scratch,
            env=env,
            timeout=FEEDBACK_SECONDS,
            memory=memory,
            quota=quota,
        )
        if "feedback" in (
            step := _step_seconds(feedback_log, time.monotonic() - started)
        ):
            seconds["feedback"] = step["feedback"]
        seconds["total"] = round(time.monotonic() - start, 2)
    # the notes, at the top of the graded notebook and of its feedback page
    if result["problems"]:
        nb = nbformat.read(graded, as_version=4)
        nb.cells.insert(
            0,
            nbformat.v4.new_markdown_cell(
                "**Grading notes**\n\n"
                + "\n".join(f"* {p}" for p in result["problems"])
            ),
        )
        # replaced, not opened for writing: nbgrader leaves it read-only (0444), which only
        # root may write through
        mode = stat.S_IMODE(graded.stat().st_mode)
        _write(graded, nbformat.writes(nb).encode())
        graded.chmod(mode)
        page = scratch / "feedback" / student / assignment / f"{assignment}.html"
        _note_feedback(page, scratch, result["problems"])
    result["ok"] = True
    return result


def _judge(
    result, record, folder, replay, *, env, timeout, memory, sandbox, calls=None
) -> dict[str, str]:
    """Take away the points of every test the kernel passed and the trusted judge
    (:mod:`attnkit.grading.judge`) did not; returns ``{grade_id: why}`` for those. A stubbed
    hidden test (whose verdict only the judge has) fails without a note, as in the kernel;
    any other gets a note.

    Tests marked to keep the kernel's verdict are left alone; when the kernel passed none of
    the others, there is nothing to confirm and no judge runs. The judge gets the plan (from
    the instructor's notebook) and a bounded copy of the student's recording (plain files
    only, from ``record``, the folder its kernel wrote) in a folder the student never saw;
    its verdicts are read with a size cap.
    """
    judged = [
        c["grade_id"] for c in replay["cells"] if c["kind"] == "test" and c["replay"]
    ]
    passed = [g for g in judged if result["scores"].get(g, (0.0, 0.0))[0] > 0]
    if not passed:
        return {}
    stubbed = {c["grade_id"] for c in replay["cells"] if c.get("stub")}
    remove(folder)
    (folder / "record").mkdir(parents=True)
    (folder / "tmp").mkdir()
    from .replay import FILE  # the record files' names

    total = 0
    names = sorted(os.listdir(record)) if _regular_dir(record, record.parent) else []
    for name in names[:MAX_RECORD_FILES]:
        path = record / name
        if FILE.match(name) and _regular(path, record):
            total += path.stat().st_size
            if total > MAX_RECORD:
                break
            shutil.copyfile(path, folder / "record" / name, follow_symlinks=False)
    (folder / "plan.json").write_text(json.dumps(replay))
    if calls is not None:
        (folder / "calls.pt").write_bytes(calls)
    from .bwrap import give
    from .judging import server

    seconds = timeout * (len(judged) + 10)
    private = None if sandbox is None else sandbox["private"]
    judge_env = {
        **env,
        "TMPDIR": str(folder / "tmp"),
        "MPLCONFIGDIR": str(folder / "tmp"),
    }
    # this process's judge server (one start-up for every student), else a judge of its own
    judges = server(folder.parent, {**judge_env, "TMPDIR": "/tmp"}, private)
    rc = None
    if judges is not None:
        give(folder, judges.uid)
        rc = judges.judge(folder.name, seconds, memory)
        log = _tail(folder / "judge.log", folder)
    if rc is None:
        box = None
        if sandbox is not None:
            give(folder, sandbox["uid"])
            box = {"writable": folder, **sandbox}
        rc, log = _nbgrader(
            script=JUDGE_SCRIPT,
            cwd=folder,
            env=judge_env,
            timeout=seconds,
            memory=memory,
            sandbox=box,
        )
    verdicts, page = None, folder / "verdicts.json"
    if rc == 0 and _regular(page, folder) and page.stat().st_size < MAX_LOG:
        try:
            verdicts = json.loads(page.read_text())
        except ValueError:
            verdicts = None
    if not isinstance(verdicts, dict):
        last = log.strip().splitlines()[-1:] or [str(rc)]
        verdicts = {g: f"the judge did not finish: {last[0][:200]}" for g in passed}
    failed = {}
    for g in passed:
        why = verdicts.get(g, "no verdict")
        if why is None:
            continue
        failed[g] = str(why)[:300]
        result["scores"][g] = (0.0, result["scores"][g][1])
        if g in stubbed and not str(why).startswith("the judge did not finish"):
            continue  # a hidden test that failed: its message is in the feedback
        result["problems"].append(
            f"{g} passed in the kernel but not when replayed by the grader "
            f"({str(why)[:200]}): 0 points"
        )
    remove(folder)
    return failed


def _show_verdicts(scratch, graded, assignment, student, failed) -> None:
    """The judge's failures where nbgrader's feedback shows them: 0 points in the scratch
    gradebook, and the failure as the test cell's error in the autograded notebook."""
    if not failed:
        return
    import nbformat
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{scratch / 'gradebook.db'}") as gb:
        for g in failed:
            grade = gb.find_grade(g, assignment, assignment, student)
            grade.auto_score = 0.0
        gb.db.commit()
    nb = nbformat.read(graded, as_version=4)
    for cell in nb.cells:
        g = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if g not in failed or cell.get("cell_type") != "code":
            continue
        ename, _, evalue = failed[g].partition(": ")
        if not re.fullmatch(r"[A-Za-z_][\w.]*", ename):
            ename, evalue = "AssertionError", failed[g]
        cell.outputs = [
            o for o in cell.get("outputs", []) if o.get("output_type") != "error"
        ]
        cell.outputs.append(
            nbformat.v4.new_output(
                "error",
                ename=ename,
                evalue=evalue,
                traceback=[f"{ename}: {evalue} (the grader's verdict)"],
            )
        )
    mode = stat.S_IMODE(graded.stat().st_mode)
    _write(graded, nbformat.writes(nb).encode())
    graded.chmod(mode)


def _tail(path: Path, inside: Path) -> str:
    """The last 4 KiB of a log the grader did not write (empty if it is not a plain file)."""
    if not _regular(path, inside):
        return ""
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - 4096))
        return f.read().decode("utf-8", "replace")


def _regular_dir(path: Path, inside: Path) -> bool:
    """A real folder inside ``inside`` (not a link)."""
    return (
        path.is_dir()
        and not path.is_symlink()
        and os.path.realpath(path) == os.path.join(os.path.realpath(inside), path.name)
    )


def _step_seconds(log: str, total: float) -> dict[str, float]:
    """Each step's seconds as the steps process printed them (written by a process the
    student shares, so read as a hint: a number in [0, total], else left out), and the total
    as measured here."""
    seconds = {"total": round(total, 2)}
    for step, value in re.findall(
        rf"^{STEPS} (autograde|feedback) ([0-9.]+)$", log, re.M
    ):
        try:
            if 0 <= float(value) <= total:
                seconds[step] = round(float(value), 2)
        except ValueError:
            pass
    return seconds


def _note_feedback(page: Path, scratch: Path, problems: list[str]) -> None:
    """Put the grading notes at the top of a student's feedback page (a plain file inside
    the scratch course, not too large; otherwise left as it is)."""
    if not _regular(page, scratch) or page.stat().st_size > MAX_FEEDBACK:
        return
    text = page.read_text(errors="replace")
    items = "".join(f"<li>{html.escape(p)}</li>" for p in problems)
    notes = f'<div class="attnkit-notes"><h2>Grading notes</h2><ul>{items}</ul></div>'
    body = re.search(r"<body[^>]*>", text)
    at = body.end() if body else 0
    _write(page, (text[:at] + notes + text[at:]).encode())


def _over_quota(result: dict, quota: DiskQuota) -> dict:
    """0 points with the quota's note; the student's scratch course (its files) deleted."""
    result.update(scores={}, ok=False)
    result["problems"].append(quota.note)
    remove(quota.folder)
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
                # a scratch gradebook is not trusted
                grade.auto_score = _clip(score, grade.max_score)
                grade.needs_manual_grade = False
            gb.db.commit()
    for part in ("autograded", "feedback"):
        dest = out / part / student / assignment
        shutil.rmtree(dest, ignore_errors=True)
        src = work / "students" / student / part / student / assignment
        if (
            r["ok"] and src.exists()
        ):  # plain files and folders only: no link leaves the scratch
            shutil.copytree(src, dest, ignore=_links_and_specials)
        elif part == "feedback":
            dest.mkdir(parents=True)
            (dest / f"{assignment}.html").write_text(_fallback_page(assignment, r))


def _clip(score: float, most: float) -> float:
    """A score read from a scratch gradebook, brought into ``[0, most]``."""
    return min(max(score, 0.0), most)


def _fallback_page(assignment: str, r: dict) -> str:
    """The feedback page the grader writes itself when nbgrader made none: 0 points and
    the reasons for a student not graded; the recorded score for one graded whose feedback
    step failed (never "0 points" for a graded student)."""
    items = "".join(f"<li>{html.escape(p)}</li>" for p in r["problems"])
    if not r["ok"]:
        return f"<h1>{assignment}: 0 points</h1><ul>{items}</ul>\n"
    scores = {name: (_clip(s, m), m) for name, (s, m) in sorted(r["scores"].items())}
    got = sum(s for s, _ in scores.values())
    most = sum(m for _, m in scores.values())
    rows = "".join(
        f"<li>{html.escape(name)}: {s:g} of {m:g}</li>"
        for name, (s, m) in scores.items()
    )
    return (
        f"<h1>{assignment}: {got:g} of {most:g} points</h1>"
        "<p>Graded; the detailed feedback page could not be made.</p>"
        f"<ul>{rows}</ul><ul>{items}</ul>\n"
    )


def _links_and_specials(folder, names):
    import stat

    return [
        n
        for n in names
        if not (
            stat.S_ISREG(m := os.lstat(os.path.join(folder, n)).st_mode)
            or stat.S_ISDIR(m)
        )
    ]


def choose_sandbox(sandbox: str) -> bool:
    """``bwrap``/``auto``/``none`` -> use bubblewrap? (raises if ``bwrap`` is not usable)."""
    if sandbox == "none":
        return False
    from .bwrap import probe

    why = probe()
    if why is None:
        return True
    if sandbox == "bwrap":
        raise RuntimeError(f"--sandbox bwrap: {why}")
    print(
        f"WARNING: hard isolation is OFF ({why}): each submission runs with the in-process "
        "guard only, which a determined student can get around; install bubblewrap "
        "(see the instructor guide) or grade in a VM",
        file=sys.stderr,
    )
    return False


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
    sandbox="auto",
    scheduler=None,
    disk_gib=DISK_BYTES / 2**30,
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
    try:
        use_bwrap = choose_sandbox(sandbox)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 2
    files: dict[str, list[str]] = {}
    chosen, problems = (
        collect(submissions, assignment, files) if submissions.is_dir() else ({}, {})
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
    from .replay import (  # (imports torch: not at the top of this module)
        cell_name,
        kernel_source,
        plan,
    )

    replay = plan(src_nb)
    calls = None
    if feedback == "hidden":  # "full" shows the hidden tests: they need no hiding
        calls = rehearsal(template, assignment, src_nb, replay, timeout, memory_gib)
    else:
        for cell in replay["cells"]:
            cell["stub"] = False
    kernel = {c["key"]: kernel_source(c) for c in replay["cells"]}
    # the kernel's guard knows the test cells by their file names: it is given no source
    tests = [
        {
            "grade_id": nbgrader_meta(c)["grade_id"],
            "name": cell_name(kernel[f"c{i}"]),
            "forbidden": forbid.get(question_of(nbgrader_meta(c)["grade_id"]), []),
            "answers": answers.get(question_of(nbgrader_meta(c)["grade_id"]), []),
        }
        for i, c in enumerate(src_nb.cells)
        if is_test_cell(c)
    ]
    shas = {}
    for student, path in list(chosen.items()):
        if path is None:
            continue
        nb, data, why = _read_submission(path)
        if data is not None:
            shas[student] = hashlib.sha256(data).hexdigest()
        if nb is None:
            problems[student].append(why)
            chosen[student] = None
            continue
        problems[student] += _clean(nb) + _intake_notes(nb, release)
        dest = out / "submitted" / student / assignment / f"{assignment}.ipynb"
        if dest.resolve() != path.resolve():
            _write(dest, data)
        # graded from the grader's own cleaned copy, never from the student's file again
        chosen[student] = work / "intake" / student / f"{assignment}.ipynb"
        _write(chosen[student], nbformat.writes(nb).encode())
    manifest_path = work / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):  # none yet, or damaged: grade everything again
        manifest = {}
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
        disk=int(disk_gib * 2**30),
        max_output=max_output,
        threads=1 if jobs > 1 else 2,
        feedback=feedback,
        replay=replay,
        calls=calls,
        # bubblewrap mounts these empty: the course, the output folder, the submissions
        sandbox=sorted({str(course), str(out), str(submissions)})
        if use_bwrap
        else None,
    )
    print(
        f"{assignment}: {len(chosen)} submissions, {len(chosen) - len(todo)} already graded, "
        f"grading {len(todo)} with {jobs} jobs"
    )
    with (
        ThreadPoolExecutor(max(1, jobs)) as pool,
        tqdm(total=len(todo), unit="student") as bar,
    ):
        if scheduler:  # one Dask task per student; this process alone records
            from .distribute import graded

            results = graded(scheduler, todo, chosen, problems, common, sandbox)
        else:
            futures = [
                pool.submit(_grade_one, s, chosen[s], problems[s], **common)
                for s in todo
            ]
            results = (future.result() for future in as_completed(futures))
        for r in results:
            _record(out, assignment, r, work)
            manifest[r["student"]] = {
                "sha": shas.get(r["student"], "none"),
                "ok": r["ok"],
                "scores": r["scores"],
                "problems": r["problems"],
                "seconds": r.get("seconds", {}),
            }
            manifest_path.write_text(
                json.dumps(manifest, indent=1)
            )  # after the gradebook: a crash re-grades
            bar.update()
    from .judging import close_all

    close_all()
    _nbgrader("export", "--to", str(out / "grades.csv"), cwd=out)
    return _summary(out, assignment, {s: manifest[s] for s in chosen}, files)


def rehearsal(
    template, assignment, src_nb, replay, timeout, memory_gib
) -> bytes | None:
    """Rehearse the stubbed hidden tests once (``judge.py --rehearse`` in
    ``<template>/rehearsal``, kept for later runs) and make the gradebook the students'
    autograde uses (``<template>/kernel.db``: the stubbed cells' source is the stub). Cells
    that cannot be stubbed are marked so in ``replay`` and reported. Returns ``calls.pt``'s
    bytes, or None (nothing stubbed)."""
    import nbformat
    from nbgrader.api import Gradebook
    from nbgrader.utils import compute_checksum

    from .replay import stub

    folder = template / "rehearsal"
    if not (folder / "rehearsal.json").exists():
        remove(folder)
        folder.mkdir(parents=True)
        nbformat.write(src_nb, folder / "source.ipynb")
        (folder / "plan.json").write_text(json.dumps(replay))
        rc, log = _nbgrader(
            "--rehearse",
            script=JUDGE_SCRIPT,
            cwd=folder,
            env=_env({"MPLBACKEND": "Agg", "TORCH_COMPILE_DISABLE": "1"}),
            timeout=timeout * (len(replay["cells"]) + 10),
            memory=int(memory_gib * 2**30),
        )
        if rc:
            print(
                f"{assignment}: the rehearsal failed, so the hidden tests run in the "
                f"kernel:\n{log[-2000:]}",
                file=sys.stderr,
            )
            remove(folder)
            for cell in replay["cells"]:
                cell["stub"] = False
            return None
    why = json.loads((folder / "rehearsal.json").read_text())
    for cell in replay["cells"]:
        if cell["stub"] and cell["key"] in why:
            cell["stub"] = False
            print(
                f"{assignment}: {cell['grade_id']}'s hidden tests run in the kernel: "
                f"{why[cell['key']]}",
                file=sys.stderr,
            )
    stubbed = {c["grade_id"]: c["key"] for c in replay["cells"] if c["stub"]}
    if not stubbed:
        return None
    release = nbformat.read(
        template / "exercises" / assignment / f"{assignment}.ipynb", as_version=4
    )
    db = template / KERNEL_DB
    shutil.copy(template / "gradebook.db", db)
    with Gradebook(f"sqlite:///{db}") as gb:
        for cell in release.cells:
            g = nbgrader_meta(cell).get("grade_id")
            if g in stubbed:
                cell.source = stub(stubbed[g])
                found = gb.find_source_cell(g, assignment, assignment)
                found.source, found.checksum = cell.source, compute_checksum(cell)
        gb.db.commit()
    return (folder / "calls.pt").read_bytes()


def _write(path: Path, data: bytes) -> None:
    """Write a file by replacing it (a link or FIFO planted at ``path`` is replaced, not used)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    with open(tmp, "xb") as f:
        f.write(data)
    os.replace(tmp, path)


def _summary(out: Path, assignment: str, rows: dict, files: dict | None = None) -> int:
    """The summary table (printed and summary-<assignment>.csv): every student with the files it
    was given, then every entry of the folder that was not a submission."""
    import io

    files = files or {}
    full = max(
        (sum(m for _, m in r["scores"].values()) for r in rows.values() if r["scores"]),
        default=0,
    )
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["student", "score", "max_score", "problems", "files"])
    print(f"\n{'student':<24} {'score':>7}  problems")
    for s, r in sorted(rows.items()):
        score = sum(v for v, _ in r["scores"].values())
        given = " | ".join(files.get(s, []))
        w.writerow([s, f"{score:g}", f"{full:g}", " | ".join(r["problems"]), given])
        print(f"{s:<24} {score:>4g}/{full:g}  {'; '.join(r['problems']) or '-'}")
    for name in files.get("(not a submission)", []):
        w.writerow(["", "", "", "not a submission", name])
        print(f"{'-':<24} {'':>7}  not a submission: {name}")
    _write(out / f"summary-{assignment}.csv", buf.getvalue().encode())
    print(
        f"\ngrades: {out / 'grades.csv'}  "
        f"summary: {out / f'summary-{assignment}.csv'}  "
        f"feedback: {out / 'feedback'}"
    )
    return 0
