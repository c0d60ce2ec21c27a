"""Repository conventions: notebooks stored clean, the toc complete, one repository URL."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(
    p
    for d in ("book", "solutions", "exercises")
    for p in (ROOT / d).rglob("*.ipynb")
    if ".ipynb_checkpoints" not in p.parts
)
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]-*.ipynb"))


def _toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for e in entries:
            if "file" in e:
                files.append(e["file"])
            walk(e.get("sections", []))
            walk(e.get("chapters", []))

    walk(toc.get("parts", []))
    walk(toc.get("chapters", []))
    return files


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebooks_are_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {i} of {path.name} has stored outputs"
            assert cell.execution_count is None, (
                f"cell {i} of {path.name} has an execution count"
            )
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


def test_every_toc_entry_exists_and_every_chapter_is_listed():
    files = _toc_files()
    for f in files:
        matches = list(ROOT.glob(f + ".*"))
        assert matches, f"_toc.yml lists {f}, which does not exist"
    for chapter in CHAPTERS:
        assert f"book/{chapter.stem}" in files, f"{chapter.name} is not in _toc.yml"
    for folder in sorted((ROOT / "exercises").glob("ch*")):
        assert f"exercises/{folder.name}/{folder.name}" in files, (
            f"exercise {folder.name} is not in _toc.yml"
        )


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapters_end_with_exercises_linking_their_notebook(path):
    nb = nbformat.read(path, as_version=4)
    number = int(path.name[:2])
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "## Exercises" in text, f"{path.name} has no Exercises section"
    tail = text[text.rindex("## Exercises") :]
    assert re.search(
        rf"exercises/ch{number:02d}-[a-z0-9-]+/ch{number:02d}-[a-z0-9-]+", tail
    ), f"{path.name}'s Exercises section does not link exercises/ch{number:02d}-…"
    assert "colab.research.google.com" in tail


def test_one_repository_url():
    """Install lines and Colab links use the URL set in _config.yml."""
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"][
        "url"
    ].rstrip("/")
    slug = url.removeprefix("https://github.com/")
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            for found in re.findall(
                r"git\+(https://github\.com/[\w.-]+/[\w.-]+)", cell.source
            ):
                assert found == url, f"{path.name} installs from {found}, not {url}"
            for found in re.findall(
                r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)", cell.source
            ):
                assert found == slug, f"{path.name} links Colab to {found}, not {slug}"


def test_no_build_output_is_tracked():
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    if not tracked:
        pytest.fail("git ls-files found nothing: run the tests in a git checkout")
    bad = [
        f
        for f in tracked
        if re.match(r"(_build|\.venv|submitted|autograded|feedback)/", f)
        or f.endswith("gradebook.db")
    ]
    assert not bad, f"build output is tracked: {bad[:5]}"
