"""What an upgrade converge changed on one host: its plan. Pure: no I/O.

The state before is the baseline state its snapshot carries, the state after the upgrade
capture; the services restarted and reloaded are systemd's own record (its journal), not
guessed from task names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tdi.state.diff import Difference

# What systemd's journal says of a job that ended ("done"): its type, as the plan says it.
# systemd's own units (utmp, tmpfiles...): the end of a boot, not the playbook's doing.
_HOUSEKEEPING = "systemd-"
_JOBS = {"restart": "restarted", "reload": "reloaded", "start": "started", "stop": "stopped"}


@dataclass(frozen=True)
class ServiceChange:
    """A unit that systemd restarted, reloaded, started or stopped during the converge."""

    unit: str
    actions: tuple[str, ...]  # in order, each once: "restarted", "reloaded", ...

    def to_dict(self) -> dict[str, Any]:
        return {"unit": self.unit, "actions": list(self.actions)}


@dataclass(frozen=True)
class Change:
    """One thing that is not as the snapshot had it: ``before`` and ``after`` as parity's
    ``fresh`` and ``upgrade`` are (None where absent, else the fields that differ)."""

    category: str  # file, package, user, group, port, service
    key: str
    action: str  # added, removed, changed; packages: installed, removed, upgraded, downgraded
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
    tasks: tuple[str, ...] = ()  # the tasks of this converge that touched it
    files: tuple[str, ...] = ()  # a package's own files that changed with it
    content_diff: str = ""
    content_notes: tuple[str, ...] = ()

    @property
    def summary(self) -> str:
        """One line: `upgraded nginx 1.22 → 1.24`, `added file /etc/x`."""
        if self.action in ("upgraded", "downgraded"):  # a package whose version changed
            old, new = (self.before or {}).get("version"), (self.after or {}).get("version")
            return f"{self.action} package {self.key} {old} → {new}"
        if self.action == "changed":
            before, after = self.before or {}, self.after or {}
            fields = {*before, *after}
            what = [f"{f} {before.get(f)} → {after.get(f)}" for f in sorted(fields - {"sha256"})]
            said = ", ".join(["content"] * ("sha256" in fields) + what)
            return f"changed {self.category} {self.key}" + (f": {said}" if said else "")
        return f"{self.action} {self.category} {self.key}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "key": self.key,
            "action": self.action,
            "summary": self.summary,
            "before": dict(self.before) if self.before is not None else None,
            "after": dict(self.after) if self.after is not None else None,
            "tasks": list(self.tasks),
            "files": list(self.files),
            "content_diff": self.content_diff,
            "content_notes": list(self.content_notes),
        }


def service_changes(journal: Iterable[Mapping[str, Any]]) -> tuple[ServiceChange, ...]:
    """Each service whose jobs ended during the converge, from systemd's journal records (PID
    1's, as ``journalctl -o json`` prints them): a restart's own stop and start are one
    "restarted"; a stop and a later start, too. systemd's own units are left out."""
    found: dict[str, list[str]] = {}
    for record in journal:
        unit, job = str(record.get("UNIT") or ""), str(record.get("JOB_TYPE") or "")
        if not unit.endswith(".service") or unit.startswith(_HOUSEKEEPING):
            continue
        if job not in _JOBS or record.get("JOB_RESULT") != "done":
            continue
        actions = found.setdefault(unit.removesuffix(".service"), [])
        said = _JOBS[job]
        if said == "started" and actions[-1:] in (["restarted"], ["stopped"]):
            actions[-1] = "restarted"  # the start that ends a restart, or a stop and start
            continue
        if said not in actions:
            actions.append(said)
    return tuple(ServiceChange(unit, tuple(a)) for unit, a in found.items())


def handlers(events: Iterable[Any]) -> tuple[str, ...]:
    """The handlers that ran (a notified handler's result, changed or not), each once."""
    ran = (e.task for e in events if e.handler and e.status in ("ok", "changed"))
    return tuple(dict.fromkeys(ran))


def changes(
    differences: Sequence[Difference], newer: Mapping[str, bool] | None = None
) -> tuple[Change, ...]:
    """The plan's view of ``diff(before, after)``, attributed: a package's action says
    whether its version went up (``newer``: package -> whether the version after is the
    newer one, as its manager compares them: state/managers.py)."""
    return tuple(
        Change(
            d.category,
            d.key,
            _action(d, (newer or {}).get(d.key, True)),
            d.fresh,
            d.upgrade,
            d.tasks,
            d.files,
            d.content_diff,
            d.content_notes,
        )
        for d in differences
    )


def _action(d: Difference, newer: bool) -> str:
    if d.fresh is None:
        return "installed" if d.category == "package" else "added"
    if d.upgrade is None:
        return "removed"
    if d.category == "package" and "version" in d.upgrade:
        return "upgraded" if newer else "downgraded"
    return "changed"
