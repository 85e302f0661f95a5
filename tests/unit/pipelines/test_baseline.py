"""The baseline snapshot's tags, its cache key, when it is reused, its builder's lock, and
what an unfinished build leaves (nothing); no container is started."""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from fakes import NullEngine

from tdi import config, git, locks
from tdi.engine.protocol import Engine, ImageInfo
from tdi.errors import BaselineError
from tdi.pipelines import baseline

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def info(image_id: str, labels: Mapping[str, str] | None = None) -> ImageInfo:
    return ImageInfo(image_id, (), dict(labels or {}), None, None)


def load(root: Path, text: str = "", **flags: Any) -> config.Config:
    if text:
        (root / "tdi.yml").write_text(text, encoding="utf-8")
    return config.load(root, flags)


def fresh_of(cfg: config.Config, image_id: str = "sha256:base") -> baseline.Images:
    return {h: ("tdi-base:1", info(image_id)) for h in cfg.topology.names}


TWO_HOSTS = "hosts:\n  DB: {groups: [db]}\n  web1: {groups: [web]}\n"


def tag_of(cfg: config.Config, host: str, key: str) -> str:
    """``host``'s snapshot of COMMIT with cache key ``key``."""
    return baseline._tags(cfg, COMMIT, key)[host]


def test_tag_of_one_host_and_of_a_topology(tmp_path: Path) -> None:
    key = "f" * 64
    (tmp_path / "one").mkdir()
    single = load(tmp_path / "one")
    assert tag_of(single, "tdi-host", key) == "tdi-snapshot:0123456789ab-ffffffffffff"
    (tmp_path / "two").mkdir()
    named = load(tmp_path / "two", TWO_HOSTS)
    # An image repository is lower case.
    assert tag_of(named, "DB", key) == "tdi-snapshot/db:0123456789ab-ffffffffffff"


def test_key_is_stable_for_the_same_inputs(tmp_path: Path) -> None:
    cfg = load(tmp_path, TWO_HOSTS)
    key = baseline._key(cfg, COMMIT, fresh_of(cfg), ())
    assert key == baseline._key(load(tmp_path), COMMIT, fresh_of(cfg), ())
    assert len(key) == 64


@pytest.mark.parametrize(
    "change",
    [
        "commit",
        "base image",
        "groups",
        "hosts",
        "playbook",
        "extra_vars",
        "cli extra vars",
        "parity roots",
        "parity ignore",
        "borrowed",
    ],
)
def test_key_changes_with_what_the_snapshot_depends_on(tmp_path: Path, change: str) -> None:
    cfg = load(tmp_path, TWO_HOSTS)
    before = baseline._key(cfg, COMMIT, fresh_of(cfg), ())
    commit, fresh = COMMIT, fresh_of(cfg)
    lent: tuple[str, ...] = ()
    if change == "commit":
        commit = "1" * 40
    elif change == "base image":
        fresh = fresh_of(cfg, "sha256:other")
    elif change == "groups":
        cfg = load(tmp_path, TWO_HOSTS.replace("[web]", "[web, canary]"))
    elif change == "hosts":
        cfg = load(tmp_path, TWO_HOSTS + "  web2: {groups: [web]}\n")
        fresh = fresh_of(cfg)
    elif change == "playbook":
        cfg = load(tmp_path, TWO_HOSTS, playbook=str(tmp_path / "other.yml"))
    elif change == "extra_vars":
        cfg = load(tmp_path, TWO_HOSTS + "extra_vars: {release: 2}\n")
    elif change == "cli extra vars":
        cfg = load(tmp_path, TWO_HOSTS, extra_vars=["release=2"])
    elif change == "parity roots":
        cfg = load(tmp_path, TWO_HOSTS + "parity: {roots: [/etc]}\n")
    elif change == "parity ignore":
        cfg = load(tmp_path, TWO_HOSTS + "parity: {ignore: [/srv/cache]}\n")
    else:
        (tmp_path / "ansible.cfg").write_text("[defaults]\n", encoding="utf-8")
        lent = ("ansible.cfg",)
    assert baseline._key(cfg, commit, fresh, lent) != before


class FakeEngine(NullEngine):
    def __init__(self, present: Mapping[str, ImageInfo]) -> None:
        self.present = dict(present)

    def image(self, ref: str) -> ImageInfo | None:
        return self.present.get(ref)

    def remove_image(self, ref: str) -> None:
        del self.present[ref]


def snapshot_with(
    monkeypatch: pytest.MonkeyPatch, cfg: config.Config, present: Mapping[str, ImageInfo]
) -> tuple[dict[str, str], list[Mapping[str, str]]]:
    made: list[Mapping[str, str]] = []

    def make(
        engine: Engine, cfg: config.Config, fresh: Any, snap: baseline.Snapshot, run_id: str
    ) -> None:
        assert (snap.commit, run_id) == (COMMIT, "r1")
        assert snap.key == baseline._key(cfg, COMMIT, fresh, snap.lent)
        made.append(dict(snap.tags))

    monkeypatch.setattr(git, "resolve_commit", lambda root, ref: COMMIT)
    monkeypatch.setattr(baseline, "make", make)
    engine = FakeEngine(present)
    return baseline.snapshot(engine, cfg, fresh_of(cfg), "main", "r1"), made


def test_snapshot_is_made_when_a_host_has_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = load(tmp_path, TWO_HOSTS)
    key = baseline._key(cfg, COMMIT, fresh_of(cfg), ())
    db = tag_of(cfg, "DB", key)
    tags, made = snapshot_with(monkeypatch, cfg, {db: info("sha256:db", {baseline.KEY_LABEL: key})})
    assert tags == {"DB": db, "web1": tag_of(cfg, "web1", key)}
    assert made == [tags]


def test_snapshot_is_reused_when_every_host_has_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = load(tmp_path, TWO_HOSTS)
    key = baseline._key(cfg, COMMIT, fresh_of(cfg), ())
    present = {tag_of(cfg, h, key): info(h, {baseline.KEY_LABEL: key}) for h in cfg.topology.names}
    tags, made = snapshot_with(monkeypatch, cfg, present)
    assert set(tags.values()) == set(present)
    assert made == []


def test_snapshot_labels_carry_commit_base_and_key() -> None:
    snap = baseline.Snapshot(COMMIT, "k" * 64, {"tdi-host": "tdi-snapshot:x"})
    assert snap.labels(info("sha256:base")) == {
        baseline.COMMIT_LABEL: COMMIT,
        baseline.BASE_LABEL: "sha256:base",
        baseline.KEY_LABEL: "k" * 64,
    }


def test_snapshot_with_another_key_label_is_remade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = load(tmp_path)
    key = baseline._key(cfg, COMMIT, fresh_of(cfg), ())
    tag = tag_of(cfg, "tdi-host", key)
    _, made = snapshot_with(monkeypatch, cfg, {tag: info("x", {baseline.KEY_LABEL: "stale"})})
    assert made == [{"tdi-host": tag}]


class Waiting(logging.Handler):
    """Sets ``seen`` when a run logs that it waits for another."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "waiting for" in record.getMessage():
            self.seen.set()


def test_a_run_waits_for_the_one_making_the_snapshot_then_reuses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = load(tmp_path)
    key = baseline._key(cfg, COMMIT, fresh_of(cfg), ())
    tag = tag_of(cfg, "tdi-host", key)
    engine = FakeEngine({})
    made: list[object] = []
    monkeypatch.setattr(git, "resolve_commit", lambda root, ref: COMMIT)
    monkeypatch.setattr(baseline, "make", lambda *args: made.append(args))
    handler = Waiting()
    logging.getLogger("tdi.locks").addHandler(handler)
    caplog.set_level(logging.INFO, logger="tdi.locks")
    monkeypatch.setattr(locks, "lock_dir", lambda: tmp_path / "locks")
    lock = tmp_path / "locks" / f"{baseline.Snapshot(COMMIT, key, {}).name}.lock"
    lock.parent.mkdir(parents=True)
    got: list[dict[str, str]] = []
    try:
        with lock.open("w") as held:  # the run that makes it
            fcntl.flock(held, fcntl.LOCK_EX)
            held.write("run r0 (pid 7)\n")
            held.flush()
            other = threading.Thread(
                target=lambda: got.append(
                    baseline.snapshot(engine, cfg, fresh_of(cfg), "main", "r1")
                )
            )
            other.start()
            assert handler.seen.wait(30)
            engine.present[tag] = info("sha256:made", {baseline.KEY_LABEL: key})
        other.join(30)
    finally:
        logging.getLogger("tdi.locks").removeHandler(handler)
    assert got == [{"tdi-host": tag}] and made == []
    assert "waiting for run r0 (pid 7) to make the baseline snapshot 0123456789ab" in caplog.text
    assert lock.read_text() == f"run r1 (pid {os.getpid()})\n"


@pytest.mark.parametrize("error", [KeyboardInterrupt, BaselineError])
def test_an_unfinished_build_leaves_no_image(tmp_path: Path, error: type[BaseException]) -> None:
    cfg = load(tmp_path, TWO_HOSTS)
    key = baseline._key(cfg, COMMIT, fresh_of(cfg), ())
    snap = baseline.Snapshot(COMMIT, key, baseline._tags(cfg, COMMIT, key))
    labels = snap.labels(info("sha256:base"))
    # An earlier build was cut after DB's commit; another snapshot is not ours to remove.
    engine = FakeEngine(
        {snap.tags["DB"]: info("sha256:half", labels), "tdi-snapshot/db:other": info("o")}
    )
    with pytest.raises(error), baseline._replacing(engine, snap):
        assert snap.tags["DB"] not in engine.present  # the half-made set is gone first
        engine.present[snap.tags["DB"]] = info("sha256:db", labels)
        raise error("stopped after DB")
    assert list(engine.present) == ["tdi-snapshot/db:other"]


def test_publish_replaces_the_file_at_once(tmp_path: Path) -> None:
    source, target = tmp_path / "run.log", tmp_path / "shared.log"
    source.write_text("new\n", encoding="utf-8")
    target.write_text("old\n", encoding="utf-8")
    baseline._publish(source, target)
    assert target.read_text(encoding="utf-8") == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.log", "shared.log"]


def test_the_change_that_adds_tdi_lends_its_scaffolding_to_the_baseline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t.invalid",
    }.items():
        monkeypatch.setenv(name, value)

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    git("init", "-q", "-b", "main")
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "main.yml").write_text("- ansible.builtin.ping:\n")
    git("add", "-A")
    git("commit", "-qm", "the role, before tdi")
    before = git("rev-parse", "HEAD")
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "site.yml").write_text("- hosts: all\n  roles: [me.role]\n")
    (tmp_path / "ansible.cfg").write_text("[defaults]\nroles_path = .tdi-roles\n")
    (tmp_path / ".tdi-roles").mkdir()
    (tmp_path / ".tdi-roles" / "me.role").symlink_to("..")
    git("add", "-A")
    git("commit", "-qm", "tdi init")
    cfg = config.load(tmp_path)
    assert baseline.borrowed(cfg, before) == ["playbooks/site.yml", "ansible.cfg", ".tdi-roles"]
    assert baseline.borrowed(cfg, git("rev-parse", "HEAD")) == []
