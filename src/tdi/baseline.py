"""The baseline snapshot: fresh hosts converged with the playbook as it was at an earlier
commit, one image per host. The upgrade side runs it when there is no production image.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from tdi import ansible, git, inventory
from tdi.config import Config
from tdi.engine import Engine, ImageInfo
from tdi.errors import BaselineError
from tdi.parity import capture_container, store_baseline
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


def snapshot(engine: Engine, cfg: Config, fresh: Images, ref: str, run_id: str) -> dict[str, str]:
    """Every host's baseline snapshot of ``ref`` (host -> image), made unless cached."""
    commit = git.resolve_commit(cfg.root, ref)
    key = _key(cfg, commit, fresh)
    snap = Snapshot(commit, key, {h: _tag(cfg, h, commit, key) for h in cfg.topology.names})
    cached = [engine.image(t) for t in snap.tags.values()]
    if all(found and found.labels.get(KEY_LABEL) == key for found in cached):
        log.info("reusing the snapshot of baseline %s: %s", ref, ", ".join(snap.tags.values()))
    else:
        make(engine, cfg, fresh, snap, run_id)
    return dict(snap.tags)


def _tag(cfg: Config, host: str, commit: str, key: str) -> str:
    repo = f"{SNAPSHOT_REPO}/{host.lower()}" if cfg.topology.named else SNAPSHOT_REPO
    return f"{repo}:{commit[:12]}-{key[:12]}"


def _key(cfg: Config, commit: str, fresh: Images) -> str:
    """What a baseline snapshot depends on besides the commit: each host's base image and
    groups, the playbook and its variables, and what its stored state captured."""
    topology = [(h.name, h.groups, fresh[h.name][1].id) for h in cfg.topology.hosts]
    parts = [
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
        with lifecycle(engine, cfg, run):
            _converge_and_commit(engine, old, run, snap, fresh, work_dir(cfg.root))


def _converge_and_commit(
    engine: Engine, old: Config, run: Run, snap: Snapshot, fresh: Images, logs: Path
) -> None:
    log_path = logs / f"baseline-{snap.commit[:12]}.converge.log"
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
