"""Which Ansible task touched the thing a difference is about. Pure: no I/O.

Read from the converge's structured events: a task's ``dest``/``path`` names a file, the
``name`` of an apt/package task names packages, and so on. A task *wrote* a file when it
names that exact path (or enables the service whose link it is), or names a directory
above it and is a module that writes whole trees (``TREE_ACTIONS``, a copy of a
directory, a recursive ``file``), or runs a command line that names the path. A ``file:
state=directory`` above a file does not claim what a daemon writes into that directory.
An exact match, of either release, beats an ancestor.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Mapping, Sequence
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
PACKAGE_ACTIONS = frozenset(
    {"apt", "package", "dnf", "dnf5", "yum", "zypper", "apk", "pip", "snap"}
)
SERVICE_ACTIONS = frozenset({"service", "systemd", "systemd_service", "sysvinit"})
# Modules that write a whole tree below the directory they name.
TREE_ACTIONS = frozenset({"unarchive", "synchronize", "git", "subversion", "hg", "get_url"})
BASELINE = "baseline: "  # how a task of the baseline's converge is named


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
    return {_clean(event.args[a]) for a in FILE_ARGS if event.args.get(a)}


def _clean(path: object) -> str:
    return str(path).rstrip("/") or "/"


def _writers(events: Sequence[Event]) -> list[Event]:
    # A skipped task touched nothing; neither does a module that only reads.
    return [e for e in events if _action(e) not in READ_ONLY and e.status != "skipped"]


def _names_path(path: str, event: Event) -> bool:
    """The task names ``path``: as a file argument, in its command line (the path, or a
    file below it, as ``mkdir -p /opt/app/data`` makes /opt/app), or as the enabling link
    of a service it names."""
    if path in _file_paths(event) or _links_service(path, event):
        return True
    named = (_clean(p) for p in event.args.get("command_paths") or ())
    return any(p == path or p.startswith(path + "/") for p in named)


# The links that enable a service: systemd's ``*.wants`` links, sysv's rc links.
SERVICE_LINK = re.compile(
    r"^/etc/(?:systemd/system/[^/]+\.(?:wants|requires)/(?P<unit>[^/]+?)"
    r"(?:\.(?:service|socket|timer))?|rc[0-6S]\.d/[SK]\d\d(?P<script>[^/]+))$"
)


def _links_service(path: str, event: Event) -> bool:
    """The task enables, or installs, the service whose link ``path`` is: a service task
    (``enabled``), or a package task whose postinst enables it."""
    found = SERVICE_LINK.match(path)
    if found is None:
        return False
    action = _action(event)
    name = event.args.get("name") or (event.args.get("pkg") if action in PACKAGE_ACTIONS else None)
    if name is None or (action not in SERVICE_ACTIONS and action not in PACKAGE_ACTIONS):
        return False
    units = {re.sub(r"\.(service|socket|timer)$", "", n) for n in _names(name)}
    return (found["unit"] or found["script"]) in units


def _writes_tree(event: Event) -> bool:
    action, args = _action(event), event.args
    if action == "file":
        return bool(args.get("recurse")) or args.get("state") == "absent"
    if action == "copy":  # of a directory: the callback says so, or its src ends in "/"
        return bool(args.get("tree")) or str(args.get("src", "")).endswith("/")
    return action in TREE_ACTIONS


def _exact(path: str, events: Sequence[Event]) -> list[Event]:
    return [e for e in events if _names_path(path, e)]


def _tree(path: str, events: Sequence[Event]) -> list[Event]:
    """The tasks that wrote the nearest directory above ``path`` as a whole tree."""
    trees = [e for e in events if _writes_tree(e)]
    parent = posixpath.dirname(path)
    while parent not in ("/", ""):
        found = [e for e in trees if parent in _file_paths(e)]
        if found:
            return found
        parent = posixpath.dirname(parent)
    return []


def _deb_package(path: object) -> str | None:
    """The package a .deb file holds, by Debian's file naming: NAME_VERSION_ARCH.deb."""
    return posixpath.basename(str(path)).split("_", 1)[0] if path else None


def _touches_name(d: Difference, event: Event) -> bool:
    action, name = _action(event), event.args.get("name")
    if name is None and action in PACKAGE_ACTIONS:
        name = event.args.get("pkg") or _deb_package(event.args.get("deb"))
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


def port_owner(d: Difference) -> str | None:
    """The processes that hold a port difference's socket, as the probe names them."""
    record = d.upgrade if d.upgrade is not None else d.fresh
    process = (record or {}).get("process")
    return str(process) if process else None


def _by_name(d: Difference, events: Sequence[Event]) -> list[Event]:
    if d.category == "port":
        owner = port_owner(d)
        if owner is None:
            return []
        as_service = replace(d, category="service", key=owner)
        return [e for e in events if _touches_name(as_service, e)]
    return [e for e in events if _touches_name(d, e)]


def touched_by(d: Difference, events: Sequence[Event]) -> list[Event]:
    """The tasks of ``events`` that touched what ``d`` is about (wrote its file: the path,
    or a tree above it; named its package, user, group or service)."""
    events = _writers(events)
    if d.category == "file":
        return _exact(d.key, events) or _tree(d.key, events)
    return _by_name(d, events)


def _tiers(
    d: Difference, events: Sequence[Event], baseline_events: Sequence[Event]
) -> Iterator[tuple[str, list[Event]]]:
    """Candidate tasks, best first: for a file, tasks that name its exact path (this
    release's, then the baseline's), then tree writers above it; else by name."""
    ours, theirs = _writers(events), _writers(baseline_events)
    if d.category == "file":
        yield "", _exact(d.key, ours)
        yield BASELINE, _exact(d.key, theirs)
        yield "", _tree(d.key, ours)
        yield BASELINE, _tree(d.key, theirs)
    else:
        yield "", _by_name(d, ours)
        yield BASELINE, _by_name(d, theirs)


def attribute(
    differences: Sequence[Difference],
    events: Sequence[Event],
    baseline_events: Sequence[Event] = (),
) -> list[Difference]:
    """Each difference with the tasks that touched it (``baseline: `` for the old release's).

    A file's exact path named by a task of either release beats a tree written above it:
    a stale file is its baseline writer's, not this release's directory's."""
    out = []
    for d in differences:
        tiers = _tiers(d, events, baseline_events)
        prefix, found = next(((prefix, found) for prefix, found in tiers if found), ("", []))
        out.append(replace(d, tasks=tuple(dict.fromkeys(prefix + e.task for e in found))))
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

    A package's files are what its manager lists for it (``owned``), plus the links its
    maintainer scripts make for its services (``/etc/rc2.d/S01cron``,
    ``multi-user.target.wants/cron.service``).
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
