"""The code the book shows fits the page and is whole.

Every page listed in ``_toc.yml`` (chapters, exercise notebooks, prose pages) is read for
``literalinclude`` directives, and each directive's selection is computed with Sphinx's own
reader, so the test sees exactly the lines the built book shows.

- **Whole objects.** A ``:pyobject:`` names an object that exists. A selection made with
  ``:start-at:``/``:start-after:``/``:end-at:``/``:end-before:``/``:lines:`` starts at a
  statement of the module (or of a class) and every statement of that body it touches lies
  wholly inside it (``:end-at: "}"`` once stopped a dict after two lines).
- **Width.** Every line of a code cell, and every line of every included listing, is at most
  ``WIDTH`` characters: the book's code boxes hold 88 without scrolling sideways.
- **Length.** A function the book shows with ``:pyobject:`` has at most ``MAX_LINES`` source
  lines, counted from its ``def`` line (decorators included) to its last line, blank lines and
  comments included, its docstring excluded. A class listing counts each method the same way.

Violations are reported all at once, by page and directive.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from sphinx.directives.code import LiteralIncludeReader

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 88
MAX_LINES = 40
# a MyST directive fenced by backticks or colons, with its options block
DIRECTIVE = re.compile(
    r"^(?P<fence>`{3,}|:{3,})\{literalinclude\}[ \t]*(?P<arg>\S+)[ \t]*\n"
    r"(?P<body>.*?)^(?P=fence)[ \t]*$",
    re.M | re.S,
)
SELECTORS = ("start-at", "start-after", "end-at", "end-before", "lines")


def _pages() -> list[Path]:
    """The source of every page in the table of contents."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections", []))
            walk(entry.get("chapters", []))

    walk(toc.get("parts", []))
    pages = []
    for name in files:
        for suffix in (".ipynb", ".md"):
            if (ROOT / f"{name}{suffix}").exists():
                pages.append(ROOT / f"{name}{suffix}")
    return pages


PAGES = _pages()


def _cells(page: Path) -> list[tuple[str, str]]:
    """(cell type, source) for a notebook; one markdown cell for a MyST page."""
    if page.suffix == ".md":
        return [("markdown", page.read_text())]
    cells = json.loads(page.read_text())["cells"]
    return [(c["cell_type"], "".join(c["source"])) for c in cells]


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


@dataclass
class Include:
    page: Path
    path: Path
    options: dict

    def __str__(self) -> str:
        shown = ", ".join(f":{k}: {v!r}" for k, v in self.options.items())
        return f"{_rel(self.page)}: {_rel(self.path)} ({shown})"


def _options(body: str) -> dict:
    """A MyST options block: ``:key: value`` lines, values read as YAML (as MyST does)."""
    options = {}
    for line in body.splitlines():
        match = re.match(r"^:([\w-]+):\s*(.*)$", line)
        if match:
            value = yaml.safe_load(match.group(2)) if match.group(2) else None
            options[match.group(1)] = "" if value is None else str(value)
    return options


def _includes() -> list[Include]:
    found = []
    for page in PAGES:
        for kind, source in _cells(page):
            if kind != "markdown":
                continue
            for m in DIRECTIVE.finditer(source):
                path = (page.parent / m.group("arg")).resolve()
                found.append(Include(page, path, _options(m.group("body"))))
    return found


INCLUDES = _includes()
CONFIG = SimpleNamespace(source_encoding="utf-8-sig")


def _selection(inc: Include) -> tuple[list[str], int]:
    """The lines the book shows and the file line number of the first one."""
    options = {k: v for k, v in inc.options.items() if k != "caption"}
    reader = LiteralIncludeReader(str(inc.path), options, CONFIG)
    text, _ = reader.read()
    lines = text.splitlines()
    file_lines = inc.path.read_text().splitlines()
    # find where the shown block sits in the file (Sphinx's own line bookkeeping differs
    # between filters): the first position at or after the reader's start that matches
    first = reader.lineno_start
    for start in [first, *range(1, len(file_lines) + 1)]:
        if file_lines[start - 1 : start - 1 + len(lines)] == lines:
            return lines, start
    raise AssertionError(
        f"{inc}: the shown lines are not one contiguous block of the file"
    )


def _first_line(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", [])
    return min([node.lineno, *(d.lineno for d in decorators)])


def _bodies(tree: ast.Module):
    """The statement lists a listing may select from: the module's and each class's."""
    yield tree.body
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            yield node.body


def _partial_objects(inc: Include) -> list[str]:
    """Why a line-range selection does not show whole objects (empty when it does)."""
    lines, start = _selection(inc)
    end = start + len(lines) - 1
    code = [
        start + i
        for i, line in enumerate(lines)
        if line.strip() and not line.strip().startswith("#")
    ]
    if not code:
        return [f"{inc}: selects no code"]
    tree = ast.parse(inc.path.read_text())
    for body in _bodies(tree):
        if any(_first_line(node) == code[0] for node in body):
            cut = [
                node
                for node in body
                if node.end_lineno >= start
                and _first_line(node) <= end
                and not (start <= _first_line(node) and node.end_lineno <= end)
            ]
            return [
                f"{inc}: shows lines {start}-{end} but the statement at lines "
                f"{_first_line(n)}-{n.end_lineno} is cut"
                for n in cut
            ]
    return [f"{inc}: the selection starts at line {code[0]}, which begins no statement"]


def _object(inc: Include) -> ast.AST | None:
    tree = ast.parse(inc.path.read_text())
    node: ast.AST = tree
    for name in inc.options["pyobject"].split("."):
        children = [
            c
            for c in getattr(node, "body", [])
            if isinstance(c, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and c.name == name
        ]
        if not children:
            return None
        node = children[0]
    return node


def _length(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Source lines of a function, decorators included, docstring excluded."""
    total = fn.end_lineno - _first_line(fn) + 1
    first = fn.body[0]
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        total -= first.end_lineno - first.lineno + 1
    return total


def _functions(node: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return [node]
    return [
        c for c in node.body if isinstance(c, (ast.FunctionDef, ast.AsyncFunctionDef))
    ]


def violations() -> dict[str, list[str]]:
    """Every violation the book holds, by check."""
    found: dict[str, list[str]] = {"whole": [], "width": [], "length": []}
    for inc in INCLUDES:
        if not inc.path.exists():
            found["whole"].append(f"{inc}: no such file")
            continue
        if "pyobject" in inc.options:
            node = _object(inc)
            if node is None:
                found["whole"].append(f"{inc}: no object {inc.options['pyobject']!r}")
                continue
            for fn in _functions(node):
                if _length(fn) > MAX_LINES:
                    found["length"].append(
                        f"{inc}: {fn.name} has {_length(fn)} lines without its "
                        f"docstring (at most {MAX_LINES})"
                    )
        if any(k in inc.options for k in SELECTORS):
            found["whole"].extend(_partial_objects(inc))
        lines, start = _selection(inc)
        for i, line in enumerate(lines):
            if len(line) > WIDTH:
                found["width"].append(
                    f"{inc}: line {start + i} has {len(line)} characters"
                )
    for page in PAGES:
        for number, (kind, source) in enumerate(_cells(page)):
            if kind != "code":
                continue
            for line in source.splitlines():
                if len(line) > WIDTH:
                    found["width"].append(
                        f"{page.relative_to(ROOT)}: cell {number} has a line of "
                        f"{len(line)} characters: {line[:50]!r}…"
                    )
    return found


@pytest.fixture(scope="module")
def found() -> dict[str, list[str]]:
    return violations()


def test_the_book_has_listings():
    assert len(INCLUDES) > 50, [str(i) for i in INCLUDES]
    assert any("pyobject" in inc.options for inc in INCLUDES)


def test_every_listing_shows_whole_objects(found):
    assert not found["whole"], "\n".join(found["whole"])


def test_no_line_is_wider_than_the_page(found):
    assert not found["width"], "\n".join(found["width"])


def test_no_listed_function_is_over_forty_lines(found):
    assert not found["length"], "\n".join(found["length"])


def test_a_cut_selection_is_caught(tmp_path):
    module = tmp_path / "m.py"
    module.write_text('X = {\n    "a": 1,\n}\n\n\ndef f():\n    return {}\n')
    page = tmp_path / "p.md"
    cut = Include(page, module, {"start-at": "X = {", "end-at": ","})
    whole = Include(page, module, {"start-at": "X = {", "end-at": "}"})
    assert _partial_objects(cut) and not _partial_objects(whole)


def test_long_functions_are_counted_without_docstrings():
    source = 'def f():\n    """doc\n    more\n    """\n' + "    x = 1\n" * 40
    fn = ast.parse(source).body[0]
    assert _length(fn) == 41


if __name__ == "__main__":  # write the report the course's maintainers read
    for check, items in violations().items():
        for item in items:
            print(f"[{check}] {item}")
