"""Run records: every run writes one, naming its containers and networks, before it creates
any, so that whatever ends tdi (SIGKILL, the OOM killer, a CI hard-cancel) a later tdi finds
what the run left and removes it.

A record lives in the run's work directory (``.tdi/runs/<id>/record.json``) and names the
tdi process that owns the run: its pid, and that pid's start time from /proc/PID/stat, so
that a reused pid is not taken for a live run.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

RECORD = "record.json"
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


@dataclass(frozen=True)
class Owner:
    """The tdi process that owns a run: its pid, the pid's start time (clock ticks after
    boot), the boot and the host it runs on."""

    pid: int
    started: int
    boot: str
    host: str


@dataclass(frozen=True)
class Record:
    """One run: its owner, what it creates, and, once the daemon confirmed them all gone,
    the containers it removed (None until then)."""

    run: str
    root: str
    owner: Owner
    containers: tuple[str, ...]
    networks: tuple[str, ...]
    removed: tuple[str, ...] | None = None


def process_start(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks after boot; None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return None
    # The command name (field 2) may hold spaces and ")"; field 22 counts from the last ")".
    return int(stat.rpartition(")")[2].split()[19])


def me() -> Owner | None:
    """This process as a run's owner; None where there is no /proc to tell."""
    started = process_start(os.getpid())
    if started is None:
        return None
    boot = BOOT_ID.read_text(encoding="utf-8").strip()
    return Owner(os.getpid(), started, boot, socket.gethostname())


def alive(owner: Owner, here: Owner | None) -> bool:
    """Whether ``owner`` still runs, as seen from ``here`` (this process). A run that tdi
    cannot judge, on another host or where there is no /proc, counts as alive."""
    if here is None or owner.host != here.host:
        return True
    if owner.boot != here.boot:
        return False  # the machine restarted since
    return process_start(owner.pid) == owner.started


def write(workdir: Path, record: Record) -> None:
    """Save ``record`` in ``workdir``; a reader sees the old record or the new, never half."""
    path = workdir / RECORD
    tmp = path.with_name(f".{RECORD}.{os.getpid()}")
    try:
        tmp.write_text(json.dumps(asdict(record), indent=2), encoding="utf-8")
        tmp.replace(path)
    except OSError:
        tmp.unlink(missing_ok=True)  # no half-written record stays behind
        raise


def read(workdir: Path) -> Record | None:
    """The record in ``workdir``; None when there is none or it cannot be read."""
    path = workdir / RECORD
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        removed = data["removed"]
        return Record(
            data["run"],
            data["root"],
            Owner(**data["owner"]),
            tuple(data["containers"]),
            tuple(data["networks"]),
            None if removed is None else tuple(removed),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring the run record %s: %s", path, exc)
        return None


def scan(runs: Path) -> list[Record]:
    """Every readable record under ``runs`` (``.tdi/runs``), oldest first."""
    dirs = [d for d in runs.iterdir() if d.is_dir()] if runs.is_dir() else []
    found = [(d.stat().st_mtime, r) for d in dirs if (r := read(d)) is not None]
    return [r for _, r in sorted(found, key=lambda pair: pair[0])]


def dead(
    found: Iterable[Record],
    root: Path,
    kept: str | None,
    is_alive: Callable[[Owner], bool],
) -> list[Record]:
    """The runs of ``root`` not yet removed whose tdi is gone; the ``kept`` run (--keep,
    `tdi create`) is kept on purpose until `tdi destroy`."""
    return [
        r
        for r in found
        if r.removed is None and r.root == str(root) and r.run != kept and not is_alive(r.owner)
    ]


def mine(found: Sequence[Record], here: Owner | None) -> list[Record]:
    """The runs this process owns."""
    return [r for r in found if here is not None and r.owner == here]
