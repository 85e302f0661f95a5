"""Which Ansible task touched the thing a difference is about. Pure: no I/O.

Read from the converge's structured events: a task's ``dest``/``path`` names a file, the
``name`` of an apt/package task names packages, and so on. A difference that no task
of this release touches (a stale file, say) is attributed to the baseline's tasks.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

from tdi.state.diff import Difference

FILE_ARGS = ("dest", "path", "creates", "removes")
# Modules that look at a host without changing it: they touch nothing.
READ_ONLY = frozenset(
    {
        "stat",
        "slurp",
        "find",
        "debug",
        "assert",
        "fail",
        "set_fact",
        "wait_for",
        "uri",
        "getent",
        "package_facts",
        "service_facts",
        "setup",
        "ping",
        "include_vars",
    }
)
PACKAGE_ACTIONS = frozenset({"apt", "package", "dnf", "yum", "pip", "snap"})
SERVICE_ACTIONS = frozenset({"service", "systemd", "systemd_service", "sysvinit"})


class Event(Protocol):
    """The part of tdi.ansible.TaskEvent that attribution reads."""

    @property
    def task(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def args(self) -> Mapping[str, Any]: ...
    @property
    def status(self) -> str: ...


def _action(event: Event) -> str:
    return event.action.rsplit(".", 1)[-1]  # ansible.builtin.apt -> apt


def _names(value: Any) -> set[str]:
    """Package, user or group names from a list or a comma-separated string."""
    items = value if isinstance(value, list) else str(value).split(",")
    # "nginx=1.22*" and "foo>=1" name nginx and foo.
    return {re.split(r"[=<>~ ]", str(item).strip(), maxsplit=1)[0] for item in items if item}


def _file_paths(event: Event) -> set[str]:
    return {str(event.args[a]).rstrip("/") or "/" for a in FILE_ARGS if event.args.get(a)}


def _writers(events: Sequence[Event]) -> list[Event]:
    # A skipped task touched nothing; neither does a module that only reads.
    return [e for e in events if _action(e) not in READ_ONLY and e.status != "skipped"]


def _touches_file(path: str, events: Sequence[Event]) -> list[Event]:
    exact = [e for e in events if path in _file_paths(e)]
    if exact:
        return exact
    # Nearest ancestor: a task that wrote a whole directory (file recurse, copy, unarchive).
    parent = posixpath.dirname(path)
    while parent not in ("/", ""):
        found = [e for e in events if parent in _file_paths(e)]
        if found:
            return found
        parent = posixpath.dirname(parent)
    return []


def _touches_name(d: Difference, event: Event) -> bool:
    action, name = _action(event), event.args.get("name")
    if name is None and action in PACKAGE_ACTIONS:
        name = event.args.get("pkg")
    if name is None:
        return False
    names = _names(name)
    if d.category == "package":
        return action in PACKAGE_ACTIONS and d.key in names
    if d.category == "user":
        return action == "user" and d.key in names
    if d.category == "group":
        in_user = action == "user" and d.key in _names(event.args.get("groups") or [])
        return (action == "group" and d.key in names) or in_user
    if d.category == "service":
        return (action in SERVICE_ACTIONS or action in PACKAGE_ACTIONS) and d.key in names
    return False


def _port_owner(d: Difference) -> str | None:
    record = d.upgrade if d.upgrade is not None else d.fresh
    process = (record or {}).get("process")
    return str(process) if process else None


def _matching(d: Difference, events: Sequence[Event]) -> list[Event]:
    events = _writers(events)
    if d.category == "file":
        return _touches_file(d.key, events)
    if d.category == "port":
        owner = _port_owner(d)
        if owner is None:
            return []
        as_service = replace(d, category="service", key=owner)
        return [e for e in events if _touches_name(as_service, e)]
    return [e for e in events if _touches_name(d, e)]


def _unique(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


def attribute(
    differences: Sequence[Difference],
    events: Sequence[Event],
    baseline_events: Sequence[Event] = (),
) -> list[Difference]:
    """Each difference with the tasks that touched it (``baseline: `` for the old release's)."""
    out = []
    for d in differences:
        tasks = _unique(e.task for e in _matching(d, events))
        if not tasks:
            tasks = _unique(f"baseline: {e.task}" for e in _matching(d, baseline_events))
        out.append(replace(d, tasks=tasks))
    return out


INIT_SCRIPT = re.compile(r"^/etc/init\.d/([^/]+)$")
SYSTEMD_UNIT = re.compile(r"^/(?:usr/)?lib/systemd/system/([^/]+\.(?:service|socket|timer))$")


def _made_by(paths: frozenset[str]) -> re.Pattern[str] | None:
    """Files a package's maintainer scripts make for its services: rc links, unit links."""
    scripts = [m[1] for m in map(INIT_SCRIPT.match, paths) if m]
    units = [m[1] for m in map(SYSTEMD_UNIT.match, paths) if m]
    alternatives = [rf"[SK]\d\d{re.escape(s)}" for s in scripts]
    alternatives += [rf"{re.escape(u)}(?:\..*)?" for u in units]
    if not alternatives:
        return None
    return re.compile(rf"^(?:{'|'.join(alternatives)})$")


def _owner(
    path: str, owned: Mapping[str, frozenset[str]], made: Mapping[str, re.Pattern[str] | None]
) -> str | None:
    for pkg, paths in owned.items():
        pattern = made[pkg]
        if path in paths or (pattern and pattern.match(posixpath.basename(path))):
            return pkg
    return None


def fold_package_files(
    differences: Sequence[Difference], owned: Mapping[str, frozenset[str]]
) -> list[Difference]:
    """File differences that belong to a differing package are listed under it.

    A package's files are what dpkg lists for it, plus the links its maintainer scripts
    make for its services (``/etc/rc2.d/S01cron``, ``multi-user.target.wants/cron.service``).
    """
    differing = {d.key for d in differences if d.category == "package"}
    owned = {pkg: paths for pkg, paths in owned.items() if pkg in differing}
    made = {pkg: _made_by(paths) for pkg, paths in owned.items()}
    folded: dict[str, list[str]] = {}
    kept = []
    for d in differences:
        pkg = _owner(d.key, owned, made) if d.category == "file" else None
        if pkg is not None:
            folded.setdefault(pkg, []).append(d.key)
        else:
            kept.append(d)
    return [
        replace(d, files=tuple(sorted(folded[d.key])))
        if d.category == "package" and d.key in folded
        else d
        for d in kept
    ]
