"""The production snapshot lifecycle: make it from the current production, promote, roll back.

`tdi snapshot` upgrades the current production snapshot with the checkout's playbook
along the real upgrade path, tests it, scrubs what must not be frozen, commits it as
``REPOSITORY:<commit>`` and, with ``--push``, promotes it to ``REPOSITORY:production``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging

from tdi import ansible, images, phases
from tdi.config import Config
from tdi.engine import Engine, ImageInfo, registry_of, split_ref
from tdi.errors import RegistryError, SnapshotError, TdiError
from tdi.parity import capture_container, store_baseline
from tdi.registry import tags
from tdi.report import PASSED, Report, StateReport
from tdi.run import Run, create, destroy, plan
from tdi.snapshot import PARENT_LABEL as PARENT
from tdi.snapshot import REVISION_LABEL as REVISION
from tdi.snapshot import git

log = logging.getLogger(__name__)

STATE = "production"
PRODUCTION, PREVIOUS = "production", "production-previous"
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


def _ref(repository: str, tag: str) -> str:
    return f"{repository}:{tag}"


def _lookup(engine: Engine, ref: str, remote: bool) -> ImageInfo | None:
    """``ref`` fresh from its registry when ``remote`` (errors are RegistryErrors), else the
    local image."""
    return engine.fetch(ref) if remote else engine.image(ref)


def _remote(repository: str, push: bool) -> bool:
    # A name without a registry host is local, unless it is pushed: then it is Docker Hub's.
    return push or registry_of(repository) is not None


def playbook_digest(cfg: Config) -> str:
    h = hashlib.sha256()
    files = [cfg.playbook, cfg.root / "ansible.cfg"]
    files += sorted(p for p in (cfg.root / "roles").rglob("*") if p.is_file())
    for path in (p for p in files if p.is_file()):
        h.update(cfg.rel(path).encode() + b"\0" + path.read_bytes() + b"\0")
    return f"sha256:{h.hexdigest()}"


def start_image(
    engine: Engine, cfg: Config, repository: str, source: str | None, push: bool
) -> tuple[str, ImageInfo]:
    """What to upgrade: --from, else REPOSITORY:production, else (first release) the base."""
    if source:
        found = engine.image(source) or (engine.fetch(source) if registry_of(source) else None)
        if found is None:
            raise SnapshotError(f"--from {source}: no such image, here or in its registry")
        return source, found
    production = _ref(repository, PRODUCTION)
    remote = _remote(repository, push)
    found = _lookup(engine, production, remote)
    if found is not None:
        return production, found
    if remote:
        # A first release only when the registry says the repository is empty: never
        # because tdi could not tell (a token-auth registry, Docker Hub).
        others = tags(repository)
        if others is None:
            raise RegistryError(
                f"cannot list the tags of {repository} to tell whether it is new: for its "
                "first release pass --from with the base image"
            )
        if others:
            raise TdiError(
                f"{repository} has no :{PRODUCTION} tag but has others "
                f"({', '.join(sorted(others))}): pass --from IMAGE to say which image "
                "production runs"
            )
    base_ref, base = images.resolve_base(engine, cfg)
    log.info(
        "first release: %s does not exist yet; starting from the base image %s",
        production,
        base_ref,
    )
    return base_ref, base


def _labels(cfg: Config, commit: str, start_ref: str, start: ImageInfo) -> dict[str, str]:
    parent = start.labels.get(REVISION)
    repository, _ = split_ref(start_ref)
    return {
        REVISION: commit,
        CREATED: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        PARENT: _ref(repository, parent) if parent else start_ref,
        PLAYBOOK_DIGEST: playbook_digest(cfg),
    }


def _check(report: Report, start_ref: str, run: Run) -> None:
    state = report.states[STATE]
    for name in ("converge", "idempotence", "verify"):
        if getattr(state, name) != PASSED:
            detail = state.error or f"{name} {getattr(state, name)}"
            raise SnapshotError(
                f"snapshot not made: {detail} (upgrading {start_ref}; logs in {run.workdir})"
            )


def _check_history(cfg: Config, commit: str, start: ImageInfo) -> None:
    """Refuse to replace production with the commit it runs, or with an older one."""
    running = start.labels.get(REVISION)
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
    engine: Engine, cfg: Config, repository: str, source: str | None, push: bool = False
) -> str:
    """Upgrade, test, scrub and commit; returns ``REPOSITORY:<commit>``. Pushes nothing."""
    commit = git(cfg.root, "rev-parse", "HEAD")
    if git(cfg.root, "status", "--porcelain", "--untracked-files=no"):
        log.warning("the work tree has uncommitted changes; the snapshot says %s", commit[:12])
    phases.preflight(cfg)
    start_ref, start = start_image(engine, cfg, repository, source, push)
    if not source:
        _check_history(cfg, commit, start)
    run = plan(cfg, {STATE: start_ref})
    report = Report({STATE: StateReport(start_ref)})
    target = _ref(repository, commit)
    try:
        create(engine, run)
        phases.converge(cfg, run, report)
        phases.converge(cfg, run, report, "idempotence")
        phases.run_verify(cfg, run, report, run.workdir / "junit.xml")
        _check(report, start_ref, run)
        container = run.containers[STATE]
        state = capture_container(engine, container, cfg.parity)
        code, _, err = engine.exec(container, ["sh", "-ec", SCRUB])
        if code != 0:
            raise SnapshotError(f"snapshot not made: scrubbing failed: {err.decode()[-200:]}")
        store_baseline(engine, container, state, report.events)
        engine.commit(container, target, _labels(cfg, commit, start_ref, start), start)
    except BaseException:
        ansible.PROCESSES.terminate()
        raise
    finally:
        destroy(engine, run.id)
    log.info("snapshot %s made from %s", target, start_ref)
    return target


def promote(engine: Engine, repository: str, target: str) -> None:
    """Push ``target``, keep the old production as production-previous, move production.

    Production moves last, so a push that fails at any step leaves it where it was.
    """
    production, previous = _ref(repository, PRODUCTION), _ref(repository, PREVIOUS)
    old = _lookup(engine, production, remote=True)
    log.info("push %s: %s", target, engine.push(target))
    if old is not None:
        _move(engine, previous, old.id, push=True)
    _move(engine, production, target, push=True)


def _move(engine: Engine, ref: str, image: str, push: bool) -> None:
    """Point the tag ``ref`` at ``image`` and push it; a refused push puts the tag back."""
    old = engine.image(ref)
    engine.tag(image, ref)
    if not push:
        return
    try:
        log.info("push %s: %s", ref, engine.push(ref))
    except RegistryError:
        if old is not None:
            engine.tag(old.id, ref)
        else:
            engine.untag(ref)
        raise


def rollback(engine: Engine, repository: str, push: bool) -> str:
    """Move production back to production-previous; returns the image id it points at."""
    previous = _lookup(engine, _ref(repository, PREVIOUS), _remote(repository, push))
    if previous is None:
        raise TdiError(f"{repository} has no :{PREVIOUS}: there is nothing to roll back to")
    production = _ref(repository, PRODUCTION)
    _move(engine, production, previous.id, push)
    log.info("%s now points at %s", production, previous.labels.get(REVISION, previous.id))
    return previous.id


def repository_of(cfg: Config, given: str | None) -> str:
    value = given or cfg.production_image
    if not value:
        raise TdiError("no image repository: pass --image REPOSITORY or set production_image")
    repository, _ = split_ref(value)
    return repository
