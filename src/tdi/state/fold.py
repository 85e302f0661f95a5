"""Fold a directory that is on one side only into one difference. Pure: no I/O.

An old release's virtualenv or node_modules left under /opt is thousands of stale files;
a report lists the directory once, with its files (as diffoscope and machinery do).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from tdi.state.diff import Difference


def _one_sided_dir(d: Difference) -> bool:
    record = d.upgrade if d.fresh is None else d.fresh if d.upgrade is None else None
    return d.category == "file" and record is not None and record.get("type") == "dir"


def _shape(d: Difference) -> tuple[bool, str, str]:
    """What must match for a file to fold into its directory: the side, kind and allow."""
    return d.fresh is None, d.kind, d.allowed


def fold_directories(differences: Sequence[Difference]) -> list[Difference]:
    """Differences under a directory that is itself on one side only (and of the same kind
    and allowance) are listed in that directory's ``files``, outermost directory first."""
    dirs = {d.key: d for d in differences if _one_sided_dir(d)}
    folded: dict[str, list[str]] = {}
    kept = []
    for d in differences:
        top = _outermost(d, dirs) if d.category == "file" else None
        if top is None:
            kept.append(d)
        else:
            folded.setdefault(top, []).append(d.key)
    return [
        replace(d, files=tuple(sorted(folded[d.key]))) if d.key in folded and d.key in dirs else d
        for d in kept
    ]


def _outermost(d: Difference, dirs: dict[str, Difference]) -> str | None:
    parts = d.key.split("/")
    parents = (dirs.get("/".join(parts[:i])) for i in range(2, len(parts)))  # from the root
    return next((p.key for p in parents if p is not None and _shape(p) == _shape(d)), None)
