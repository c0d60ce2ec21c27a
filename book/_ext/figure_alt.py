"""Sphinx extension: every image in the book gets a text alternative that says what it shows.

A figure a chapter draws reaches the page as a PNG written by myst-nb. ``attnkit.plot.use_course_style()``
(each chapter's first cell) stores ``attnkit.plot.describe_figure(fig)`` in that PNG's ``Description``
text chunk; here the description becomes the image's ``alt``. An image with neither an alt text of its
own (myst-nb's ``mystnb: image: alt:`` cell metadata, ``:alt:`` on a directive) nor a description gets a
warning, which fails the book build (``-W``): without it docutils would use the file name as the alt.
"""
from __future__ import annotations

from pathlib import Path

from docutils import nodes
from sphinx.util import logging

logger = logging.getLogger(__name__)


def _description(path: Path) -> str:
    if path.suffix.lower() != ".png" or not path.is_file():
        return ""
    from PIL import Image  # Pillow comes with matplotlib

    with Image.open(path) as im:
        return " ".join(str(getattr(im, "text", {}).get("Description", "")).split())


def _add_alt(app, doctree):
    docname = app.env.docname
    for node in doctree.findall(nodes.image):
        if node.get("alt", "").strip():
            continue
        uri = node["uri"]
        if "://" in uri or uri.startswith("data:"):
            continue
        candidates = [Path(app.srcdir, uri), Path(app.env.relfn2path(uri, docname)[1])]
        text = next((d for d in map(_description, candidates) if d), "")
        if text:
            node["alt"] = text
        else:
            logger.warning(f"image {uri} has no alt text and no Description to take one from "
                           "(call attnkit.plot.use_course_style() in the first cell, or give it an alt)",
                           location=node, type="figure_alt", subtype="missing")


def setup(app):
    app.connect("doctree-read", _add_alt)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
