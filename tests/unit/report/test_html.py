"""The HTML report: self-contained, escaped, equal things hidden."""

from __future__ import annotations

import re
from pathlib import Path

from tdi.provision.ansible import ChangedTask
from tdi.report import html
from tdi.report.model import (
    FAILED,
    PASSED,
    Comparison,
    Downtime,
    ParityResult,
    Report,
    Span,
    StateReport,
    Window,
)
from tdi.state.diff import Difference


def report(tmp_path: Path) -> Report:
    states = {
        "fresh": StateReport("img", converge=PASSED, idempotence=PASSED, verify=PASSED),
        "upgrade": StateReport("img", converge=PASSED, idempotence=FAILED, verify=FAILED),
    }
    states["upgrade"].changed_tasks = [ChangedTask("Stamp", "--- before\n+++ after\n-1\n+2\n")]
    states["upgrade"].failures = [
        {"id": "test_web.py::test_port[upgrade]", "message": "assert 1 == 2"}
    ]
    diff = Difference(
        "file",
        "/etc/<script>.conf",
        {"sha256": "a"},
        {"sha256": "b"},
        kind="not-applied",
        content_diff="--- fresh:/etc/a\n+++ upgrade:/etc/a\n@@ -1 +1 @@\n-cache=off\n+cache=on\n",
        content_notes=("values of 1 secret-looking lines masked",),
    )
    upgrade = Comparison("upgrade", "tdi-host", "upgrade", "img", result=ParityResult([diff]))
    log = tmp_path / "runs" / "r1" / "upgrade.converge.log"
    return Report(
        states,
        [upgrade],
        upgrade_source="snapshot of baseline main",
        timeline=[Span("converge", "fresh", 10.0, 5.0), Span("converge", "upgrade", 10.0, 8.0)],
        logs={"upgrade converge": str(log)},
    )


def test_the_page_shows_verdict_timeline_tests_idempotence_and_drift(tmp_path: Path) -> None:
    page = html.render(report(tmp_path).to_dict(), tmp_path / "out" / "report.html")
    assert "<title>tdi: failed</title>" in page
    assert "width:62.50%" in page and "5.0 s" in page  # fresh took 5 of the 8 seconds
    assert "test_web.py::test_port[upgrade]" in page and "assert 1 == 2" in page
    assert "<code>Stamp</code> changed" in page
    assert "<span class=add>+cache=on</span>" in page
    assert "values of 1 secret-looking lines masked" in page
    assert "the upgrade host still holds the baseline" in page  # the legend of its kind
    assert "stale" not in page  # a kind that did not occur has no legend row
    assert "&lt;script&gt;" in page and "<script" not in page
    assert "href='../runs/r1/upgrade.converge.log'" in page  # relative: works from disk


def test_the_page_needs_no_network(tmp_path: Path) -> None:
    page = html.render(report(tmp_path).to_dict(), tmp_path / "report.html")
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", page)
    assert "@import" not in page


def test_comparisons_without_differences_are_one_line(tmp_path: Path) -> None:
    data = report(tmp_path).to_dict()
    for c in data["comparisons"]:
        c["differences"] = []
    page = html.render(data, tmp_path / "report.html")
    assert "No difference: upgrade/tdi-host." in page
    assert "<table><tr><th>key</th>" not in page


def test_a_units_journal_shows_under_its_hosts_error(tmp_path: Path) -> None:
    data = report(tmp_path)
    data.states["fresh"].converge = FAILED
    data.states["fresh"].error = "converge: ...; unit app.service: status=1/FAILURE: <bad>"
    data.states["fresh"].journal = ["Starting app.service...", "app: cannot open <conf>"]
    page = html.render(data.to_dict(), tmp_path / "report.html")
    assert (
        "<summary>journal</summary><pre>Starting app.service...\napp: cannot open &lt;conf&gt;"
        in page
    )
    assert (
        html.render(report(tmp_path).to_dict(), tmp_path / "r.html").count(
            "<summary>journal</summary>"
        )
        == 0
    )


def test_a_same_on_both_failure_shows_its_diff_and_unmanaged_its_legend(tmp_path: Path) -> None:
    data = report(tmp_path).to_dict()
    data["comparisons"][0]["failures"] = [
        {
            "id": "test_web.py::test_conf[upgrade]",
            "message": "`nginx -T` differs:",
            "diff": "--- fresh\n+++ upgrade\n@@ -1 +1,2 @@\n listen 80;\n+listen 8081;",
        }
    ]
    data["comparisons"][0]["differences"][0]["kind"] = "unmanaged"
    page = html.render(data, tmp_path / "report.html")
    assert "test_web.py::test_conf[upgrade]</code> on upgrade/tdi-host" in page
    assert "<summary>what differs</summary>" in page
    assert "<span class=add>+listen 8081;</span>" in page
    assert "no task of either release made it" in page


def test_downtime_windows_are_drawn_on_their_sides_converge_bar(tmp_path: Path) -> None:
    found = report(tmp_path)
    window = Window(2.0, 1.0, ("Write <it>",), ("Restart web",), "Connection refused")
    found.probed([Downtime("http://lb/", "upgrade", 0.0, (window,), 80)])
    page = html.render(found.to_dict(), tmp_path / "report.html")
    # The converge of upgrade starts at 0 of 8 s: the window at 2 s is a quarter in.
    assert "<div class=down title='http://lb/ down 1.00 s at 2.00 s: Connection refused' " in page
    assert "style='left:25.00%;width:12.50%'" in page
    assert "<h2>Downtime</h2>" in page
    assert "handler Restart web<br>Write &lt;it&gt;" in page
