"""The GitHub Actions workflows (.github/workflows/), checked so that a broken one fails here.

actionlint (a static checker for workflow files: syntax, expressions, action inputs, shell scripts
through shellcheck) comes as a binary inside a PyPI wheel of the ``test`` extra, with shellcheck
beside it. Without it the check is skipped with what to install; in CI (``CI`` set) it fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
BIN = Path(sys.executable).parent
# actionlint finds shellcheck on PATH: the environment's bin folder first
PATH = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
INSTALL_HINT = (
    "actionlint is missing: `pip install -e '.[test]'` installs it (and shellcheck)"
)


def _actionlint() -> str:
    found = shutil.which("actionlint", path=PATH)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(INSTALL_HINT)
        pytest.skip(INSTALL_HINT)
    return found


def _lint(*files: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [_actionlint(), "-no-color", "-oneline", *map(str, files)],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": PATH},
        cwd=ROOT,
        timeout=120,
    )


def _load(name: str) -> dict:
    doc = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as True
    return doc


def _steps(doc: dict) -> list[dict]:
    return [step for job in doc["jobs"].values() for step in job.get("steps", [])]


def test_workflows_pass_actionlint():
    assert {p.name for p in WORKFLOWS} >= {"test.yml", "book.yml"}, (
        "a workflow is missing"
    )
    proc = _lint(*WORKFLOWS)
    assert proc.returncode == 0 and not proc.stdout.strip(), (
        f"actionlint:\n{proc.stdout}{proc.stderr}"
    )


def test_actionlint_catches_a_broken_workflow(tmp_path):
    """The check above is not vacuous: an unknown input and a bad expression fail."""
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(
        "on: push\n"
        "jobs:\n"
        "  t:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - uses: actions/setup-python@v6\n"
        "        with: {pyhton-version: '3.11'}\n"
        "      - run: echo ${{ github.nonexistent_context }}\n"
    )
    proc = _lint(broken)
    assert proc.returncode != 0
    assert "pyhton-version" in proc.stdout and "nonexistent_context" in proc.stdout, (
        proc.stdout
    )


def test_test_workflow_runs_ci_run_after_installing_what_it_installs():
    doc = _load("test.yml")
    assert {"push", "pull_request"} <= set(doc["on"])
    runs = [s.get("run", "") for s in _steps(doc)]
    assert any(r.strip() == ".ci/run" for r in runs), (
        "the test workflow must run .ci/run"
    )

    def packages(text):
        return set(re.findall(r"apt-get install -y ([\w\- ]+)", text)[0].split())

    ci_run = (ROOT / ".ci" / "run").read_text()
    assert packages("\n".join(runs)) == packages(ci_run), (
        "the workflow's apt packages differ from .ci/run's"
    )
    python = [
        s for s in _steps(doc) if s.get("uses", "").startswith("actions/setup-python@")
    ]
    assert python and python[0]["with"].get("cache") == "pip", (
        "pip downloads are not cached"
    )


def test_book_workflow_publishes_build_html_with_the_pages_actions():
    doc = _load("book.yml")
    assert "push" in doc["on"]
    assert doc["permissions"] == {
        "contents": "read",
        "pages": "write",
        "id-token": "write",
    }
    assert doc["concurrency"] == {"group": "pages", "cancel-in-progress": False}
    build, deploy = doc["jobs"]["build"], doc["jobs"]["deploy"]
    assert "default_branch" in build["if"]
    uses = [s.get("uses", "").split("@")[0] for s in build["steps"]]
    assert uses.index("actions/configure-pages") < uses.index(
        "actions/upload-pages-artifact"
    )
    assert any(s.get("run", "").strip() == "make book" for s in build["steps"])
    upload = next(
        s
        for s in build["steps"]
        if s.get("uses", "").startswith("actions/upload-pages-artifact@")
    )
    assert upload["with"]["path"] == "_build/html"
    assert (
        deploy["needs"] == "build" and deploy["environment"]["name"] == "github-pages"
    )
    assert [s["uses"].split("@")[0] for s in deploy["steps"]] == [
        "actions/deploy-pages"
    ]
    python = [
        s
        for s in build["steps"]
        if s.get("uses", "").startswith("actions/setup-python@")
    ]
    assert python and python[0]["with"].get("cache") == "pip", (
        "pip downloads are not cached"
    )
