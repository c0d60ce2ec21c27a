"""Plotting helpers on matplotlib: the course's figure style, figure descriptions, heatmaps.

Every figure in the book is readable in greyscale and by readers with red–green colour
blindness, and carries a text description of what it shows:

- ``use_course_style()`` (called in each chapter's first cell) sets the Okabe–Ito colour-blind-safe
  colours, each paired with its own line style and marker, and the perceptually uniform ``cividis``
  colormap, whose lightness grows monotonically (so it reads in greyscale too).
- ``describe_figure(fig)`` says in words what a figure shows (panels, titles, axes, the lines in
  the legend, heatmap sizes and colour ranges). In Jupyter, ``use_course_style()`` stores it in
  every displayed PNG as its ``Description``; the book copies it into the image's alt text
  (``book/_ext/figure_alt.py``).
"""

from __future__ import annotations

import torch

__all__ = [
    "COURSE_CMAP",
    "COURSE_COLORS",
    "describe_figure",
    "show_heatmaps",
    "use_course_style",
]

# Okabe & Ito's palette (without yellow, too light on white): distinct under every common colour
# vision deficiency. Each colour gets its own line style and marker, so lines differ without colour.
COURSE_COLORS = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#000000",
)
COURSE_LINESTYLES = (
    "-",
    "--",
    "-.",
    ":",
    (0, (5, 1, 1, 1)),
    (0, (3, 1, 1, 1, 1, 1)),
    (0, (1, 1)),
)
COURSE_MARKERS = ("o", "s", "^", "D", "v", "P", "X")
COURSE_CMAP = "cividis"
# a line with more points than this shows about this many markers (a marker per point would smear)
MARKERS_PER_LINE = 12


def use_course_style() -> None:
    """Set the course's colour-blind-safe matplotlib style for every figure that follows.

    Lines cycle through ``COURSE_COLORS``, each with its own line style and marker; images and
    heatmaps use ``COURSE_CMAP`` (``cividis``). Inside IPython/Jupyter, figures are then shown as
    PNGs whose ``Description`` metadata is ``describe_figure(fig)``, and dense lines show a marker
    every few points instead of at every point.
    """
    import matplotlib as mpl
    from cycler import cycler

    mpl.rcParams.update(
        {
            "axes.prop_cycle": cycler(color=COURSE_COLORS)
            + cycler(linestyle=COURSE_LINESTYLES)
            + cycler(marker=COURSE_MARKERS),
            "lines.markersize": 5,
            "image.cmap": COURSE_CMAP,
        }
    )
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    # load the notebook's backend now: loading it later (pyplot does so at the first figure) would
    # install the backend's own PNG formatter over this one
    plt.switch_backend(mpl.get_backend())
    shell.display_formatter.formatters["image/png"].for_type(
        Figure, _png_with_description
    )


def _thin_markers(fig) -> None:
    """Dense lines (more points than ``MARKERS_PER_LINE``) show about that many markers."""
    for ax in fig.axes:
        for line in ax.get_lines():
            n = len(line.get_xdata())
            if (
                line.get_marker() not in (None, "", "None", " ")
                and line.get_markevery() is None
                and n > MARKERS_PER_LINE
            ):
                line.set_markevery(max(1, n // MARKERS_PER_LINE))


def _png_with_description(fig) -> str | None:
    """The figure as a base64 PNG whose ``Description`` text chunk says what it shows."""
    from IPython.core.pylabtools import print_figure

    if not fig.axes and not fig.lines and not fig.images:
        return None  # an empty figure shows nothing, as IPython's own formatter does
    _thin_markers(fig)
    return print_figure(
        fig,
        "png",
        bbox_inches="tight",
        base64=True,
        metadata={"Description": describe_figure(fig)},
    )


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _axis(ax, which: str) -> str:
    # a panel sharing its axis with a labelled neighbour (show_heatmaps' grid) reads that label
    shared = ax.get_shared_x_axes() if which == "x" else ax.get_shared_y_axes()
    labels = [
        (a.get_xlabel() if which == "x" else a.get_ylabel()).strip()
        for a in [ax, *shared.get_siblings(ax)]
    ]
    label = next((lab for lab in labels if lab), "")
    scale = ax.get_xscale() if which == "x" else ax.get_yscale()
    lo, hi = ax.get_xlim() if which == "x" else ax.get_ylim()
    text = label or f"{which} (unlabelled)"
    if scale != "linear":
        text += f" ({scale} scale)"
    return f"{text}, from {_fmt(min(lo, hi))} to {_fmt(max(lo, hi))}"


def _describe_axes(ax) -> str:
    parts = []
    for im in ax.images:
        rows, cols = im.get_array().shape[:2]
        lo, hi = im.get_clim()
        parts.append(
            f"a {rows} by {cols} heatmap, colour from {_fmt(lo)} (dark) to {_fmt(hi)} (light)"
            if im.get_cmap().name == COURSE_CMAP
            else f"a {rows} by {cols} heatmap "
            f"({im.get_cmap().name} colours from {_fmt(lo)} to {_fmt(hi)})"
        )
    lines = [ln for ln in ax.get_lines() if ln.get_visible()]
    named = [ln.get_label() for ln in lines if not ln.get_label().startswith("_")]
    if lines:
        what = f"{len(lines)} line{'s' if len(lines) > 1 else ''}"
        parts.append(what + (": " + "; ".join(named) if named else ""))
    points = [c for c in ax.collections if type(c).__name__ == "PathCollection"]
    if points:
        labels = [c.get_label() for c in points if not c.get_label().startswith("_")]
        parts.append("scattered points" + (": " + "; ".join(labels) if labels else ""))
    bars = [p for p in ax.patches if type(p).__name__ == "Rectangle"]
    if bars:
        parts.append(f"{len(bars)} bars")
    title = ax.get_title().strip()
    head = f'"{title}": ' if title else ""
    shown = ", ".join(parts) or "no data"
    return f"{head}{shown}; horizontal axis {_axis(ax, 'x')}; vertical axis {_axis(ax, 'y')}"


def describe_figure(fig) -> str:
    """Say in words what a matplotlib figure shows: the text alternative of a figure.

    Args:
        fig: a ``matplotlib.figure.Figure``.

    Returns:
        One paragraph: the figure's title, then per panel its title, the heatmaps (size and
        colour range), lines (with their legend labels), points and bars it draws, and both axes
        (label, scale and range). Colorbars are folded into the heatmaps they belong to.
    """
    colorbar_axes = {
        im.colorbar.ax for ax in fig.axes for im in ax.images if im.colorbar is not None
    }
    colorbar_axes |= {
        c.colorbar.ax
        for ax in fig.axes
        for c in ax.collections
        if getattr(c, "colorbar", None)
    }
    panels = [ax for ax in fig.axes if ax not in colorbar_axes and ax.get_visible()]
    suptitle = fig.get_suptitle().strip() if hasattr(fig, "get_suptitle") else ""
    head = f'Figure "{suptitle}"' if suptitle else "Figure"
    if len(panels) == 1:
        return f"{head}: {_describe_axes(panels[0])}."
    body = " ".join(
        f"Panel {i}, {_describe_axes(ax)}." for i, ax in enumerate(panels, 1)
    )
    return f"{head} with {len(panels)} panels. {body}"


def show_heatmaps(
    matrices,
    xlabel: str,
    ylabel: str,
    titles=None,
    figsize=None,
    cmap: str | None = None,
):
    """Draw a grid of heatmaps, d2l's ``show_heatmaps`` on plain matplotlib.

    Args:
        matrices: ``(rows, cols, L, S)`` tensor or array (e.g. attention weights).
        xlabel, ylabel: axis labels (bottom row / first column only).
        titles: ``cols`` titles, or ``None``.
        figsize: size of the whole figure in inches, as in d2l; ``None`` gives each panel 2.5 × 2.5.
        cmap: matplotlib colormap name; ``None`` is the course's ``cividis`` once
            ``use_course_style()`` is in effect, else d2l's ``"Reds"``.

    Returns:
        The matplotlib ``Figure`` — assign it (``fig = show_heatmaps(...)``) in a
        notebook, or Jupyter shows the picture twice.
    """
    import matplotlib.pyplot as plt

    if cmap is None:
        cmap = COURSE_CMAP if plt.rcParams["image.cmap"] == COURSE_CMAP else "Reds"
    m = torch.as_tensor(matrices).detach().float().cpu()
    if m.dim() != 4:
        raise ValueError(
            f"matrices must be 4-D (rows, cols, L, S), got shape {tuple(m.shape)}"
        )
    rows, cols = m.shape[:2]
    if titles is not None and len(titles) != cols:
        raise ValueError(
            f"titles has {len(titles)} entries but matrices has {cols} columns"
        )
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=figsize if figsize is not None else (2.5 * cols, 2.5 * rows),
        sharex=True,
        sharey=True,
        squeeze=False,
    )
    # one colour scale for every panel, so the shared colorbar is true for all of them
    vmin, vmax = float(m.min()), float(m.max())
    for i in range(rows):
        for j in range(cols):
            ax = axes[i, j]
            pcm = ax.imshow(m[i, j].numpy(), cmap=cmap, vmin=vmin, vmax=vmax)
            if i == rows - 1:
                ax.set_xlabel(xlabel)
            if j == 0:
                ax.set_ylabel(ylabel)
            if titles is not None:
                ax.set_title(titles[j])
    fig.colorbar(pcm, ax=axes, shrink=0.6)
    return fig
