"""The index of `tdi test --all`: exit code, JSON, Markdown, HTML, JUnit, terminal."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from tdi.report import index
from tdi.report.index import Index, Scenario

JUNIT = """<?xml version='1.0' encoding='utf-8'?>
<testsuites><testsuite name="pytest" tests="1"><testcase name="t" /></testsuite></testsuites>"""


def scenario(tmp_path: Path, name: str, code: int, note: str = "") -> Scenario:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "tdi.log").write_text("log\n")
    if code in (0, 1):  # a tdi that ran to its end wrote its reports
        for file in ("report.json", "report.html", "summary.md"):
            (folder / file).write_text("{}")
        (folder / "junit.xml").write_text(JUNIT)
    return Scenario(name, index.result_of(code), folder, code, 12.3, note)


@pytest.mark.parametrize(
    "codes, expected",
    [((0, 0), 0), ((0, 1), 1), ((1, 2), 2), ((0, 143), 2), ((), 0)],
    ids=["all-pass", "one-fails", "one-could-not-go-on", "one-killed-outside", "none"],
)
def test_the_exit_code_is_the_worst_scenarios(codes: tuple[int, ...], expected: int) -> None:
    found = Index(
        tuple(Scenario(f"s{i}", index.result_of(c), None, c) for i, c in enumerate(codes)), 2, 1.0
    )
    assert found.exit_code == expected
    assert found.result == ("passed" if expected == 0 else "failed")
    assert Index(found.scenarios, 2, 1.0, interrupted=True).exit_code == 130


def test_results_from_exit_codes() -> None:
    assert [index.result_of(c) for c in (0, 1, 2, 130, 143, 137)] == [
        "passed",
        "failed",
        "error",
        "interrupted",
        "interrupted",
        "error",
    ]


def written(tmp_path: Path) -> tuple[Index, index.Paths]:
    found = Index(
        (
            scenario(tmp_path, "web", 0),
            scenario(tmp_path, "db", 1),
            scenario(tmp_path, "lb", 2, "tdi: error: no such image"),
            Scenario("old", "skipped", note="unchanged since main"),
        ),
        jobs=2,
        seconds=61.0,
    )
    paths = index.Paths(
        tmp_path / "index.json",
        tmp_path / "index.md",
        tmp_path / "html" / "index.html",
        tmp_path / "junit.xml",
    )
    index.write(found, paths)
    return found, paths


def test_the_json_index_names_each_scenarios_result_and_reports(tmp_path: Path) -> None:
    _, paths = written(tmp_path)
    data = json.loads(paths.json.read_text())
    assert (data["result"], data["exit_code"], data["jobs"]) == ("failed", 2, 2)
    assert data["scenarios"]["web"] == {
        "result": "passed",
        "exit_code": 0,
        "seconds": 12.3,
        "reports": {
            "html": "web/report.html",
            "json": "web/report.json",
            "markdown": "web/summary.md",
            "junit": "web/junit.xml",
            "log": "web/tdi.log",
        },
        "note": "",
    }
    assert data["scenarios"]["lb"]["reports"] == {"log": "lb/tdi.log"}
    assert data["scenarios"]["lb"]["note"] == "tdi: error: no such image"
    assert data["scenarios"]["old"]["result"] == "skipped"


def test_markdown_and_html_link_each_scenarios_report(tmp_path: Path) -> None:
    _, paths = written(tmp_path)
    markdown = paths.markdown.read_text()
    assert "| db | failed | 12 s | `db/summary.md` |  |" in markdown
    assert "| lb | error | 12 s | `lb/tdi.log` | tdi: error: no such image |" in markdown
    page = paths.html.read_text()
    assert "href='../web/report.html'" in page  # relative to the page
    assert "<script" not in page and "http" not in page  # self-contained


def test_one_junit_holds_every_scenarios_suites(tmp_path: Path) -> None:
    _, paths = written(tmp_path)
    suites = {s.get("name"): s for s in ET.parse(paths.junit).getroot()}
    assert set(suites) == {"web: pytest", "db: pytest", "lb: tdi"}
    error = suites["lb: tdi"].find("testcase/error")
    assert error is not None and error.get("message") == "error: tdi: error: no such image"


def test_the_summary_is_a_line_per_scenario_then_the_verdict(tmp_path: Path) -> None:
    found, _ = written(tmp_path)
    lines = index.lines(found, tmp_path)
    assert lines[0].split() == ["scenario", "result", "time", "report"]
    assert lines[1].split() == ["web", "passed", "12", "s", "web/report.html"]
    assert "tdi: error: no such image" in lines[4]
    assert lines[-1] == "tdi test --all: failed, 2 of 4 scenarios not passed in 61 s (exit 2)"


def test_scenarios_are_listed_in_tdi_yml_order() -> None:
    ended = (Scenario("b", "passed"), Scenario("a", "failed"))
    assert [s.name for s in index.order(ended, ["a", "b"])] == ["a", "b"]
