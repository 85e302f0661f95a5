"""Known secrets, masked by value wherever tdi writes: every vault-decrypted value, every
variable named like a secret, and the registry password.

They are found once, before any container starts (``vault.secrets``), and remembered for
the process: every writer (the terminal, the logs, the reports, the events file through
the TDI_MASK variable its callback reads) passes its text through ``scrub``. A secret is
also masked in the forms JSON and HTML give it, so a value inside a report's JSON string
or an escaped HTML cell is found too. The heuristics for secrets tdi cannot know (a
password in a URL, a bearer token) are in state/content.py.
"""

from __future__ import annotations

import html
import json
import os
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MASK = "****"
# Shorter values would mask common words ("yes", "db") wherever they appear.
MIN_LENGTH = 4
# The name of a variable that holds a secret: db_password, api_key, vault_token.
SECRET_NAME = (
    r"pass(?:word|wd|phrase)?|secret|token|credential|api[_-]?key|private[_-]?key|access[_-]?key"
)
_SECRET_KEY = re.compile(rf"(?i)(?:{SECRET_NAME})")
REGISTRY_PASSWORD = "TDI_REGISTRY_PASSWORD"
ENV = "TDI_MASK"  # how Ansible's callback and pytest's plugin, tdi's children, learn them


@dataclass(frozen=True)
class _Known:
    """What tdi knows, replaced whole when it learns more: read without the lock."""

    forms: frozenset[str] = frozenset()
    pattern: re.Pattern[str] | None = None
    json: str = ""  # the forms, sorted, as a child reads them from TDI_MASK


_lock = threading.Lock()
_known = _Known()


def forms(value: str) -> set[str]:
    """``value`` as written raw, inside a JSON string, and HTML- or XML-escaped; a
    multi-line value also line by line, as logs and diffs show it."""
    parts = {value, *(line.strip() for line in value.splitlines())}
    out = set()
    for part in parts:
        if len(part) >= MIN_LENGTH:
            out |= {part, json.dumps(part)[1:-1], html.escape(part), html.escape(part, False)}
    return out


def remember(values: Iterable[str]) -> None:
    """Mask these from now on, in this process."""
    global _known
    with _lock:
        found = _known.forms.union(f for v in values for f in forms(v))
        if found != _known.forms:
            ordered = sorted(found, key=len, reverse=True)  # the longest form first
            pattern = re.compile("|".join(map(re.escape, ordered)))
            _known = _Known(found, pattern, json.dumps(sorted(found)))


def scrub(text: str) -> str:
    """``text`` with every known secret masked."""
    pattern = _known.pattern
    return text if pattern is None else pattern.sub(MASK, text)


def scrub_bytes(data: bytes) -> bytes:
    if _known.pattern is None:
        return data
    return scrub(data.decode("utf-8", errors="surrogateescape")).encode(
        "utf-8", errors="surrogateescape"
    )


def for_children(env: dict[str, str]) -> dict[str, str]:
    """``env`` with the known secrets for a child that writes tdi's files (the callback,
    the pytest plugin): they mask them as tdi does."""
    known = _known.json
    return {**env, ENV: known} if known else env


def from_environment() -> None:
    """In a child: remember what tdi passed in TDI_MASK."""
    if raw := os.environ.get(ENV):
        remember(json.loads(raw))


def leaves(data: Any) -> Iterator[str]:
    """Every scalar under ``data``, as text: the values of a decrypted vault file."""
    if isinstance(data, dict | list):
        for value in data.values() if isinstance(data, dict) else data:
            yield from leaves(value)
    elif isinstance(data, str | int | float) and not isinstance(data, bool):
        text = str(data)
        yield from [] if "{{" in text else [text]  # a template names a secret, is not one


def named(data: Any) -> Iterator[str]:
    """The values of the variables under ``data`` whose names look like a secret's."""
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(key, str) and _SECRET_KEY.search(key):
                yield from leaves(value)
            else:
                yield from named(value)
    elif isinstance(data, list):
        for value in data:
            yield from named(value)


def from_registry() -> list[str]:
    value = os.environ.get(REGISTRY_PASSWORD, "")
    return [value] if value else []


class MaskedOutput:
    """A file descriptor (``fd``) for a child's stdout: what the child writes reaches
    ``path`` a line at a time, every known secret masked. ``release`` once the child has
    it; ``drain`` waits for the child's last line. As a context: both, around a run."""

    def __init__(self, path: Path) -> None:
        read, self.fd = os.pipe()
        out = path.open("wb")

        def pump() -> None:
            with os.fdopen(read, "rb") as source, out:
                for line in source:
                    out.write(scrub_bytes(line))
                    out.flush()

        self._thread = threading.Thread(target=pump, name=f"log {path.name}", daemon=True)
        self._thread.start()

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until every writer closed the pipe (a grandchild that keeps it open is
        waited for ``timeout`` seconds at most)."""
        self.release()
        self._thread.join(timeout)

    def __enter__(self) -> int:
        return self.fd

    def __exit__(self, *exc: object) -> None:
        self.drain()
