"""One timing helper for the chapters and the benchmarks.

Wall-clock times on a shared machine are noisy: every helper here warms up first, repeats,
and reduces the repeats to one number (the median by default; the minimum, the run least
disturbed by other programs, on request). Ratios measured in one run are what to report.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable

import torch

__all__ = ["time_call", "time_interleaved"]

_REDUCE = {"median": statistics.median, "min": min}


def _check_reduce(reduce: str) -> None:
    if reduce not in _REDUCE:
        raise ValueError(f"reduce must be one of {sorted(_REDUCE)}, got {reduce!r}")


def _check_counts(warmup: int, repeats: int) -> None:
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    if not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be a non-negative integer, got {warmup!r}")


def time_call(
    fn: Callable[[], object],
    *,
    repeats: int = 5,
    warmup: int = 1,
    reduce: str = "median",
) -> float:
    """Seconds one ``fn()`` takes: ``warmup`` untimed calls, then ``repeats`` timed ones.

    Runs without autograd (timing a forward pass should not build a graph).
    ``reduce`` is ``"median"`` or ``"min"``.
    """
    return time_interleaved({"fn": fn}, repeats=repeats, warmup=warmup, reduce=reduce)[
        "fn"
    ]


def time_interleaved(
    fns: dict[str, Callable[[], object]],
    *,
    warmup: int = 2,
    repeats: int = 7,
    reduce: str = "median",
) -> dict[str, float]:
    """Seconds per call of each ``fns[name]()``, timed in turn, round after round.

    Interleaving makes background load hit every function alike, so the *ratios* between
    them are fair even when the absolute times are not. Every function first gets ``warmup``
    untimed calls; runs without autograd.
    """
    _check_reduce(reduce)
    _check_counts(warmup, repeats)
    times: dict[str, list[float]] = {name: [] for name in fns}
    with torch.no_grad():
        for fn in fns.values():
            for _ in range(warmup):
                fn()
        for _ in range(repeats):
            for name, fn in fns.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return {name: _REDUCE[reduce](t) for name, t in times.items()}
