"""Glob rules over differences. Pure: no I/O.

The parity allowlist (``parity.allow`` in tdi.yml) and the calibrated noise
(tdi-noise.yml, written by `tdi calibrate`) are both lists of ``Rule``: a category, a glob
over its keys and the reason the rule exists. An allow rule may also carry an end date; a
noise rule may name the one host (of a topology) it was seen on.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from tdi.state.diff import Difference


@dataclass(frozen=True)
class Rule:
    """Differences of ``category`` whose key matches the glob ``key``, and why."""

    category: str
    key: str  # a glob, matched with fnmatch: "*" also matches "/"
    reason: str
    until: dt.date | None = None  # allow rules only: after this day the rule fails the run
    # Where it is written, for messages ("parity.allow[1]"); not part of its identity.
    where: str = field(default="", compare=False)
    host: str = ""  # noise rules: only on this host (of a topology); "" on every host

    def name(self) -> str:
        on = f" on {self.host}" if self.host else ""
        return f"{self.where} ({self.category}:{self.key}{on})".lstrip()

    def expired(self, today: dt.date) -> bool:
        return self.until is not None and self.until < today

    def matches(self, d: Difference, host: str = "") -> bool:
        """Whether ``d``, found on ``host``, is one this rule speaks of."""
        if self.host and self.host != host:
            return False
        return self.category == d.category and fnmatch.fnmatchcase(d.key, self.key)


def apply_allow(
    differences: Sequence[Difference], rules: Sequence[Rule], today: dt.date, host: str = ""
) -> tuple[list[Difference], list[str]]:
    """Mark allowed differences; return them and one message per expired rule.

    An expired rule allows nothing and fails the run, so that it is renewed or removed.
    """
    live = [r for r in rules if not r.expired(today)]
    expired = [
        f"{r.name()} expired on {r.until}: remove it or move 'until' ({r.reason})"
        for r in rules
        if r.expired(today)
    ]
    out = []
    for d in differences:
        rule = next((r for r in live if r.matches(d, host)), None)
        out.append(replace(d, allowed=rule.reason) if rule else d)
    return out, expired
