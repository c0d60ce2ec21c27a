"""`make set-repo URL=…` (scripts/set_repo.py): a fork changes the repository URL in one command."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from set_repo import files_to_rewrite, set_repo  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OLD = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
OLD_SLUG = OLD["url"].rstrip("/").removeprefix("https://github.com/")


@pytest.fixture
def copy(tmp_path) -> Path:
    for path in files_to_rewrite(ROOT):
        target = tmp_path / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    return tmp_path


def test_a_fork_url_reaches_config_install_lines_and_colab_links(copy):
    changed = set_repo(copy, "https://github.com/someone/attn-fork.git", branch="dev")
    assert (
        copy / "_config.yml" in changed and copy / "scripts" / "nbauthor.py" in changed
    )
    config = yaml.safe_load((copy / "_config.yml").read_text())["repository"]
    assert config == {
        **OLD,
        "url": "https://github.com/someone/attn-fork",
        "branch": "dev",
    }
    installs, colabs = 0, 0
    for path in files_to_rewrite(copy):
        text = path.read_text()
        assert OLD_SLUG not in text, f"{path.relative_to(copy)} still names {OLD_SLUG}"
        for url in re.findall(r"git\+(https://github\.com/[\w.-]+/[\w.-]+)", text):
            assert url == "https://github.com/someone/attn-fork"
            installs += 1
        for link in re.findall(r"colab\.research\.google\.com/github/([\w./-]+)", text):
            assert link.startswith("someone/attn-fork/blob/dev/"), link
            colabs += 1
    assert installs and colabs


def test_setting_the_url_back_restores_every_file(copy):
    before = {p: p.read_bytes() for p in files_to_rewrite(copy)}
    set_repo(copy, "https://github.com/someone/attn-fork", branch="dev")
    set_repo(copy, OLD["url"], branch=OLD["branch"])
    assert {p: p.read_bytes() for p in files_to_rewrite(copy)} == before


def test_a_url_that_is_not_a_github_repository_is_refused(copy):
    with pytest.raises(ValueError, match="OWNER/NAME"):
        set_repo(copy, "https://gitlab.com/someone/fork")
