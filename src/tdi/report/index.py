"""The index of `tdi test --all`: a row per scenario (its result, exit code, time and
report files), rendered as JSON, Markdown, HTML and terminal lines, and every scenario's
JUnit in one file. Each scenario's own reports are its tdi's, in its directory."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from tdi import secrets
from tdi.report import html
from tdi.report.model import FAILED, PASSED, SKIPPED

ERROR = "error"  # its tdi could not go on (exit 2): no verdict
INTERRUPTED = "interrupted"
NOT_RUN = "not run"  # an interrupt came before it started
# A scenario's files in its directory, by the format's name in the index.
FILES = {
    "html": "report.html",
    "json": "report.json",
    "markdown": "summary.md",
    "junit": "junit.xml",
    "log": "tdi.log",
}
_STOPPED = (130, 143)  # tdi's exit code when interrupted; the guard's when it stopped it


def result_of(code: int) -> str:
    """A scenario's result from its tdi's exit code."""
    return {0: PASSED, 1: FAILED}.get(code, INTERRUPTED if code in _STOPPED else ERROR)


@dataclass(frozen=True)
class Scenario:
    """One scenario of the run: ``exit_code`` None when it never ran; ``note`` why it was
    skipped, or its tdi's last line when it did not pass."""

    name: str
    result: str
    directory: Path | None = None
    exit_code: int | None = None
    seconds: float = 0.0
    note: str = ""

    def files(self) -> dict[str, Path]:
        """Its report files that its tdi wrote."""
        if self.directory is None:
            return {}
        found = {kind: self.directory / name for kind, name in FILES.items()}
        return {kind: path for kind, path in found.items() if path.exists()}


@dataclass(frozen=True)
class Index:
    scenarios: tuple[Scenario, ...]
    jobs: int
    seconds: float
    interrupted: bool = False  # this tdi was: it stopped them all

    @property
    def exit_code(self) -> int:
        """0 when every scenario that ran passed; 2 when one's tdi could not go on (exit 2,
        or stopped from outside): it has no verdict, which is worse than a failure; else 1.
        130 when this tdi was interrupted."""
        if self.interrupted:
            return 130
        codes = [s.exit_code for s in self.scenarios if s.exit_code is not None]
        if any(code not in (0, 1) for code in codes):
            return 2
        return 1 if 1 in codes else 0

    @property
    def result(self) -> str:
        return {0: PASSED, 130: INTERRUPTED}.get(self.exit_code, FAILED)

    def to_dict(self, base: Path) -> dict[str, Any]:
        """The index as JSON, its paths relative to ``base`` (the JSON file's directory)."""
        return {
            "result": self.result,
            "exit_code": self.exit_code,
            "jobs": self.jobs,
            "seconds": round(self.seconds, 1),
            "scenarios": {
                s.name: {
                    "result": s.result,
                    "exit_code": s.exit_code,
                    "seconds": round(s.seconds, 1),
                    "reports": {k: os.path.relpath(p, base) for k, p in s.files().items()},
                    "note": s.note,
                }
                for s in self.scenarios
            },
        }


def markdown(index: Index, base: Path) -> str:
    """A CI job summary: a row per scenario, its report paths relative to ``base``."""
    failed = [s for s in index.scenarios if s.result not in (PASSED, SKIPPED)]
    lines = [
        f"## tdi test --all: {index.result}",
        "",
        f"{len(index.scenarios)} scenarios, {len(failed)} not passed, "
        f"{index.jobs} at once, {index.seconds:.0f} s",
        "",
        "| scenario | result | time | report | note |",
        "| --- | --- | --- | --- | --- |",
    ]
    for s in index.scenarios:
        files = s.files()
        shown = files.get("markdown") or files.get("log")
        report = f"`{os.path.relpath(shown, base)}`" if shown else ""
        cells = (s.name, s.result, f"{s.seconds:.0f} s", report, s.note)
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def html_page(index: Index, page: Path) -> str:
    """One self-contained page: a row per scenario, linking its own reports."""
    rows = []
    for s in index.scenarios:
        links = " ".join(
            f"<a href='{escape(os.path.relpath(p, page.parent))}'>{escape(kind)}</a>"
            for kind, p in s.files().items()
        )
        rows.append(
            f"<tr><td>{escape(s.name)}</td><td>{_badge(s.result)}</td>"
            f"<td>{s.seconds:.0f} s</td><td>{links}</td><td>{escape(s.note)}</td></tr>"
        )
    result = escape(index.result)
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>tdi test --all: {result}</title><style>{html.CSS}{_CSS}</style></head><body>"
        f"<h1>tdi test --all: <span class={result}>{result}</span></h1>"
        f"<p class=muted>{len(index.scenarios)} scenarios, {index.jobs} at once, "
        f"{index.seconds:.0f} s</p><table><tr><th>scenario</th><th>result</th><th>time</th>"
        f"<th>reports</th><th>note</th></tr>{''.join(rows)}</table></body></html>\n"
    )


_CSS = ".b-error,.b-interrupted,.b-not{background:#9a6700}"


def _badge(result: str) -> str:
    kind = escape(result.split()[0])
    return f"<span class='badge b-{kind}'>{escape(result)}</span>"


def junit(index: Index) -> ET.Element:
    """Every scenario's JUnit suites in one file, each suite's name led by its scenario's;
    a scenario whose tdi wrote none is one suite with one error."""
    root = ET.Element("testsuites", name="tdi test --all")
    for s in index.scenarios:
        path = s.files().get("junit")
        suites = list(ET.parse(path).getroot().iter("testsuite")) if path else []
        for suite in suites:
            suite.set("name", f"{s.name}: {suite.get('name', '')}")
            root.append(suite)
        if not suites and s.result not in (PASSED, SKIPPED):
            suite = ET.SubElement(
                root, "testsuite", name=f"{s.name}: tdi", tests="1", errors="1", failures="0"
            )
            case = ET.SubElement(suite, "testcase", classname="tdi", name=f"scenario {s.name}")
            ET.SubElement(case, "error", message=f"{s.result}: {s.note}".rstrip(": "))
    return root


def lines(index: Index, base: Path) -> list[str]:
    """The summary on the terminal: a line per scenario, then the verdict."""
    width = max([len("scenario"), *(len(s.name) for s in index.scenarios)])
    out = [f"{'scenario':<{width}}  {'result':<11}  {'time':>6}  report"]
    for s in index.scenarios:
        files = s.files()
        shown = files.get("html") or files.get("log")
        where = os.path.relpath(shown, base) if shown else ""
        out.append(f"{s.name:<{width}}  {s.result:<11}  {s.seconds:>4.0f} s  {where}".rstrip())
        if s.note and s.result != PASSED:
            out.append(f"{'':<{width}}  {s.note}")
    bad = sum(s.result not in (PASSED, SKIPPED) for s in index.scenarios)
    out.append(
        f"tdi test --all: {index.result}, {bad} of {len(index.scenarios)} scenarios not "
        f"passed in {index.seconds:.0f} s (exit {index.exit_code})"
    )
    return out


@dataclass(frozen=True)
class Paths:
    """Where the index goes, in each format."""

    json: Path
    markdown: Path
    html: Path
    junit: Path


def write(index: Index, paths: Paths) -> None:
    for path in (paths.json, paths.markdown, paths.html, paths.junit):
        path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(index.to_dict(paths.json.parent), indent=2) + "\n"
    paths.json.write_text(secrets.scrub(text), encoding="utf-8")
    paths.markdown.write_text(
        secrets.scrub(markdown(index, paths.markdown.parent)), encoding="utf-8"
    )
    paths.html.write_text(secrets.scrub(html_page(index, paths.html)), encoding="utf-8")
    xml = ET.tostring(junit(index), encoding="unicode", xml_declaration=True)
    paths.junit.write_text(secrets.scrub(xml), encoding="utf-8")


def order(scenarios: Sequence[Scenario], names: Sequence[str]) -> tuple[Scenario, ...]:
    """``scenarios`` in the order of ``names`` (tdi.yml's), whatever order they ended in."""
    rank = {name: i for i, name in enumerate(names)}
    return tuple(sorted(scenarios, key=lambda s: rank.get(s.name, len(rank))))
