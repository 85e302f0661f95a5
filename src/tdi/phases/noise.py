"""The calibrated noise file: differences between two fresh hosts, each with its reason.

`tdi calibrate` writes it; `tdi test` marks any difference it matches ``nondeterministic``
instead of failing on it. It is meant to be committed and reviewed like code.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

from tdi import yamlfile
from tdi.errors import ConfigError
from tdi.state.diff import Difference
from tdi.state.kinds import SECTIONS
from tdi.state.rules import Rule

HEADER = """\
# Differences between two fresh hosts converged with the same playbook, written by
# `tdi calibrate`. `tdi test` reports a difference that matches an entry here as
# "nondeterministic" and does not fail on it. A key may be a glob; keep a reason on each.
# An entry with a host holds on that host only.
"""


def reason(d: Difference) -> str:
    if d.fresh is None or d.upgrade is None:
        return "present on only one of two fresh hosts"
    fields = sorted(set(d.fresh) | set(d.upgrade))
    return f"differs between two fresh hosts: {', '.join(fields)}"


def entries_from(found: Sequence[tuple[str, Difference]], hosts: Sequence[str]) -> list[Rule]:
    """One entry per difference, from ``found`` (host, difference) on ``hosts``: without a
    host when every host has it (the same), else one for each host that has it."""
    seen: dict[tuple[str, str, str], list[str]] = {}
    for host, d in found:
        seen.setdefault((d.category, d.key, reason(d)), []).append(host)
    entries = []
    for (category, key, why), where in seen.items():
        if set(hosts) <= set(where):
            entries.append(Rule(category, key, why))
        else:
            entries += [Rule(category, key, why, host=h) for h in dict.fromkeys(where)]
    return entries


def _entry(rule: Rule) -> dict[str, str]:
    where = {"host": rule.host} if rule.host else {}
    return {"category": rule.category, "key": rule.key, **where, "reason": rule.reason}


def save(path: Path, entries: Sequence[Rule]) -> None:
    body = [_entry(e) for e in entries]
    text = yaml.safe_dump({"noise": body}, sort_keys=False, default_flow_style=False)
    path.write_text(HEADER + text, encoding="utf-8")


def load(path: Path | None) -> list[Rule]:
    """The entries of ``path``; none when it does not exist. Errors name file and key."""
    if path is None or not path.exists():
        return []
    data = yamlfile.read(path) or {"noise": []}
    items = data.get("noise") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ConfigError(f"{path}: key 'noise': expected a list of entries")
    entries = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) and item.get(k) for k in ("category", "key", "reason")
        ):
            raise ConfigError(f"{path}: key 'noise[{i}]': expected category, key and reason")
        if item["category"] not in SECTIONS:
            raise ConfigError(
                f"{path}: key 'noise[{i}].category': expected one of {', '.join(SECTIONS)}"
            )
        host = item.get("host", "")
        if not isinstance(host, str):
            raise ConfigError(f"{path}: key 'noise[{i}].host': expected a host name")
        where = f"{path}: noise[{i}]"
        entries.append(Rule(item["category"], item["key"], item["reason"], host=host, where=where))
    return entries
