"""Capture a container's state by running the probe inside it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any

from tdi.errors import CaptureError
from tdi.state.scope import DEFAULT_IGNORE, DEFAULT_ROOTS

ExecFn = Callable[[list[str]], tuple[int, bytes]]
"""Runs an argument list in the container; returns (exit code, stdout)."""

Value = str | int | bool | None | list[str]
Record = dict[str, Value]
Section = dict[str, Record]

FORMAT = 1
SECTIONS = ("files", "packages", "users", "groups", "ports", "services")
_TAIL_CHARS = 2000


@dataclass(frozen=True)
class State:
    """What the probe saw on one host. Each section maps a key to a flat record; ``notes``
    say what it could not read (no package database).

    The mappings are plain dicts so the state serialises as is; treat them as read-only.
    """

    files: Section
    packages: Section
    users: Section
    groups: Section
    ports: Section
    services: Section
    notes: tuple[str, ...] = dataclasses.field(default=(), kw_only=True)

    def to_json(self) -> str:
        """A stable text form (sorted keys), to store next to a snapshot."""
        return json.dumps({"format": FORMAT, **asdict(self)}, sort_keys=True, indent=1)

    @classmethod
    def from_json(cls, text: str) -> State:
        """Parse what ``to_json`` or the probe wrote; CaptureError if it is not a state."""
        try:
            document = json.loads(text)
        except ValueError as error:
            raise CaptureError(f"state is not JSON: {error}") from error
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise CaptureError(f"state is not a format-{FORMAT} state document")
        notes = document.get("notes", [])  # a state of an older tdi has none
        if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
            raise CaptureError(f"state notes are not a list of strings: {notes!r}")
        return cls(**{name: _section(document, name) for name in SECTIONS}, notes=tuple(notes))


def _section(document: dict[str, Any], name: str) -> Section:
    section = document.get(name)
    if not isinstance(section, dict):
        raise CaptureError(f"state has no {name!r} mapping")
    for key, record in section.items():
        if not isinstance(record, dict):
            raise CaptureError(f"state {name}[{key!r}] is not a mapping")
        for field, value in record.items():
            if not _is_value(value):
                raise CaptureError(f"state {name}[{key!r}].{field} has an unexpected {value!r}")
    return section


def _is_value(value: object) -> bool:
    if isinstance(value, list):
        return all(isinstance(item, str) for item in value)
    return value is None or isinstance(value, str | int | bool)


def probe_source() -> str:
    """The probe script, read from the installed package."""
    return resources.files("tdi.state").joinpath("probe.py").read_text(encoding="utf-8")


def probe_argv(roots: Sequence[str], ignore: Sequence[str]) -> list[str]:
    """-I: no cwd or PYTHON* variables can shadow the stdlib; -B: leave no bytecode behind."""
    config = json.dumps({"roots": list(roots), "ignore": list(ignore)})
    return ["python3", "-I", "-B", "-c", probe_source(), config]


def capture(
    exec_fn: ExecFn,
    roots: Sequence[str] = DEFAULT_ROOTS,
    ignore: Sequence[str] = DEFAULT_IGNORE,
) -> State:
    """Run the probe through ``exec_fn`` and return what it saw."""
    status, output = exec_fn(probe_argv(roots, ignore))
    text = output.decode("utf-8", errors="replace").strip()
    # The document is the last line, should exec_fn also have collected stderr.
    last_line = text.rpartition("\n")[2]
    if status != 0:
        raise CaptureError("state probe failed", status, _failure_tail(last_line, text))
    try:
        return State.from_json(last_line)
    except CaptureError as error:
        raise CaptureError(f"state probe printed no state ({error})", None, text[-200:]) from error


def _failure_tail(last_line: str, text: str) -> str:
    """The probe's own traceback when it printed one, else the end of the output."""
    try:
        reported = json.loads(last_line)
    except ValueError:
        reported = None
    if isinstance(reported, dict) and isinstance(reported.get("error"), str):
        text = reported["error"].strip()
    return text[-_TAIL_CHARS:] if text else "no output"
