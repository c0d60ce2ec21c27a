"""Statistics of benchmark results: growth exponents, ratio columns, the budget summary.

Every function takes plain numbers or the rows :func:`attnkit.bench.run_benchmark` returns
(or the same rows read back from ``bench.csv``: numbers may be strings).
"""

from __future__ import annotations

import math

__all__ = ["fit_exponent", "ratio_key", "budget_summary"]


def fit_exponent(lengths, times) -> float:
    """Least-squares slope of log(time) against log(length): time ≈ c · length^slope."""
    pairs = [
        (math.log(n), math.log(t))
        for n, t in zip(lengths, times)
        if t and t > 0 and n > 0
    ]
    if len(pairs) < 2:
        raise ValueError(
            f"need at least two positive (length, time) pairs, got {len(pairs)}"
        )
    mx = sum(x for x, _ in pairs) / len(pairs)
    my = sum(y for _, y in pairs) / len(pairs)
    sxx = sum((x - mx) ** 2 for x, _ in pairs)
    if sxx == 0:
        raise ValueError("need at least two different lengths to fit an exponent")
    return sum((x - mx) * (y - my) for x, y in pairs) / sxx


def ratio_key(baseline: str) -> str:
    """Column suffix for a baseline spec: ``"softmax:fast=false"`` → ``"softmax_fast-false"``."""
    return baseline.replace(":", "_").replace(",", "_").replace("=", "-")


def budget_summary(rows: list[dict], baseline: str = "softmax:fast=false") -> dict:
    """Where ``baseline`` stops fitting the budget, how every other spec compares to it.

    Args:
        rows: :func:`run_benchmark` rows (or a CSV read back: numbers may be strings).

    Returns:
        ``{"length": n*, "rows": [...]}`` with n* the longest length ``baseline`` ran at, and
        one row per spec: ``spec``, ``speedup`` and ``memory_ratio`` (baseline / spec at n*,
        ``None`` where the spec did not run there) and ``longest`` (its longest length that ran).
    """
    ok = [r for r in rows if r["status"] == "ok"]
    base = {int(r["length"]): r for r in ok if r["spec"] == baseline}
    if not base:
        raise ValueError(f"baseline {baseline!r} has no successful run in these rows")
    n_star = max(base)
    out = []
    for spec in dict.fromkeys(r["spec"] for r in rows):
        mine = {int(r["length"]): r for r in ok if r["spec"] == spec}
        at = mine.get(n_star)
        speed = float(base[n_star]["time_s"]) / float(at["time_s"]) if at else None
        mem = (
            float(base[n_star]["peak_mb"]) / float(at["peak_mb"])
            if at and float(at["peak_mb"]) > 0
            else None
        )
        out.append(
            {
                "spec": spec,
                "speedup": speed,
                "memory_ratio": mem,
                "longest": max(mine, default=None),
            }
        )
    return {"length": n_star, "rows": out}
