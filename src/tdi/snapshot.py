"""The upgrade state's image: a production snapshot, or one made from a baseline git ref."""

from __future__ import annotations

import hashlib
import logging
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tdi import ansible
from tdi.config import Config
from tdi.engine import Engine, ImageInfo, registry_of, split_ref
from tdi.errors import BaselineError
from tdi.parity import capture_container, store_baseline
from tdi.run import labels, work_dir

log = logging.getLogger(__name__)

SNAPSHOT_REPO = "tdi-snapshot"
PARENT_LABEL = "tdi.parent"
REVISION_LABEL = "org.opencontainers.image.revision"
COMMIT_LABEL = "tdi.baseline.commit"
KEY_LABEL = "tdi.baseline.key"
BASE_LABEL = "tdi.base.image"


@dataclass(frozen=True)
class Upgrade:
    image: str  # reference the upgrade container starts from
    source: str  # how it was chosen, for the log and the report
    info: ImageInfo | None = None  # set for a production image, which can start a chain


def git(root: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        raise BaselineError(f"git {' '.join(args)} in {root}: {lines[-1] if lines else 'failed'}")
    return proc.stdout.strip()


def production_ref(image: str) -> str:
    """A repository means its :production tag."""
    return image if ":" in image.rsplit("/", 1)[-1] else f"{image}:production"


def fetch_or_local(engine: Engine, ref: str) -> ImageInfo | None:
    """The newest ``ref`` from its registry, which must answer (a RegistryError if not);
    a name without a registry host is looked up here first, then pulled if it can be."""
    if registry_of(ref):
        return engine.fetch(ref)
    return engine.image(ref) or engine.pull(ref)


def chain(engine: Engine, first: str, info: ImageInfo, length: int) -> list[tuple[str, ImageInfo]]:
    """Up to ``length`` production snapshots, newest first, found through ``tdi.parent``.

    The first release's parent is the base image, which fresh covers already: the chain
    stops at an image that is not a snapshot (no revision label).
    """
    links = [(first, info)]
    while len(links) < length:
        ref, current = links[-1]
        parent = current.labels.get(PARENT_LABEL)
        if not parent and ref.endswith(":production"):
            parent = split_ref(ref)[0] + ":production-previous"  # found by tag
        if not parent:
            break
        found = fetch_or_local(engine, parent)
        if found is None or REVISION_LABEL not in found.labels or found.id == current.id:
            break
        links.append((parent, found))
    return links


def resolve_commit(root: Path, ref: str) -> str:
    try:
        return git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except BaselineError:
        raise BaselineError(
            f"unknown baseline ref '{ref}' in {root}: pass a branch, tag or commit that exists"
        ) from None


def default_ref(cfg: Config) -> str:
    """The merge-base of HEAD and the main branch, or one clear error."""
    commit = ""
    # A CI checkout often has only the remote-tracking branch.
    for branch in (cfg.main_branch, f"origin/{cfg.main_branch}"):
        try:
            commit = git(cfg.root, "merge-base", "HEAD", branch)
            break
        except BaselineError:
            continue
    if not commit:
        raise BaselineError(
            f"no upgrade image: no production image is configured or present, no --baseline was "
            f"given, and HEAD has no merge-base with '{cfg.main_branch}' in {cfg.root}"
        ) from None
    log.info("no --baseline given: using the merge-base of HEAD and %s, %s", branch, commit[:12])
    return commit


def choose(engine: Engine, cfg: Config, base: ImageInfo, run_id: str) -> Upgrade:
    """Pick the upgrade image: production image, else a snapshot of the baseline ref."""
    if cfg.production_image:
        ref = production_ref(cfg.production_image)
        found = fetch_or_local(engine, ref)
        if found:
            return Upgrade(ref, f"production image {ref}", found)
        log.info("production image %s is not present and cannot be pulled", ref)
    ref = cfg.baseline or default_ref(cfg)
    commit = resolve_commit(cfg.root, ref)
    key = _snapshot_key(cfg, commit, base)
    tag = f"{SNAPSHOT_REPO}:{commit[:12]}-{key[:12]}"
    found = engine.image(tag)
    if found and found.labels.get(KEY_LABEL) == key:  # the key covers the commit
        log.info("reusing snapshot %s of baseline %s", tag, ref)
    else:
        make(engine, cfg, base, commit, tag, key, run_id)
    return Upgrade(tag, f"snapshot of baseline {ref} ({commit[:12]})")


def _snapshot_key(cfg: Config, commit: str, base: ImageInfo) -> str:
    """What a baseline snapshot depends on besides the commit: the base image, which
    playbook converged it in which groups, and what its stored state captured."""
    parts = [
        commit,
        base.id,
        cfg.rel(cfg.playbook),
        ",".join(cfg.groups),
        ",".join(cfg.parity.roots or ()),
        ",".join(cfg.parity.ignore),
    ]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _export(root: Path, commit: str, dest: Path) -> None:
    """The tree at ``commit``, read from git, never from the work tree."""
    archive = dest.with_suffix(".tar")
    git(root, "archive", "--format=tar", "-o", str(archive), commit)
    with tarfile.open(archive) as tar:
        # "tar", not "data": the tree is the repo's own, and may hold absolute symlinks.
        tar.extractall(dest, filter="tar")


def make(
    engine: Engine, cfg: Config, base: ImageInfo, commit: str, tag: str, key: str, run_id: str
) -> None:
    """Converge a container from ``base`` with the playbook as it was at ``commit``; commit it."""
    name = f"tdi-{run_id}-baseline"
    log.info("making snapshot %s: converge baseline %s", tag, commit[:12])
    with tempfile.TemporaryDirectory(prefix="tdi-baseline-") as tmp:
        tree = Path(tmp, "tree")
        _export(cfg.root, commit, tree)
        playbook = tree / cfg.rel(cfg.playbook)
        if not playbook.is_file():
            raise BaselineError(f"baseline {commit[:12]} has no playbook {cfg.rel(cfg.playbook)}")
        inventory = ansible.write_inventory(
            Path(tmp, "inventory.yml"), {"baseline": name}, cfg.groups
        )
        try:
            engine.run(base.id, name, labels(run_id, "baseline"))
            log_path = work_dir(cfg.root) / f"baseline-{commit[:12]}.converge.log"
            result = ansible.run_playbook(tree, playbook, inventory, "baseline", log_path)
            if not result.ok:
                raise BaselineError(
                    f"baseline {commit[:12]} does not converge ({result.failure()}); see {log_path}"
                )
            state = capture_container(engine, name, cfg.parity)
            store_baseline(engine, name, state, result.events)
            engine.commit(
                name, tag, {COMMIT_LABEL: commit, BASE_LABEL: base.id, KEY_LABEL: key}, base
            )
        finally:
            engine.remove([name])
