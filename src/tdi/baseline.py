"""The baseline snapshot: fresh hosts converged with the playbook as it was at an earlier
commit, one image per host. The upgrade side runs it when there is no production image.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from tdi import ansible, git, interrupts, inventory, locks
from tdi.config import Config
from tdi.engine import Engine, ImageInfo
from tdi.errors import BaselineError, TdiError
from tdi.parity import BASELINE_FORMAT, capture_container, store_baseline
from tdi.run import Run, lifecycle, plan, work_dir

log = logging.getLogger(__name__)

SNAPSHOT_REPO = "tdi-snapshot"
COMMIT_LABEL = "tdi.baseline.commit"
KEY_LABEL = "tdi.baseline.key"
BASE_LABEL = "tdi.base.image"
SIDE = "baseline"

Images = Mapping[str, tuple[str, ImageInfo]]  # host -> (reference, info)


@dataclass(frozen=True)
class Snapshot:
    """A baseline snapshot: the commit it converged, its cache key, its tag per host."""

    commit: str
    key: str
    tags: Mapping[str, str]

    def labels(self, base: ImageInfo) -> dict[str, str]:
        return {COMMIT_LABEL: self.commit, BASE_LABEL: base.id, KEY_LABEL: self.key}

    @property
    def name(self) -> str:
        """What names its lock and its logs in the repo's .tdi directory."""
        return f"baseline-{self.commit[:12]}-{self.key[:12]}"


def snapshot(engine: Engine, cfg: Config, fresh: Images, ref: str, run_id: str) -> dict[str, str]:
    """Every host's baseline snapshot of ``ref`` (host -> image), made unless cached.

    One run makes it; others that need it at the same time wait for that one and reuse it.
    """
    commit = git.resolve_commit(cfg.root, ref)
    key = _key(cfg, commit, fresh)
    snap = Snapshot(commit, key, {h: _tag(cfg, h, commit, key) for h in cfg.topology.names})
    made = locks.once(
        snap.name,
        f"make the baseline snapshot {snap.commit[:12]}",
        lambda: _cached(engine, snap),
        lambda: make(engine, cfg, fresh, snap, run_id),
        f"run {run_id}",
    )
    if not made:
        log.info("reusing the snapshot of baseline %s: %s", ref, ", ".join(snap.tags.values()))
    return dict(snap.tags)


def _cached(engine: Engine, snap: Snapshot) -> bool:
    found = [engine.image(t) for t in snap.tags.values()]
    return all(info and info.labels.get(KEY_LABEL) == snap.key for info in found)


def _tag(cfg: Config, host: str, commit: str, key: str) -> str:
    repo = f"{SNAPSHOT_REPO}/{host.lower()}" if cfg.topology.named else SNAPSHOT_REPO
    return f"{repo}:{commit[:12]}-{key[:12]}"


def _key(cfg: Config, commit: str, fresh: Images) -> str:
    """What a baseline snapshot depends on besides the commit: each host's base image and
    groups, the playbook and its variables, and what its stored records capture."""
    topology = [(h.name, h.groups, fresh[h.name][1].id) for h in cfg.topology.hosts]
    parts = [
        BASELINE_FORMAT,
        commit,
        json.dumps(topology),
        cfg.rel(cfg.playbook),
        str(cfg.inventory and cfg.rel(cfg.inventory)),
        json.dumps(cfg.extra_vars),
        ",".join(cfg.parity.roots or ()),
        ",".join(cfg.parity.ignore),
    ]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def make(engine: Engine, cfg: Config, fresh: Images, snap: Snapshot, run_id: str) -> None:
    """Converge fresh hosts with the playbook as it was at the commit; commit each one."""
    log.info("making the baseline snapshot: converge %s", snap.commit[:12])
    with tempfile.TemporaryDirectory(prefix="tdi-baseline-") as tmp:
        tree = Path(tmp, "tree")
        git.export(cfg.root, snap.commit, tree)
        old = replace(cfg, root=tree, playbook=tree / cfg.rel(cfg.playbook))
        if not old.playbook.is_file():
            raise BaselineError(
                f"baseline {snap.commit[:12]} has no playbook {cfg.rel(cfg.playbook)}"
            )
        path = tree / cfg.rel(cfg.inventory) if cfg.inventory else None
        repo = inventory.load(tree, path if path and path.exists() else None)
        run = plan(cfg, {SIDE: {h: ref for h, (ref, _) in fresh.items()}}, repo, run_id)
        _discard(engine, snap)  # what an interrupted build may have left
        try:
            with lifecycle(engine, cfg, run):
                _converge_and_commit(engine, old, run, snap, fresh, work_dir(cfg.root))
        except BaseException:
            _discard(engine, snap)
            raise


def _discard(engine: Engine, snap: Snapshot) -> None:
    """Remove the snapshot's images of an unfinished build: none is tagged half-made, none
    is left behind. SIGINT and SIGTERM wait until it is done."""
    with interrupts.deferred():
        for tag in snap.tags.values():
            found = engine.image(tag)
            if found is None or found.labels.get(COMMIT_LABEL) != snap.commit:
                continue
            try:
                engine.remove_image(tag)
                log.info("removed %s of an unfinished baseline snapshot", tag)
            except TdiError as exc:
                log.warning("could not remove %s: %s", tag, exc)


def _converge_and_commit(
    engine: Engine, old: Config, run: Run, snap: Snapshot, fresh: Images, logs: Path
) -> None:
    log_path = run.log(SIDE, "converge")  # this run's own, events beside it
    nodes = run.on(SIDE)
    result = ansible.run_playbook(
        old.root,
        old.playbook,
        run.inventory(SIDE),
        [n.host for n in nodes],
        log_path,
        old.extra_vars,
    )
    if not result.ok:
        raise BaselineError(
            f"baseline {snap.commit[:12]} does not converge ({result.failure()}); see {log_path}"
        )
    for node in nodes:
        state = capture_container(engine, node.container, old.parity)
        store_baseline(engine, node.container, state, result.for_host(node.host).events)
        base = fresh[node.host][1]
        engine.commit(node.container, snap.tags[node.host], snap.labels(base), base)
        log.info("baseline snapshot of %s: %s", node.host, snap.tags[node.host])
    for path in (log_path, log_path.with_suffix(".events.jsonl")):
        _publish(path, logs / f"{snap.name}{''.join(path.suffixes)}")


def _publish(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` at once: a reader sees the old file or the new one."""
    if not source.exists():
        return
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
