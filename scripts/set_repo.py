"""Point the course at another GitHub repository (a fork): `make set-repo URL=https://github.com/you/repo`.

Rewrites the repository URL (and branch) in `_config.yml`, the README, `scripts/nbauthor.py`,
and the install lines and Colab links of the notebooks and pages in `book/` and `solutions/`.
The Makefile target then regenerates `exercises/` from `solutions/` with nbgrader. Run from the
repository root:

    python scripts/set_repo.py https://github.com/you/attention-course [--branch main]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SLUG = re.compile(r"^https://github\.com/([\w.-]+/[\w.-]+?)(?:\.git)?/?$")


def files_to_rewrite(root: Path) -> list[Path]:
    files = [root / "_config.yml", root / "README.md", root / "scripts" / "nbauthor.py"]
    for folder in ("book", "solutions"):
        files += sorted(
            p
            for p in (root / folder).rglob("*")
            if p.suffix in (".ipynb", ".md") and ".ipynb_checkpoints" not in p.parts
        )
    return [p for p in files if p.exists()]


def set_repo(root: Path, url: str, branch: str | None = None) -> list[Path]:
    """Rewrite every file that names the current repository; return the files changed."""
    match = SLUG.match(url)
    if not match:
        raise ValueError(
            f"url must look like https://github.com/OWNER/NAME, got {url!r}"
        )
    new_slug = match.group(1)
    config = (root / "_config.yml").read_text()
    old_url = (
        re.search(r"^repository:\n(?:  .*\n)*?  url: *(\S+)", config, re.M)
        .group(1)
        .rstrip("/")
    )
    old_slug = SLUG.match(old_url).group(1)
    old_branch = re.search(
        r"^repository:\n(?:  .*\n)*?  branch: *(\S+)", config, re.M
    ).group(1)
    branch = branch or old_branch
    # github.com/OLD (install lines, README, config), colab.../github/OLD/blob/BRANCH/ (Colab links)
    pattern = re.compile(
        r"(github\.com/|colab\.research\.google\.com/github/)"
        + re.escape(old_slug)
        + r"(?![\w.-])(/blob/"
        + re.escape(old_branch)
        + r"/)?"
    )

    def replace(m: re.Match) -> str:
        return m.group(1) + new_slug + (f"/blob/{branch}/" if m.group(2) else "")

    changed = []
    for path in files_to_rewrite(root):
        text = path.read_text()
        new = pattern.sub(replace, text)
        if path.name == "_config.yml" and path.parent == root:
            new = re.sub(
                r"^(repository:\n(?:  .*\n)*?  branch: *)\S+",
                lambda m: m.group(1) + branch,
                new,
                flags=re.M,
            )
        if new != text:
            path.write_text(new)
            changed.append(path)
    return changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="https://github.com/OWNER/NAME")
    parser.add_argument(
        "--branch", default=None, help="branch the Colab links open (default: keep)"
    )
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args()
    for path in set_repo(args.root, args.url, args.branch):
        print("rewrote", path.relative_to(args.root))


if __name__ == "__main__":
    main()
