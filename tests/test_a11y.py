"""Figures everyone can read: the course style (attnkit.plot.use_course_style), figure descriptions
(attnkit.plot.describe_figure) and how they reach the book's alt text (book/_ext/figure_alt.py).
The audit of the built pages themselves (axe-core, keyboard) is in tests/test_browser.py."""

from __future__ import annotations

import base64
import io
import json
import sys
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pytest
import torch

from attnkit import plot

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]-*.ipynb"))


@pytest.fixture
def course_style(close_figures):
    with mpl.rc_context():
        plot.use_course_style()
        yield


def _luminance(rgb: np.ndarray) -> np.ndarray:
    """Relative luminance (WCAG) of sRGB colours in [0, 1]: what a greyscale print keeps."""
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    return lin @ np.array([0.2126, 0.7152, 0.0722])


# Viénot, Brettel & Mollon (1999) dichromat simulation on linear RGB
_DEUTERANOPIA = np.array(
    [[0.29275, 0.70725, 0.0], [0.29275, 0.70725, 0.0], [-0.02234, 0.02234, 1.0]]
)
_PROTANOPIA = np.array(
    [[0.11238, 0.88762, 0.0], [0.11238, 0.88762, 0.0], [0.00401, -0.00401, 1.0]]
)


def test_course_style_pairs_every_colour_with_its_own_line_style_and_marker(
    course_style,
):
    cycle = list(mpl.rcParams["axes.prop_cycle"])
    assert len(cycle) >= 6
    for key in ("color", "linestyle", "marker"):
        values = [repr(entry[key]) for entry in cycle]
        assert len(set(values)) == len(values), (
            f"two lines of the cycle share a {key}: lines differ by colour alone"
        )


def test_course_colours_stay_apart_for_red_green_colour_blindness(course_style):
    rgb = np.array([mpl.colors.to_rgb(c) for c in plot.COURSE_COLORS])
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    for name, matrix in (("deuteranopia", _DEUTERANOPIA), ("protanopia", _PROTANOPIA)):
        seen = np.clip(lin @ matrix.T, 0, 1)
        gaps = [
            np.abs(seen[i] - seen[j]).max() for i in range(len(seen)) for j in range(i)
        ]
        assert min(gaps) > 0.05, f"two course colours look alike under {name}"


def test_course_colormap_reads_in_greyscale(course_style):
    """The heatmap colormap's lightness rises steadily from one end to the other."""
    assert mpl.rcParams["image.cmap"] == plot.COURSE_CMAP
    lum = _luminance(mpl.colormaps[plot.COURSE_CMAP](np.linspace(0, 1, 256))[:, :3])
    assert (np.diff(lum) > 0).all() and lum[-1] - lum[0] > 0.6


def test_show_heatmaps_uses_the_course_colormap_under_the_style_and_d2ls_without(
    close_figures,
):
    w = torch.rand(1, 2, 3, 4)
    assert (
        plot.show_heatmaps(w, "keys", "queries").axes[0].images[0].get_cmap().name
        == "Reds"
    )
    with mpl.rc_context():
        plot.use_course_style()
        fig = plot.show_heatmaps(w, "keys", "queries", titles=["a", "b"])
    assert fig.axes[0].images[0].get_cmap().name == plot.COURSE_CMAP


def test_describe_figure_says_what_a_figure_shows(course_style):
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2)
    x = np.linspace(0, 5, 50)
    left.plot(x, np.sin(x), label="truth")
    left.plot(x, np.cos(x), label="prediction")
    left.set(title="Nadaraya–Watson", xlabel="x", ylabel="y")
    fig.colorbar(right.imshow(np.arange(12).reshape(3, 4)), ax=right)
    right.set(xlabel="keys", ylabel="queries")
    fig.suptitle("kernel regression")
    text = plot.describe_figure(fig)
    for expected in (
        "kernel regression",
        "2 panels",
        "Nadaraya–Watson",
        "2 lines: truth; prediction",
        "horizontal axis x",
        "vertical axis y",
        "3 by 4 heatmap",
        "from 0 (dark) to 11 (light)",
        "horizontal axis keys",
        "vertical axis queries",
    ):
        assert expected in text, f"{expected!r} missing from {text!r}"
    heatmaps = plot.describe_figure(
        plot.show_heatmaps(torch.rand(1, 3, 2, 2), "keys", "queries")
    )
    assert heatmaps.count("vertical axis queries") == 3, (
        "panels sharing an axis should read its label"
    )


def test_displayed_png_carries_the_description_and_the_book_makes_it_the_alt(
    course_style, tmp_path
):
    import matplotlib.pyplot as plt
    from PIL import Image

    fig, ax = plt.subplots()
    (line,) = ax.plot(np.arange(500), label="scores")
    ax.set_xlabel("position")
    png = base64.b64decode(plot._png_with_description(fig))
    assert Image.open(io.BytesIO(png)).text["Description"] == plot.describe_figure(fig)
    assert line.get_markevery() is not None, (
        "a dense line should not draw a marker at every point"
    )
    (tmp_path / "fig.png").write_bytes(png)
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    try:
        import figure_alt
    finally:
        sys.path.pop(0)
    assert figure_alt._description(tmp_path / "fig.png") == plot.describe_figure(fig)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_every_chapter_sets_the_course_style_in_its_first_cell(path):
    cells = json.loads(path.read_text())["cells"]
    first = "".join(next(c for c in cells if c["cell_type"] == "code")["source"])
    assert "use_course_style()" in first, (
        f"{path.name}: the first code cell does not call use_course_style()"
    )
