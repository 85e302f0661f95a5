"""JUnit XML, rendered from the report as every other format is: the tests pytest ran
(suite ``pytest``), the nodes whose tests could not run (``tdi.verify``), a suite per
comparison with a case per parity difference (``tdi.parity``, or ``tdi.parity.SIDE/HOST``),
and one per rolled-back host (``tdi.rollback.KEY``)."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

from tdi import secrets
from tdi.config import Config
from tdi.hosts.run import Run, work_dir
from tdi.report.model import (
    FAILED,
    SKIPPED,
    CaseResult,
    Comparison,
    Downtime,
    Lint,
    ParityResult,
    Report,
    Rollback,
)
from tdi.topology import UPGRADE


def path(cfg: Config, run: Run | None) -> Path:
    """Where the run's JUnit file goes: the configured path, else the run's directory (the
    repo's .tdi, for a run that stopped before it was planned)."""
    return cfg.junit or (run.workdir if run is not None else work_dir(cfg.root)) / "junit.xml"


def write(junit: Path, report: Report) -> None:
    junit.parent.mkdir(parents=True, exist_ok=True)
    text = ET.tostring(render(report), encoding="unicode", xml_declaration=True)
    junit.write_text(secrets.scrub(text), encoding="utf-8")


def render(report: Report) -> ET.Element:
    root = ET.Element("testsuites")
    if report.lint is not None:
        _lint(root, report.lint)
    if report.cases:
        _pytest(root, report.cases)
    unverified = {k: s.error or "not verified in this run" for k, s in report.states.items()}
    unverified = {k: why for k, why in unverified.items() if report.states[k].verify == SKIPPED}
    if unverified:
        _unverified(root, unverified)
    for comparison in report.comparisons:
        _comparison(root, comparison)
    for rolled in report.rollbacks:
        _rollback(root, rolled)
    if report.downtime:
        _downtime(root, report.downtime)
    return root


def _rollback(root: ET.Element, rolled: Rollback) -> None:
    """A suite per rolled-back host, ``tdi.rollback.KEY``: one case per difference (what
    the previous release does not undo), or one case, failed when it could not run."""
    name = f"tdi.rollback.{rolled.key}"
    diffs = rolled.differences
    failing = sum(1 for d in diffs if d.fails) + bool(rolled.error)
    suite = _suite(root, name, max(1, len(diffs)), failing, sum(1 for d in diffs if not d.fails))
    if not diffs:
        case = _case(suite, "rollback")
        if rolled.error:
            ET.SubElement(case, "failure", message=rolled.error)
    for d in diffs:
        case = _case(suite, f"rollback[{d.category}:{d.key}]")
        if d.fails:
            tasks = f"; tasks: {', '.join(d.tasks)}" if d.tasks else ""
            node = ET.SubElement(case, "failure", message=f"{d.kind}: {d.key}{tasks}")
            node.text = d.content_diff or json.dumps(d.upgrade, indent=2, default=str)
        else:
            reason = f"allowed: {d.allowed}" if d.allowed else d.kind
            ET.SubElement(case, "skipped", message=reason)


def _lint(root: ET.Element, found: Lint) -> None:
    """ansible-lint's findings (``tdi.lint``): a case per finding, failed at the profile's
    level ("error"), passed with its text where ansible-lint only warns; one case when
    there is none."""
    failed = sum(f.level == "error" for f in found.findings) if found.failed else 0
    suite = _suite(root, "tdi.lint", max(1, len(found.findings)), failed, 0)
    suite.set("time", f"{found.seconds:.3f}")
    if not found.findings:
        _case(suite, f"lint[{found.profile}]")
    for f in found.findings:
        case = _case(suite, f"lint[{f.rule}:{f.where}]")
        text = f"{f.where}: {f.rule}: {f.message}"
        if f.level == "error" and found.failed:
            ET.SubElement(case, "failure", message=text).text = f"profile {found.profile}"
        else:
            ET.SubElement(case, "system-out").text = f"{f.level}: {text}"


def _downtime(root: ET.Element, found: list[Downtime]) -> None:
    """A case per probe and upgrade side (``tdi.downtime``): failed when a window was
    longer than its max_downtime."""
    failed = sum(d.status == FAILED for d in found)
    suite = _suite(root, "tdi.downtime", len(found), failed, 0)
    for d in found:
        case = _case(suite, f"downtime[{d.side}:{d.probe}]")
        if d.status == FAILED:
            node = ET.SubElement(case, "failure", message=d.failure())
            node.text = json.dumps(d.to_dict(), indent=2)


def _suite(root: ET.Element, name: str, cases: int, failures: int, skipped: int) -> ET.Element:
    return ET.SubElement(
        root,
        "testsuite",
        name=name,
        tests=str(cases),
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
    )


def _case(suite: ET.Element, name: str) -> ET.Element:
    """A case of ``suite``, its class the suite's name."""
    return ET.SubElement(suite, "testcase", classname=suite.get("name", ""), name=name)


def _pytest(root: ET.Element, cases: list[CaseResult]) -> None:
    """The tests as pytest's own JUnit names them: the module's dotted path (and class)
    as classname, the test and its parameters as name."""
    failed = sum(c.outcome == FAILED for c in cases)
    suite = _suite(root, "pytest", len(cases), failed, sum(c.outcome == SKIPPED for c in cases))
    suite.set("time", f"{sum(c.seconds for c in cases):.3f}")
    for case in cases:
        module, _, rest = case.id.partition("::")
        *classes, name = rest.split("::") if rest else [module]
        classname = ".".join([module.removesuffix(".py").replace("/", "."), *classes])
        node = ET.SubElement(
            suite, "testcase", classname=classname, name=name, time=f"{case.seconds:.3f}"
        )
        if case.outcome == FAILED:
            ET.SubElement(node, "failure", message=case.message).text = case.details
        elif case.outcome == SKIPPED:
            ET.SubElement(node, "skipped", message=case.message)


def _unverified(root: ET.Element, reasons: dict[str, str]) -> None:
    """Cases for the nodes that were not verified, so CI always has a case to show."""
    suite = _suite(root, "tdi.verify", len(reasons), 0, len(reasons))
    for key, reason in reasons.items():
        case = _case(suite, f"verify[{key}]")
        ET.SubElement(case, "skipped", message=reason)


def _comparison(root: ET.Element, comparison: Comparison) -> None:
    """A suite per comparison that ran: ``tdi.parity`` for the upgrade of a single host,
    ``tdi.parity.SIDE/HOST`` otherwise; one case per difference, allowed ones skipped."""
    name = "tdi.parity" if comparison.key == UPGRADE else f"tdi.parity.{comparison.key}"
    if comparison.error:
        result = ParityResult([], expired=[f"parity could not run: {comparison.error}"])
    elif comparison.result is None:
        return
    else:
        result = comparison.result
    diffs = result.differences
    failing = sum(1 for d in diffs if d.fails) + len(result.expired)
    total = max(1, len(diffs) + len(result.expired))
    suite = _suite(root, name, total, failing, sum(1 for d in diffs if not d.fails))
    if not diffs and not result.expired:
        _case(suite, "parity")
    for d in diffs:
        case = _case(suite, f"parity[{d.category}:{d.key}]")
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
        case = _case(suite, msg.split(" ", 1)[0])
        ET.SubElement(case, "failure", message=msg)
