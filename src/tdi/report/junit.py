"""JUnit XML: verify's file from pytest, plus one test case per parity difference."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from xml.etree import ElementTree as ET

from tdi import secrets
from tdi.config import Config
from tdi.hosts.run import Run
from tdi.report.model import Comparison, ParityResult
from tdi.topology import UPGRADE


def _load(junit: Path) -> ET.Element:
    if junit.exists():
        root = ET.parse(junit).getroot()
        if root.tag == "testsuites":
            return root
        wrapper = ET.Element("testsuites")
        wrapper.append(root)
        return wrapper
    return ET.Element("testsuites")


def _save(junit: Path, root: ET.Element) -> None:
    junit.parent.mkdir(parents=True, exist_ok=True)
    text = ET.tostring(root, encoding="unicode", xml_declaration=True)
    junit.write_text(secrets.scrub(text), encoding="utf-8")


def add_skipped_verify(junit: Path, reasons: Mapping[str, str]) -> None:
    """Cases for states that were not verified, so CI always has a file to show."""
    root = _load(junit)
    suite = ET.SubElement(
        root,
        "testsuite",
        name="tdi.verify",
        tests=str(len(reasons)),
        skipped=str(len(reasons)),
        failures="0",
        errors="0",
    )
    for state, reason in reasons.items():
        case = ET.SubElement(suite, "testcase", classname="tdi.verify", name=f"verify[{state}]")
        ET.SubElement(case, "skipped", message=reason)
    _save(junit, root)


def add_comparison(junit: Path, comparison: Comparison) -> None:
    """A suite per comparison that ran: ``tdi.parity`` for the upgrade of a single host,
    ``tdi.parity.SIDE/HOST`` otherwise."""
    name = "tdi.parity" if comparison.key == UPGRADE else f"tdi.parity.{comparison.key}"
    if comparison.error:
        result = ParityResult([], expired=[f"parity could not run: {comparison.error}"])
    elif comparison.result is None:
        return
    else:
        result = comparison.result
    _add_parity(junit, result, name)


def _add_parity(junit: Path, result: ParityResult, name: str) -> None:
    """One case per difference, named ``parity[category:key]``; allowed ones are skipped."""
    root = _load(junit)
    diffs = result.differences
    failing = sum(1 for d in diffs if d.fails) + len(result.expired)
    suite = ET.SubElement(
        root,
        "testsuite",
        name=name,
        tests=str(max(1, len(diffs) + len(result.expired))),
        failures=str(failing),
        errors="0",
        skipped=str(sum(1 for d in diffs if not d.fails)),
    )
    if not diffs and not result.expired:
        ET.SubElement(suite, "testcase", classname=name, name="parity")
    for d in diffs:
        case = ET.SubElement(
            suite, "testcase", classname=name, name=f"parity[{d.category}:{d.key}]"
        )
        if d.fails:
            tasks = f"; tasks: {', '.join(d.tasks)}" if d.tasks else ""
            node = ET.SubElement(case, "failure", message=f"{d.kind}: {d.key}{tasks}")
            node.text = json.dumps(d.to_dict(), indent=2, default=str)
            if d.content_diff:
                node.text += "\n\n" + d.content_diff
        else:
            reason = f"allowed: {d.allowed}" if d.allowed else d.kind
            ET.SubElement(case, "skipped", message=reason)
    for msg in result.expired:
        case = ET.SubElement(suite, "testcase", classname=name, name=msg.split(" ", 1)[0])
        ET.SubElement(case, "failure", message=msg)
    _save(junit, root)


def path(cfg: Config, run: Run) -> Path:
    """Where the run's JUnit file goes: the configured path, else the run's directory."""
    return cfg.junit or run.workdir / "junit.xml"
