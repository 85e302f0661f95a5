"""What a changed file's content differs by: a unified diff, secrets masked. Pure: no I/O.

Parity reads the content of the files that differ only after the comparison, so capture
stays fast. The caller decides which files may be read at all (world-readable, small);
this module turns two contents into the diff a report shows.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass

from tdi import secrets

MAX_BYTES = 256 * 1024  # larger files are reported as differing, without their content
MAX_LINES = 200  # of a diff; the rest is cut, with a note
MASK = secrets.MASK

# A line whose key looks like a secret: the value after the key's separator is masked.
# Matches `password: x`, `"api_key": "x"`, `export DB_PASSWORD=x`, `requirepass x`.
_SECRET_LINE = re.compile(
    r"(?i)^(?P<head>.*?[\w.\"'-]*(?:pass(?:word|wd|phrase)?|secret|token|credential|"
    r"api[_-]?key|private[_-]?key|access[_-]?key)[\w.\"'-]*\s*(?:[=:]|\s)\s*)(?P<value>\S.*)$"
)
# Inside any line: a URL's credentials (`postgres://app:S3CR3T@db`), an Authorization
# header's value, and a long high-entropy token (an API key on its own).
_URL_CREDENTIAL = re.compile(r"(?P<head>\b[a-zA-Z][\w+.-]*://[^/\s:@]+:)(?P<value>[^@\s/]+)(?=@)")
_AUTHORIZATION = re.compile(
    r"(?i)(?P<head>\bauthorization\s*[:=]\s*[\"']?(?:bearer|basic|token|digest)?\s*)"
    r"(?P<value>[^\s\"',;]+)"
)
_TOKEN = re.compile(r"(?<![\w/+.-])[A-Za-z0-9_+-]{32,}={0,2}(?![\w/+.=-])")
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
    """``text`` with known secrets (secrets.py), secret-looking values and private key
    blocks masked; how many lines."""
    out, in_key = [], False
    lines = text.splitlines(keepends=True)
    for raw in lines:
        line = secrets.scrub(raw)
        end = line[len(line.rstrip("\r\n")) :]
        if in_key or _KEY_BEGIN.search(line):
            in_key = not _KEY_END.search(line)
            out.append(line if line.lstrip().startswith("-----") else MASK + end)
        elif (m := _SECRET_LINE.match(line.rstrip("\r\n"))) and _secret(m["value"]):
            out.append(m["head"] + MASK + end)
        else:
            out.append(_inline(line))
    return "".join(out), sum(a != b for a, b in zip(lines, out, strict=True))


# Values of a secret-named setting that are settings, not secrets: `server_tokens on;`,
# `PasswordAuthentication no`, `token_ttl 3600`.
_PLAIN = frozenset({"on", "off", "yes", "no", "true", "false", "none", "null", "build", ""})


def _secret(value: str) -> bool:
    """Whether a secret-named setting's value may be a secret (not a switch, a number)."""
    bare = value.strip().rstrip(";,").strip("\"'").strip()
    return value != MASK and bare.lower() not in _PLAIN and not bare.isdigit()


def _entropy(token: str) -> float:
    """Shannon entropy in bits per character."""
    counts = {c: token.count(c) for c in set(token)}
    return -sum(n / len(token) * math.log2(n / len(token)) for n in counts.values())


def _random(token: str) -> bool:
    """A token that looks random: letters and digits mixed, high entropy (not a word,
    a path, or a run of one hex digit class like a checksum of lowercase hex alone)."""
    classes = sum(any(f(c) for c in token) for f in (str.islower, str.isupper, str.isdigit))
    return classes >= 3 and _entropy(token) > 4.0


def _inline(line: str) -> str:
    """``line`` with credentials in URLs, Authorization values and random tokens masked."""
    line = _URL_CREDENTIAL.sub(lambda m: m["head"] + MASK, line)
    line = _AUTHORIZATION.sub(lambda m: m["head"] + MASK if m["value"] != MASK else m[0], line)
    return _TOKEN.sub(lambda m: MASK if _random(m[0]) else m[0], line)


def unified(
    path: str,
    fresh: str | None,
    upgrade: str | None,
    labels: tuple[str, str] = ("fresh", "upgrade"),
) -> ContentDiff:
    """The diff from ``fresh`` to ``upgrade`` (None: absent on that side), masked, cut;
    ``labels`` name the two sides in its header (the plan's are "before" and "after")."""
    old, old_masked = mask(fresh or "")
    new, new_masked = mask(upgrade or "")
    lines = list(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"{labels[0]}:{path}" if fresh is not None else "/dev/null",
            tofile=f"{labels[1]}:{path}" if upgrade is not None else "/dev/null",
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
