"""Choosing the baseline commit in a temp git repo; no image is made."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tdi import config, snapshot
from tdi.errors import BaselineError

GIT_ENV = {
    "GIT_AUTHOR_NAME": "tdi tests",
    "GIT_AUTHOR_EMAIL": "tests@tdi.invalid",
    "GIT_COMMITTER_NAME": "tdi tests",
    "GIT_COMMITTER_EMAIL": "tests@tdi.invalid",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(root: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
    return proc.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repo on branch 'trunk' with two commits."""
    for name, value in GIT_ENV.items():
        monkeypatch.setenv(name, value)
    git(tmp_path, "init", "-q", "-b", "trunk")
    for n in (1, 2):
        (tmp_path / "site.yml").write_text(f"# version {n}\n", encoding="utf-8")
        git(tmp_path, "add", "site.yml")
        git(tmp_path, "commit", "-q", "-m", f"version {n}")
    return tmp_path


def test_resolve_commit_known_refs(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    first = git(repo, "rev-parse", "HEAD~1")
    git(repo, "tag", "v1", first)
    assert snapshot.resolve_commit(repo, "trunk") == head
    assert snapshot.resolve_commit(repo, "v1") == first
    assert snapshot.resolve_commit(repo, first[:10]) == first


@pytest.mark.parametrize("ref", ["no-such-branch", "v9.9", "0123456789abcdef"])
def test_resolve_commit_unknown_ref(repo: Path, ref: str) -> None:
    with pytest.raises(BaselineError) as info:
        snapshot.resolve_commit(repo, ref)
    message = str(info.value)
    assert f"unknown baseline ref '{ref}'" in message
    assert str(repo) in message


def test_default_ref_without_main_branch(repo: Path) -> None:
    cfg = config.load(repo)
    assert cfg.main_branch == "main"
    with pytest.raises(BaselineError) as info:
        snapshot.default_ref(cfg)
    message = str(info.value)
    assert "merge-base with 'main'" in message
    assert "no --baseline was given" in message


def test_default_ref_is_the_merge_base(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "site.yml").write_text("# feature\n", encoding="utf-8")
    git(repo, "commit", "-q", "-am", "feature")
    cfg = config.load(repo, {"main_branch": "trunk"})
    assert snapshot.default_ref(cfg) == base


def test_git_error_names_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    with pytest.raises(BaselineError, match=r"git log in .*not a git repository"):
        snapshot.git(tmp_path, "log")
