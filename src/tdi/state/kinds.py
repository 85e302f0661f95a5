"""Why a difference exists, judged against the baseline state. Pure: no I/O.

The baseline is the state captured right after the production snapshot was made, so it
shows what the previous release left behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from tdi.state.capture import Record, State
from tdi.state.diff import Difference
from tdi.state.rules import Rule

STALE = "stale"  # on upgrade and in the baseline, not on fresh: no longer managed
NOT_APPLIED = "not-applied"  # upgrade still holds the baseline's value
DIVERGED = "diverged"  # upgrade matches neither fresh nor the baseline
MISSING = "missing"  # on fresh, not on upgrade
NONDETERMINISTIC = "nondeterministic"  # differs between two fresh hosts as well
# Two-way kinds, for an upgrade image that carries no baseline state.
EXTRA = "extra"  # on upgrade, not on fresh
CHANGED = "changed"  # on both, different

# What each kind means, for legends (the HTML report's).
MEANING = {
    STALE: "on the upgrade host and in the baseline, not on a fresh host: no longer managed",
    NOT_APPLIED: "the upgrade host still holds the baseline's value: this change never reached it",
    DIVERGED: "the upgrade host matches neither a fresh host nor the baseline",
    MISSING: "on a fresh host, not on the upgrade host",
    NONDETERMINISTIC: "differs between two fresh hosts as well (tdi-noise.yml): not a failure",
    EXTRA: "on the upgrade host, not on a fresh host (no baseline state to say why)",
    CHANGED: "on both, different (no baseline state to say why)",
}

SECTIONS = {
    "file": "files",
    "package": "packages",
    "user": "users",
    "group": "groups",
    "service": "services",
    "port": "ports",
}


def _kind(d: Difference, baseline: State | None) -> str:
    if d.upgrade is None:
        return MISSING
    if baseline is None:
        return EXTRA if d.fresh is None else CHANGED
    before: Record | None = getattr(baseline, SECTIONS[d.category]).get(d.key)
    if d.fresh is None:
        return STALE if before is not None else DIVERGED
    fields = set(d.fresh) | set(d.upgrade)
    if before is not None and all(before.get(f) == d.upgrade.get(f) for f in fields):
        return NOT_APPLIED
    return DIVERGED


def classify(
    differences: Sequence[Difference],
    baseline: State | None,
    noise: Sequence[Rule] = (),
) -> list[Difference]:
    """Each difference with its kind; a match in the calibrated noise is nondeterministic."""
    out = []
    for d in differences:
        noisy = any(rule.matches(d) for rule in noise)
        out.append(replace(d, kind=NONDETERMINISTIC if noisy else _kind(d, baseline)))
    return out
