"""What a changed file's content differs by: a unified diff, secrets masked. Pure: no I/O.

Parity reads the content of the files that differ only after the comparison, so capture
stays fast. The caller decides which files may be read at all (world-readable, small);
this module turns two contents into the diff a report shows.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

MAX_BYTES = 256 * 1024  # larger files are reported as differing, without their content
MAX_LINES = 200  # of a diff; the rest is cut, with a note
MASK = "****"

# A line whose key looks like a secret: the value after the key's separator is masked.
# Matches `password: x`, `"api_key": "x"`, `export DB_PASSWORD=x`, `requirepass x`.
_SECRET_LINE = re.compile(
    r"(?i)^(?P<head>.*?[\w.\"'-]*(?:pass(?:word|wd|phrase)?|secret|token|credential|"
    r"api[_-]?key|private[_-]?key|access[_-]?key)[\w.\"'-]*\s*(?:[=:]|\s)\s*)(?P<value>\S.*)$"
)
_KEY_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----")
_KEY_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----")


@dataclass(frozen=True)
class ContentDiff:
    text: str  # a unified diff, fresh to upgrade; "" when only masked lines differ
    notes: tuple[str, ...] = ()  # what was masked or cut


def as_text(data: bytes) -> str | None:
    """``data`` as text, or None for binary content (a NUL byte, or not UTF-8)."""
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def mask(text: str) -> tuple[str, int]:
    """``text`` with secret-looking values and private key blocks masked; how many lines."""
    out, masked, in_key = [], 0, False
    for line in text.splitlines(keepends=True):
        end = line[len(line.rstrip("\r\n")) :]
        if in_key or _KEY_BEGIN.search(line):
            in_key = not _KEY_END.search(line)
            is_marker = line.lstrip().startswith("-----")
            out.append(line if is_marker else MASK + end)
            masked += 0 if is_marker else 1
        elif (m := _SECRET_LINE.match(line.rstrip("\r\n"))) and m["value"] != MASK:
            out.append(m["head"] + MASK + end)
            masked += 1
        else:
            out.append(line)
    return "".join(out), masked


def unified(path: str, fresh: str | None, upgrade: str | None) -> ContentDiff:
    """The diff from ``fresh`` to ``upgrade`` (None: absent on that side), masked, cut."""
    old, old_masked = mask(fresh or "")
    new, new_masked = mask(upgrade or "")
    lines = list(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"fresh:{path}" if fresh is not None else "/dev/null",
            tofile=f"upgrade:{path}" if upgrade is not None else "/dev/null",
        )
    )
    notes = []
    if old_masked or new_masked:
        notes.append(f"values of {old_masked + new_masked} secret-looking lines masked")
        if not lines:
            notes.append("only masked lines differ")
    if len(lines) > MAX_LINES:
        notes.append(f"cut at {MAX_LINES} of {len(lines)} lines")
        lines = lines[:MAX_LINES]
    text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    return ContentDiff(text, tuple(notes))
