"""The parity allowlist (``parity.allow`` in tdi.yml). Pure: no I/O."""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, replace

from tdi.state.diff import Difference


@dataclass(frozen=True)
class AllowEntry:
    """A known difference: reported, but it does not fail the run until ``until``."""

    index: int  # position in parity.allow, for messages
    category: str
    key: str  # a glob
    reason: str
    until: dt.date | None = None

    def name(self) -> str:
        return f"parity.allow[{self.index}] ({self.category}:{self.key})"

    def expired(self, today: dt.date) -> bool:
        return self.until is not None and self.until < today

    def matches(self, d: Difference) -> bool:
        return self.category == d.category and fnmatch.fnmatchcase(d.key, self.key)


def apply_allow(
    differences: Sequence[Difference], entries: Sequence[AllowEntry], today: dt.date
) -> tuple[list[Difference], list[str]]:
    """Mark allowed differences; return them and one message per expired entry.

    An expired entry allows nothing and fails the run, so that it is renewed or removed.
    """
    live = [e for e in entries if not e.expired(today)]
    expired = [
        f"{e.name()} expired on {e.until}: remove it or move 'until' ({e.reason})"
        for e in entries
        if e.expired(today)
    ]
    out = []
    for d in differences:
        entry = next((e for e in live if e.matches(d)), None)
        out.append(replace(d, allowed=entry.reason) if entry else d)
    return out, expired
