"""Tests for attnkit.plot: show_heatmaps."""

import pytest
import torch

from attnkit import show_heatmaps


def test_show_heatmaps_returns_figure_with_grid_and_colorbar(close_figures):
    from matplotlib.figure import Figure

    weights = torch.rand(2, 3, 4, 5)
    fig = show_heatmaps(
        weights, xlabel="Keys", ylabel="Queries", titles=["a", "b", "c"]
    )
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2 * 3 + 1  # the panels plus the colorbar
    panels = fig.axes[:6]
    assert [ax.get_title() for ax in panels] == ["a", "b", "c"] * 2
    assert [ax.get_xlabel() for ax in panels] == ["", "", "", "Keys", "Keys", "Keys"]
    assert [ax.get_ylabel() for ax in panels] == ["Queries", "", "", "Queries", "", ""]
    shown = panels[4].images[0].get_array()
    assert shown.shape == (4, 5)
    torch.testing.assert_close(torch.as_tensor(shown.data), weights[1, 1])


def test_show_heatmaps_accepts_tensors_with_grad_and_checks_input(close_figures):
    w = torch.rand(1, 1, 2, 10, requires_grad=True)
    fig = show_heatmaps(w, "Keys", "Queries")
    assert len(fig.axes) == 2
    with pytest.raises(
        ValueError, match=r"matrices must be 4-D .* got shape \(2, 10\)"
    ):
        show_heatmaps(torch.rand(2, 10), "Keys", "Queries")
    with pytest.raises(
        ValueError, match="titles has 1 entries but matrices has 2 columns"
    ):
        show_heatmaps(torch.rand(1, 2, 3, 3), "Keys", "Queries", titles=["only one"])
