"""A rollback in the report: its node's state, its entry in the JSON, its verdict, and how
the terminal, Markdown and HTML show it."""

from __future__ import annotations

from pathlib import Path

from tdi.report import html, junit, markdown, terminal
from tdi.report.model import (
    FAILED,
    PASSED,
    SKIPPED,
    Comparison,
    ParityResult,
    Report,
    Rollback,
    StateReport,
)
from tdi.state.diff import Difference

COMMIT = "0123456789abcdef0123456789abcdef01234567"
EXTRA = Difference(
    "file",
    "/etc/tdi-extra",
    None,
    {"type": "file", "mode": "0644"},
    kind="irreversible",
    tasks=("Write the extra file",),
    content_diff="--- /dev/null\n+++ rollback:/etc/tdi-extra\n@@ -0,0 +1 @@\n+added\n",
)


def rolled_back(*differences: Difference, error: str = "") -> Report:
    """A run whose every phase passed, and whose rollback node converged and was tested."""
    states = {
        s: StateReport(f"img-{s}", converge=PASSED, idempotence=PASSED, verify=PASSED)
        for s in ("fresh", "upgrade")
    }
    upgrade = Comparison("upgrade", "tdi-host", "upgrade", "img-upgrade", result=ParityResult([]))
    report = Report(states, [upgrade])
    report.joined("rollback", "tdi-rollback:r1-tdi-host", ("converge", "verify"))
    report.states["rollback"].converge = PASSED
    report.states["rollback"].verify = PASSED
    result = None if error else ParityResult(list(differences), three_way=True)
    report.rolled_back(Rollback("rollback", "tdi-host", "upgrade", COMMIT, result, error))
    return report


def test_a_clean_rollback_passes_though_its_node_runs_no_idempotence() -> None:
    report = rolled_back()
    assert report.states["rollback"].idempotence == SKIPPED
    assert report.result == PASSED
    assert report.to_dict()["rollback"] == [
        {
            "key": "rollback",
            "host": "tdi-host",
            "from": "upgrade",
            "commit": COMMIT,
            "result": PASSED,
            "differences": [],
            "error": "",
        }
    ]


def test_an_irreversible_difference_fails_the_run_named_as_baseline_and_rollback() -> None:
    report = rolled_back(EXTRA)
    assert report.result == FAILED
    (entry,) = report.to_dict()["rollback"]
    (found,) = entry["differences"]
    assert (found["baseline"], found["rollback"]) == (None, {"type": "file", "mode": "0644"})
    assert "fresh" not in found and "upgrade" not in found
    assert (found["kind"], found["tasks"]) == ("irreversible", ["Write the extra file"])


def test_a_rollback_that_could_not_run_fails_with_its_error() -> None:
    why = "the previous release (0123456789ab) cannot be re-applied: task 'x' failed: boom"
    report = rolled_back(error=why)
    assert report.rollbacks[0].status == FAILED and report.result == FAILED
    assert f"    error: {why}" in terminal.lines(report)
    assert f"Error: {why}" in markdown.render(report)


def test_a_run_without_rollback_has_no_rollback_entry() -> None:
    report = Report({"fresh": StateReport("img")})
    assert "rollback" not in report.to_dict()
    assert not terminal.rollback_lines(report)
    assert "Rollback" not in markdown.render(report)


def test_the_terminal_markdown_and_html_show_each_irreversible_difference(tmp_path: Path) -> None:
    report = rolled_back(EXTRA)
    lines = terminal.lines(report)
    assert "rollback failed (the previous release applied again)" in lines
    assert "  rollback (from upgrade, release 0123456789ab): failed, 1 differences" in lines
    row = next(line for line in lines if "/etc/tdi-extra:" in line)
    assert "irreversible" in row and "baseline=null" in row and "<- Write the extra file" in row
    text = markdown.render(report)
    assert "### Rollback: ❌ failed" in text
    assert "| `/etc/tdi-extra` | irreversible | `null` |" in text
    page = html.render(report.to_dict(), tmp_path / "report.html")
    assert "<h2>Rollback</h2>" in page and "/etc/tdi-extra" in page
    assert "<th>baseline</th><th>rollback</th>" in page and "this release left it" in page


def test_the_html_says_a_clean_rollback_is_clean(tmp_path: Path) -> None:
    page = html.render(rolled_back().to_dict(), tmp_path / "report.html")
    assert "No difference: the rollback is clean." in page


def test_junit_has_a_case_per_irreversible_difference_and_one_for_a_clean_rollback() -> None:
    suites = {s.get("name"): s for s in junit.render(rolled_back(EXTRA))}
    (case,) = suites["tdi.rollback.rollback"]
    assert case.get("name") == "rollback[file:/etc/tdi-extra]"
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == "irreversible: /etc/tdi-extra; tasks: Write the extra file"
    clean = {s.get("name"): s for s in junit.render(rolled_back())}["tdi.rollback.rollback"]
    assert (clean.get("failures"), [c.get("name") for c in clean]) == ("0", ["rollback"])
    broken = {s.get("name"): s for s in junit.render(rolled_back(error="boom"))}
    assert broken["tdi.rollback.rollback"].get("failures") == "1"
