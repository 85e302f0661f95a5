"""The questions tdi asks git, in a temp git repo: commits, merge-bases, trees."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible_repo import GIT_ENV, git

from tdi import git as tdi_git
from tdi.errors import BaselineError, GitError


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
    assert tdi_git.resolve_commit(repo, "trunk") == head
    assert tdi_git.resolve_commit(repo, "v1") == first
    assert tdi_git.resolve_commit(repo, first[:10]) == first


@pytest.mark.parametrize("ref", ["no-such-branch", "v9.9", "0123456789abcdef"])
def test_resolve_commit_unknown_ref(repo: Path, ref: str) -> None:
    with pytest.raises(BaselineError) as info:
        tdi_git.resolve_commit(repo, ref)
    message = str(info.value)
    assert f"unknown baseline ref '{ref}'" in message
    assert str(repo) in message


def test_merge_base_without_the_branch(repo: Path) -> None:
    with pytest.raises(BaselineError) as info:
        tdi_git.merge_base(repo, "main")
    message = str(info.value)
    assert "HEAD has no merge-base with 'main'" in message
    assert "no --baseline was given" in message
    assert str(repo) in message


def test_merge_base_of_head_and_the_branch(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "site.yml").write_text("# feature\n", encoding="utf-8")
    git(repo, "commit", "-q", "-am", "feature")
    assert tdi_git.merge_base(repo, "trunk") == base


def test_merge_base_falls_back_to_the_remote_tracking_branch(repo: Path) -> None:
    # A CI checkout often has origin/main and no local main.
    base = git(repo, "rev-parse", "HEAD~1")
    git(repo, "update-ref", "refs/remotes/origin/main", base)
    assert tdi_git.merge_base(repo, "main") == base


@pytest.mark.parametrize("question", ["resolve_commit", "merge_base"])
def test_outside_a_repository_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, question: str
) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    ask = getattr(tdi_git, question)
    with pytest.raises(BaselineError, match=r"is not a git repository: .*--production-image"):
        ask(tmp_path, "main")


def test_a_directory_inside_a_repository_is_not_one(repo: Path) -> None:
    inner = repo / "infra"
    inner.mkdir()
    with pytest.raises(BaselineError) as info:
        tdi_git.check_repo(inner)
    assert str(info.value).startswith(f"{inner} is not a git repository (it is inside {repo})")


def test_a_repository_without_commits_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    git(tmp_path, "init", "-q")
    with pytest.raises(BaselineError, match=r"is a git repository without commits"):
        tdi_git.merge_base(tmp_path, "main")


def test_git_own_reason_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no git on it
    with pytest.raises(GitError, match=r"^git is not installed"):
        tdi_git.check_repo(tmp_path)


def test_export_reads_the_commit_not_the_work_tree(
    repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    first = git(repo, "rev-parse", "HEAD~1")
    (repo / "site.yml").write_text("# uncommitted\n", encoding="utf-8")
    dest = tmp_path_factory.mktemp("export") / "tree"
    tdi_git.export(repo, first, dest)
    assert (dest / "site.yml").read_text(encoding="utf-8") == "# version 1\n"


def test_git_error_names_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    with pytest.raises(GitError, match=r"git log in .*not a git repository"):
        tdi_git.git(tmp_path, "log")


def test_changed_since_is_what_a_pull_request_changes_in_the_work_tree(repo: Path) -> None:
    # A commit on the base branch after the fork is not the pull request's.
    git(repo, "checkout", "-q", "-b", "base", "HEAD~1")
    (repo / "theirs.yml").write_text("d\n", encoding="utf-8")
    git(repo, "add", "theirs.yml")
    git(repo, "commit", "-q", "-m", "on base")
    git(repo, "checkout", "-q", "trunk")
    (repo / "committed.yml").write_text("a\n", encoding="utf-8")
    git(repo, "add", "committed.yml")
    git(repo, "commit", "-q", "-m", "on the branch")
    git(repo, "mv", "site.yml", "renamed.yml")  # staged, not committed
    (repo / "untracked.yml").write_text("b\n", encoding="utf-8")
    (repo / ".gitignore").write_text("ignored/\n", encoding="utf-8")
    (repo / "ignored").mkdir()
    (repo / "ignored" / "x").write_text("c\n", encoding="utf-8")
    (repo / "tests" / "__pycache__").mkdir(parents=True)  # a verifier's run wrote these
    (repo / "tests" / "__pycache__" / "test_x.cpython-311.pyc").write_bytes(b"\0")
    base, changed = tdi_git.changed_since(repo, "base")
    assert base == git(repo, "rev-parse", "trunk~2")
    names = [str(p.relative_to(repo)) for p in changed]
    assert names == [".gitignore", "committed.yml", "renamed.yml", "site.yml", "untracked.yml"]


def test_changed_since_an_unknown_ref_is_one_line_naming_it(repo: Path) -> None:
    with pytest.raises(GitError) as info:
        tdi_git.changed_since(repo, "origin/nope")
    assert str(info.value).startswith(f"--changed-since origin/nope: no such commit in {repo}")
    assert "\n" not in str(info.value)


def test_show_reads_a_file_at_a_commit(repo: Path) -> None:
    assert tdi_git.show(repo, "HEAD~1", "site.yml") == "# version 1"


@pytest.mark.parametrize("ref", ["--all", "-h", "main\nHEAD"])
def test_changed_since_a_ref_git_would_take_as_an_option_is_one_line(repo: Path, ref: str) -> None:
    with pytest.raises(GitError) as info:
        tdi_git.changed_since(repo, ref)
    assert str(info.value) == f"--changed-since {ref!r}: not a branch, tag or commit"
