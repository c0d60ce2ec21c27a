"""The student's kernel alone in bubblewrap; nbgrader, the gradebook and the tests outside it.

Under bubblewrap, the batch grader runs ``nbgrader autograde`` and ``generate_feedback`` as
itself, in the student's scratch course, and only the kernel nbgrader starts is sandboxed. The
kernel sees none of the scratch course (the scratch gradebook holds the hidden tests' source,
the config file, ``submitted/``, ``autograded/``, ``feedback/``): just the folder
:func:`prepare` lays out for it (``box/``) and, mounted on the notebook's folder, an empty
writable ``box/cwd``. Its sockets are Unix sockets (ZeroMQ's ``ipc`` transport) in
``box/sock``, which both sides reach by a short path under ``/tmp`` (a link for nbgrader, a
mount for the kernel); its network namespace has no interfaces but loopback, so TCP could not
reach it anyway.

nbgrader finds the kernel by its name (``--Execute.kernel_name``, whatever the notebook's
metadata says) in a kernelspec folder only the grader can read. The kernelspec runs this file
by its path (no attnkit, no torch import: keep it so)::

    python .../attnkit/grading/kernelbox.py SPEC.json CONNECTION_FILE [kernel options]

which copies the connection file (written by nbgrader's kernel manager, readable by its owner
only) into the socket folder for the sandbox's user and then *becomes* bubblewrap (``exec``:
the kernel manager's process is the sandbox, killed with it). The kernel is interrupted by a
message (``interrupt_mode``), since a signal to bubblewrap's process group would not reach a
kernel in a session of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path

NAME = "attnkit-box"  # the kernelspec's name


def launch(argv: list[str]) -> None:
    """``SPEC CONNECTION_FILE [extra kernel arguments]``: exec the sandboxed kernel."""
    with open(argv[0]) as f:
        spec = json.load(f)
    connection, extra = argv[1], argv[2:]
    with open(connection, "rb") as f:
        data = f.read()
    # the socket folder is the sandbox user's: a file it planted is replaced, never followed
    inside = spec["connection"]
    tmp = inside + ".new"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, data)
        if spec["uid"] is not None:
            os.fchown(fd, spec["uid"], spec["uid"])
    finally:
        os.close(fd)
    os.replace(tmp, inside)
    cmd = [inside if a == "{connection_file}" else a for a in spec["argv"]] + extra
    # ipykernel would watch that pid for its parent's death; in the sandbox's PID namespace its
    # parent is bubblewrap's pid 1, so it would exit at once: --die-with-parent does that job
    os.environ.pop("JPY_PARENT_PID", None)
    os.execv(cmd[0], cmd)


def prepare(
    scratch: Path, box: Path, cwd: Path, sandbox: dict
) -> tuple[list[str], dict, Path]:
    """The kernelspec that sandboxes the kernel of a scratch course, and its two folders.

    ``box``: the folder of ``scratch`` the kernel may see (writable), which the caller fills
    (``tmp``, ``record``, ``log``, ``ipython``, ``guard.json``) and hands to the sandbox's
    user; here ``box/cwd`` (mounted on the notebook's folder ``cwd``) and ``box/sock`` are
    made. ``sandbox``: ``{"private", "uid"}`` as for :func:`attnkit.grading.bwrap.wrap`.
    Returns ``(nbgrader options, environment, socket path)``: the caller removes the short
    socket path under ``/tmp`` once nbgrader is done.
    """
    from .bwrap import wrap

    for sub in ("cwd", "sock"):
        (box / sub).mkdir(parents=True, exist_ok=True)
    # Unix socket paths are limited to 107 bytes: a short path under /tmp, /tmp/attnkit-k…/s,
    # which is box/sock (a link to it here, mounted there in the sandbox): what the kernel
    # writes there is in its scratch course, under the disk quota, not in the host's /tmp
    sockets = Path(tempfile.mkdtemp(prefix="attnkit-k", dir="/tmp"))
    (sockets / "s").symlink_to(box / "sock")
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec = {
        "connection": str(sockets / "s" / "kernel.json"),
        "uid": sandbox.get("uid"),
        "argv": wrap(
            argv,
            writable=[box],
            binds=[(box / "cwd", cwd), (box / "sock", sockets / "s")],
            cwd=cwd,
            private=sandbox["private"],
            uid=sandbox.get("uid"),
        ),
    }
    spec_path = scratch / "kernelbox.json"
    spec_path.write_text(json.dumps(spec))
    kernels = scratch / "jupyter" / "kernels" / NAME
    kernels.mkdir(parents=True, exist_ok=True)
    (kernels / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, __file__, str(spec_path), "{connection_file}"],
                "display_name": "Python 3 (attnkit grading sandbox)",
                "language": "python",
                "interrupt_mode": "message",
            }
        )
    )
    options = [
        f"--Execute.kernel_name={NAME}",
        "--KernelManager.transport=ipc",
        f"--KernelManager.ip={sockets / 's' / 'k'}",
    ]
    env = {
        "JUPYTER_PATH": str(scratch / "jupyter"),
        "JUPYTER_RUNTIME_DIR": str(sockets / "run"),
    }
    return options, env, sockets


if __name__ == "__main__":
    launch(sys.argv[1:])
