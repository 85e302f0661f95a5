"""Why a difference exists, judged against the baseline state. Pure: no I/O.

The baseline is the state captured right after the production snapshot was made, so it
shows what the previous release left behind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from tdi.state.attribution import Event, port_owner, touched_by
from tdi.state.capture import Record, Section, State
from tdi.state.diff import Difference
from tdi.state.rules import Rule

STALE = "stale"  # upgrade keeps the baseline's thing or value; no task of this release sets it
NOT_APPLIED = "not-applied"  # a task of this release changed it on fresh, not on upgrade
DIVERGED = "diverged"  # upgrade matches neither fresh nor the baseline
MISSING = "missing"  # on fresh, not on upgrade
NONDETERMINISTIC = "nondeterministic"  # differs between two fresh hosts as well
UNMANAGED = "unmanaged"  # no task of either release made it: a daemon or a package did
# Two-way kinds, for an upgrade image that carries no baseline state.
EXTRA = "extra"  # on upgrade, not on fresh
CHANGED = "changed"  # on both, different
# Rollback: the previous release applied again on an upgraded host, against its own state.
IRREVERSIBLE = "irreversible"  # this release left it, and the previous one does not undo it
NOT_IDEMPOTENT = "not-idempotent"  # rollback: the previous release changed it again itself

# What each kind means, for legends (the HTML report's).
MEANING = {
    STALE: "the upgrade host keeps what the baseline had, and no task of this release sets "
    "it: a fresh host lacks it or has another value",
    NOT_APPLIED: "a task of this release changed it on a fresh host, but the upgrade host "
    "still holds the baseline's value",
    DIVERGED: "the upgrade host matches neither a fresh host nor the baseline",
    MISSING: "on a fresh host, not on the upgrade host",
    NONDETERMINISTIC: "differs between two fresh hosts as well (tdi-noise.yml): not a failure",
    UNMANAGED: "no task of either release made it: a daemon or a package's script did (a "
    "data file, a per-host key), or it is a service's boot history: not a failure",
    EXTRA: "on the upgrade host, not on a fresh host (no baseline state to say why)",
    CHANGED: "on both, different (no baseline state to say why)",
    IRREVERSIBLE: "rollback: the previous release, applied again on an upgraded host, "
    "leaves it other than that release's own state: this release left it, and the "
    "previous one does not undo it",
    NOT_IDEMPOTENT: "rollback: the upgrade left it as the previous release had it, and that "
    "release, applied again, changed it itself: the previous release is not idempotent, "
    "not a failure of this change",
}

SECTIONS = {
    "file": "files",
    "package": "packages",
    "user": "users",
    "group": "groups",
    "service": "services",
    "port": "ports",
}

# Unit-file states (systemd) of a service that does not start at boot, and the sysv
# record's False: whether such a service runs is the history of the host (a postinst
# started it; a host that booted since does not run it), not its configuration.
NOT_AT_BOOT: frozenset[str | bool] = frozenset({"disabled", "static", "indirect", False})
RUN_STATE = frozenset({"active", "running"})


def _kind(d: Difference, baseline: State | None, touched: bool) -> str:
    if d.upgrade is None:
        return MISSING
    if baseline is None:
        return EXTRA if d.fresh is None else CHANGED
    before: Record | None = getattr(baseline, SECTIONS[d.category]).get(d.key)
    if d.fresh is None:
        return STALE if before is not None else DIVERGED
    fields = set(d.fresh) | set(d.upgrade)
    if before is not None and all(before.get(f) == d.upgrade.get(f) for f in fields):
        return NOT_APPLIED if touched else STALE
    return DIVERGED


def _boot_history(d: Difference, services: Mapping[str, Record]) -> bool:
    """A service present on both sides that differs only in whether it runs, and does
    not start at boot."""
    if d.category != "service" or d.fresh is None or d.upgrade is None:
        return False
    fields = set(d.fresh) | set(d.upgrade)
    unit = services.get(d.key) or {}
    return bool(fields) and fields <= RUN_STATE and unit.get("enabled") in NOT_AT_BOOT


def _socket_activated(d: Difference) -> bool:
    """A port that systemd holds on one side only, for the same daemon: a socket unit
    (mariadb.socket, say) that a package enabled and a boot started. Boot history, as a
    service that runs only since a package's script started it."""
    if d.category != "port" or d.fresh is None or d.upgrade is None:
        return False
    if "process" not in d.fresh or "process" not in d.upgrade:
        return False
    owners = [set(str(side["process"]).split(",")) for side in (d.fresh, d.upgrade)]
    by_systemd = ["systemd" in names for names in owners]
    return by_systemd[0] != by_systemd[1] and owners[0] - {"systemd"} == owners[1] - {"systemd"}


def _runs_as(port: Difference, services: set[str]) -> bool:
    process = port_owner(port) or ""
    return any(process in (s, s + "d", s[:15], (s + "d")[:15]) for s in services)


def classify(
    differences: Sequence[Difference],
    baseline: State | None,
    noise: Sequence[Rule] = (),
    *,
    events: Sequence[Event] = (),
    baseline_events: Sequence[Event] = (),
    services: Mapping[str, Record] | None = None,
    host: str = "",
) -> list[Difference]:
    """Each difference with its kind; a match in the calibrated noise is nondeterministic.

    ``events`` are this release's converge events, ``baseline_events`` the baseline's;
    ``services`` the upgrade host's (their unit-file state, which a run-state difference
    does not carry). With both a baseline and its events, what no task of either release
    made is ``unmanaged``: a file no task wrote, a service that no task names and that
    does not start at boot differing only in whether it runs, and a port of such a
    service. ``host`` is the compared host, for noise entries of one host.
    """
    both = [*events, *baseline_events]
    judged = baseline is not None and bool(baseline_events)
    quiet_services = {
        d.key
        for d in differences
        if judged and _boot_history(d, services or {}) and not touched_by(d, both)
    }
    out = []
    for d in differences:
        if any(rule.matches(d, host) for rule in noise):
            kind = NONDETERMINISTIC
        elif _socket_activated(d) or (judged and _unmanaged(d, both, quiet_services)):
            kind = UNMANAGED
        else:
            kind = _kind(d, baseline, bool(touched_by(d, events)))
        out.append(replace(d, kind=kind))
    return out


def _unmanaged(d: Difference, events: Sequence[Event], quiet_services: set[str]) -> bool:
    if d.category == "file":
        return not touched_by(d, events)
    if d.category == "service":
        return d.key in quiet_services
    if d.category == "port":
        return _runs_as(d, quiet_services) and not touched_by(d, events)
    return False


def irreversible(
    differences: Sequence[Difference],
    baseline: State,
    noise: Sequence[Rule] = (),
    *,
    events: Sequence[Event] = (),
    baseline_events: Sequence[Event] = (),
    services: Mapping[str, Record] | None = None,
    host: str = "",
    upgraded: State | None = None,
) -> list[Difference]:
    """A rollback's differences (the baseline state on the fresh side, the rolled-back
    host on the other), each with its kind: what the calibrated noise or ``classify``
    finds quiet (a daemon's file, boot history) keeps that kind; what the upgrade left as
    the baseline had it (``upgraded``: the upgrade host's state) is the previous release's
    own doing, ``not-idempotent``; every other one is ``irreversible``. ``events`` are
    this release's converge events, ``services`` the rolled-back host's."""
    judged = classify(
        differences,
        baseline,
        noise,
        events=events,
        baseline_events=baseline_events,
        services=services,
        host=host,
    )
    quiet = (NONDETERMINISTIC, UNMANAGED)
    return [
        d
        if d.kind in quiet
        else replace(d, kind=NOT_IDEMPOTENT if _kept(d, baseline, upgraded) else IRREVERSIBLE)
        for d in judged
    ]


def _kept(d: Difference, baseline: State, upgraded: State | None) -> bool:
    """Whether the upgrade left ``d``'s key as the baseline had it."""
    if upgraded is None:
        return False
    section = SECTIONS[d.category]
    before: Section = getattr(baseline, section)
    after: Section = getattr(upgraded, section)
    return before.get(d.key) == after.get(d.key)
