"""JUnit XML: skipped verify cases and, per comparison, one parity case per difference."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

from tdi.report import junit
from tdi.report.model import Comparison, ParityResult
from tdi.state.diff import Difference

PYTEST_JUNIT = """\
<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="0" failures="1" skipped="0" tests="2">
<testcase classname="test_web" name="test_port[fresh]" time="0.1"/>
<testcase classname="test_web" name="test_port[upgrade]" time="0.1">
<failure message="assert False">trace</failure></testcase>
</testsuite></testsuites>
"""


def upgrade(result: ParityResult | None, key: str = "upgrade", error: str = "") -> Comparison:
    side, _, host = key.partition("/")
    return Comparison(side, host or "tdi-host", key, "img", result=result, error=error)


def suite(path: Path, name: str) -> ET.Element:
    (found,) = [s for s in ET.parse(path).getroot().iter("testsuite") if s.get("name") == name]
    return found


def cases(element: ET.Element) -> dict[str, ET.Element]:
    return {str(c.get("name")): c for c in element.iter("testcase")}


def test_skipped_verify_in_a_new_file(tmp_path: Path) -> None:
    path = tmp_path / "out" / "junit.xml"
    junit.add_skipped_verify(path, {"fresh": "converge failed", "upgrade": "converge failed"})
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    (verify,) = root.findall("testsuite")
    assert verify.get("name") == "tdi.verify"
    assert verify.get("tests") == "2"
    assert verify.get("skipped") == "2"
    found = cases(verify)
    assert list(found) == ["verify[fresh]", "verify[upgrade]"]
    for case in found.values():
        skipped = case.find("skipped")
        assert skipped is not None
        assert skipped.get("message") == "converge failed"


def test_skipped_verify_wraps_a_bare_testsuite(tmp_path: Path) -> None:
    # Older pytest and other tools write a single <testsuite> root.
    path = tmp_path / "junit.xml"
    path.write_text('<testsuite name="pytest"><testcase name="t"/></testsuite>', encoding="utf-8")
    junit.add_skipped_verify(path, {"upgrade": "converge failed"})
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    assert [s.get("name") for s in root.findall("testsuite")] == ["pytest", "tdi.verify"]


def test_parity_appends_to_pytests_file_and_keeps_its_cases(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(PYTEST_JUNIT, encoding="utf-8")
    junit.add_comparison(path, upgrade(ParityResult([])))
    root = ET.parse(path).getroot()
    assert [s.get("name") for s in root.findall("testsuite")] == ["pytest", "tdi.parity"]
    pytest_cases = cases(suite(path, "pytest"))
    assert list(pytest_cases) == ["test_port[fresh]", "test_port[upgrade]"]
    assert pytest_cases["test_port[upgrade]"].find("failure") is not None


def test_parity_without_differences_is_one_passing_case(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    junit.add_comparison(path, upgrade(ParityResult([])))
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
    path = tmp_path / "junit.xml"
    junit.add_comparison(path, upgrade(ParityResult([failing, allowed, noisy])))
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
    path = tmp_path / "junit.xml"
    message = "parity.allow[0] (file:/x) expired on 2020-01-01: remove it"
    junit.add_comparison(path, upgrade(ParityResult([], expired=[message])))
    parity = suite(path, "tdi.parity")
    assert parity.get("failures") == "1"
    (case,) = parity.findall("testcase")
    assert case.get("name") != "parity"
    failure = case.find("failure")
    assert failure is not None and failure.get("message") == message


def test_suite_counts_match_its_cases(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    result = ParityResult(
        [Difference("user", "a", None, {}, kind="stale")], expired=["parity.allow[0] expired"]
    )
    junit.add_comparison(path, upgrade(result))
    parity = suite(path, "tdi.parity")
    assert parity.get("tests") == str(len(parity.findall("testcase"))) == "2"
    assert parity.get("failures") == "2"


def test_verify_then_parity_in_one_file(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    junit.add_skipped_verify(path, {"upgrade": "converge failed"})
    junit.add_comparison(path, upgrade(ParityResult([])))
    root = ET.parse(path).getroot()
    assert [s.get("name") for s in root.findall("testsuite")] == ["tdi.verify", "tdi.parity"]


def test_a_suite_per_comparison_named_after_it(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    stale = Difference("file", "/etc/old", None, {}, kind="stale")
    junit.add_comparison(path, upgrade(ParityResult([]), "upgrade/db"))
    junit.add_comparison(path, upgrade(ParityResult([stale]), "upgrade-1/db"))
    junit.add_comparison(path, upgrade(ParityResult([]), "upgrade-1"))
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
    path = tmp_path / "junit.xml"
    junit.add_comparison(path, upgrade(None, "upgrade-1", error="capture failed: exit 1"))
    older = suite(path, "tdi.parity.upgrade-1")
    assert older.get("failures") == "1"
    (case,) = older.findall("testcase")
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == "parity could not run: capture failed: exit 1"


def test_a_comparison_that_did_not_run_adds_nothing(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    junit.add_comparison(path, upgrade(None))
    assert not path.exists()


def test_a_failing_file_difference_carries_its_content_diff(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(PYTEST_JUNIT, encoding="utf-8")
    content = "--- fresh:/etc/a\n+++ upgrade:/etc/a\n@@ -1 +1 @@\n-one\n+two\n"
    d = Difference(
        "file", "/etc/a", {"sha256": "1"}, {"sha256": "2"}, "diverged", content_diff=content
    )
    junit.add_comparison(path, upgrade(ParityResult([d])))
    failure = cases(suite(path, "tdi.parity"))["parity[file:/etc/a]"].find("failure")
    assert failure is not None and failure.text is not None
    assert failure.text.endswith("\n\n" + content)
