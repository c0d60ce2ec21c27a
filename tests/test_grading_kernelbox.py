"""attnkit.grading.kernelbox: under bubblewrap only the student's kernel is sandboxed.

nbgrader (and the scratch gradebook, which holds every test's source) stays outside; the kernel
sees its own folder (``box/``) and, on the notebook's folder, an empty writable one. These tests
start such a kernel with jupyter_client, as nbgrader does, and look from inside it.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from attnkit.grading import bwrap, kernelbox

pytestmark = pytest.mark.skipif(
    bwrap.probe() is not None, reason="bubblewrap is not usable here"
)


def test_wrap_mounts_a_folder_at_another_path(tmp_path):
    hidden, own = tmp_path / "course", tmp_path / "own"
    (hidden / "autograded").mkdir(parents=True)
    (hidden / "gradebook.db").write_text("secret")
    own.mkdir()
    dest = hidden / "autograded"
    with bwrap.Slot() as slot:
        if slot.uid is not None:
            os.chown(own, slot.uid, slot.uid)
        cmd = bwrap.wrap(
            ["sh", "-c", "ls ..; echo made > made; cat ../gradebook.db || echo none"],
            writable=[],
            binds=[(own, dest)],
            cwd=dest,
            private=[hidden],
            uid=slot.uid,
        )
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [
        "autograded",
        "none",
    ]  # the course's other files: not there
    assert (own / "made").read_text() == "made\n"  # written to the folder mounted there
    assert not (dest / "made").exists()


@pytest.fixture
def kernel(tmp_path, monkeypatch):
    """A kernel started from :func:`kernelbox.prepare`'s kernelspec, as nbgrader starts it."""
    from jupyter_client import KernelManager

    scratch = tmp_path / "out" / "students" / "alice"
    cwd = scratch / "autograded" / "alice" / "ch"
    cwd.mkdir(parents=True)
    (scratch / "gradebook.db").write_text("every test's source")
    box = scratch / "box"
    for sub in ("record", "ipython"):  # what the grader puts there besides
        (box / sub).mkdir(parents=True)
    with bwrap.Slot() as slot:
        options, env, sockets = kernelbox.prepare(
            scratch, box, cwd, {"private": [tmp_path / "out"], "uid": slot.uid}
        )
        bwrap.give(box, slot.uid)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("IPYTHONDIR", str(box / "ipython"))
        config = dict(o.removeprefix("--").split("=", 1) for o in options)
        assert config["Execute.kernel_name"] == kernelbox.NAME
        km = KernelManager(
            kernel_name=kernelbox.NAME,
            transport=config["KernelManager.transport"],
            ip=config["KernelManager.ip"],
        )
        km.start_kernel(cwd=str(cwd))
        client = km.client()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=60)
            yield {
                "km": km,
                "client": client,
                "scratch": scratch,
                "box": box,
                "cwd": cwd,
                "uid": slot.uid,
            }
        finally:
            client.stop_channels()
            km.shutdown_kernel(now=True)
            subprocess.run(["rm", "-rf", str(sockets)], check=False)


def _run(kernel, code: str, timeout=60) -> tuple[str, str]:
    """``(stdout, error name or "")`` of one cell."""
    out, err = [], []

    def hook(msg):
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            err.append(msg["content"]["ename"])

    reply = kernel["client"].execute_interactive(
        code, timeout=timeout, output_hook=hook
    )
    assert reply["content"]["status"] in ("ok", "error")
    return "".join(out), "".join(err)


def test_kernel_sees_its_box_only(kernel):
    scratch, box, cwd = kernel["scratch"], kernel["box"], kernel["cwd"]
    out, err = _run(
        kernel,
        "import os\n"
        f"print(os.path.exists({str(scratch / 'gradebook.db')!r}),"
        f" os.path.exists({str(scratch / 'kernelbox.json')!r}),"
        f" os.path.exists({str(scratch / 'jupyter')!r}))\n"
        "open('answer.txt', 'w').write('42')\n"
        f"open({str(box / 'record' / 'r')!r}, 'w').write('1')\n"
        "from ipykernel import get_connection_file\n"
        "sockets = os.path.dirname(get_connection_file())\n"
        "open(os.path.join(sockets, 'filler'), 'w').write('x')\n"
        "print(os.getcwd(), os.getuid(), sockets)",
    )
    assert err == "", out
    first, second = out.splitlines()
    assert (
        first == "False False False"
    )  # nbgrader's side of the scratch course is not there
    where, uid, sockets = second.split()
    assert where == str(cwd)
    # the socket folder, a short path under /tmp, is box/sock: what the kernel writes there
    # counts in its scratch course's disk quota, and the host's /tmp stays untouched
    assert sockets.startswith("/tmp/attnkit-k")
    assert (box / "sock" / "filler").read_text() == "x"
    if kernel["uid"] is not None:  # run as root: the sandbox's own uid
        assert int(uid) == kernel["uid"]
    assert (box / "cwd" / "answer.txt").read_text() == "42"
    assert not (cwd / "answer.txt").exists()  # nbgrader's notebook folder is untouched
    assert (box / "record" / "r").read_text() == "1"


def test_kernel_interrupted_by_message(kernel):
    """nbgrader's timeout interrupts a cell: a signal to bubblewrap's process group would not
    reach the kernel (a session of its own), so the kernelspec asks for a message."""
    assert kernel["km"].kernel_spec.interrupt_mode == "message"
    client = kernel["client"]
    client.execute("import time\ntime.sleep(60)", stop_on_error=False)
    time.sleep(2)
    started = time.monotonic()
    kernel["km"].interrupt_kernel()
    while True:
        msg = client.get_iopub_msg(timeout=30)
        if msg["msg_type"] == "error":
            break
    assert msg["content"]["ename"] == "KeyboardInterrupt"
    assert time.monotonic() - started < 20
    assert _run(kernel, "print(1 + 1)") == ("2\n", "")  # and the kernel goes on
