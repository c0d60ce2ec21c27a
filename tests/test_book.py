"""The whole book builds with every chapter executed and Sphinx warnings as errors."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# one build (the session fixture built_book in conftest.py), on one pytest-xdist worker
pytestmark = pytest.mark.xdist_group("book")


def test_every_chapter_is_built_with_executed_outputs(built_book):
    chapters = sorted((ROOT / "book").glob("[0-9][0-9]-*.ipynb"))
    assert chapters
    for chapter in chapters:
        html = (built_book / "book" / f"{chapter.stem}.html").read_text()
        # (the bare word also appears in sphinx-thebe's inline config on every page)
        assert 'class="cell_output' in html, f"{chapter.name} shows no executed output"
        if int(chapter.name[:2]) > 0:
            assert re.search(r'<img [^>]*src="[^"]*\.(png|svg)"', html), f"{chapter.name} has no figure"


def test_exercise_pages_are_shown_unexecuted(built_book):
    pages = sorted((built_book / "exercises").rglob("*.html"))
    assert pages
    for page in pages:
        assert 'class="cell_output' not in page.read_text(), f"{page.name} was executed"


def test_bibliography_and_glossary_are_built(built_book):
    assert "bibtex" in (built_book / "book" / "bibliography.html").read_text() or \
        "citation" in (built_book / "book" / "bibliography.html").read_text()
    assert "glossary" in (built_book / "book" / "glossary.html").read_text()
