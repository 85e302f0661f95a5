"""The run report: its overall result, its JSON schema, its terminal lines and Markdown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tdi.provision.ansible import ChangedTask
from tdi.report import markdown, terminal
from tdi.report.model import (
    FAILED,
    PASSED,
    PHASES,
    SKIPPED,
    Comparison,
    Downtime,
    ParityResult,
    Plan,
    Report,
    Span,
    StateReport,
    Window,
)
from tdi.state.changes import ServiceChange, changes
from tdi.state.diff import Difference


def passing(
    *differences: Difference,
    expired: tuple[str, ...] = (),
    warnings: tuple[str, ...] = (),
    three_way: bool = False,
    capture_seconds: dict[str, float] | None = None,
) -> Report:
    """A run of one host whose every phase passed, with one comparison (the upgrade)."""
    states = {
        s: StateReport(f"img-{s}", converge=PASSED, idempotence=PASSED, verify=PASSED)
        for s in ("fresh", "upgrade")
    }
    result = ParityResult(
        list(differences), list(expired), list(warnings), three_way, capture_seconds or {}
    )
    upgrade = Comparison("upgrade", "tdi-host", "upgrade", "img-upgrade", result=result)
    return Report(states, [upgrade], upgrade_source="snapshot of baseline main")


def test_result_passes_when_everything_passed() -> None:
    report = passing()
    assert report.parity == PASSED
    assert report.result == PASSED


@pytest.mark.parametrize("state", ["fresh", "upgrade"])
@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("outcome", [FAILED, SKIPPED])
def test_result_fails_when_one_phase_did_not_pass(state: str, phase: str, outcome: str) -> None:
    report = passing()
    setattr(report.states[state], phase, outcome)
    assert report.result == FAILED


def test_parity_is_skipped_without_a_parity_result() -> None:
    report = passing()
    report.comparisons[0].result = None
    assert report.parity == SKIPPED
    assert report.differences == []
    assert report.result == FAILED


@pytest.mark.parametrize(
    "result",
    [
        ParityResult([Difference("user", "www", {"shell": "/bin/sh"}, None, kind="missing")]),
        ParityResult([], expired=["parity.allow[0] (file:/x) expired on 2020-01-01"]),
    ],
    ids=["difference", "expired-allow"],
)
def test_result_fails_when_parity_fails(result: ParityResult) -> None:
    report = passing()
    report.comparisons[0].result = result
    assert report.parity == FAILED
    assert report.result == FAILED


def test_allowed_and_nondeterministic_differences_do_not_fail() -> None:
    report = passing(
        Difference("file", "/etc/a", None, {}, kind="extra", allowed="known"),
        Difference("file", "/etc/b", None, {}, kind="nondeterministic"),
    )
    assert report.parity == PASSED
    assert report.result == PASSED


def test_to_dict_schema() -> None:
    report = passing(
        Difference("package", "nginx", {"version": "1.22"}, {"version": "1.18"}, kind="diverged"),
        Difference("file", "/etc/old.conf", None, {"mode": "0644"}, kind="stale"),
        expired=("parity.allow[1] (file:/srv/*) expired on 2020-01-01",),
        warnings=("user 'deploy': uid 1000 on fresh, 1001 on upgrade",),
        three_way=True,
        capture_seconds={"fresh": 1.5, "upgrade": 2.25},
    )
    report.states["upgrade"].changed_tasks = [ChangedTask("restart nginx")]
    report.states["upgrade"].tests = {"passed": 3, "failed": 1, "skipped": 2}
    data = report.to_dict()
    # The brief's schema, plus 'upgrade_source', each state's 'error' (the integration
    # tests read states.<name>.error) and 'journal' (of a unit that did not start).
    assert set(data) == {
        "result",
        "upgrade_source",
        "plan",
        "states",
        "parity",
        "comparisons",
        "timeline",
        "logs",
        "test_cases",
        "downtime",
    }
    assert data["result"] == FAILED
    assert data["upgrade_source"] == "snapshot of baseline main"
    assert set(data["states"]) == {"fresh", "upgrade"}
    for state in data["states"].values():
        assert set(state) == {
            "image",
            "converge",
            "idempotence",
            "verify",
            "reboot",
            "changed_tasks",
            "tests",
            "failures",
            "error",
            "journal",
        }
        assert set(state["tests"]) == {"passed", "failed"}
    assert data["states"]["upgrade"] == {
        "image": "img-upgrade",
        "converge": PASSED,
        "idempotence": PASSED,
        "verify": PASSED,
        "reboot": SKIPPED,
        "changed_tasks": [{"task": "restart nginx", "diff": ""}],
        "tests": {"passed": 3, "failed": 1},
        "failures": [],
        "error": "",
        "journal": [],
    }
    parity = data["parity"]
    where = {"side": "upgrade", "host": "tdi-host"}
    assert parity == {
        "result": FAILED,
        "differences": [{**d.to_dict(), **where} for d in report.differences],
        "expired_allow": ["parity.allow[1] (file:/srv/*) expired on 2020-01-01"],
        "warnings": ["user 'deploy': uid 1000 on fresh, 1001 on upgrade"],
        "kinds": "three-way",
        "capture_seconds": {"fresh": 1.5, "upgrade": 2.25},
        "error": "",
    }
    # Each difference carries at least these; tdi.state.diff owns the rest of its fields.
    core = [
        {k: d[k] for k in ("category", "key", "fresh", "upgrade", "kind")}
        for d in parity["differences"]
    ]
    assert core == [
        {
            "category": "package",
            "key": "nginx",
            "fresh": {"version": "1.22"},
            "upgrade": {"version": "1.18"},
            "kind": "diverged",
        },
        {
            "category": "file",
            "key": "/etc/old.conf",
            "fresh": None,
            "upgrade": {"mode": "0644"},
            "kind": "stale",
        },
    ]
    (upgrade,) = data["comparisons"]
    assert upgrade == {
        "side": "upgrade",
        "host": "tdi-host",
        "image": "img-upgrade",
        "result": FAILED,
        "kinds": "three-way",
        "differences": parity["differences"],
        "expired_allow": parity["expired_allow"],
        "warnings": parity["warnings"],
        "capture_seconds": {"fresh": 1.5, "upgrade": 2.25},
        "tests": {"passed": 0, "failed": 0},
        "failures": [],
        "error": "",
    }
    json.dumps(data)  # the whole report is JSON as it stands


def test_to_dict_two_way_kinds() -> None:
    assert passing().to_dict()["parity"]["kinds"] == "two-way"


def test_to_dict_without_parity_result() -> None:
    report = Report({"fresh": StateReport("img")})
    assert report.to_dict()["comparisons"] == []
    assert report.to_dict()["parity"] == {
        "result": SKIPPED,
        "differences": [],
        "expired_allow": [],
        "warnings": [],
        "kinds": "",
        "capture_seconds": {},
        "error": "",
    }


def test_new_state_report_is_skipped_with_zero_tests() -> None:
    data = StateReport("img").to_dict()
    assert data["converge"] == data["idempotence"] == data["verify"] == SKIPPED
    assert data["tests"] == {"passed": 0, "failed": 0}
    assert data["changed_tasks"] == []


def test_write_is_the_json_of_to_dict(tmp_path: Path) -> None:
    report = passing(Difference("service", "cron", None, {"enabled": True}, kind="stale"))
    path = tmp_path / "out" / "report.json"
    report.write(path)
    assert json.loads(path.read_text(encoding="utf-8")) == report.to_dict()


def test_lines_name_non_idempotent_tasks() -> None:
    report = passing()
    fresh = report.states["fresh"]
    fresh.idempotence = FAILED
    fresh.changed_tasks = [ChangedTask("restart nginx"), ChangedTask("write index")]
    lines = terminal.lines(report)
    assert any("not idempotent: restart nginx" in line for line in lines)
    assert any("not idempotent: write index" in line for line in lines)
    assert lines[-1] == f"result   {FAILED}"


def test_lines_do_not_blame_tasks_of_an_idempotent_state() -> None:
    report = passing()
    report.states["fresh"].changed_tasks = [ChangedTask("handler ran in the first converge")]
    assert not any("not idempotent" in line for line in terminal.lines(report))


def test_lines_show_errors_and_differences() -> None:
    report = passing(Difference("service", "nginx", {"enabled": True}, None, kind="missing"))
    report.states["upgrade"].converge = FAILED
    report.states["upgrade"].error = "converge: task 'copy site' failed: no such file"
    lines = terminal.lines(report)
    assert "         converge: task 'copy site' failed: no such file" in lines
    assert "parity   failed (1 differences)" in lines
    assert "  upgrade (img-upgrade): failed, 1 differences" in lines
    row = lines[lines.index("    service:") + 1]
    assert row.startswith("      missing ")
    assert row.endswith('nginx: fresh={"enabled": true} upgrade=null')


def test_lines_show_a_dash_for_an_unclassified_difference() -> None:
    report = passing(Difference("user", "www", None, {"shell": "/bin/sh"}))
    assert any(
        line.startswith("      -  ") and "www: fresh=null" in line
        for line in terminal.lines(report)
    )


def test_lines_shorten_long_values() -> None:
    report = passing(Difference("file", "/etc/big", {"content": "x" * 500}, None))
    line = next(line for line in terminal.lines(report) if "/etc/big" in line)
    assert "..." in line
    assert len(line) < 250


def test_lines_show_tasks_files_and_status() -> None:
    report = passing(
        Difference(
            "package",
            "cron",
            None,
            {"version": "3.0"},
            kind="stale",
            tasks=("baseline: web : Install cron",),
            files=("/etc/init.d/cron", "/etc/rc2.d/S01cron"),
        ),
        Difference("port", "tcp/8081", None, {}, kind="extra", allowed="status page, until Q3"),
        Difference("service", "apt-daily", {}, {}, kind="nondeterministic"),
    )
    lines = terminal.lines(report)
    (cron,) = [line for line in lines if " cron" in line and "fresh=" in line]
    assert "cron (+2 files): fresh=null" in cron
    assert cron.endswith(" <- baseline: web : Install cron")
    # What does not fail is counted, not listed: the JSON and HTML reports list it.
    assert not any("tcp/8081" in line or "apt-daily" in line for line in lines)
    assert (
        "    not failing: 1 allowed, 1 nondeterministic (each in the JSON and HTML reports)"
        in lines
    )


def test_lines_show_expired_entries_and_warnings() -> None:
    report = passing(expired=("parity.allow[0] expired",), warnings=("user 'a': uid 1 vs 2",))
    lines = terminal.lines(report)
    assert "    expired: parity.allow[0] expired" in lines
    assert "    warning: user 'a': uid 1 vs 2" in lines
    assert lines[-1] == f"result   {FAILED}"


def headings(lines: list[str]) -> list[str]:
    """The group headings of ``Report.lines``: indented by four spaces, ending in ':'."""
    return [
        line.strip().rstrip(":")
        for line in lines
        if line.startswith("    ") and not line.startswith("     ") and line.endswith(":")
    ]


def test_lines_group_differences_under_headings() -> None:
    report = passing(
        Difference("file", "/etc/cron.d/tidy", None, {}, kind="stale"),
        Difference("file", "/var/spool/cron/crontabs/root", None, {}, kind="stale"),
        Difference("package", "cron", None, {}, kind="stale"),
        Difference("package", "telnet", None, {}, kind="stale"),
    )
    lines = terminal.lines(report)
    assert headings(lines) == ["cron", "package"]
    start = lines.index("    cron:")
    assert "/etc/cron.d/tidy" in lines[start + 1]
    assert "/var/spool/cron/crontabs/root" in lines[start + 2]
    assert lines[start + 3] == "    package:"


def test_each_heading_appears_once_whatever_the_order() -> None:
    report = passing(
        Difference("file", "/etc/apt/sources.list", None, {}, kind="extra"),
        Difference("file", "/etc/cron.d/tidy", None, {}, kind="stale"),
        Difference("file", "/etc/nginx/nginx.conf", {}, {}, kind="diverged"),
    )
    assert sorted(headings(terminal.lines(report))) == ["cron", "file"]
    assert markdown.render(report).count("#### file") == 1


def test_markdown_summary() -> None:
    report = passing(
        Difference(
            "package",
            "cron",
            None,
            {"version": "3.0"},
            kind="stale",
            tasks=("baseline: Install cron", "baseline: Start cron"),
            files=("/etc/init.d/cron",),
        ),
        Difference(
            "file", "/etc/cron.d/tidy", None, {"mode": "0644"}, kind="stale", tasks=("a|b",)
        ),
        Difference("port", "tcp/8081", None, {}, kind="extra", allowed="a reason"),
        expired=("parity.allow[2] expired",),
        warnings=("group 'web': gid 1 on fresh, 2 on upgrade",),
    )
    report.states["upgrade"].idempotence = FAILED
    report.states["upgrade"].changed_tasks = [ChangedTask("restart nginx")]
    report.states["upgrade"].error = "idempotence: task 'x' failed: boom"
    report.states["fresh"].tests = {"passed": 4, "failed": 0}
    text = markdown.render(report)
    lines = text.splitlines()
    assert lines[0] == "## tdi: ❌ failed"
    assert "Upgrade from: snapshot of baseline main" in lines
    assert "| fresh | ✅ passed | ✅ passed | ✅ passed | 4 passed, 0 failed |" in lines
    assert "| upgrade | ✅ passed | ❌ failed | ✅ passed | 0 passed, 0 failed |" in lines
    assert "**upgrade** not idempotent: `restart nginx`" in lines
    assert "**upgrade**: idempotence: task 'x' failed: boom" in lines
    assert "### Parity: ❌ failed" in lines
    assert lines.index("#### package") < lines.index("#### cron")
    assert (
        '| `cron` (1 files) | stale | `null` | `{"version": "3.0"}` '
        "| baseline: Install cron<br>baseline: Start cron |"
    ) in lines
    # A '|' in a cell would end it early.
    assert '| `/etc/cron.d/tidy` | stale | `null` | `{"mode": "0644"}` | a\\|b |' in lines
    # The allowed port is counted, not listed.
    assert "#### port" not in lines
    assert "Not failing: 1 allowed (each in the JSON and HTML reports)." in lines
    assert "- expired allowlist entry: parity.allow[2] expired" in lines
    assert "- warning: group 'web': gid 1 on fresh, 2 on upgrade" in lines
    assert text.endswith("\n") and not text.endswith("\n\n")


def test_markdown_of_a_passing_run_has_no_difference_table() -> None:
    done = StateReport("img", converge=PASSED, idempotence=PASSED, verify=PASSED)
    text = markdown.render(
        Report(
            {"fresh": done, "upgrade": done},
            [Comparison("upgrade", "tdi-host", "upgrade", "img", result=ParityResult([]))],
        )
    )
    assert text.startswith("## tdi: ✅ passed\n")
    assert "### Parity: ✅ passed" in text
    assert "Upgrade from" not in text
    assert "####" not in text
    assert "**upgrade**: ✅ passed (0 differences)" in text


def test_markdown_marks_skipped_parity() -> None:
    text = markdown.render(Report({"fresh": StateReport("img")}))
    assert "### Parity: ⏭️ skipped" in text
    assert "| fresh | ⏭️ skipped | ⏭️ skipped | ⏭️ skipped | 0 passed, 0 failed |" in text


def chain_report(*older: Difference, error: str = "") -> Report:
    """Two hosts, fresh against upgrade and against the older link upgrade-1."""
    states = {
        f"{side}/{host}": StateReport(f"img-{side}-{host}", PASSED, PASSED, PASSED)
        for side in ("fresh", "upgrade", "upgrade-1")
        for host in ("lb", "web1")
    }
    comparisons = [
        Comparison(
            side,
            host,
            f"{side}/{host}",
            f"img-{side}-{host}",
            result=ParityResult(list(older) if (side, host) == ("upgrade-1", "web1") else []),
        )
        for side in ("upgrade", "upgrade-1")
        for host in ("lb", "web1")
    ]
    if error:
        comparisons[0].result, comparisons[0].error = None, error
    return Report(states, comparisons, upgrade_source="production image app:production")


STALE_CRON = Difference("package", "cron", None, {"version": "3.0"}, kind="stale")


def test_chain_that_passes() -> None:
    report = chain_report()
    assert report.parity == PASSED
    assert report.result == PASSED


def test_a_failing_older_link_fails_parity_and_the_run() -> None:
    report = chain_report(STALE_CRON)
    assert [c.status for c in report.comparisons] == [PASSED, PASSED, PASSED, FAILED]
    assert report.parity == FAILED
    assert report.result == FAILED
    assert report.differences == [STALE_CRON]


def test_an_older_links_differences_in_json_name_side_and_host() -> None:
    data = chain_report(STALE_CRON).to_dict()
    (found,) = data["parity"]["differences"]
    assert (found["side"], found["host"], found["key"], found["kind"]) == (
        "upgrade-1",
        "web1",
        "cron",
        "stale",
    )
    assert data["parity"]["result"] == FAILED
    assert [(c["side"], c["host"], c["result"]) for c in data["comparisons"]] == [
        ("upgrade", "lb", PASSED),
        ("upgrade", "web1", PASSED),
        ("upgrade-1", "lb", PASSED),
        ("upgrade-1", "web1", FAILED),
    ]
    assert data["comparisons"][3]["differences"] == [found]
    assert data["comparisons"][0]["differences"] == []


def test_an_older_links_differences_in_the_terminal_lines() -> None:
    lines = terminal.lines(chain_report(STALE_CRON))
    assert "parity   failed (1 differences)" in lines
    start = lines.index("  upgrade-1/web1 (img-upgrade-1-web1): failed, 1 differences")
    assert lines[start + 1] == "    package:"
    assert "cron: fresh=null" in lines[start + 2]
    assert "  upgrade/lb (img-upgrade-lb): passed, 0 differences" in lines
    # The node column is as wide as the longest key.
    assert lines[0].startswith(f"{'fresh/lb':{len('upgrade-1/web1')}} converge passed ")


def test_an_older_links_differences_in_markdown() -> None:
    text = markdown.render(chain_report(STALE_CRON))
    lines = text.splitlines()
    assert "### Parity: ❌ failed" in lines
    assert "**upgrade-1/web1**: ❌ failed (1 differences)" in lines
    assert "**upgrade/lb**: ✅ passed (0 differences)" in lines
    heading = lines.index("**upgrade-1/web1**: ❌ failed (1 differences)")
    assert lines.index("#### package") > heading
    assert '| `cron` | stale | `null` | `{"version": "3.0"}` |  |' in lines
    assert "| upgrade-1/web1 | ✅ passed | ✅ passed | ✅ passed | 0 passed, 0 failed |" in lines


def test_a_comparison_with_an_error_fails_only_itself() -> None:
    report = chain_report(error="capture failed: probe exited 1")
    statuses = {c.key: c.status for c in report.comparisons}
    assert statuses == {
        "upgrade/lb": FAILED,
        "upgrade/web1": PASSED,
        "upgrade-1/lb": PASSED,
        "upgrade-1/web1": PASSED,
    }
    assert report.parity == FAILED
    assert report.result == FAILED
    data = report.to_dict()
    assert data["parity"]["error"] == "upgrade/lb: capture failed: probe exited 1"
    assert data["comparisons"][0]["error"] == "capture failed: probe exited 1"
    assert data["comparisons"][0]["kinds"] == ""
    assert data["comparisons"][1]["error"] == ""
    assert "    error: capture failed: probe exited 1" in terminal.lines(report)
    assert "Error: capture failed: probe exited 1" in markdown.render(report).splitlines()


def test_same_on_both_failures_fail_parity() -> None:
    report = chain_report()
    older = report.comparisons[3]
    older.tests = {"passed": 1, "failed": 1}
    failure = {"id": "test_web.py::test_conf[upgrade-1/web1]", "message": "`cat /etc/x` differs:"}
    older.failures = [failure]
    assert older.status == FAILED  # its result alone passed
    assert report.parity == FAILED
    assert report.result == FAILED
    assert report.to_dict()["comparisons"][3]["tests"] == {"passed": 1, "failed": 1}
    assert f"    FAILED {failure['id']}: {failure['message']}" in terminal.lines(report)
    assert f"- ❌ `{failure['id']}`: {failure['message']}" in markdown.render(report).splitlines()
    # It counts under parity, not on the node's own tests.
    assert report.states["upgrade-1/web1"].tests == {"passed": 0, "failed": 0}


def test_a_same_on_both_failure_carries_its_diff_everywhere() -> None:
    report = passing()
    (upgrade,) = report.comparisons
    upgrade.tests = {"passed": 0, "failed": 1}
    delta = "--- fresh\n+++ upgrade\n@@ -1 +1,2 @@\n listen 80;\n+listen 8081;"
    failure = {"id": "t.py::test_conf[upgrade]", "message": "`nginx -T` differs:", "diff": delta}
    upgrade.failures = [failure]
    lines = terminal.lines(report)
    start = lines.index("    FAILED t.py::test_conf[upgrade]: `nginx -T` differs:")
    assert lines[start + 1 : start + 6] == [f"      {line}" for line in delta.splitlines()]
    md = markdown.render(report)
    assert "- ❌ `t.py::test_conf[upgrade]`: `nginx -T` differs:" in md
    assert "<summary>what differs</summary>" in md and "+listen 8081;" in md
    assert report.to_dict()["comparisons"][0]["failures"] == [failure]


def test_a_passing_comparison_counts_what_does_not_fail() -> None:
    report = passing(
        Difference(
            "file", "/var/lib/redis/dump.rdb", {"sha256": "a"}, {"sha256": "b"}, kind="unmanaged"
        ),
        Difference("file", "/etc/ssl/certs/ssl-cert-snakeoil.pem", {}, {}, kind="unmanaged"),
        Difference("service", "apt-daily", {}, {}, kind="nondeterministic"),
        Difference("file", "/etc/x", {}, {}, kind="diverged", allowed="ticket 42"),
    )
    assert report.parity == PASSED
    lines = terminal.lines(report)
    assert "  upgrade (img-upgrade): passed, 4 differences" in lines
    assert (
        "    not failing: 2 unmanaged, 1 nondeterministic, 1 allowed "
        "(each in the JSON and HTML reports)"
    ) in lines
    assert not any("dump.rdb" in line or "next step" in line for line in lines)
    md = markdown.render(report)
    assert "####" not in md and "dump.rdb" not in md
    assert "Not failing: 2 unmanaged, 1 nondeterministic, 1 allowed" in md
    # The JSON keeps every one.
    assert len(report.to_dict()["parity"]["differences"]) == 4


def test_differences_no_task_explains_come_with_a_next_step() -> None:
    report = passing(
        Difference("file", "/etc/a", None, {}, kind="diverged"),
        Difference("file", "/etc/b", None, {}, kind="stale", tasks=("baseline: b",)),
        Difference("package", "c", None, {}, kind="stale"),
        Difference("file", "/etc/d", None, {}, kind="diverged"),
        Difference("file", "/etc/e", None, {}, kind="diverged"),
        Difference("file", "/etc/f", None, {}, kind="unmanaged"),
    )
    (step,) = [line for line in terminal.lines(report) if line.startswith("    next step: ")]
    assert step.startswith(
        "    next step: no task explains file /etc/a, package c, file /etc/d and 1 more: "
    )
    assert "`tdi calibrate`" in step and "`parity.allow`" in step
    assert (
        "Next step: " + step.removeprefix("    next step: ") in markdown.render(report).splitlines()
    )
    assert not any(
        "next step" in line for line in terminal.lines(passing(*report.differences[1:2]))
    )


def test_a_failing_tests_id_and_message_are_shown() -> None:
    report = passing()
    upgrade = report.states["upgrade"]
    upgrade.verify = FAILED
    upgrade.tests = {"passed": 2, "failed": 1}
    upgrade.failures = [
        {"id": "tests/infra/test_web.py::test_port[upgrade]", "message": "assert False"}
    ]
    lines = terminal.lines(report)
    assert "         FAILED tests/infra/test_web.py::test_port[upgrade]: assert False" in lines
    assert lines[-1] == f"result   {FAILED}"
    md = markdown.render(report).splitlines()
    assert "- ❌ `tests/infra/test_web.py::test_port[upgrade]`: assert False" in md
    assert report.to_dict()["states"]["upgrade"]["failures"] == upgrade.failures


def test_kinds_are_mixed_when_comparisons_differ() -> None:
    report = chain_report()
    report.comparisons[0].result = ParityResult([], three_way=True)
    assert report.to_dict()["parity"]["kinds"] == "mixed"


CONTENT = "".join(["--- fresh:/etc/a.conf\n", "+++ upgrade:/etc/a.conf\n", "@@ -1 +1 @@\n"])
CONTENT += "".join(f"-new {i}\n+old {i}\n" for i in range(10))


def content_difference() -> Difference:
    return Difference(
        "file",
        "/etc/a.conf",
        {"sha256": "a"},
        {"sha256": "b"},
        kind="diverged",
        content_diff=CONTENT,
        content_notes=("values of 1 secret-looking lines masked",),
    )


def test_a_content_diff_in_json_terminal_and_markdown() -> None:
    report = passing(content_difference())
    (data,) = report.to_dict()["parity"]["differences"]
    assert data["content_diff"] == CONTENT
    assert data["content_notes"] == ["values of 1 secret-looking lines masked"]
    lines = terminal.lines(report)
    at = lines.index(next(line for line in lines if "/etc/a.conf: fresh=" in line))
    assert lines[at + 1 : at + 4] == [
        "        --- fresh:/etc/a.conf",
        "        +++ upgrade:/etc/a.conf",
        "        @@ -1 +1 @@",
    ]
    assert "        ... 15 more lines in the JSON report" in lines
    assert "        (values of 1 secret-looking lines masked)" in lines
    md = markdown.render(report)
    assert "<summary><code>/etc/a.conf</code>: content (values of 1" in md
    assert "```diff\n--- fresh:/etc/a.conf\n" in md and "+old 9\n```" in md


def test_an_idempotence_diff_in_json_terminal_and_markdown() -> None:
    report = passing()
    upgrade = report.states["upgrade"]
    upgrade.idempotence = FAILED
    upgrade.changed_tasks = [
        ChangedTask("Record the deployment", "--- before\n+++ after\n-1\n+2\n")
    ]
    assert report.to_dict()["states"]["upgrade"]["changed_tasks"] == [
        {"task": "Record the deployment", "diff": "--- before\n+++ after\n-1\n+2\n"}
    ]
    lines = terminal.lines(report)
    at = lines.index(next(x for x in lines if x.endswith("not idempotent: Record the deployment")))
    assert [x.strip() for x in lines[at + 1 : at + 5]] == ["--- before", "+++ after", "-1", "+2"]
    md = markdown.render(report)
    assert "<summary>Record the deployment</summary>" in md
    assert "```diff\n--- before\n+++ after\n-1\n+2\n```" in md


def test_the_timeline_starts_at_the_first_span_and_is_in_order_of_start() -> None:
    report = passing()
    report.timeline = [
        Span("converge", "upgrade", 105.0, 20.0),
        Span("images", "run", 100.0, 2.5),
        Span("converge", "fresh", 104.0, 10.0),
    ]
    assert report.to_dict()["timeline"] == [
        {"phase": "images", "who": "run", "start": 0.0, "seconds": 2.5},
        {"phase": "converge", "who": "fresh", "start": 4.0, "seconds": 10.0},
        {"phase": "converge", "who": "upgrade", "start": 5.0, "seconds": 20.0},
    ]


def test_a_units_journal_follows_the_error_in_terminal_and_markdown() -> None:
    report = passing()
    upgrade = report.states["upgrade"]
    upgrade.converge = FAILED
    upgrade.error = "converge: task 'Start app' failed: ...; unit app.service: exit-code"
    upgrade.journal = [f"line {i}" for i in range(10)]
    lines = terminal.lines(report)
    at = lines.index(f"{' ' * 8} {upgrade.error}")
    pad = " " * 11
    assert lines[at + 1 : at + 3] == [
        f"{pad}... 2 earlier lines in the JSON report",
        f"{pad}line 2",
    ]
    assert lines[at + 9] == f"{pad}line 9"
    md = markdown.render(report)
    assert "<summary>journal</summary>\n\n```text\nline 0\n" in md
    assert report.to_dict()["states"]["upgrade"]["journal"] == upgrade.journal


def test_names_with_newlines_escapes_and_markup_are_escaped() -> None:
    from tdi.report import listing
    from tdi.state.diff import Difference

    d = Difference(
        "file",
        "/etc/evil\nname",
        None,
        {"type": "file"},
        kind="stale",
        tasks=("\x1b[31mred\x1b[0m <img src=x>",),
    )
    assert listing.safe(d.key) == "/etc/evil\\nname"
    row = terminal._row(d)
    assert "\n" not in row and "\x1b" not in row
    md = markdown._md_row(d)
    assert "\n" not in md and "<img" not in md and "&lt;img src=x&gt;" in md


def test_thousands_of_differences_are_listed_up_to_a_cap() -> None:
    from tdi.report import listing
    from tdi.state.diff import Difference

    group = [
        Difference("file", f"/opt/x/{i}", None, {"type": "file"}, kind="stale") for i in range(1000)
    ]
    [(heading, shown, more)] = listing.listed(group)
    assert heading == "file"
    assert len(shown) == listing.LISTED and more == 1000 - listing.LISTED


def planned_report(source: str) -> Report:
    """A passing run whose upgrade node's converge restarted nginx and changed a file."""
    report = passing()
    report.upgrade_source = source
    plan = Plan(
        tasks=(ChangedTask("Write the vhost", "--- before\n+++ after\n+add_header X;\n"),),
        handlers=("Restart nginx",),
        services=(ServiceChange("nginx", ("restarted",)),),
        changes=changes(
            [
                Difference(
                    "file",
                    "/etc/nginx/sites-available/website",
                    {"sha256": "a"},
                    {"sha256": "b"},
                    tasks=("Write the vhost",),
                    content_diff="--- before:x\n+++ after:x\n+add_header X;\n",
                ),
                Difference("package", "tree", {"version": "2.1"}, None),
            ]
        ),
    )
    report.planned_changes("upgrade", plan)
    return report


def test_the_plan_heads_the_markdown_and_says_production_when_it_is() -> None:
    text = markdown.render(planned_report("production image registry/web:production"))
    first = text.index("### Plan: on production, this merge will:")
    assert first < text.index("| host |") < text.index("### Parity")
    for said in ("Restart nginx", "nginx restarted", "removed tree", "Write the vhost"):
        assert said in text[first : text.index("| host |")]
    assert "+add_header X;" in text
    baseline = markdown.render(planned_report("snapshot of baseline main (abc)"))
    assert "on the upgrade hosts (snapshot of baseline main (abc)), this change will:" in baseline


def test_the_plan_is_in_the_json_of_each_upgrade_node_and_in_the_terminal() -> None:
    report = planned_report("production image r/web:production")
    data = report.to_dict()
    assert data["plan"] == "on production, this merge will:"
    changes_ = data["states"]["upgrade"]["changes"]
    assert changes_["services"] == [{"unit": "nginx", "actions": ["restarted"]}]
    assert changes_["handlers"] == ["Restart nginx"]
    assert [c["summary"] for c in changes_["changes"]] == [
        "changed file /etc/nginx/sites-available/website: content",
        "removed package tree",
    ]
    assert "changes" not in data["states"]["fresh"]
    lines = terminal.lines(report)
    assert lines.index("plan     on production, this merge will:") < lines.index(
        next(line for line in lines if line.startswith("parity"))
    )
    assert "      nginx restarted" in lines


def test_a_plan_alone_passes_on_its_converge_and_shows_no_parity() -> None:
    alone = StateReport("img", converge=PASSED, required=("converge",))
    report = Report({"upgrade": alone}, compares=False)
    report.planned_changes("upgrade", Plan(services=None, error=""))
    assert report.result == PASSED
    assert not any(line.startswith("parity") for line in terminal.lines(report))
    assert "### Parity" not in markdown.render(report)
    report.states["upgrade"].converge = FAILED
    assert report.result == FAILED


def test_downtime_in_the_terminal_and_markdown_names_probe_window_and_task() -> None:
    report = passing()
    window = Window(2.0, 1.3, ("Write the page",), ("Restart web",), "Connection refused")
    report.probed(
        [
            Downtime("http://lb/", "upgrade", 0.0, (window,), 80),
            Downtime("tcp://db:5432", "upgrade", 0.0, (), 80),
        ]
    )
    assert report.result == FAILED
    lines = terminal.lines(report)
    at = lines.index("downtime")
    assert lines[at + 1 :] == [
        "  http://lb/ on upgrade: failed, 1 windows, 1.30 s down in 80 polls (max_downtime 0 s)",
        "    1.30 s from 2.00 s: Connection refused; during handler 'Restart web', task "
        "'Write the page'",
        "    FAILED probe http://lb/ on upgrade: down 1.30 s from 2.00 s into the converge "
        "(max_downtime 0 s), during handler 'Restart web', task 'Write the page': "
        "Connection refused",
        "  tcp://db:5432 on upgrade: passed, 0 windows, 0.00 s down in 80 polls (max_downtime 0 s)",
        "result   failed",
    ]
    text = markdown.render(report)
    assert "### Downtime: ❌ failed" in text
    assert (
        "| `http://lb/` | upgrade | ❌ failed | 2.00 s | 1.30 | handler 'Restart web', task "
        "'Write the page' | Connection refused |" in text
    )
    assert "| `tcp://db:5432` | upgrade | ✅ passed | none | 0 |  |  |" in text


def test_no_probe_no_downtime_part() -> None:
    report = passing()
    assert "downtime" not in terminal.lines(report)
    assert "Downtime" not in markdown.render(report)
