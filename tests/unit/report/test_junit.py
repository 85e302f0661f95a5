"""JUnit XML, rendered from the report: the tests pytest ran, the nodes not verified, and,
per comparison, one parity case per difference."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

from tdi import secrets
from tdi.report import junit
from tdi.report.model import (
    FAILED,
    PASSED,
    CaseResult,
    Comparison,
    Downtime,
    ParityResult,
    Report,
    StateReport,
    Window,
)
from tdi.state.diff import Difference


def upgrade(result: ParityResult | None, key: str = "upgrade", error: str = "") -> Comparison:
    side, _, host = key.partition("/")
    return Comparison(side, host or "tdi-host", key, "img", result=result, error=error)


def report_of(*comparisons: Comparison, cases: list[CaseResult] | None = None) -> Report:
    """A report whose nodes were all verified (so no tdi.verify suite), with ``cases``."""
    states = {
        "fresh": StateReport("img", verify=PASSED),
        "upgrade": StateReport("img", verify=PASSED),
    }
    return Report(states, list(comparisons), cases=cases or [])


def written(tmp_path: Path, report: Report) -> Path:
    path = tmp_path / "out" / "junit.xml"
    junit.write(path, report)
    return path


def suite(path: Path, name: str) -> ET.Element:
    (found,) = [s for s in ET.parse(path).getroot().iter("testsuite") if s.get("name") == name]
    return found


def cases(element: ET.Element) -> dict[str, ET.Element]:
    return {str(c.get("name")): c for c in element.iter("testcase")}


PYTEST_CASES = [
    CaseResult("tests/infra/test_web.py::test_port[fresh]", "passed", 0.1),
    CaseResult(
        "tests/infra/test_web.py::TestSite::test_page[upgrade]",
        "failed",
        0.2,
        "AssertionError: assert 'old' == 'new'",
        "def test_page(host):\n>       assert page == 'new'\nE       AssertionError",
    ),
    CaseResult("tests/infra/test_mail.py::test_smtp[fresh]", "skipped", 0.0, "needs a relay"),
]


def test_the_tests_pytest_ran_are_named_as_pytest_names_them(tmp_path: Path) -> None:
    path = written(tmp_path, report_of(cases=PYTEST_CASES))
    tests = suite(path, "pytest")
    assert (tests.get("tests"), tests.get("failures"), tests.get("skipped")) == ("3", "1", "1")
    found = cases(tests)
    assert list(found) == ["test_port[fresh]", "test_page[upgrade]", "test_smtp[fresh]"]
    assert found["test_port[fresh]"].get("classname") == "tests.infra.test_web"
    assert found["test_page[upgrade]"].get("classname") == "tests.infra.test_web.TestSite"
    assert found["test_page[upgrade]"].get("time") == "0.200"
    failure = found["test_page[upgrade]"].find("failure")
    assert failure is not None and failure.get("message") == "AssertionError: assert 'old' == 'new'"
    assert "E       AssertionError" in (failure.text or "")
    skipped = found["test_smtp[fresh]"].find("skipped")
    assert skipped is not None and skipped.get("message") == "needs a relay"


def test_nodes_not_verified_are_skipped_cases_with_why(tmp_path: Path) -> None:
    states = {
        "fresh": StateReport("img", converge=PASSED, verify=PASSED),
        "upgrade": StateReport("img", converge=FAILED, error="converge: task 'x' failed"),
    }
    path = written(tmp_path, Report(states))
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    (verify,) = root.findall("testsuite")
    assert (verify.get("name"), verify.get("tests"), verify.get("skipped")) == (
        "tdi.verify",
        "1",
        "1",
    )
    skipped = cases(verify)["verify[upgrade]"].find("skipped")
    assert skipped is not None and skipped.get("message") == "converge: task 'x' failed"


def test_pytest_then_verify_then_parity_in_one_file(tmp_path: Path) -> None:
    report = report_of(upgrade(ParityResult([])), cases=PYTEST_CASES[:1])
    report.states["upgrade"].verify = "skipped"
    path = written(tmp_path, report)
    names = [s.get("name") for s in ET.parse(path).getroot().findall("testsuite")]
    assert names == ["pytest", "tdi.verify", "tdi.parity"]


def test_known_secrets_are_masked_in_the_file(tmp_path: Path) -> None:
    secrets.remember(["Pa55-word-42"])
    failing = CaseResult("t.py::test_a[fresh]", "failed", 0.0, "x", "E  assert 'Pa55-word-42'")
    text = written(tmp_path, report_of(cases=[failing])).read_text()
    assert "Pa55-word-42" not in text and "****" in text


def test_parity_without_differences_is_one_passing_case(tmp_path: Path) -> None:
    path = written(tmp_path, report_of(upgrade(ParityResult([]))))
    parity = suite(path, "tdi.parity")
    assert (parity.get("tests"), parity.get("failures"), parity.get("skipped")) == ("1", "0", "0")
    (case,) = parity.findall("testcase")
    assert case.get("name") == "parity"
    assert len(case) == 0  # no failure, no skipped: it passed


def test_parity_case_per_difference(tmp_path: Path) -> None:
    failing = Difference(
        "package",
        "cron",
        None,
        {"version": "3.0"},
        kind="stale",
        tasks=("baseline: Install cron",),
    )
    allowed = Difference("file", "/etc/cron.d/tidy", None, {}, kind="stale", allowed="goes in 2.0")
    noisy = Difference("service", "apt-daily.timer", {}, {}, kind="nondeterministic")
    path = written(tmp_path, report_of(upgrade(ParityResult([failing, allowed, noisy]))))
    parity = suite(path, "tdi.parity")
    assert (parity.get("tests"), parity.get("failures"), parity.get("skipped")) == ("3", "1", "2")
    found = cases(parity)
    assert list(found) == [
        "parity[package:cron]",
        "parity[file:/etc/cron.d/tidy]",
        "parity[service:apt-daily.timer]",
    ]
    assert all(c.get("classname") == "tdi.parity" for c in found.values())

    failure = found["parity[package:cron]"].find("failure")
    assert failure is not None
    assert failure.get("message") == "stale: cron; tasks: baseline: Install cron"
    assert json.loads(failure.text or "") == failing.to_dict()

    skipped = found["parity[file:/etc/cron.d/tidy]"].find("skipped")
    assert skipped is not None and skipped.get("message") == "allowed: goes in 2.0"
    assert found["parity[file:/etc/cron.d/tidy]"].find("failure") is None

    skipped = found["parity[service:apt-daily.timer]"].find("skipped")
    assert skipped is not None and skipped.get("message") == "nondeterministic"


def test_expired_allow_entry_is_a_failure_case(tmp_path: Path) -> None:
    message = "parity.allow[0] (file:/x) expired on 2020-01-01: remove it"
    path = written(tmp_path, report_of(upgrade(ParityResult([], expired=[message]))))
    parity = suite(path, "tdi.parity")
    assert parity.get("failures") == "1"
    (case,) = parity.findall("testcase")
    assert case.get("name") != "parity"
    failure = case.find("failure")
    assert failure is not None and failure.get("message") == message


def test_suite_counts_match_its_cases(tmp_path: Path) -> None:
    result = ParityResult(
        [Difference("user", "a", None, {}, kind="stale")], expired=["parity.allow[0] expired"]
    )
    path = written(tmp_path, report_of(upgrade(result)))
    parity = suite(path, "tdi.parity")
    assert parity.get("tests") == str(len(parity.findall("testcase"))) == "2"
    assert parity.get("failures") == "2"


def test_a_suite_per_comparison_named_after_it(tmp_path: Path) -> None:
    stale = Difference("file", "/etc/old", None, {}, kind="stale")
    path = written(
        tmp_path,
        report_of(
            upgrade(ParityResult([]), "upgrade/db"),
            upgrade(ParityResult([stale]), "upgrade-1/db"),
            upgrade(ParityResult([]), "upgrade-1"),
        ),
    )
    names = [s.get("name") for s in ET.parse(path).getroot().findall("testsuite")]
    assert names == [
        "tdi.parity.upgrade/db",
        "tdi.parity.upgrade-1/db",
        "tdi.parity.upgrade-1",
    ]
    older = suite(path, "tdi.parity.upgrade-1/db")
    assert older.get("failures") == "1"
    (case,) = older.findall("testcase")
    assert case.get("classname") == "tdi.parity.upgrade-1/db"
    assert case.get("name") == "parity[file:/etc/old]"


def test_a_comparison_that_could_not_run_is_a_failure(tmp_path: Path) -> None:
    path = written(tmp_path, report_of(upgrade(None, "upgrade-1", error="capture failed: exit 1")))
    older = suite(path, "tdi.parity.upgrade-1")
    assert older.get("failures") == "1"
    (case,) = older.findall("testcase")
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == "parity could not run: capture failed: exit 1"


def test_a_comparison_that_did_not_run_adds_nothing(tmp_path: Path) -> None:
    path = written(tmp_path, report_of(upgrade(None)))
    assert ET.parse(path).getroot().findall("testsuite") == []


def test_a_failing_file_difference_carries_its_content_diff(tmp_path: Path) -> None:
    content = "--- fresh:/etc/a\n+++ upgrade:/etc/a\n@@ -1 +1 @@\n-one\n+two\n"
    d = Difference(
        "file", "/etc/a", {"sha256": "1"}, {"sha256": "2"}, "diverged", content_diff=content
    )
    path = written(tmp_path, report_of(upgrade(ParityResult([d]))))
    failure = cases(suite(path, "tdi.parity"))["parity[file:/etc/a]"].find("failure")
    assert failure is not None and failure.text is not None
    assert failure.text.endswith("\n\n" + content)


def test_a_case_per_probe_and_side_failed_when_down_too_long(tmp_path: Path) -> None:
    found = report_of(upgrade(ParityResult([])))
    window = Window(2.0, 1.3, (), ("Restart web (web1)",), "Connection refused")
    found.probed(
        [
            Downtime("http://lb/", "upgrade", 0.0, (window,), 80),
            Downtime("http://lb/", "upgrade-1", 0.0, (), 80),
        ]
    )
    down = cases(suite(written(tmp_path, found), "tdi.downtime"))
    assert set(down) == {"downtime[upgrade:http://lb/]", "downtime[upgrade-1:http://lb/]"}
    failure = down["downtime[upgrade:http://lb/]"].find("failure")
    assert failure is not None
    assert failure.get("message") == (
        "probe http://lb/ on upgrade: down 1.30 s from 2.00 s into the converge "
        "(max_downtime 0 s), during handler 'Restart web (web1)': Connection refused"
    )
    assert down["downtime[upgrade-1:http://lb/]"].find("failure") is None
