"""The production snapshot set: one image per host, what the last release left on the
servers. `tdi test` upgrades from it (and from its chain of earlier releases); `tdi
snapshot` makes the next one along the real upgrade path (promotion.py moves its tags).

Images are ``REPOSITORY:TAG`` for one host, ``REPOSITORY/HOST:TAG`` for a topology, with
the tags ``<commit>``, ``production`` and ``production-previous``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path

from tdi.config import Config
from tdi.engine.protocol import Engine, ImageInfo
from tdi.engine.refs import parse, registry_of, with_tag
from tdi.errors import ConfigError, RegistryError, SnapshotError, TdiError
from tdi.git import git
from tdi.hosts import images
from tdi.hosts.run import Run, lifecycle
from tdi.phases import converge
from tdi.phases.parity import capture_container, recorded_events, store_baseline, with_history
from tdi.pipelines.start import begin
from tdi.provision.ansible import TaskEvent
from tdi.report import junit
from tdi.report.model import Report

log = logging.getLogger(__name__)

SIDE = "production"
PRODUCTION, PREVIOUS = "production", "production-previous"
PARENT = "tdi.parent"
REVISION = "org.opencontainers.image.revision"
CREATED = "org.opencontainers.image.created"
PLAYBOOK_DIGEST = "tdi.playbook.digest"
# What must not be frozen into an image. apt's lists directory is dated back to 1970, as
# in the base image, so that the next converge refreshes the lists it no longer has.
SCRUB = """
find /var/log -type f -exec truncate -s 0 {} +
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb
touch -d @0 /var/lib/apt/lists
if [ -e /etc/machine-id ]; then : > /etc/machine-id; fi
rm -f /var/lib/dbus/machine-id /etc/ssh/ssh_host_*
rm -rf /var/lib/tdi /root/.ansible /tmp/* /var/tmp/*
"""

Found = dict[str, tuple[str, ImageInfo]]  # host -> (reference, image)


def fetch_or_local(engine: Engine, ref: str) -> ImageInfo | None:
    """The newest ``ref`` from its registry, which must answer (a RegistryError if not);
    a name without a registry host is looked up here first, then pulled if it can be."""
    if registry_of(ref):
        return engine.fetch(ref)
    return engine.image(ref) or engine.pull(ref)


def current(engine: Engine, cfg: Config) -> Found | None:
    """The production set ``production_image`` names, or None when no host has one.

    A set whose hosts carry different revisions is a half-promoted release: refused.
    """
    assert cfg.production_image
    wanted = looked_for(cfg)
    return _whole_set(wanted, {h: fetch_or_local(engine, ref) for h, ref in wanted.items()})


def looked_for(cfg: Config) -> dict[str, str]:
    """Every host's reference for ``production_image``: a repository means its
    :production tag (``REPOSITORY/HOST:production`` with ``hosts:``); an image by digest
    is one host's."""
    assert cfg.production_image
    image = cfg.production_image
    ref = parse(image)
    if not ref.digest:
        return cfg.topology.images(ref.repository, ref.tag or PRODUCTION)
    if cfg.topology.named:
        raise ConfigError(
            f"production_image {image}: a digest names one image, and hosts: has "
            f"{len(cfg.topology.names)}; give the repository"
        )
    return {cfg.topology.names[0]: image}


def _whole_set(wanted: Mapping[str, str], found: Mapping[str, ImageInfo | None]) -> Found | None:
    """Each host's image of the set, or None when no host has one."""
    if all(info is None for info in found.values()):
        return None
    missing = [wanted[h] for h, info in found.items() if info is None]
    if missing:
        raise TdiError(
            f"the production set is incomplete: {', '.join(missing)} not found; promote "
            "every host's image (tdi snapshot --push) or roll back"
        )
    revisions = {h: (info.labels.get(REVISION) or "none")[:12] for h, info in found.items() if info}
    if len(set(revisions.values())) > 1:
        which = ", ".join(f"{h} runs {r}" for h, r in revisions.items())
        raise TdiError(
            f"the production set is half-promoted: {which}; promote every host to one "
            "revision (tdi snapshot --push) or roll back"
        )
    return {h: (wanted[h], info) for h, info in found.items() if info is not None}


def chain(engine: Engine, cfg: Config, found: Found) -> list[dict[str, str]]:
    """Up to ``cfg.chain`` production sets, newest first, each host's found through its
    ``tdi.parent`` (or ``:production-previous``)."""
    walks = {h: _walk(engine, ref, info, cfg.chain) for h, (ref, info) in found.items()}
    length = min(len(w) for w in walks.values())
    if length < cfg.chain:
        log.info("chain: only %d production snapshots found, not %d", length, cfg.chain)
    return [{h: walks[h][i] for h in walks} for i in range(length)]


def _walk(engine: Engine, first: str, info: ImageInfo, length: int) -> list[str]:
    """The first release's parent is the base image, which fresh covers already: the walk
    stops at an image that is not a snapshot (no revision label)."""
    links = [(first, info)]
    while len(links) < length:
        ref, image = links[-1]
        parent = image.labels.get(PARENT)
        if not parent and parse(ref).tag == PRODUCTION:
            parent = with_tag(ref, PREVIOUS)
        if not parent:
            break
        found = fetch_or_local(engine, parent)
        if found is None or REVISION not in found.labels or found.id == image.id:
            break
        links.append((parent, found))
    return [ref for ref, _ in links]


def lookup(engine: Engine, ref: str, remote: bool) -> ImageInfo | None:
    """``ref`` fresh from its registry when ``remote`` (errors are RegistryErrors), else the
    local image."""
    return engine.fetch(ref) if remote else engine.image(ref)


def is_remote(repository: str, push: bool) -> bool:
    # A name without a registry host is local, unless it is pushed: then it is Docker Hub's.
    return push or registry_of(repository) is not None


def playbook_digest(cfg: Config) -> str:
    h = hashlib.sha256()
    files = [cfg.playbook, cfg.root / "ansible.cfg"]
    files += sorted(p for p in (cfg.root / "roles").rglob("*") if p.is_file())
    for path in (p for p in files if p.is_file()):
        h.update(cfg.rel(path).encode() + b"\0" + path.read_bytes() + b"\0")
    return f"sha256:{h.hexdigest()}"


def start_images(
    engine: Engine, cfg: Config, repository: str, source: str | None, push: bool
) -> Found:
    """What to upgrade: --from, else the production set, else (first release) the base."""
    if source:
        found = engine.image(source) or (engine.fetch(source) if registry_of(source) else None)
        if found is None:
            raise SnapshotError(f"--from {source}: no such image, here or in its registry")
        return {h: (source, found) for h in cfg.topology.names}
    wanted = cfg.topology.images(repository, PRODUCTION)
    remote = is_remote(repository, push)
    if have := _whole_set(wanted, {h: lookup(engine, ref, remote) for h, ref in wanted.items()}):
        return have
    if remote:
        _check_first_release(engine, repository, list(wanted.values()))
    log.info("first release: %s has no production set yet; starting from the base", repository)
    return images.resolve_hosts(engine, cfg)


def _check_first_release(engine: Engine, repository: str, wanted: list[str]) -> None:
    """A first release only when the registry says it is empty: never because tdi could
    not tell (a token-auth registry, Docker Hub)."""
    for ref in wanted:
        repo = parse(ref).repository
        others = engine.registry_tags(repo)
        if others is None:
            raise RegistryError(
                f"cannot list the tags of {repo} to tell whether it is new: for its "
                "first release pass --from with the base image"
            )
        if others:
            raise TdiError(
                f"{repo} has no :{PRODUCTION} tag but has others "
                f"({', '.join(sorted(others))}): pass --from IMAGE to say which image "
                "production runs"
            )


def _labels(cfg: Config, commit: str, start_ref: str, start: ImageInfo) -> dict[str, str]:
    parent = start.labels.get(REVISION)
    repository = parse(start_ref).repository
    return {
        REVISION: commit,
        CREATED: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        PARENT: f"{repository}:{parent}" if parent else start_ref,
        PLAYBOOK_DIGEST: playbook_digest(cfg),
    }


def _check(report: Report, run: Run) -> None:
    for key, state in report.states.items():
        for name in state.required:  # idempotence: false skips it
            if getattr(state, name) != "passed":
                detail = state.error or f"{name} {getattr(state, name)}"
                raise SnapshotError(
                    f"snapshot not made: {key}: {detail} (upgrading {state.image}; "
                    f"logs in {run.workdir})"
                )


def _check_history(cfg: Config, commit: str, start: Found) -> None:
    """Refuse to replace production with the commit it runs, or with an older one."""
    running = next(iter(start.values()))[1].labels.get(REVISION)
    if not running:
        return
    if running == commit:
        raise TdiError(f"production already runs {commit[:12]}: nothing to make")
    try:
        git(cfg.root, "merge-base", "--is-ancestor", running, commit)
    except TdiError:
        raise TdiError(
            f"production runs {running[:12]}, which is not an ancestor of {commit[:12]}: "
            "check out a newer commit, or pass --from to upgrade another image"
        ) from None


def make(
    engine: Engine,
    cfg: Config,
    repository: str,
    source: str | None,
    push: bool = False,
    report_path: Path | None = None,
    allow_dirty: bool = False,
) -> dict[str, str]:
    """Upgrade, test, scrub and commit every host; returns host -> ``REPO[/HOST]:<commit>``.
    Pushes nothing."""
    commit = git(cfg.root, "rev-parse", "HEAD")
    tag = _tag(cfg, commit, allow_dirty)
    start: dict[str, tuple[str, ImageInfo]] = {}

    def sides(run_id: str) -> tuple[dict[str, dict[str, str]], str]:
        start.update(start_images(engine, cfg, repository, source, push))
        if not source:
            _check_history(cfg, commit, start)
        return {SIDE: {h: ref for h, (ref, _) in start.items()}}, ""

    env, run, report = begin(cfg, sides, compare=False)
    targets = cfg.topology.images(repository, tag)
    try:
        with lifecycle(engine, cfg, run):
            events = converge.with_tests(engine, cfg, env, run, report)
            _check(report, run)
            for node in run.nodes.values():
                mine = [e for e in events if e.host == node.host]
                _commit(engine, cfg, node.container, mine, targets[node.host])
                ref, image = start[node.host]
                labels = _labels(cfg, commit, ref, image)
                engine.commit(node.container, targets[node.host], labels, image)
    finally:
        junit.write(run.workdir / "junit.xml", report)
        if report_path:
            report.write(report_path)
    log.info("snapshot made: %s", ", ".join(targets.values()))
    return targets


def _tag(cfg: Config, commit: str, allow_dirty: bool) -> str:
    """The snapshot's tag: its commit, whose tag is immutable, so only for a clean tree."""
    changes = git(cfg.root, "diff", "HEAD")
    if not changes:
        return commit
    if not allow_dirty:
        raise ConfigError(
            f"{cfg.root}: the work tree has uncommitted changes, which a snapshot tagged "
            f"{commit[:12]} would hold: commit them, or pass --allow-dirty"
        )
    digest = hashlib.sha256(changes.encode()).hexdigest()[:12]
    log.warning("the work tree has uncommitted changes: tagging %s-dirty-%s", commit, digest)
    return f"{commit}-dirty-{digest}"


def _commit(
    engine: Engine, cfg: Config, container: str, events: list[TaskEvent], target: str
) -> None:
    """Scrub ``container`` and store its baseline records, ready to commit: the events
    keep the earlier releases' (those the image it upgraded carried)."""
    state = capture_container(engine, container, cfg.parity)
    earlier = recorded_events(engine, container)
    code, _, err = engine.exec(container, ["sh", "-ec", SCRUB])
    if code != 0:
        raise SnapshotError(f"snapshot not made: scrubbing {target} failed: {err.decode()[-200:]}")
    store_baseline(engine, container, state, with_history(earlier, events))


def repository_of(cfg: Config, given: str | None) -> str:
    value = given or cfg.production_image
    if not value:
        raise TdiError("no image repository: pass --image REPOSITORY or set production_image")
    return parse(value).repository
