"""Shared pytest setup: a headless matplotlib backend, the hypothesis profile, a figure-closing
fixture, the built book. Shared helpers (seeded q, k, v; the largest-tensor recorder) are in
``helpers.py``."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# Tests never open windows; choose the file-only backend before anything imports pyplot.
os.environ.setdefault("MPLBACKEND", "Agg")

# One math thread per process. `make test` runs three xdist workers on a 2-core machine, and each
# starts kernels, book builds and benchmark subprocesses; with torch's default (a thread per
# core) their OpenMP threads oversubscribe the cores and spin. Measured on a loaded machine: a
# solution notebook took 12.4 CPU-s with 2 threads and 10.0 with 1. Set before torch is
# imported, and inherited by every subprocess (nbgrader kernels, the book build, the benchmark).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

# One hypothesis profile for every property test: enough examples to find shape bugs, and no
# per-example deadline (a 2-core CI machine shared with a book build is slow and uneven).
settings.register_profile("attnkit", max_examples=25, deadline=None)
settings.load_profile("attnkit")


def _xdist_group(item) -> str | None:
    mark = item.get_closest_marker("xdist_group")
    return (mark.args[0] if mark.args else mark.kwargs.get("name")) if mark else None


# the longest xdist groups, longest first (from ``--durations`` of a clean-clone run): the book
# build + browser crawl, the hostile batch, the Dask cluster; then every other group (one per
# assignment, and the forbidden-call batch), then the tests that belong to no group
LONGEST_FIRST = {"book": 0, "grading_robust": 1, "distribute": 2}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Order the run for ``make test`` (``--dist loadgroup --no-loadscope-reorder``): xdist hands
    out whole groups in this order, one to each worker that runs short of work, so the longest
    units start first (each on its own worker) and the small independent tests fill whichever
    worker is free at the end. Within each part the collection order is kept."""

    def rank(item) -> int:
        group = _xdist_group(item)
        return LONGEST_FIRST.get(group, 3) if group else 4

    items.sort(key=rank)


@pytest.fixture
def close_figures():
    """Close every matplotlib figure a test opened (pyplot keeps them alive otherwise)."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> Path:
    """The HTML book, built once per run (tests/test_book.py and tests/test_browser.py share it;
    both are in pytest-xdist group "book", so one worker builds it). Every chapter is executed and
    Sphinx warnings are errors. ATTNKIT_BUILT_BOOK=<dir>/_build/html reuses a build instead."""
    if os.environ.get("ATTNKIT_BUILT_BOOK"):
        html = Path(os.environ["ATTNKIT_BUILT_BOOK"])
        assert (html / "index.html").exists(), (
            f"ATTNKIT_BUILT_BOOK={html} holds no built book"
        )
        return html
    root = Path(__file__).resolve().parents[1]
    out = tmp_path_factory.mktemp("book")
    jb = Path(sys.executable).parent / "jupyter-book"
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "PATH": path}
    proc = subprocess.run(
        [
            str(jb),
            "build",
            str(root),
            "--builder",
            "html",
            "--path-output",
            str(out),
            "-W",
            "-n",
            "--keep-going",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
    )
    assert proc.returncode == 0, (
        f"book build failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-4000:]}"
    )
    return out / "_build" / "html"
