"""ansible-lint at preflight (``lint: PROFILE`` in tdi.yml), before any container: its
findings go into the report, and its SARIF where ``--sarif`` says.

One run of ansible-lint gives both: ``-f sarif`` prints SARIF, which tdi parses for the
report and writes to the SARIF file, adding only a category per scenario (ansible-lint
ignores ``--sarif-file`` when it prints codeclimate JSON or SARIF: checked with 26.10).
``--offline``: it installs no requirements and refreshes no schema, so it needs no
network and writes nothing into the repo (its cache is Ansible's home, ~/.ansible).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tdi import process, secrets
from tdi.config import Config
from tdi.errors import TdiError, ToolError
from tdi.phases.timeline import phase
from tdi.provision import ansible
from tdi.report.model import Lint, LintFinding, Span

log = logging.getLogger(__name__)

# ansible-lint's exit codes: 0 passed (warnings only, or nothing), 2 violations found at
# the profile; anything else is ansible-lint failing (3: its config, 5: no files...).
PASSED_CODE, VIOLATIONS = 0, 2
# A lint of a large repo takes a minute; one that takes ten is hung.
TIMEOUT = 600.0
HINT = "install it beside tdi: pip install 'tdi[lint]'"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_RAISED = re.compile(r"^[\w.]*(Error|Exception): ")


class LintFailed(TdiError):
    """ansible-lint found violations at the profile: the run stops before any container
    (exit 1, as any failed run), and its report holds the findings."""

    exit_code = 1

    def __init__(self, result: Lint) -> None:
        count = sum(f.level == "error" for f in result.findings) or len(result.findings)
        super().__init__(f"ansible-lint: {count} findings at profile {result.profile}")
        self.result = result


def check(cfg: Config, env: ansible.AnsibleEnv, timeline: list[Span]) -> Lint | None:
    """ansible-lint on the playbook tdi converges (and the roles and files it includes),
    at ``cfg.lint``'s profile; None when ``lint`` is off. Writes ``cfg.sarif``. Raises
    LintFailed on violations, ToolError when ansible-lint is missing or fails."""
    if cfg.lint is None:
        if cfg.sarif is not None:
            log.info("no SARIF written to %s: lint is off in tdi.yml", cfg.sarif)
        return None
    flags = ["--offline", "--nocolor", "-q", "--profile", cfg.lint, "-f", "sarif"]
    argv = [_binary(), *flags, cfg.rel(cfg.playbook)]
    start = time.monotonic()
    with phase("lint", timeline):
        variables = {**env.variables(), "NO_COLOR": "1"}
        proc = process.run(argv, cwd=cfg.root, env=variables, timeout=TIMEOUT)
    if proc.returncode not in (PASSED_CODE, VIOLATIONS):
        raise ToolError(argv, proc.returncode, f"exited {proc.returncode}: {_reason(proc)}")
    sarif = _document(argv, proc)
    found = Lint(cfg.lint, findings(sarif), proc.returncode == VIOLATIONS, time.monotonic() - start)
    if cfg.sarif is not None:
        write_sarif(cfg.sarif, sarif, cfg.scenario)
    if found.failed:
        raise LintFailed(found)
    return found


def write_sarif(path: Path, sarif: Mapping[str, Any], scenario: str) -> None:
    """ansible-lint's SARIF, each run given the scenario's category where it has none:
    code scanning refuses two runs of one tool in one category, and a CI job uploads
    every scenario's file at once."""
    runs = [
        {"automationDetails": {"id": f"tdi-lint/{scenario}/"}, **run}
        for run in sarif.get("runs", [])
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({**sarif, "runs": runs}, indent=2) + "\n"
    path.write_text(secrets.scrub(text), encoding="utf-8")


def _binary() -> str:
    try:
        return ansible.binary("ansible-lint")
    except TdiError:
        raise ToolError(["ansible-lint"], None, f"not found: {HINT}") from None


def _reason(proc: process.Completed) -> str:
    """ansible-lint's own word on why it failed: a traceback's exception line, else its
    last line that is not a warning."""
    lines = [_ANSI.sub("", ln).strip() for ln in proc.stderr.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("WARNING")]
    raised = [ln for ln in lines if _RAISED.match(ln)]
    return (raised or lines or ["no output"])[-1]


def _document(argv: list[str], proc: process.Completed) -> Mapping[str, Any]:
    try:
        sarif = json.loads(proc.stdout)
    except json.JSONDecodeError:
        sarif = None
    if not isinstance(sarif, dict) or not isinstance(sarif.get("runs"), list):
        raise ToolError(argv, proc.returncode, f"printed no SARIF: {_reason(proc)}")
    return sarif


def findings(sarif: Mapping[str, Any]) -> tuple[LintFinding, ...]:
    """Each result of ansible-lint's SARIF: its rule, file, line, level and message (the
    rule's description, and in brackets what the result adds to it: the task, say)."""
    out = []
    for run in sarif.get("runs", []):
        rules = {r["id"]: r for r in run.get("tool", {}).get("driver", {}).get("rules", [])}
        for result in run.get("results", []):
            rule = str(result.get("ruleId", ""))
            described = rules.get(rule, {}).get("shortDescription", {}).get("text", "")
            said = str(result.get("message", {}).get("text", ""))
            if not described:
                described, said = said, ""
            message = described if said in described else f"{described} ({said})"
            # A task's text can hold a value tdi knows as secret (a vaulted one, written out).
            message = secrets.scrub(message)
            file, line = _location(result)
            out.append(LintFinding(rule, file, line, message, str(result.get("level", "error"))))
    return tuple(out)


def _location(result: Mapping[str, Any]) -> tuple[str, int]:
    for place in result.get("locations", []):
        physical = place.get("physicalLocation", {})
        uri = str(physical.get("artifactLocation", {}).get("uri", ""))
        return uri.removeprefix("file://"), int(physical.get("region", {}).get("startLine", 0))
    return "", 0
