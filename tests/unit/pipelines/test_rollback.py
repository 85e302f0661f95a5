"""Rollback: what it needs of the upgrade images (checked before any container), the image
each rollback node starts from, its steps, and its content diffs' names; no container."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest
from fakes import NullEngine

from tdi import config
from tdi.engine.protocol import SCRATCH_LABEL, ImageInfo
from tdi.errors import TdiError
from tdi.hosts.run import Node, Run
from tdi.phases.parity import BASELINE_STATE, Captures
from tdi.phases.steps import Context
from tdi.pipelines import baseline, rollback
from tdi.pipelines.production import REVISION
from tdi.provision.ansible import AnsibleEnv
from tdi.report.model import PASSED, Report, StateReport


def info(labels: Mapping[str, str]) -> ImageInfo:
    return ImageInfo("sha256:up", (), dict(labels), ("sleep", "infinity"), None)


class Images(NullEngine):
    """Upgrade images by reference: their labels, and whether they carry a baseline state."""

    def __init__(self, images: Mapping[str, ImageInfo], with_state: bool = True) -> None:
        self.images = dict(images)
        self.with_state = with_state
        self.committed: list[tuple[str, str, dict[str, str]]] = []

    def image(self, ref: str) -> ImageInfo | None:
        return self.images.get(ref)

    def has_path(self, image: str, path: str) -> bool:
        return self.with_state and path == BASELINE_STATE

    def commit(self, container: str, ref: str, labels: Mapping[str, str], image: ImageInfo) -> str:
        self.committed.append((container, ref, dict(labels)))
        return "sha256:kept"


def repo(tmp_path: Path) -> str:
    """A git repo with one commit; returns it."""
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t.invalid"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t.invalid", "PATH": "/usr/bin"}
    for argv in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "one"]):
        subprocess.run(["git", *argv], cwd=tmp_path, env=env, check=True)
    out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True)
    return out.stdout.strip()


def upgrade_run(tmp_path: Path, image: str = "up:1") -> Run:
    node = Node("upgrade", "upgrade", "tdi-host", image, "tdi-r1-upgrade")
    fresh = Node("fresh", "fresh", "tdi-host", "base:1", "tdi-r1-fresh")
    return Run("r1", tmp_path, {"fresh": fresh, "upgrade": node})


def test_a_baseline_snapshot_or_a_production_image_names_the_release_to_roll_back_to(
    tmp_path: Path,
) -> None:
    commit = repo(tmp_path)
    cfg = config.load(tmp_path)
    for label in (baseline.COMMIT_LABEL, REVISION):
        engine = Images({"up:1": info({label: commit})})
        assert rollback.check(engine, cfg, upgrade_run(tmp_path)) == commit
    assert rollback.release_of(info({})) is None


@pytest.mark.parametrize(
    ("labels", "with_state", "expected"),
    [
        ({}, True, r"^--rollback: image up:1 does not say which commit it runs"),
        ({REVISION: "HEAD"}, False, r"^--rollback: image up:1 carries no baseline state"),
        ({REVISION: "f" * 40}, True, r"^--rollback: the upgrade images run commit ffffffffffff, "),
    ],
)
def test_what_a_rollback_lacks_is_one_line_before_any_container(
    tmp_path: Path, labels: dict[str, str], with_state: bool, expected: str
) -> None:
    repo(tmp_path)
    engine = Images({"up:1": info(labels)}, with_state)
    with pytest.raises(TdiError, match=expected):
        rollback.check(engine, config.load(tmp_path), upgrade_run(tmp_path))


def test_each_converged_upgrade_node_is_kept_as_a_scratch_image_of_the_run(tmp_path: Path) -> None:
    run = upgrade_run(tmp_path)
    engine = Images({"up:1": info({})})
    report = Report({k: StateReport(n.image, converge=PASSED) for k, n in run.nodes.items()})
    ctx = Context(engine, config.load(tmp_path), AnsibleEnv(tmp_path), run, report)
    rollback.KEEP.act(ctx, "fresh")
    assert engine.committed == []  # fresh has nothing to roll back
    rollback.KEEP.act(ctx, "upgrade")
    assert engine.committed == [
        ("tdi-r1-upgrade", "tdi-rollback:r1-tdi-host", {SCRATCH_LABEL: "r1"})
    ]
    assert rollback.scratch("r1", "Web1") == "tdi-rollback:r1-web1"  # a repository is lower case


def test_the_upgrade_side_gains_its_steps_only_with_rollback(tmp_path: Path) -> None:
    cfg = config.load(tmp_path)
    assert rollback.steps(cfg) == ((), ())
    on = config.load(tmp_path, {"rollback": True})
    assert rollback.steps(on) == ((rollback.KEEP,), (rollback.ROLLBACK,))


def test_a_failed_rollback_converge_says_the_previous_release_cannot_be_re_applied(
    tmp_path: Path,
) -> None:
    outer_run = upgrade_run(tmp_path)
    node = Node("rollback", "rollback", "tdi-host", "tdi-rollback:r1-tdi-host", "tdi-r1-rollback")
    inner_run = Run("r1", tmp_path / "rollback", {"rollback": node})
    report = Report({k: StateReport(n.image, converge=PASSED) for k, n in outer_run.nodes.items()})
    report.joined("rollback", node.image, rollback.WITH_TESTS)
    report.states["rollback"].converge = "failed"
    report.states["rollback"].error = "converge: task 'Drop the new table' failed: no such table"
    cfg, env = config.load(tmp_path), AnsibleEnv(tmp_path)
    outer = Context(NullEngine(), cfg, env, outer_run, report)
    inner = Context(NullEngine(), cfg, env, inner_run, report, captures=Captures(cfg.parity))
    rollback._compare(inner, "rollback", outer, "0123456789abcdef")
    (found,) = report.rollbacks
    assert (found.key, found.upgrade, found.status) == ("rollback", "upgrade", "failed")
    assert found.error == (
        "the previous release (0123456789ab) cannot be re-applied: task 'Drop the new table' "
        "failed: no such table"
    )
    assert report.result == "failed"
