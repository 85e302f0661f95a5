"""Compare the state of the fresh host with that of the upgraded host. Pure: no I/O."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Literal

from tdi.state.capture import Record, Section, State

Category = Literal["file", "group", "package", "port", "service", "user"]
# Kinds of difference that do not fail a run (tdi.state.kinds says what each means).
QUIET_KINDS = frozenset({"nondeterministic", "unmanaged", "not-idempotent"})

# Category, State field, record fields left out of the comparison. Numeric ids differ
# between hosts that created the same accounts in another order; id_warnings says so.
_SECTIONS: tuple[tuple[Category, str, frozenset[str]], ...] = (
    ("file", "files", frozenset()),
    ("group", "groups", frozenset({"gid"})),
    ("package", "packages", frozenset()),
    ("port", "ports", frozenset()),
    ("service", "services", frozenset()),
    ("user", "users", frozenset({"uid", "gid"})),
)


@dataclass(frozen=True)
class Difference:
    """One key whose state differs.

    ``fresh``/``upgrade`` are None where the key is absent on that side, the whole
    record where it is present on one side only, and otherwise only the differing
    fields (a field one side lacks is left out of that side's dict).
    """

    category: Category
    key: str
    fresh: Record | None
    upgrade: Record | None
    kind: str = ""  # set by tdi.state.kinds.classify
    tasks: tuple[str, ...] = ()  # set by tdi.state.attribution.attribute
    files: tuple[str, ...] = ()  # a package's own file differences, folded under it
    allowed: str = ""  # the allowlist entry's reason, when one matches
    content_diff: str = ""  # files: a unified diff of the content, fresh to upgrade
    content_notes: tuple[str, ...] = ()  # files: what was masked or cut, or why not shown

    @property
    def heading(self) -> str:
        """Where a report lists it: cron files get their own heading."""
        return "cron" if self.category == "file" and is_cron(self.key) else self.category

    @property
    def fails(self) -> bool:
        return self.kind not in QUIET_KINDS and not self.allowed

    def to_dict(self) -> dict[str, object]:
        return {
            "category": self.category,
            "key": self.key,
            "fresh": self.fresh,
            "upgrade": self.upgrade,
            "kind": self.kind,
            "tasks": list(self.tasks),
            "heading": self.heading,
            "files": list(self.files),
            "allowed": self.allowed,
            "content_diff": self.content_diff,
            "content_notes": list(self.content_notes),
        }


CRON_PATHS = ("/etc/crontab", "/etc/cron.*", "/etc/cron.*/*", "/var/spool/cron/*")


def is_cron(path: str) -> bool:
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in CRON_PATHS)


def diff(fresh: State, upgrade: State) -> list[Difference]:
    """Every difference between the two states, sorted by category, then key."""
    found: list[Difference] = []
    for category, section, ignored in _SECTIONS:
        found.extend(
            _diff_section(category, getattr(fresh, section), getattr(upgrade, section), ignored)
        )
    return sorted(found, key=lambda d: (d.category, d.key))


def _diff_section(
    category: Category, fresh: Section, upgrade: Section, ignored: frozenset[str]
) -> list[Difference]:
    found = []
    for key in sorted(fresh.keys() | upgrade.keys()):
        if key not in fresh or key not in upgrade:
            found.append(Difference(category, key, fresh.get(key), upgrade.get(key)))
            continue
        changed = _changed_fields(fresh[key], upgrade[key], ignored)
        if changed:
            only = {field: fresh[key][field] for field in changed if field in fresh[key]}
            other = {field: upgrade[key][field] for field in changed if field in upgrade[key]}
            found.append(Difference(category, key, only, other))
    return found


def _changed_fields(fresh: Record, upgrade: Record, ignored: frozenset[str]) -> list[str]:
    fields = sorted((fresh.keys() | upgrade.keys()) - ignored)
    # A field on one side only differs from any value the other side could hold.
    return [
        field
        for field in fields
        if field not in fresh or field not in upgrade or fresh[field] != upgrade[field]
    ]


def id_warnings(fresh: State, upgrade: State) -> list[str]:
    """One line per user or group present on both sides with another uid or gid.

    Not differences: files are compared by owner name, so only files shared with other
    hosts (NFS, volumes, restored backups) would notice.
    """
    warnings = []
    for kind, section, fields in (("group", "groups", ("gid",)), ("user", "users", ("uid", "gid"))):
        before: Section = getattr(fresh, section)
        after: Section = getattr(upgrade, section)
        for name in sorted(before.keys() & after.keys()):
            for field in fields:
                old, new = before[name].get(field), after[name].get(field)
                if old != new:
                    warnings.append(f"{kind} {name!r}: {field} {old} on fresh, {new} on upgrade")
    return warnings
