"""The baseline snapshot: fresh hosts converged with the playbook as it was at an earlier
commit, one image per host. The upgrade side runs it when there is no production image.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Mapping
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


def snapshot(engine: Engine, cfg: Config, fresh: Images, ref: str, run_id: str) -> dict[str, str]:
    """Every host's baseline snapshot of ``ref`` (host -> image), made unless cached."""
    commit = git.resolve_commit(cfg.root, ref)
    key = _key(cfg, commit, fresh)
    tags = {h: _tag(cfg, h, commit, key) for h in cfg.topology.names}
    cached = [engine.image(t) for t in tags.values()]
    if all(found and found.labels.get(KEY_LABEL) == key for found in cached):
        log.info("reusing the snapshot of baseline %s: %s", ref, ", ".join(tags.values()))
    else:
        make(engine, cfg, fresh, commit, tags, key, run_id)
    return tags


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


def make(
    engine: Engine,
    cfg: Config,
    fresh: Images,
    commit: str,
    tags: Mapping[str, str],
    key: str,
    run_id: str,
) -> None:
    """Converge fresh hosts with the playbook as it was at ``commit``; commit each one."""
    log.info("making the baseline snapshot: converge %s", commit[:12])
    with tempfile.TemporaryDirectory(prefix="tdi-baseline-") as tmp:
        tree = Path(tmp, "tree")
        git.export(cfg.root, commit, tree)
        playbook = tree / cfg.rel(cfg.playbook)
        if not playbook.is_file():
            raise BaselineError(f"baseline {commit[:12]} has no playbook {cfg.rel(cfg.playbook)}")
        old_inventory = tree / cfg.rel(cfg.inventory) if cfg.inventory else None
        repo = inventory.load(
            tree, old_inventory if old_inventory and old_inventory.exists() else None
        )
        run = plan(cfg, {SIDE: {h: info.id for h, (_, info) in fresh.items()}}, repo, run_id)
        with lifecycle(engine, cfg, run):
            _converge_and_commit(engine, cfg, run, tree, playbook, commit, tags, key, fresh)


def _converge_and_commit(
    engine: Engine,
    cfg: Config,
    run: Run,
    tree: Path,
    playbook: Path,
    commit: str,
    tags: Mapping[str, str],
    key: str,
    fresh: Images,
) -> None:
    log_path = work_dir(cfg.root) / f"baseline-{commit[:12]}.converge.log"
    nodes = run.on(SIDE)
    result = ansible.run_playbook(
        tree, playbook, run.inventory(SIDE), [n.host for n in nodes], log_path, cfg.extra_vars
    )
    if not result.ok:
        raise BaselineError(
            f"baseline {commit[:12]} does not converge ({result.failure()}); see {log_path}"
        )
    for node in nodes:
        state = capture_container(engine, node.container, cfg.parity)
        store_baseline(engine, node.container, state, result.for_host(node.host).events)
        base = fresh[node.host][1]
        labels = {COMMIT_LABEL: commit, BASE_LABEL: base.id, KEY_LABEL: key}
        engine.commit(node.container, tags[node.host], labels, base)
        log.info("baseline snapshot of %s: %s", node.host, tags[node.host])
