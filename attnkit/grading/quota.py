"""The per-student disk quota of the batch grader (``grade --disk``, 2 GiB by default, and
at most 100 000 files and folders).

A student's scratch course (``.attnkit-grading/students/<student>/``) is the only place its
grading may write (under bubblewrap the only writable directory; without it, the in-process
guard's). :class:`DiskQuota` watches it from the grading process, outside the student's
reach: every ``interval`` seconds it adds up the bytes of the regular files in it (links not
followed, each file once) and counts its entries (files, folders, links: each an inode, so
a million empty files is stopped too) and, once either is over its limit, kills the student's whole
process tree (its process group, which under bubblewrap takes the sandbox with it, and every
process started from it, such as the kernel nbgrader puts in a session of its own). Being
polled, the quota can be overshot by what is written between two polls.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import threading
from pathlib import Path

DISK_BYTES = 2 * 2**30  # the default quota per student
MAX_ENTRIES = 100_000  # files, folders and links per student (a notebook's grading makes ~40)
INTERVAL = 0.2  # seconds between two measurements


def usage(folder: Path) -> tuple[int, int]:
    """``(bytes, entries)`` under ``folder``: the bytes of its regular files (links not
    followed, hard links counted once) and the number of its entries of any kind."""
    total, entries, seen, todo = 0, 0, set(), [str(folder)]
    while todo:
        try:
            found = list(os.scandir(todo.pop()))
        except OSError:  # gone, or not readable: nothing to count there
            continue
        entries += len(found)
        for e in found:
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                todo.append(e.path)
            elif stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total, entries


def disk_usage(folder: Path) -> int:
    """Bytes of the regular files under ``folder``: links not followed, hard links counted once."""
    return usage(folder)[0]


def descendants(pid: int) -> list[int]:
    """Every process started from ``pid``, whatever its session (from ``/proc``; Linux only)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(pid: int) -> None:
    """SIGKILL to the process group ``pid`` leads and to every process started from it."""
    tree = descendants(pid)  # before the kill: an orphan's parent is no longer ``pid``
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    for child in tree:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(child, signal.SIGKILL)


def remove(folder: Path) -> None:
    """Delete ``folder`` even where the student took the write permission off its folders."""
    for root, dirs, _ in os.walk(folder):
        for d in dirs:
            with contextlib.suppress(OSError):
                os.chmod(os.path.join(root, d), 0o700, follow_symlinks=False)
    shutil.rmtree(folder, ignore_errors=True)


class DiskQuota:
    """At most ``limit`` bytes and ``max_entries`` entries in ``folder`` while the processes
    given to :meth:`watch` run.

    ``note`` is None until the quota is exceeded, then the grading note (with 0 points).
    """

    def __init__(
        self,
        folder: Path,
        limit: int = DISK_BYTES,
        interval: float = INTERVAL,
        max_entries: int = MAX_ENTRIES,
    ):
        self.folder, self.limit, self.interval = Path(folder), int(limit), interval
        self.max_entries = int(max_entries)
        self.note: str | None = None

    @contextlib.contextmanager
    def watch(self, pid: int):
        """Measure ``folder`` every ``interval`` s while the block runs; over the quota, kill
        ``pid``'s process group and every process started from it."""
        done = threading.Event()

        def poll():
            while not done.wait(self.interval):
                used, entries = usage(self.folder)
                note = None
                if used > self.limit:
                    note = (
                        f"disk quota exceeded: {used / 2**20:.0f} MiB written, quota "
                        f"{self.limit / 2**20:.0f} MiB: grading stopped, 0 points"
                    )
                elif entries > self.max_entries:
                    note = (
                        f"file quota exceeded: {entries} files and folders made, quota "
                        f"{self.max_entries}: grading stopped, 0 points"
                    )
                if note:
                    kill_tree(pid)
                    self.note = note
                    return

        watcher = threading.Thread(target=poll, name=f"disk quota {pid}", daemon=True)
        watcher.start()
        try:
            yield self
        finally:
            done.set()
            watcher.join()
