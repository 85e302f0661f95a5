"""The baseline snapshot: fresh hosts converged with the playbook as it was at an earlier
commit, one image per host. The upgrade side runs it when there is no production image.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from tdi import git, interrupts, locks
from tdi.config import Config
from tdi.engine.protocol import Engine, ImageInfo
from tdi.errors import BaselineError, TdiError
from tdi.hosts.run import Node, Run, lifecycle, plan, work_dir
from tdi.phases import diagnosis, preflight, setup
from tdi.phases.parity import BASELINE_FORMAT, capture_container, store_baseline
from tdi.phases.timeline import phase
from tdi.provision import ansible, inventory

log = logging.getLogger(__name__)

SNAPSHOT_REPO = "tdi-snapshot"
COMMIT_LABEL = "tdi.baseline.commit"
KEY_LABEL = "tdi.baseline.key"
BASE_LABEL = "tdi.base.image"
SIDE = "baseline"

Images = Mapping[str, tuple[str, ImageInfo]]  # host -> (reference, info)


@dataclass(frozen=True)
class Snapshot:
    """A baseline snapshot: the commit it converged, its cache key, its tag per host, and
    what it takes from the work tree (``lent``: what ``borrowed`` found)."""

    commit: str
    key: str
    tags: Mapping[str, str]
    lent: tuple[str, ...] = ()

    def labels(self, base: ImageInfo) -> dict[str, str]:
        return {COMMIT_LABEL: self.commit, BASE_LABEL: base.id, KEY_LABEL: self.key}

    @property
    def name(self) -> str:
        """What names its lock and its logs in the repo's .tdi directory."""
        return f"baseline-{self.commit[:12]}-{self.key[:12]}"


# What tdi itself needs to converge a commit, which `tdi init` writes: the commit that
# adds tdi to a repo (its first pull request) has them, its baseline does not.
SCAFFOLD = ("ansible.cfg", ".tdi-roles")


def borrowed(cfg: Config, commit: str) -> list[str]:
    """The playbook and tdi's scaffolding where ``commit`` lacks them and the work tree has
    them: taken from the work tree, so that the change adding tdi can test its upgrade."""
    wanted = [cfg.rel(cfg.playbook), *SCAFFOLD]
    return [
        path
        for path in wanted
        if os.path.lexists(cfg.root / path) and not git.has_path(cfg.root, commit, path)
    ]


def _copy(root: Path, paths: Sequence[str], tree: Path) -> None:
    for path in paths:
        source, target = root / path, tree / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir() and not source.is_symlink():
            shutil.copytree(source, target, symlinks=True)
        else:
            shutil.copy2(source, target, follow_symlinks=False)


def _digest_of(root: Path, paths: Sequence[str]) -> str:
    """The content of borrowed paths (a directory's links by their targets)."""
    parts = []
    for path in paths:
        found = root / path
        for item in sorted([found, *found.rglob("*")] if found.is_dir() else [found]):
            if item.is_symlink():
                parts.append(f"{item.relative_to(root)} -> {os.readlink(item)}")
            elif item.is_file():
                parts.append(
                    f"{item.relative_to(root)}: {hashlib.sha256(item.read_bytes()).hexdigest()}"
                )
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def snapshot(engine: Engine, cfg: Config, fresh: Images, ref: str, run_id: str) -> dict[str, str]:
    """Every host's baseline snapshot of ``ref`` (host -> image), made unless cached.

    One run makes it; others that need it at the same time wait for that one and reuse it.
    """
    commit = git.resolve_commit(cfg.root, ref)
    lent = tuple(borrowed(cfg, commit))
    key = _key(cfg, commit, fresh, lent)
    snap = Snapshot(commit, key, _tags(cfg, commit, key), lent)
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


def _tags(cfg: Config, commit: str, key: str) -> dict[str, str]:
    return cfg.topology.images(SNAPSHOT_REPO, f"{commit[:12]}-{key[:12]}")


def _key(cfg: Config, commit: str, fresh: Images, lent: Sequence[str]) -> str:
    """What a baseline snapshot depends on besides the commit: each host's base image and
    groups, the playbook and its variables, what its stored records capture, and the
    content of what it takes from the work tree."""
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
        _digest_of(cfg.root, lent),
    ]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class Checkout:
    """A commit's tree, checked out for a playbook run: its config (the playbook, the
    tests and the root in the tree), its Ansible environment and its inventory."""

    commit: str
    cfg: Config
    env: ansible.AnsibleEnv
    repo: inventory.RepoInventory


@contextmanager
def checkout(cfg: Config, commit: str, lent: Sequence[str] | None = None) -> Iterator[Checkout]:
    """The playbook, tests, requirements and inventory as they were at ``commit`` (read
    with git archive, not from the work tree), in a temporary tree removed at the end.
    ``lent``: what the commit lacks and the work tree lends it (``borrowed``), if known."""
    with tempfile.TemporaryDirectory(prefix="tdi-baseline-") as tmp:
        tree = Path(tmp, "tree")
        git.export(cfg.root, commit, tree)
        lent = borrowed(cfg, commit) if lent is None else lent
        if lent:
            log.info(
                "baseline %s has no %s: taken from the work tree (the change that adds tdi)",
                commit[:12],
                ", ".join(lent),
            )
            _copy(cfg.root, lent, tree)
        old = replace(
            cfg,
            root=tree,
            playbook=tree / cfg.rel(cfg.playbook),
            tests=tree / cfg.rel(cfg.tests),
        )
        if not old.playbook.is_file():
            raise BaselineError(f"baseline {commit[:12]} has no playbook {cfg.rel(cfg.playbook)}")
        # The requirements and the inventory as they were at the commit, read as now.
        try:
            env = setup.environment(cfg, tree)
        except TdiError as exc:
            raise BaselineError(f"baseline {commit[:12]}: {exc}") from exc
        path = tree / cfg.rel(cfg.inventory) if cfg.inventory else None
        repo = inventory.load(env, path if path and path.exists() else None, warn=False)
        yield Checkout(commit, old, env, repo)


def make(engine: Engine, cfg: Config, fresh: Images, snap: Snapshot, run_id: str) -> None:
    """Converge fresh hosts with the playbook as it was at the commit; commit each one."""
    log.info("making the baseline snapshot: converge %s", snap.commit[:12])
    with checkout(cfg, snap.commit, snap.lent) as tree:
        old, env = tree.cfg, tree.env
        run = plan(cfg, {SIDE: {h: ref for h, (ref, _) in fresh.items()}}, tree.repo, run_id)
        # A play that matches none of tdi's hosts with the commit's own inventory would be
        # missing from the snapshot, unseen.
        plays = ansible.list_plays(env, old.playbook, run.inventory(SIDE), old.extra_vars).plays
        if found := preflight.unmatched(old, plays):
            raise BaselineError(
                f"baseline {snap.commit[:12]}: {found} with that commit's inventory, so its "
                "snapshot would lack the play: name tdi's hosts as both releases' inventories "
                "do, or pass a --baseline that has them"
            )
        with _replacing(engine, snap), lifecycle(engine, cfg, run):
            _converge_and_commit(engine, tree, run, snap, fresh, work_dir(cfg.root))


@contextlib.contextmanager
def _replacing(engine: Engine, snap: Snapshot) -> Iterator[None]:
    """Around a build of ``snap``: what an interrupted build left is removed first, and
    what this one committed is removed if it fails or is interrupted."""
    _discard(engine, snap)
    try:
        yield
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


def _why(engine: Engine, old: Config, nodes: list[Node], result: ansible.PlaybookResult) -> str:
    """The failure, with what the failed host's container says about it (diagnosis.py)."""
    why = result.failure()
    failed = set(result.failed_hosts)
    for node in (n for n in nodes if n.host in failed):
        host = result.for_host(node.host)
        hostname = old.topology.hostname(node.host)
        found = diagnosis.explain(engine, node.container, hostname, host)
        if found.text:
            return f"{diagnosis.without_pointer(why)}; {found.text}"
    return why


def _converge_and_commit(
    engine: Engine, tree: Checkout, run: Run, snap: Snapshot, fresh: Images, logs: Path
) -> None:
    old = tree.cfg
    log_path = run.log(SIDE, "converge")  # this run's own, events beside it
    nodes = run.on(SIDE)
    with phase("converge", who=SIDE, events=log_path.with_suffix(".events.jsonl")):
        result = ansible.run_playbook(
            tree.env,
            old.playbook,
            run.inventory(SIDE),
            [n.host for n in nodes],
            log_path,
            old.extra_vars,
            timeout=old.limit(),
        )
    if not result.ok:
        why = _why(engine, old, nodes, result)
        see = "" if str(log_path) in why else f"; see {log_path}"
        raise BaselineError(f"baseline {snap.commit[:12]} does not converge ({why}){see}")
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
