"""The grader's side of the judge server (``judge.py --serve``): one per grading process.

Starting the judge costs about as much as judging (torch, attnkit and what ``torch.testing``
imports on first use), so each grading process — the ``grade`` command, or each Dask worker —
starts one server on first use and sends it every student it grades: one line per student,
answered by one line when that student's judge (a child forked by the server) has ended. Under
bubblewrap the server runs in a sandbox of its own (its own uid, no network, the judging folder
its only writable directory). When the server cannot be used, :func:`run` returns None and the
caller starts a judge process for that student instead (:func:`server`).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import resource
import subprocess
import sys
import threading
from pathlib import Path

from .judge import NAME

SCRIPT = Path(__file__).with_name("judge.py")
_servers: dict[tuple, _Server] = {}
_lock = threading.Lock()


class _Server:
    def __init__(self, root: Path, env: dict, private):
        self.root, self.slot, self.uid = root, None, None
        argv = [sys.executable, str(SCRIPT), "--serve", str(root)]
        if private is not None:
            from .bwrap import Slot, wrap

            self.slot = Slot()  # held while the server runs
            self.uid = self.slot.uid
            argv = wrap(argv, writable=root, cwd=root, private=private, uid=self.uid)

        def limits():
            if private is not None:
                from .bwrap import NPROC

                resource.setrlimit(resource.RLIMIT_NPROC, (NPROC, NPROC))

        self.proc = subprocess.Popen(
            argv,
            cwd=root,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=limits,
        )
        self.done: dict[str, int] = {}
        self.alive = True
        self.changed = threading.Condition()
        self.writing = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            parts = line.decode("ascii", "replace").split()
            if len(parts) == 3 and parts[0] == "done":
                try:
                    code = int(parts[2])
                except ValueError:
                    continue
                with self.changed:
                    self.done[parts[1]] = code
                    self.changed.notify_all()
        with self.changed:
            self.alive = False
            self.changed.notify_all()

    def judge(self, name: str, seconds: int, memory: int) -> int | None:
        if not NAME.match(name):
            return None
        try:
            with self.writing:
                self.proc.stdin.write(f"{name} {seconds} {memory}\n".encode())
                self.proc.stdin.flush()
        except OSError:
            return None
        with self.changed:
            self.changed.wait_for(
                lambda: name in self.done or not self.alive, timeout=seconds + 60
            )
            return self.done.pop(name, None)

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
        if self.slot is not None:
            self.slot.__exit__()
        with contextlib.suppress(OSError):
            self.root.rmdir()  # once every student's folder is gone


def server(root: Path, env: dict, private) -> _Server | None:
    """This process's judge server for the judging folder ``root`` (started on first use;
    None if it cannot start). ``private``: the directories bubblewrap hides, or None to run
    it without bubblewrap. Give each student's folder to its ``uid`` before its
    ``judge(name, seconds, memory)``, which returns the child's exit code, or None when the
    server is gone."""
    key = (str(root), None if private is None else tuple(private))
    with _lock:
        server = _servers.get(key)
        if server is None or not server.alive:
            root.mkdir(parents=True, exist_ok=True)
            try:
                server = _servers[key] = _Server(root, env, private)
            except (OSError, RuntimeError):
                return None
        return server


def close_all() -> None:
    """Stop every server this process started (each ends when its children have)."""
    with _lock:
        servers = list(_servers.values())
        _servers.clear()
    for server in servers:
        server.close()


atexit.register(close_all)
os.register_at_fork(after_in_child=_servers.clear)  # a forked process starts its own
