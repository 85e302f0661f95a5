"""ansible-lint's findings in the report: one shape (``Report.lint``), in the verdict, the
JSON, the terminal, Markdown, HTML and JUnit."""

from __future__ import annotations

from pathlib import Path

from tdi.report import html, junit, markdown, terminal
from tdi.report.model import FAILED, PASSED, Lint, LintFinding, Report, StateReport

FINDINGS = (
    LintFinding("name[play]", "playbooks/site.yml", 11, "All plays should be named."),
    LintFinding("yaml[line-length]", "roles/web/tasks/main.yml", 3, "Line too long", "warning"),
)


def stopped() -> Report:
    """A run that lint stopped: no node, nothing compared."""
    return Report.planned(None, lint=Lint("basic", FINDINGS, failed=True, seconds=4.2))


def test_a_lint_failure_fails_the_run_with_no_node() -> None:
    report = stopped()
    assert report.result == FAILED and not report.states and not report.compares
    data = report.to_dict()
    assert data["result"] == FAILED
    assert data["lint"] == {
        "profile": "basic",
        "result": FAILED,
        "seconds": 4.2,
        "findings": [
            {
                "rule": "name[play]",
                "file": "playbooks/site.yml",
                "line": 11,
                "message": "All plays should be named.",
                "level": "error",
            },
            {
                "rule": "yaml[line-length]",
                "file": "roles/web/tasks/main.yml",
                "line": 3,
                "message": "Line too long",
                "level": "warning",
            },
        ],
    }


def test_a_passed_lint_leaves_the_verdict_to_the_hosts() -> None:
    states = {"fresh": StateReport("img", "passed", "passed", "passed")}
    report = Report(states, compares=False, lint=Lint("production", FINDINGS[1:]))
    assert report.result == PASSED
    report.lint = None
    assert report.result == PASSED and "lint" not in report.to_dict()


def test_the_terminal_says_the_profile_and_each_finding() -> None:
    lines = terminal.lines(stopped())
    assert lines[0] == "lint     failed (ansible-lint, profile basic: 2 findings)"
    assert lines[1] == "  playbooks/site.yml:11: name[play]: All plays should be named."
    assert lines[2] == "  roles/web/tasks/main.yml:3: yaml[line-length] (warning): Line too long"
    assert lines[-1] == "result   failed"


def test_markdown_has_a_row_per_finding_and_no_empty_host_table() -> None:
    text = markdown.render(stopped())
    assert "### Lint: ❌ failed (ansible-lint, profile `basic`: 2 findings)" in text
    assert "| `playbooks/site.yml:11` | `name[play]` | error | All plays should be named. |" in text
    assert "| host |" not in text
    assert "stopped here, before any host" in text


def test_junit_fails_the_errors_and_passes_the_warnings() -> None:
    suite = junit.render(stopped()).find("testsuite[@name='tdi.lint']")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    cases = suite.findall("testcase")
    assert cases[0].get("name") == "lint[name[play]:playbooks/site.yml:11]"
    failure = cases[0].find("failure")
    assert failure is not None and "All plays should be named." in failure.get("message", "")
    assert cases[1].find("failure") is None


def test_junit_of_a_clean_lint_has_one_passing_case() -> None:
    report = Report({}, compares=False, lint=Lint("min"))
    suite = junit.render(report).find("testsuite[@name='tdi.lint']")
    assert suite is not None and suite.get("failures") == "0"
    assert [c.get("name") for c in suite.findall("testcase")] == ["lint[min]"]


def test_html_lists_the_findings(tmp_path: Path) -> None:
    page = html.render(stopped().to_dict(), tmp_path / "r.html")
    assert "ansible-lint, profile basic" in page
    assert "<code>playbooks/site.yml:11</code>" in page
