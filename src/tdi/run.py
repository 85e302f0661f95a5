"""A run: its id, work directory, containers, and the record that phase commands share."""

from __future__ import annotations

import json
import logging
import secrets
import signal
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from tdi.ansible import write_inventory
from tdi.config import Config
from tdi.engine import RUN_LABEL, STATE_LABEL, Engine
from tdi.errors import TdiError

log = logging.getLogger(__name__)

STATES = ("fresh", "upgrade")
WORK_DIR = ".tdi"
CURRENT = "current.json"


@dataclass(frozen=True)
class Run:
    """One run's identity. Saved as .tdi/current.json so that phase commands find it."""

    id: str
    workdir: Path
    images: Mapping[str, str]  # state -> image reference
    containers: Mapping[str, str]  # state -> container name

    @property
    def inventory(self) -> Path:
        return self.workdir / "inventory.yml"

    def log(self, state: str, phase: str) -> Path:
        return self.workdir / f"{state}.{phase}.log"

    def save(self, root: Path) -> None:
        data = {**asdict(self), "workdir": str(self.workdir)}
        (root / WORK_DIR / CURRENT).write_text(json.dumps(data, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, root: Path) -> Run:
        path = root / WORK_DIR / CURRENT
        if not path.exists():
            raise TdiError(f"{path} does not exist: run `tdi create` first")
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(data["id"], Path(data["workdir"]), data["images"], data["containers"])

    @staticmethod
    def forget(root: Path) -> None:
        (root / WORK_DIR / CURRENT).unlink(missing_ok=True)


def work_dir(root: Path) -> Path:
    """The repo's .tdi directory, made on first use."""
    path = root / WORK_DIR
    path.mkdir(exist_ok=True)
    # Logs and run records are not the repo's content: keep them out of git status.
    (path / ".gitignore").write_text("*\n", encoding="utf-8")
    return path


def new_id() -> str:
    return secrets.token_hex(4)


def plan(cfg: Config, images: Mapping[str, str], run_id: str | None = None) -> Run:
    """Name a run's containers and write its inventory; starts nothing."""
    run_id = run_id or new_id()
    workdir = work_dir(cfg.root) / "runs" / run_id
    workdir.mkdir(parents=True, exist_ok=True)
    containers = {state: f"tdi-{run_id}-{state}" for state in images}
    run = Run(run_id, workdir, dict(images), containers)
    write_inventory(run.inventory, containers, cfg.groups)
    return run


def labels(run_id: str, state: str) -> dict[str, str]:
    return {RUN_LABEL: run_id, STATE_LABEL: state}


def create(engine: Engine, run: Run) -> None:
    for state, name in run.containers.items():
        engine.run(run.images[state], name, labels(run.id, state))
        log.info("create %s: container %s from %s", state, name, run.images[state])


def destroy(engine: Engine, run_id: str) -> int:
    """Remove every container labelled with ``run_id``; returns how many.

    SIGINT and SIGTERM wait until it is done: a second Ctrl-C must not leave half of them.
    """
    blocked = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        names = engine.containers(run_id)
        engine.remove(names)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    return len(names)
