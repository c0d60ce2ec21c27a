"""The operating-system sandbox of the batch grader: bubblewrap (``bwrap``, package bubblewrap).

:func:`wrap` turns a command line into a ``bwrap`` command line: the student's kernel
(:mod:`attnkit.grading.kernelbox`, started by nbgrader, which runs outside) and the trusted
judge (:mod:`attnkit.grading.judging`).

* new network namespace (loopback only), new PID, IPC and UTS namespaces, ``--die-with-parent``
  and ``--new-session``: when the sandbox's parent exits or is killed, every process in it dies
  with it (the PID namespace's init is gone) and nothing reaches another process of the host;
* the whole filesystem read-only (``--ro-bind / /``), with empty ``tmpfs`` mounted over the
  instructor's directories (the course root, the output folder with the gradebook, the
  submissions, the project and ``.git`` attnkit is installed from, ``$HOME``); then, read-only,
  only what grading needs (the Python environment, attnkit's package directory) and, writable,
  the folders given (the kernel's folder of the student's scratch course); ``/tmp`` is a
  private ``tmpfs`` of ``tmp_bytes``;
* run as root, the sandbox drops to an unprivileged uid of its own (``setpriv``: no
  capabilities, ``no_new_privs``, an empty bounding set), one uid per concurrent sandbox on
  the host (chosen under a lock file), so ``RLIMIT_NPROC`` bounds a fork bomb without touching
  anyone else. Run as a normal user, bwrap's user namespace does the same for that user.

:func:`probe` says once per process whether bwrap works here (installed, and allowed to create
namespaces); ``batch`` falls back to the in-process guard alone otherwise, with one warning.
"""

from __future__ import annotations

import fcntl
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

UID_BASE = (
    61000  # sandbox uids, when the grader runs as root: UID_BASE .. UID_BASE + 255
)
TMP_BYTES = 512 * 2**20
NPROC = 512  # processes and threads per sandbox (torch's thread pools included)

_NS = [
    "--unshare-net",
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    "--die-with-parent",
    "--new-session",
]


@functools.lru_cache(maxsize=1)
def probe() -> str | None:
    """None when bwrap runs a sandbox here, else why not (once per process)."""
    exe = shutil.which("bwrap")
    if exe is None:
        return "bwrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    try:
        proc = subprocess.run(
            [exe, "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev"]
            + ["--size", "1000000", "--tmpfs", "/tmp", *_NS, "--", "true"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap failed to start: {exc}"
    if proc.returncode != 0:
        return f"bwrap cannot create namespaces here: {proc.stderr.strip()[:200]}"
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        return "running as root but setpriv (util-linux) is missing"
    return None


class Slot:
    """An unprivileged uid for one sandbox, held under a lock file while the sandbox runs.

    Only used as root. Different processes (several grade commands, Dask workers on one host)
    get different uids, so each sandbox's ``RLIMIT_NPROC`` counts its own processes only.
    """

    def __init__(self):
        self.uid, self._fd = None, None
        if os.geteuid() != 0:
            return
        locks = Path(tempfile.gettempdir()) / "attnkit-grading-uids"
        locks.mkdir(mode=0o700, exist_ok=True)
        for i in range(256):
            fd = os.open(locks / str(i), os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self.uid, self._fd = UID_BASE + i, fd
            return
        raise RuntimeError("256 sandboxes already running on this host")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._fd is not None:
            os.close(self._fd)


def _under(path: Path, roots) -> bool:
    return any(path == r or r in path.parents for r in roots)


def _project_of(path: Path) -> Path | None:
    """The source checkout a package directory lives in (a parent with .git or pyproject.toml)."""
    for parent in path.parents:
        if (parent / ".git").exists() or (parent / "pyproject.toml").exists():
            return parent
    return None


def visible_code() -> list[Path]:
    """What the student's kernel must read: the Python environment and attnkit's package."""
    import attnkit

    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(attnkit.__file__).parent}
    return sorted(p.resolve() for p in paths)


def hidden_roots(private) -> list[Path]:
    """Directories mounted empty: the given ones, attnkit's checkout, ``$HOME``."""
    import attnkit

    roots = {Path(p).resolve() for p in private}
    project = _project_of(Path(attnkit.__file__).resolve().parent)
    if project is not None and project != Path("/"):
        roots.add(project)
    home = Path(os.path.expanduser("~")).resolve()
    if home != Path("/"):
        roots.add(home)
    return sorted(roots)


def _parents(path: Path) -> list[str]:
    """Create ``path``'s parents searchable (bwrap makes missing ones 0700, root's)."""
    out = []
    for parent in reversed(path.parents[:-1]):
        if parent != Path("/tmp"):  # keeps its 1777
            out += ["--perms", "0755", "--dir", str(parent)]
    return out


def wrap(
    argv,
    *,
    writable,
    cwd: Path,
    private,
    uid: int | None,
    tmp_bytes: int = TMP_BYTES,
    binds=(),
) -> list[str]:
    """The bwrap command line running ``argv`` in ``cwd`` with only ``writable`` writable.

    ``writable``: a folder or a list of folders, each mounted at its own path. ``binds``:
    ``(folder, path)`` pairs, each folder mounted writable at ``path`` instead (after the rest).
    """
    if isinstance(writable, (str, os.PathLike)):
        writable = [writable]
    hide = [p for p in hidden_roots(private) if p.exists()]
    cmd = [
        shutil.which("bwrap"),
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
    ]
    cmd += ["--perms", "1777", "--size", str(tmp_bytes), "--tmpfs", "/tmp"]
    # empty directories over the instructor's state (a file: /dev/null over it)
    for p in hide:
        if _under(Path("/tmp"), [p]) or _under(p, [Path("/tmp")]):
            continue  # /tmp is already a private, empty tmpfs
        cmd += _parents(p)
        cmd += ["--tmpfs", str(p)] if p.is_dir() else ["--ro-bind", "/dev/null", str(p)]
    # then back, read-only, what grading needs, and the student's scratch course, writable
    for p in visible_code():
        if _under(p, hide) or _under(p, [Path("/tmp")]):
            cmd += [*_parents(p), "--ro-bind", str(p), str(p)]
    for w in (Path(w).resolve() for w in writable):
        cmd += [*_parents(w), "--bind", str(w), str(w)]
    for src, dest in binds:
        dest = Path(dest).parent.resolve() / Path(dest).name  # (a link here: a mount there)
        cmd += [*_parents(dest), "--bind", str(Path(src).resolve()), str(dest)]
    cmd += [*_NS, "--chdir", str(cwd)]
    cmd += ["--setenv", "HOME", "/tmp", "--setenv", "TMPDIR", "/tmp"]
    cmd += ["--setenv", "JUPYTER_RUNTIME_DIR", "/tmp/jupyter-runtime", "--"]
    if uid is not None:  # root: become an unprivileged user with no way back
        cmd += [shutil.which("setpriv"), f"--reuid={uid}", f"--regid={uid}"]
        cmd += ["--clear-groups", "--no-new-privs", "--bounding-set=-all"]
        cmd += ["--inh-caps=-all", "--"]
    return cmd + list(argv)


def give(path: Path, uid: int | None) -> None:
    """Make ``path`` (a scratch course just written by the grader) the sandbox user's."""
    if uid is None:
        return
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            os.lchown(name, uid, uid)
