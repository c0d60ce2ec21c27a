"""attnkit.grading.quota: the per-student disk quota, on plain processes (no nbgrader, seconds)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from attnkit.grading.quota import DiskQuota, disk_usage, remove, usage

# writes 1 MiB files into its working directory, after starting a process in a session of its
# own (as nbgrader starts the kernel) that would outlive a kill of the process group alone
WRITER = """import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                         start_new_session=True, stdout=subprocess.DEVNULL)
print(child.pid, flush=True)
for i in range(int(sys.argv[1])):
    with open(f"f{i}", "wb") as f:
        f.write(b"x" * 2**20)
    time.sleep(float(sys.argv[2]))
"""


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _writer(folder, files, pause):
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(files), str(pause)],
        cwd=folder,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def test_disk_usage_counts_regular_files_once_and_follows_no_link(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x").write_bytes(b"1" * 1000)
    (tmp_path / "y").write_bytes(b"2" * 24)
    os.link(tmp_path / "y", tmp_path / "a" / "y-again")  # one file, two names
    big = tmp_path.parent / f"{tmp_path.name}-outside"
    big.write_bytes(b"3" * 10_000)
    (tmp_path / "link").symlink_to(big)  # a link out: not the student's bytes
    (tmp_path / "dirlink").symlink_to(tmp_path.parent, target_is_directory=True)
    os.mkfifo(tmp_path / "fifo")  # never opened: no hang
    assert disk_usage(tmp_path) == 1024
    assert disk_usage(tmp_path / "missing") == 0


@pytest.mark.skipif(
    not os.path.isdir("/proc"), reason="the process tree is read from /proc"
)
def test_quota_kills_the_whole_tree_with_a_precise_note(tmp_path):
    quota = DiskQuota(tmp_path, 8 * 2**20, interval=0.05)
    proc = _writer(tmp_path, 200, 0.01)
    with quota.watch(proc.pid):
        kernel = int(proc.stdout.readline())
        rc = proc.wait(timeout=30)
    assert rc == -9
    note = quota.note
    assert re.fullmatch(
        r"disk quota exceeded: (\d+) MiB written, quota 8 MiB: grading stopped, 0 points",
        note,
    ), note
    written = int(re.search(r"(\d+) MiB written", note).group(1))
    # stopped within a few polls of the quota, far from the 200 MiB it would write
    assert 8 <= written < 100
    deadline = time.monotonic() + 5
    while _alive(kernel) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(kernel)  # the process in its own session died too
    remove(tmp_path)
    assert not tmp_path.exists()


def test_quota_leaves_a_student_under_it_alone(tmp_path):
    quota = DiskQuota(tmp_path, 8 * 2**20, interval=0.05)
    proc = _writer(tmp_path, 3, 0.1)
    with quota.watch(proc.pid):
        kernel = int(proc.stdout.readline())
        assert proc.wait(timeout=30) == 0
    os.kill(kernel, 9)
    assert quota.note is None
    assert disk_usage(tmp_path) == 3 * 2**20


def test_remove_takes_back_write_permission(tmp_path):
    locked = tmp_path / "scratch" / "locked"
    locked.mkdir(parents=True)
    (locked / "f").write_bytes(b"x")
    locked.chmod(0o500)
    remove(tmp_path / "scratch")
    assert not (tmp_path / "scratch").exists()


# makes empty files (no bytes at all) in its working directory, one every `pause` seconds
MAKER = """import sys, time
for i in range(int(sys.argv[1])):
    open(f"e{i}", "w").close()
    time.sleep(float(sys.argv[2]))
"""


def test_usage_counts_every_entry_and_the_bytes_of_regular_files(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x").write_bytes(b"1" * 100)
    (tmp_path / "empty").touch()
    (tmp_path / "link").symlink_to(tmp_path / "empty")
    # a, a/b, a/b/x, empty, link: five entries, 100 bytes
    assert usage(tmp_path) == (100, 5)


@pytest.mark.skipif(
    not os.path.isdir("/proc"), reason="the process tree is read from /proc"
)
def test_many_empty_files_are_stopped_by_the_entry_limit(tmp_path):
    quota = DiskQuota(tmp_path, 2**30, interval=0.05, max_entries=200)
    proc = subprocess.Popen(
        [sys.executable, "-c", MAKER, "100000", "0.0005"],
        cwd=tmp_path,
        start_new_session=True,
    )
    with quota.watch(proc.pid):
        rc = proc.wait(timeout=60)
    assert rc == -9, "the process was not stopped"
    match = re.fullmatch(
        r"file quota exceeded: (\d+) files and folders made, quota 200: "
        r"grading stopped, 0 points",
        quota.note or "",
    )
    assert match, quota.note
    made = int(match.group(1))
    assert 200 < made < 20_000, made  # stopped near the limit, far from 100 000
    assert (
        disk_usage(tmp_path) == 0
    )  # no byte written: the byte quota alone never fires
