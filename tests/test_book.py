"""The book: its sources cite what references.bib holds and the glossary names each term in
Chinese; the whole book builds with every chapter executed and Sphinx warnings as errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CHAPTERS = sorted(BOOK.glob("[0-9][0-9]-*.ipynb"))
PAGES = sorted(BOOK.glob("*.md")) + CHAPTERS
CITE = re.compile(r"\{cite(?::\w+)?\}`([^`]+)`")
HAN = re.compile(r"[\u4e00-\u9fff]")
# the papers each chapter teaches (the design's table of contents): the chapter cites each one
REQUIRED = {
    "01": {"bahdanau2015neural", "nadaraya1964estimating", "watson1964smooth"},
    "02": {"bahdanau2015neural", "vaswani2017attention"},
    "03": {"miller2023attention"},
    "04": {"vaswani2017attention"},
    "05": {"child2019generating", "beltagy2020longformer", "zaheer2020bigbird"},
    "06": {"kitaev2020reformer", "indyk1998approximate", "andoni2015practical"},
    "07": {"katharopoulos2020transformers"},
    "08": {
        "choromanski2021rethinking",
        "peng2021random",
        "rahimi2007random",
        "bochner1933monotone",
        "xiong2021nystromformer",
    },
    "09": {"tay2021synthesizer"},
    "10": {"tay2021long"},
}


def _markdown(path: Path) -> str:
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        return "\n".join(
            "".join(c["source"]) for c in cells if c["cell_type"] == "markdown"
        )
    return path.read_text()


def _cited(path: Path) -> set[str]:
    return {
        key.strip() for keys in CITE.findall(_markdown(path)) for key in keys.split(",")
    }


def _bib_keys() -> list[str]:
    return re.findall(r"^@\w+\{([^,\s]+),", (BOOK / "references.bib").read_text(), re.M)


def _glossary_terms() -> list[str]:
    text = (BOOK / "glossary.md").read_text()
    block = text.split("```{glossary}", 1)[1].split("```", 1)[0]
    return [
        line.strip()
        for line in block.splitlines()
        if line.strip() and not line[0].isspace()
    ]


def test_every_citation_is_in_references_bib():
    keys = _bib_keys()
    assert len(keys) == len(set(keys)), (
        f"duplicate keys in references.bib: {sorted(keys)}"
    )
    missing = {
        p.name: sorted(_cited(p) - set(keys)) for p in PAGES if _cited(p) - set(keys)
    }
    assert not missing, f"cited but not in book/references.bib: {missing}"


@pytest.mark.parametrize("chapter", sorted(REQUIRED))
def test_each_chapter_cites_the_papers_it_teaches(chapter):
    (path,) = [p for p in CHAPTERS if p.name.startswith(chapter + "-")]
    assert REQUIRED[chapter] <= set(_bib_keys())
    uncited = REQUIRED[chapter] - _cited(path)
    assert not uncited, f"{path.name} does not cite {sorted(uncited)}"


def test_every_glossary_term_has_its_chinese_name_and_a_definition():
    text = (BOOK / "glossary.md").read_text()
    block = text.split("```{glossary}", 1)[1].split("```", 1)[0]
    terms = _glossary_terms()
    assert len(terms) >= 10 and len(terms) == len(set(terms)), terms
    for term in terms:
        match = re.fullmatch(r"(.+?) \((.+)\)", term)
        assert match, f"glossary term {term!r} is not 'English (中文)'"
        english, chinese = match.groups()
        assert HAN.search(chinese), f"glossary term {term!r} has no Chinese name"
        definition = block.split(term + "\n", 1)[1].splitlines()[0]
        assert definition.startswith("  ") and definition.strip(), (
            f"{term!r} has no definition"
        )


# --- the built book: one build (the session fixture built_book in conftest.py), on one
# pytest-xdist worker (group "book", shared with tests/test_browser.py)


@pytest.mark.xdist_group("book")
def test_every_chapter_is_built_with_executed_outputs(built_book):
    assert CHAPTERS
    for chapter in CHAPTERS:
        html = (built_book / "book" / f"{chapter.stem}.html").read_text()
        # (the bare word also appears in sphinx-thebe's inline config on every page)
        assert 'class="cell_output' in html, f"{chapter.name} shows no executed output"
        if int(chapter.name[:2]) > 0:
            figure = re.search(r'<img [^>]*src="[^"]*\.(png|svg)"', html)
            assert figure, f"{chapter.name} has no figure"


@pytest.mark.xdist_group("book")
def test_built_exercise_pages_are_shown_unexecuted(built_book):
    pages = sorted((built_book / "exercises").rglob("*.html"))
    assert pages
    for page in pages:
        assert 'class="cell_output' not in page.read_text(), f"{page.name} was executed"


@pytest.mark.xdist_group("book")
def test_built_bibliography_lists_every_entry_and_pages_link_citations(built_book):
    bibliography = (built_book / "book" / "bibliography.html").read_text()
    # one citation entry per BibTeX entry (their role is "listitem" since the accessibility fix)
    entries = re.findall(
        r'<div class="citation"[^>]*role="(?:listitem|doc-biblioentry)"', bibliography
    )
    assert len(entries) == len(_bib_keys())
    for page in PAGES:
        if _cited(page):
            html = (built_book / "book" / f"{page.stem}.html").read_text()
            links = set(re.findall(r'href="bibliography\.html#([^"]+)"', html))
            assert len(links) == len(_cited(page)), (
                f"{page.name} links {len(links)} citations"
            )


@pytest.mark.xdist_group("book")
def test_built_glossary_page_defines_every_term(built_book):
    html = (built_book / "book" / "glossary.html").read_text()
    terms = re.findall(r'<dt id="term-[^"]*"[^>]*>(.*?)</dt>', html, re.S)
    built = [
        re.sub(r"<[^>]+>", "", re.sub(r'<a class="headerlink".*?</a>', "", t)).strip()
        for t in terms
    ]
    assert built == _glossary_terms()


# --- measurements live in one appendix (book/measurement.md), which the chapters link


def test_measurement_appendix_names_every_table_and_labels_each_chapter():
    text = (BOOK / "measurement.md").read_text()
    tables = sorted(p.name for p in (BOOK / "data").glob("*.csv"))
    unnamed = [name for name in tables if name not in text]
    assert not unnamed, f"book/measurement.md gives no command for {unnamed}"
    chapters = sorted({name[2:4] for name in tables if name.startswith("ch")})
    unlabelled = [c for c in chapters if f"(measure-ch{c})=" not in text]
    assert not unlabelled, (
        f"book/measurement.md has no label measure-chNN for {unlabelled}"
    )
    toc = (ROOT / "_toc.yml").read_text()
    assert "file: book/measurement" in toc, "the appendix is not in _toc.yml"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapters_leave_benchmark_commands_to_the_appendix(chapter):
    text = _markdown(chapter)
    found = [
        needle
        for needle in ("flock ", "python -m attnkit.bench", "load average")
        if needle in text
    ]
    assert not found, (
        f"{chapter.name} gives {found} in its prose: benchmark commands, locks and "
        "machine load belong in book/measurement.md (link it with {ref}`measure-chNN`)"
    )


def test_preface_links_every_chapter_and_the_appendix():
    text = (BOOK / "00-preface.md").read_text()
    missing = [p.stem for p in CHAPTERS if "{doc}`" + p.stem + "`" not in text]
    assert not missing, f"the preface does not link {missing}"
    assert "{doc}`measurement`" in text


def test_measurement_appendix_agrees_with_the_recorded_runs():
    """scripts/measure_book.py records each run's date and load in measurements.json; the
    appendix's table of dates is copied from it: a row per run, with that date and load."""
    log_path = BOOK / "data" / "measurements.json"
    if not log_path.exists():
        pytest.skip(
            "no book/data/measurements.json yet (scripts/measure_book.py writes it)"
        )
    runs = json.loads(log_path.read_text())["runs"]
    rows = {
        line.split("|")[1].strip().strip("`"): line
        for line in (BOOK / "measurement.md").read_text().splitlines()
        if line.startswith("| `")
    }
    stale = []
    for name, run in runs.items():
        row = rows.get(name, "")
        if run["date"] not in row or f"{run['load_before'][0]:.2f}" not in row:
            stale.append(f"{name}: {run['date']}, load {run['load_before'][0]:.2f}")
    assert not stale, (
        "book/measurement.md's table of dates does not show these runs of "
        f"measurements.json (a row '| `run` | tables | date | load |'): {stale}"
    )
