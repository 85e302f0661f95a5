"""Moving the production tags of a snapshot set: promote a new release, roll back to the
previous one. Every move is undone on a failure or an interruption, here and in the
registry, so that this daemon's tags and the registry's agree.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping

from tdi import interrupts
from tdi.config import Config
from tdi.engine.protocol import Engine, ImageInfo
from tdi.engine.refs import with_tag
from tdi.errors import RegistryError, TdiError
from tdi.git import git
from tdi.pipelines.production import PREVIOUS, PRODUCTION, REVISION, is_remote, lookup

log = logging.getLogger(__name__)


def promote(engine: Engine, repository: str, targets: Mapping[str, str]) -> None:
    """All or nothing across hosts: push every host's commit tag; then move every
    production-previous; then every production. A failure or an interruption part way puts
    back every tag already moved, here and in the registry. (A tag that did not exist
    before cannot be deleted from a registry: it is untagged here, and `tdi test` refuses
    the incomplete set it leaves, naming it.) A commit tag is immutable: one the registry
    holds with other content is refused before anything moves."""
    olds = {h: lookup(engine, with_tag(t, PRODUCTION), remote=True) for h, t in targets.items()}
    for target in targets.values():
        # The registry's own production-previous, so that a failure puts back that one.
        # One it cannot give is no reason to stop: this daemon's own copy is the fallback.
        with contextlib.suppress(RegistryError):
            lookup(engine, with_tag(target, PREVIOUS), remote=True)
        _check_unchanged(engine, target)
    with _moving(engine, push=True) as tags:
        for target in targets.values():
            log.info("push %s: %s", target, engine.push(target))
        for host, target in targets.items():
            if (old := olds[host]) is not None:
                tags.move(with_tag(target, PREVIOUS), old.id)
        for target in targets.values():
            tags.move(with_tag(target, PRODUCTION), target)


def unfinished(engine: Engine, cfg: Config, repository: str) -> dict[str, str] | None:
    """HEAD's snapshot set when an earlier `tdi snapshot --push` of HEAD pushed every
    host's commit tag but was stopped before production moved to it (each was made and
    tested before its push): fetched here, to be promoted as it is. None otherwise: none
    pushed, part of it (a new make is then refused as immutable), already promoted, or a
    registry that cannot be asked."""
    commit, images = git(cfg.root, "rev-parse", "HEAD"), cfg.topology.images
    targets = images(repository, commit)
    try:
        held = {h: engine.manifest(t) for h, t in targets.items()}
        production = {h: engine.manifest(t) for h, t in images(repository, PRODUCTION).items()}
    except RegistryError:
        return None
    pushed = {h: m for h, m in held.items() if m is not None}
    if len(pushed) < len(targets) or all(production[h] == m for h, m in pushed.items()):
        return None
    for target in targets.values():
        engine.fetch(target)
    log.info(
        "%s: pushed by an earlier run that stopped before promoting it: promoting it as it is",
        ", ".join(targets.values()),
    )
    return targets


def _check_unchanged(engine: Engine, target: str) -> None:
    """Refuse to push ``target`` over other content under the same commit tag; the same
    image again (a retried promotion) is fine. A refused image is dropped, and the tag
    here points at the registry's again."""
    local = engine.image(target)
    try:
        held = engine.manifest(target)
    except RegistryError as exc:
        log.warning("cannot check that the registry's %s is this image: %s", target, exc)
        return
    if held is None or local is None or local.id in held.images:
        return
    with interrupts.deferred(), contextlib.suppress(TdiError):
        engine.fetch(target)
        engine.remove_image(local.id)
    raise TdiError(
        f"{target} is immutable: the registry holds {held.digest} (image "
        f"{', '.join(held.images)}) under it, this snapshot is image {local.id}; "
        "release a new commit instead"
    )


class _Tags:
    """Tag moves, each recorded with what the tag pointed at before, to put back."""

    def __init__(self, engine: Engine, push: bool) -> None:
        self.engine, self.push = engine, push
        self.moved: list[tuple[str, ImageInfo | None]] = []

    def move(self, ref: str, image: str) -> None:
        """Point the tag ``ref`` at ``image`` (and push it)."""
        self.moved.append((ref, self.engine.image(ref)))
        self.engine.tag(image, ref)
        if self.push:
            log.info("push %s: %s", ref, self.engine.push(ref))

    def restore(self) -> None:
        """Put every moved tag back, newest first. SIGINT and SIGTERM wait: a second
        Ctrl-C must not leave half of them."""
        with interrupts.deferred():
            for ref, old in reversed(self.moved):
                try:
                    if old is None:
                        self.engine.untag(ref)
                        continue
                    self.engine.tag(old.id, ref)
                    if self.push:
                        self.engine.push(ref)
                    log.info("put %s back", ref)
                except TdiError as exc:
                    log.error("could not put %s back: %s", ref, exc)


@contextlib.contextmanager
def _moving(engine: Engine, push: bool) -> Iterator[_Tags]:
    """Tag moves that are all undone on any exception, an interruption included."""
    tags = _Tags(engine, push)
    try:
        yield tags
    except BaseException:
        tags.restore()
        raise


def rollback(engine: Engine, cfg: Config, repository: str, push: bool) -> None:
    """Move every host's production back to production-previous."""
    remote, images = is_remote(repository, push), cfg.topology.images
    found = {h: lookup(engine, r, remote) for h, r in images(repository, PREVIOUS).items()}
    previous = {h: info for h, info in found.items() if info is not None}
    missing = [h for h in found if h not in previous]
    if missing:
        raise TdiError(
            f"{repository} has no :{PREVIOUS} for {', '.join(missing)}: nothing to roll back to"
        )
    current = {h: lookup(engine, r, remote) for h, r in images(repository, PRODUCTION).items()}
    same = [h for h, info in current.items() if info and info.id == previous[h].id]
    if same:
        revision = previous[same[0]].labels.get(REVISION, previous[same[0]].id)[:12]
        raise TdiError(
            f"{repository}:{PRODUCTION} already is :{PREVIOUS} ({revision}) for "
            f"{', '.join(same)}: rolled back already, nothing to roll back to"
        )
    with _moving(engine, push) as tags:
        for host, ref in images(repository, PRODUCTION).items():
            info = previous[host]
            tags.move(ref, info.id)
            log.info("%s now points at %s", ref, info.labels.get(REVISION, info.id))
