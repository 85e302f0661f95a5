"""What the terminal and Markdown summaries list, shared: failing differences grouped by
heading and capped, the rest counted, the next step for what no task explains, and text
made safe to show. The JSON and HTML keep every difference."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from tdi.state.diff import Difference

# Differences listed per heading and comparison in the terminal and Markdown: thousands of
# stale files must not flood a terminal, nor pass GitHub's 1 MiB job summary limit.
LISTED = 25

NAMED = 3  # differences named in a next step; the rest are counted


# Control characters (a newline in a file name, ANSI escapes in a task name) would break a
# row or drive the terminal: shown as escapes instead.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def safe(text: str) -> str:
    """``text`` with control characters shown as escapes (\\n, \\x1b)."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), text)


def failing(differences: list[Difference]) -> list[Difference]:
    """What the terminal and Markdown list in full; the JSON and HTML keep every one."""
    return [d for d in differences if d.fails]


def not_failing(differences: list[Difference]) -> str:
    """The differences that do not fail, counted: "2 unmanaged, 1 allowed"."""
    counts: dict[str, int] = {}
    for d in differences:
        if not d.fails:
            label = "allowed" if d.allowed else d.kind or "-"
            counts[label] = counts.get(label, 0) + 1
    return ", ".join(f"{n} {label}" for label, n in counts.items())


def next_step(differences: list[Difference]) -> str:
    """One line for the failing differences that no task explains: what to do with them."""
    lone = [d for d in differences if d.fails and not d.tasks]
    if not lone:
        return ""
    named = ", ".join(f"{d.category} {d.key}" for d in lone[:NAMED])
    more = f" and {len(lone) - NAMED} more" if len(lone) > NAMED else ""
    return (
        f"no task explains {named}{more}: if two fresh hosts differ there too, run "
        "`tdi calibrate` and commit tdi-noise.yml; else add a `parity.allow` entry "
        "(category, key, reason, until) to tdi.yml, or a task that manages it"
    )


def listed(differences: list[Difference]) -> Iterator[tuple[str, list[Difference], int]]:
    """The failing differences by heading: its first LISTED, and how many more there are."""
    # Headings in order of first appearance: cron files sort among the other files by key.
    groups: dict[str, list[Difference]] = {}
    for d in failing(differences):
        groups.setdefault(d.heading, []).append(d)
    for heading, group in groups.items():
        yield heading, group[:LISTED], max(0, len(group) - LISTED)


def short(value: object, width: int = 60) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 3] + "..."
