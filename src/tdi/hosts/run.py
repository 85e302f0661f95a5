"""A run: its id, work directory, nodes (a container per side and host), their networks,
and the record that phase commands share."""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from tdi import interrupts
from tdi.config import Config
from tdi.engine.protocol import (
    HOST_LABEL,
    RUN_LABEL,
    SIDE_LABEL,
    STATE_LABEL,
    ContainerSpec,
    Engine,
)
from tdi.errors import NoRunError, RecordError, TdiError
from tdi.hosts import boot, packages, records
from tdi.process import PROCESSES
from tdi.provision import inventory
from tdi.provision.inventory import RepoInventory

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
WORK_DIR = ".tdi"
CURRENT = "current.json"
RUNS = "runs"


@dataclass(frozen=True)
class Node:
    """One host on one side: one container."""

    key: str  # SIDE, or SIDE/HOST with `hosts:`
    side: str
    host: str
    image: str
    container: str


@dataclass(frozen=True)
class Run:
    """One run's identity. Saved as .tdi/current.json so that phase commands find it."""

    id: str
    workdir: Path
    nodes: Mapping[str, Node]  # key -> node, side by side

    @property
    def containers(self) -> dict[str, str]:
        return {k: n.container for k, n in self.nodes.items()}

    @property
    def sides(self) -> list[str]:
        return list(dict.fromkeys(n.side for n in self.nodes.values()))

    def on(self, side: str) -> list[Node]:
        return [n for n in self.nodes.values() if n.side == side]

    def inventory(self, side: str) -> Path:
        return self.workdir / f"inventory.{side}.yml"

    def log(self, side: str, phase: str) -> Path:
        return self.workdir / f"{side}.{phase}.log"

    def save(self, root: Path) -> None:
        data = {
            "id": self.id,
            "workdir": str(self.workdir),
            "nodes": [asdict(n) for n in self.nodes.values()],
        }
        (root / WORK_DIR / CURRENT).write_text(json.dumps(data, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, root: Path) -> Run:
        """The kept run: NoRunError when there is none, RecordError when its file cannot
        be read."""
        path = root / WORK_DIR / CURRENT
        if not path.exists():
            raise NoRunError(f"{path} does not exist: run `tdi create` first")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            nodes = {n["key"]: Node(**n) for n in data["nodes"]}
            return cls(str(data["id"]), Path(data["workdir"]), nodes)
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            raise RecordError(
                f"{path} cannot be read ({type(exc).__name__}: {exc}): remove it, then "
                "`tdi destroy` removes the containers of runs whose tdi is gone"
            ) from exc

    @staticmethod
    def forget(root: Path) -> None:
        (root / WORK_DIR / CURRENT).unlink(missing_ok=True)


def runs_dir(root: Path) -> Path:
    """Where each run's work directory and record are: ``.tdi/runs/<id>/``."""
    return root / WORK_DIR / RUNS


def keep_id(root: Path) -> str | None:
    """The id of the kept run (.tdi/current.json), if any."""
    try:
        return str(json.loads((root / WORK_DIR / CURRENT).read_text(encoding="utf-8"))["id"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def work_dir(root: Path) -> Path:
    """The repo's .tdi directory, made on first use."""
    path = root / WORK_DIR
    try:
        path.mkdir(exist_ok=True)
        # Logs, inventories and reports can hold what the hosts hold: the owner's only.
        path.chmod(0o700)
        # Logs and run records are not the repo's content: keep them out of git status.
        # Also a run's first write: a read-only or full .tdi is said here, before anything.
        (path / ".gitignore").write_text("*\n", encoding="utf-8")
    except OSError as exc:
        raise TdiError(f"{path}: cannot write: {exc.strerror}") from exc
    return path


def new_id() -> str:
    return secrets.token_hex(4)


def plan(
    cfg: Config,
    images: Mapping[str, Mapping[str, str]],
    repo: RepoInventory,
    run_id: str | None = None,
) -> Run:
    """Name a run's containers (``images``: side -> host -> image) and write each side's
    inventory; starts nothing."""
    run_id = run_id or new_id()
    work_dir(cfg.root)
    workdir = runs_dir(cfg.root) / run_id
    workdir.mkdir(parents=True, exist_ok=True)
    topo = cfg.topology
    nodes = [
        Node(topo.key(side, host), side, host, image, topo.container(run_id, side, host))
        for side, per_host in images.items()
        for host, image in per_host.items()
    ]
    run = Run(run_id, workdir, {n.key: n for n in nodes})
    write_inventories(cfg, run, repo)
    return run


def write_inventories(cfg: Config, run: Run, repo: RepoInventory) -> None:
    """Each side's inventory: the run's hosts in the repo inventory's groups, with its
    variables as they are now (`tdi converge` writes them again, so an edit applies)."""
    hosts = {n.host for n in run.nodes.values()}
    if hosts - set(cfg.topology.names):
        raise TdiError(
            f"run {run.id} has the hosts {', '.join(sorted(hosts))}, tdi.yml has "
            f"{', '.join(cfg.topology.names)}: `tdi destroy`, then `tdi create`"
        )
    for side in run.sides:
        containers = {n.host: n.container for n in run.on(side)}
        inventory.write(run.inventory(side), containers, cfg.topology, repo)


def labels(run_id: str, node: Node) -> dict[str, str]:
    return {RUN_LABEL: run_id, STATE_LABEL: node.key, SIDE_LABEL: node.side, HOST_LABEL: node.host}


def network(run_id: str, side: str) -> str:
    return f"tdi-{run_id}-{side}"


def inits(engine: Engine, cfg: Config, run: Run) -> dict[str, str]:
    """Each node's init, "systemd" or "tini"; checked before any container starts."""
    found: dict[tuple[str, str], str] = {}
    out = {}
    for node in run.nodes.values():
        settings = cfg.topology.host(node.host).settings
        if (node.image, settings.init) not in found:
            found[node.image, settings.init] = boot.init_of(engine, settings, node.image, node.key)
        out[node.key] = found[node.image, settings.init]
    return out


def create(engine: Engine, cfg: Config, run: Run) -> None:
    """Start every node, on one network per side, and boot each like a server."""
    init = inits(engine, cfg, run)
    cgroups = engine.cgroup_version()
    cache = packages.ensure(engine, cfg)
    for side in run.sides:
        net = network(run.id, side)
        # A request cut off may still be carried out, unseen: a network made, or the cache
        # attached to it, which would keep the network from being removed (seen in CI).
        with interrupts.deferred():
            engine.create_network(net, {RUN_LABEL: run.id, SIDE_LABEL: side})
            if cache:
                engine.attach(net, packages.NAME, packages.NAME)

    def start(node: Node) -> None:
        identity = ContainerSpec(
            image=node.image,
            name=node.container,
            hostname=cfg.topology.hostname(node.host),
            network=network(run.id, node.side),
            labels=labels(run.id, node),
            tmpfs=(packages.DIR,) if cache else (),
            env={"APT_CONFIG": packages.APT_CONFIG} if cache else {},
        )
        settings = cfg.topology.host(node.host).settings
        engine.run(boot.spec(init[node.key], settings, cgroups, identity))
        if cache:
            packages.configure(engine, node.container)
        log.info("create %s: %s from %s (%s)", node.key, node.container, node.image, init[node.key])

    def ready(node: Node) -> None:
        settings = cfg.topology.host(node.host).settings
        boot.ready(engine, node.container, init[node.key], node.key, settings)

    # All at once; an interrupt waits until every request is answered (none cut off, to be
    # carried out unseen after the removal looked), then acts.
    nodes = list(run.nodes.values())
    with interrupts.deferred():
        in_parallel(nodes, start)
    for side in run.sides:
        _pin_names(engine, cfg, run, side, cache)
    in_parallel(nodes, ready)


def boot_again(engine: Engine, cfg: Config, run: Run, node: Node, init: str = "systemd") -> None:
    """Start a host that rebooted (its container stopped), and boot it as ``create`` did.
    Docker writes /etc/hosts anew at each start and /run is a new tmpfs: the side's names,
    the package cache's settings and tdi's drop-in are written again. Last, the new boot
    id that Ansible's reboot module waits for: it goes on once the host has booted."""
    engine.start(node.container)
    cache = packages.ensure(engine, cfg)
    if cache:
        packages.configure(engine, node.container)
    _pin_names(engine, cfg, run, node.side, cache, [node])
    boot.ready(engine, node.container, init, node.key, cfg.topology.host(node.host).settings)
    boot.new_boot_id(engine, node.container, node.key)


def _pin_names(
    engine: Engine,
    cfg: Config,
    run: Run,
    side: str,
    cache: bool,
    into: Sequence[Node] | None = None,
) -> None:
    """Write the side's host names and the package cache's into each host's /etc/hosts
    (Docker's own file, never committed, ignored by parity): a firewall role that flushes
    the nat table takes Docker's DNS away, and the hosts must still find each other and
    the cache, as a server finds its peers through its firewall. ``into``: only these
    hosts (one that booted again)."""
    found = engine.addresses(network(run.id, side))
    names = {n.container: cfg.topology.hostname(n.host) for n in run.on(side)}
    if cache:
        names[packages.NAME] = packages.NAME
    lines = "".join(f"{found[c]}\t{name}\n" for c, name in names.items() if c in found)
    script = 'printf "%s" "$0" >> /etc/hosts'
    for node in run.on(side) if into is None else into:
        code, _, err = engine.exec(node.container, ["sh", "-c", script, lines])
        if code != 0:
            log.warning("%s: /etc/hosts not written: %s", node.key, err.decode(errors="replace"))


def in_parallel(items: list[T], work: Callable[[T], R]) -> list[R]:
    """``work`` on every item at the same time; the first error is raised as soon as it
    happens, once the children the others wait on (ansible-playbook, say) are stopped."""
    with ThreadPoolExecutor(max_workers=max(1, len(items))) as pool:
        futures = [pool.submit(work, item) for item in items]
        try:
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for failed in (f for f in futures if f in done and f.exception()):
                failed.result()
            return [f.result() for f in futures]
        except BaseException:
            # The pool's exit waits for every worker: stop their children, even one that
            # starts late, or an interrupt or a failure waits for a whole converge.
            while wait(futures, timeout=0.2).not_done:
                PROCESSES.terminate()
            raise


@contextmanager
def lifecycle(engine: Engine, cfg: Config, run: Run, keep: bool = False) -> Iterator[Run]:
    """Remove what dead runs of this repo left, record this run, then create its
    containers; on any exit stop its child processes and, unless ``keep`` (once all were
    created), remove all it made. The one lifecycle of every command that starts hosts."""
    reap(engine, cfg.root)
    created = False
    try:  # from the record on: an interrupt just after it writes still removes the run
        write_record(cfg, run)
        start = time.monotonic()
        create(engine, cfg, run)
        created = True
        log.info("create done in %.1f s", time.monotonic() - start)
        yield run
    except BaseException:
        PROCESSES.terminate()
        raise
    finally:
        with interrupts.deferred():  # a second Ctrl-C must not skip the removal
            if not (keep and created):
                destroy(engine, run.workdir, run.id)
                if keep_id(cfg.root) == run.id:
                    Run.forget(cfg.root)  # a kept run that never was


def write_record(cfg: Config, run: Run) -> None:
    """Record the run, with the names of all it will create, before it creates any."""
    owner = records.me()
    if owner is None:  # no /proc: nothing could tell a dead run from a live one
        return
    networks = tuple(network(run.id, side) for side in run.sides)
    containers = tuple(run.containers.values())
    records.write(run.workdir, records.Record(run.id, str(cfg.root), owner, containers, networks))


@dataclass(frozen=True)
class Removed:
    """What ``destroy`` found and removed."""

    containers: list[str]
    networks: list[str]
    images: list[str] = field(default_factory=list)  # scratch images, by short id

    def __str__(self) -> str:
        found = [(what, names) for what, names in self.__dict__.items() if names]
        return "; ".join(f"{what} {', '.join(names)}" for what, names in found) or "nothing"


def destroy(engine: Engine, workdir: Path, run_id: str) -> Removed:
    """Remove a run's containers and networks, by the names its record holds and by its
    label; returns those that were there. The record says they were removed only once the
    daemon lists none of them.

    SIGINT and SIGTERM wait until it is done: a second Ctrl-C must not leave half of them.
    """
    with interrupts.deferred():
        record = records.read(workdir)
        names = set(record.containers) if record else set()
        present = sorted(set(engine.containers(run_id)) | (names & set(engine.containers())))
        # All at once: each removal is a few hundred ms of the daemon, mostly waiting.
        in_parallel(sorted(names | set(present)), lambda name: engine.remove([name]))
        nets = sorted(engine.networks(run_id))
        named = sorted({*nets, *(record.networks if record else ())})
        in_parallel(named, lambda name: engine.remove_networks([name]))
        images = _remove_scratch(engine, run_id)  # once no container of the run uses them
        left = sorted(set(engine.containers(run_id)) | (names & set(engine.containers())))
        left += engine.networks(run_id) + [f"image {i}" for i in engine.scratch_images(run_id)]
        if record is not None and not left:
            _mark_removed(workdir, replace(record, removed=tuple(present)))
    if left:
        log.warning("run %s: could not remove %s", run_id, ", ".join(left))
    return Removed(
        [c for c in present if c not in left], [n for n in nets if n not in left], images
    )


def _remove_scratch(engine: Engine, run_id: str) -> list[str]:
    """Remove the run's scratch images; returns the short ids of those removed. One a
    container still uses stays, and the record is not marked removed: a reap tries again."""
    removed = []
    for image in engine.scratch_images(run_id):
        try:
            engine.remove_image(image)
            removed.append(image.removeprefix("sha256:")[:12])
        except TdiError as exc:
            log.warning("run %s: could not remove image %s: %s", run_id, image, exc)
    return removed


def _mark_removed(workdir: Path, record: records.Record) -> None:
    """Say in the record that its run is removed. On a disk that is full, the record goes
    instead (nothing of the run is left for it to find); on one that turned read-only,
    it stays as it was, and the next run's reap finds nothing to remove and says so."""
    try:
        records.write(workdir, record)
    except OSError as exc:
        with suppress(OSError):
            (workdir / records.RECORD).unlink(missing_ok=True)
        log.warning("run %s is removed; its record could not say so: %s", record.run, exc.strerror)


def reap(engine: Engine, root: Path) -> int:
    """Remove what the runs of ``root`` left whose tdi is gone (killed, say), one log line
    per run; returns how many containers. Live runs, here or in another repo, and the kept
    run are left alone."""
    here = records.me()
    found = records.scan(runs_dir(root))
    count = 0
    for dead in records.dead(found, root, keep_id(root), lambda o: records.alive(o, here)):
        removed = destroy(engine, runs_dir(root) / dead.run, dead.run)
        log.info(
            "removed run %s, whose tdi (pid %d) is gone: %s",
            dead.run,
            dead.owner.pid,
            removed,
        )
        count += len(removed.containers)
    return count


def interrupted(root: Path) -> str:
    """What this process's runs left, for the message of an interrupt: the containers it
    removed, or kept; "" when it created none."""
    mine = records.mine(records.scan(runs_dir(root)), records.me())
    removed = [c for r in mine if r.removed for c in r.removed]
    kept = [c for r in mine if r.removed is None for c in r.containers]
    parts = [f"removed {', '.join(removed)}"] if removed else []
    if kept:
        parts.append(f"kept {', '.join(kept)} (`tdi destroy` removes them)")
    return "; ".join(parts)
