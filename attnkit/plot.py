"""Plotting helpers on matplotlib."""
from __future__ import annotations

import torch

__all__ = ["show_heatmaps"]


def show_heatmaps(
    matrices,
    xlabel: str,
    ylabel: str,
    titles=None,
    figsize=None,
    cmap: str = "Reds",
):
    """Draw a grid of heatmaps, d2l's ``show_heatmaps`` on plain matplotlib.

    Args:
        matrices: ``(rows, cols, L, S)`` tensor or array (e.g. attention weights).
        xlabel, ylabel: axis labels (bottom row / first column only).
        titles: ``cols`` titles, or ``None``.
        figsize: size of the whole figure in inches, as in d2l; ``None`` gives each panel 2.5 × 2.5.
        cmap: matplotlib colormap name.

    Returns:
        The matplotlib ``Figure`` — assign it (``fig = show_heatmaps(...)``) in a
        notebook, or Jupyter shows the picture twice.
    """
    import matplotlib.pyplot as plt

    m = torch.as_tensor(matrices).detach().float().cpu()
    if m.dim() != 4:
        raise ValueError(f"matrices must be 4-D (rows, cols, L, S), got shape {tuple(m.shape)}")
    rows, cols = m.shape[:2]
    if titles is not None and len(titles) != cols:
        raise ValueError(f"titles has {len(titles)} entries but matrices has {cols} columns")
    fig, axes = plt.subplots(
        rows, cols, figsize=figsize if figsize is not None else (2.5 * cols, 2.5 * rows),
        sharex=True, sharey=True, squeeze=False,
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
