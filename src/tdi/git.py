"""The few questions tdi asks git: commits, merge-bases, and a commit's tree."""

from __future__ import annotations

import logging
import tarfile
from pathlib import Path

from tdi import process
from tdi.errors import BaselineError, GitError, TdiError, ToolError

log = logging.getLogger(__name__)


# git archive of a large history on a slow disk; a hung git (a credential prompt) ends.
TIMEOUT = 300.0


def git(root: Path, *args: str) -> str:
    try:
        proc = process.run(["git", *args], cwd=root, timeout=TIMEOUT)
    except ToolError as exc:
        if exc.tail.startswith("cannot run"):
            raise GitError("git is not installed: tdi reads the upgrade state from git") from exc
        raise GitError(f"git {' '.join(args)} in {root}: {exc.tail}") from exc
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        raise GitError(f"git {' '.join(args)} in {root}: {lines[-1] if lines else 'failed'}")
    return proc.stdout.strip()


def check_repo(root: Path) -> None:
    """A baseline needs git history: say so plainly where there is none."""
    try:
        top = Path(git(root, "rev-parse", "--show-toplevel"))
    except GitError as exc:
        if "not a git repository" not in str(exc):
            raise  # git's own reason: a repository of another owner, say
        top = None
    # A directory inside another repository is not one either: the baseline is read from
    # the top of a commit's tree.
    if top is None or top.resolve() != root.resolve():
        inside = f" (it is inside {top})" if top else ""
        raise BaselineError(
            f"{root} is not a git repository{inside}: tdi makes the upgrade state from the "
            "playbook at an earlier commit; run it in a clone, or pass --production-image"
        )
    empty = BaselineError(
        f"{root} is a git repository without commits: commit the playbook first, or "
        "pass --production-image"
    )
    commit_of(root, "HEAD", empty)


def commit_of(root: Path, ref: str, unknown: TdiError) -> str:
    """The commit ``ref`` names in ``root``'s repository; ``unknown`` where it names none."""
    try:
        return git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except GitError:
        raise unknown from None


def resolve_commit(root: Path, ref: str) -> str:
    check_repo(root)
    unknown = f"unknown baseline ref '{ref}' in {root}: pass a branch, tag or commit that exists"
    return commit_of(root, ref, BaselineError(unknown))


def merge_base(root: Path, branch: str) -> str:
    """The merge-base of HEAD and ``branch`` (or origin/``branch``), or one clear error."""
    check_repo(root)
    # A CI checkout often has only the remote-tracking branch.
    for candidate in (branch, f"origin/{branch}"):
        try:
            commit = git(root, "merge-base", "HEAD", candidate)
        except GitError:
            continue
        log.info(
            "no --baseline given: using the merge-base of HEAD and %s, %s", candidate, commit[:12]
        )
        return commit
    raise BaselineError(
        f"no upgrade image: no production image is configured or present, no --baseline was "
        f"given, and HEAD has no merge-base with '{branch}' in {root}"
    )


def has_path(root: Path, commit: str, path: str) -> bool:
    """Whether ``commit``'s tree holds ``path`` (a file, link or directory)."""
    proc = process.run(["git", "cat-file", "-e", f"{commit}:{path}"], cwd=root, timeout=TIMEOUT)
    return proc.ok


def export(root: Path, commit: str, dest: Path) -> None:
    """The tree at ``commit``, read from git, never from the work tree."""
    archive = dest.with_suffix(".tar")
    git(root, "archive", "--format=tar", "-o", str(archive), commit)
    with tarfile.open(archive) as tar:
        # "tar", not "data": the tree is the repo's own, and may hold absolute symlinks.
        tar.extractall(dest, filter="tar")


def changed_since(root: Path, ref: str) -> tuple[str, list[Path]]:
    """The merge-base of ``ref`` and HEAD, and the files a pull request from HEAD to
    ``ref`` changes as it stands in the work tree: every file that differs from that
    merge-base (committed, staged or not; a rename is its two paths), and the untracked
    files git does not ignore (nor Python's caches), as absolute paths."""
    if ref.startswith("-") or not ref.isprintable():  # git would read it as an option
        raise GitError(f"--changed-since {ref!r}: not a branch, tag or commit")
    top = Path(git(root, "rev-parse", "--show-toplevel"))
    unknown = GitError(
        f"--changed-since {ref}: no such commit in {top} (pass a branch, tag or commit "
        "that exists; a CI checkout needs its history: fetch-depth: 0)"
    )
    commit_of(top, ref, unknown)
    try:
        base = git(top, "merge-base", ref, "HEAD")
    except GitError:
        raise GitError(
            f"--changed-since {ref}: {ref} and HEAD have no common commit in {top} "
            "(a shallow clone? fetch more history)"
        ) from None
    names = git(top, "diff", "--name-only", "--no-renames", "-z", base).split("\0")
    # Untracked, as a .gitignore would leave them out: Python's bytecode caches, which a
    # test run (Molecule's verifier, say) writes beside the tests, are no one's input.
    untracked = ["--exclude=__pycache__/", "--exclude=*.py[co]", "--exclude=.pytest_cache/"]
    names += git(top, "ls-files", "--others", "--exclude-standard", *untracked, "-z").split("\0")
    return base, sorted({top / name for name in names if name})


def show(root: Path, commit: str, path: str) -> str:
    """The text of ``path`` (relative to ``root``) at ``commit``."""
    return git(root, "show", f"{commit}:./{path}")
