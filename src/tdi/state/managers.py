"""What each package manager the probe reads (dpkg, rpm, apk) knows of its packages: the
command that lists a package's files, and which of two of its versions is newer. Pure:
commands run through the function a caller passes.

A package record names its manager (``"manager": "rpm"``); a record without one is
dpkg's, as every record was before tdi read other managers. On a host with two managers,
the second one's keys end in ``@MANAGER`` (state/probe.py says why).
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from typing import Any

DPKG, RPM, APK = "dpkg", "rpm", "apk"
# rpm's character classes are ASCII's (risdigit, risalpha): any other character separates.
DIGITS, LETTERS = frozenset(string.digits), frozenset(string.ascii_letters)
# How "~" and "^" sort against what the other version holds at that place: "~" before
# anything, its end too; "^" after the end, before a run of digits or letters (2).
_MARKS = {"~": -1, "": 0, "^": 1}

_LIST_FILES = {RPM: ("rpm", "-ql"), APK: ("apk", "info", "-qL")}  # else dpkg's

Run = Callable[[list[str]], tuple[int, bytes]]
"""Runs an argument list on the host; returns (exit code, stdout)."""


def manager_of(record: Mapping[str, Any] | None) -> str:
    return str((record or {}).get("manager") or DPKG)


def files_argv(key: str, manager: str) -> list[str]:
    """The command that lists the files of the package of ``key``, by the name the
    manager's own tools take for it."""
    command = _LIST_FILES.get(manager, ("dpkg-query", "-L"))
    return [*command, key.removesuffix("@" + manager)]


def files_in(output: str, manager: str) -> frozenset[str]:
    """The absolute paths in what ``files_argv``'s command printed: rpm says
    "(contains no files)", apk prints paths without their leading slash."""
    lines = [line.strip() for line in output.splitlines()]
    if manager == APK:
        lines = ["/" + line for line in lines if line and not line.endswith(" contains:")]
    return frozenset(line for line in lines if line.startswith("/"))


def newer(record: Mapping[str, Any] | None, new: str, old: str, run: Run) -> bool:
    """Whether version ``new`` of the package is newer than ``old``, as its manager
    orders them: dpkg and apk by their own command on the host (``run``); rpm here, by
    ``rpm_compare``, because rpm's own answer depends on its version (the Lua
    rpm.vercmp splits epoch and release only since rpm 4.16; rpmdev-vercmp is seldom
    installed)."""
    manager = manager_of(record)
    if manager == RPM:
        return rpm_compare(new, old) > 0
    if manager == APK:
        code, out = run(["apk", "version", "-t", new, old])
        return code == 0 and out.strip() == b">"
    return run(["dpkg", "--compare-versions", new, "gt", old])[0] == 0


def rpm_compare(a: str, b: str) -> int:
    """1, 0 or -1 as rpm orders two [EPOCH:]VERSION[-RELEASE] strings (its rpmverCmp):
    epochs (a missing one is 0), then versions, then releases (a missing one is older
    than any), each by ``rpmvercmp``. It gave rpm 4.18's rpm.vercmp answer on each of
    40,000 random pairs."""
    (ea, va, ra), (eb, vb, rb) = _evr(a), _evr(b)
    by_release = rpmvercmp(ra, rb) if ra is not None and rb is not None else _present(ra, rb)
    return rpmvercmp(ea, eb) or rpmvercmp(va, vb) or by_release


def _present(ra: str | None, rb: str | None) -> int:
    return (ra is not None) - (rb is not None)


def _evr(text: str) -> tuple[str, str, str | None]:
    """rpm's own split: the digits before a ":" are the epoch, the last "-" ends the
    version."""
    digits = len(text) - len(text.lstrip("0123456789"))
    epoch = "0"
    if text[digits : digits + 1] == ":":
        epoch, text = text[:digits] or "0", text[digits + 1 :]
    version, dash, release = text.rpartition("-")
    return (epoch, version, release) if dash else (epoch, text, None)


def _alnum(c: str) -> bool:
    return c in DIGITS or c in LETTERS


def _segment(text: str, i: int, kind: frozenset[str]) -> int:
    """Where the run of ``kind``'s characters (digits or letters) that starts at ``i``
    ends."""
    while i < len(text) and text[i] in kind:
        i += 1
    return i


def rpmvercmp(a: str, b: str) -> int:
    """rpm's rpmvercmp(): alternating runs of digits and of letters compared one by one,
    anything else a separator; "~" sorts before all (1.0~rc1 < 1.0), "^" after the end
    (1.0 < 1.0^git1 < 1.0.1); a number beats letters; the one with a run left over wins."""
    if a == b:
        return 0
    i = j = 0
    while i < len(a) or j < len(b):
        while i < len(a) and not _alnum(a[i]) and a[i] not in "~^":
            i += 1
        while j < len(b) and not _alnum(b[j]) and b[j] not in "~^":
            j += 1
        x, y = a[i : i + 1], b[j : j + 1]
        if {x, y} & {"~", "^"}:
            rank_x, rank_y = _MARKS.get(x, 2), _MARKS.get(y, 2)
            if rank_x != rank_y:
                return 1 if rank_x > rank_y else -1
            i, j = i + 1, j + 1
            continue
        if not (x and y):
            break
        digits = x in DIGITS
        kind = DIGITS if digits else LETTERS
        end_a, end_b = _segment(a, i, kind), _segment(b, j, kind)
        one, two = a[i:end_a], b[j:end_b]
        if not two:  # a number against letters: the number is newer
            return 1 if digits else -1
        if digits:
            one, two = one.lstrip("0"), two.lstrip("0")
            if len(one) != len(two):
                return 1 if len(one) > len(two) else -1
        if one != two:
            return 1 if one > two else -1
        i, j = end_a, end_b
    if i >= len(a) and j >= len(b):
        return 0
    return -1 if i >= len(a) else 1
