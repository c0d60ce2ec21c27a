"""Figures for :mod:`attnkit.bench`: growth on log–log axes, ratios against a baseline, and a
Long-Range-Arena-style bubble chart of accuracy against speed and memory.

Every function takes the rows :func:`attnkit.bench.run_benchmark` returns (or the same rows
read back from ``bench.csv``: numbers may be strings, empty for runs that did not happen),
draws with matplotlib and returns the ``Figure`` (saved to ``path`` when one is given).
"""

from __future__ import annotations

from pathlib import Path

from .stats import fit_exponent, ratio_key

__all__ = ["plot_rows", "plot_ratios", "bubble_chart"]


def _num(value):
    """A CSV cell (or a number) as a float; ``None`` when empty."""
    return None if value in ("", None) else float(value)


def _finish(fig, path):
    import matplotlib.pyplot as plt

    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(fig)
    return fig


def plot_rows(
    rows: list[dict], column: str, ylabel: str, path: Path | None = None, ax=None
):
    """Log–log plot of ``column`` against length, one line per spec.

    The fitted growth exponent of each spec is in the legend.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4)) if ax is None else (ax.figure, ax)
    colours = plt.get_cmap("tab20").colors
    for i, spec in enumerate(dict.fromkeys(r["spec"] for r in rows)):
        pts = [
            (int(r["length"]), _num(r[column]))
            for r in rows
            if r["spec"] == spec and r["status"] == "ok" and (_num(r[column]) or 0) > 0
        ]
        if not pts:
            continue
        ns, ys = zip(*pts)
        label = spec if len(pts) < 2 else f"{spec} (slope {fit_exponent(ns, ys):.2f})"
        ax.loglog(
            ns,
            ys,
            marker="osD^v<>"[i % 7],
            ls=("-", "--")[i // 7 % 2],
            color=colours[2 * i % 20 + i // 10 % 2],
            label=label,
        )
    ax.set_xlabel("sequence length n")
    ax.set_ylabel(ylabel)
    if ax.lines:
        ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    return _finish(fig, path)


def plot_ratios(
    rows: list[dict],
    baseline: str,
    lengths,
    *,
    memory_length=None,
    labels=None,
    path: Path | None = None,
):
    """Table 2 of the Long Range Arena as a figure: speed-up per length, memory ratio at one length.

    Left: grouped bars of ``speedup_vs_<baseline>`` (baseline time / time; > 1 is faster) at
    each of ``lengths``; right: ``memory_ratio_vs_<baseline>`` at ``memory_length`` (default:
    the last of ``lengths``). A run that did not happen gets no bar. ``labels`` maps specs to
    shorter names.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    key = ratio_key(baseline)
    memory_length = lengths[-1] if memory_length is None else memory_length
    specs = [s for s in dict.fromkeys(r["spec"] for r in rows) if s != baseline]
    cell = {(r["spec"], int(r["length"])): r for r in rows}
    names = [(labels or {}).get(s, s) for s in specs]
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 1.2]}
    )
    width = 0.8 / len(lengths)
    x = np.arange(len(specs))
    for i, n in enumerate(lengths):
        ys = [
            _num(cell[s, n][f"speedup_vs_{key}"]) if (s, n) in cell else None
            for s in specs
        ]
        left.bar(
            x[[y is not None for y in ys]] + i * width - 0.4 + width / 2,
            [y for y in ys if y is not None],
            width,
            label=f"n = {n}",
        )
    left.axhline(1.0, color="black", lw=0.8)
    left.set_yscale("log")
    left.set_xticks(x, names, rotation=45, ha="right", fontsize=8)
    left.set_ylabel(f"speed-up vs {baseline}")
    left.legend(fontsize=8)
    mem = [
        _num(cell[s, memory_length][f"memory_ratio_vs_{key}"])
        if (s, memory_length) in cell
        else None
        for s in specs
    ]
    right.barh(
        [n for n, m in zip(names, mem) if m is not None],
        [m for m in mem if m is not None],
        color="tab:gray",
    )
    right.axvline(1.0, color="black", lw=0.8)
    right.set_xscale("log")
    right.tick_params(axis="y", labelsize=8)
    right.set_xlabel(f"memory saving at n = {memory_length}")
    fig.tight_layout()
    return _finish(fig, path)


def bubble_chart(
    points: list[dict],
    *,
    xlabel: str,
    ylabel: str,
    size_label: str,
    path: Path | None = None,
):
    """Accuracy against speed, bubble area ∝ memory (the Long Range Arena's Figure 3).

    Args:
        points: dicts with ``label``, ``x`` (speed), ``y`` (accuracy) and ``size``
            (memory, any unit).
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    biggest = max(p["size"] for p in points)
    for p in points:
        ax.scatter(p["x"], p["y"], s=60 + 1500 * p["size"] / biggest, alpha=0.45)
        ax.annotate(p["label"], (p["x"], p["y"]), fontsize=8, ha="center", va="center")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"bubble area ∝ {size_label}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    return _finish(fig, path)
