"""ansible-lint at preflight, the real one: a violation at the profile stops `tdi test`
before any run is planned (so before any container), exit 1, its findings in every report
and the SARIF file; an ansible-lint that fails is one line, exit 2. No container starts
in these tests: they need no base image."""

from __future__ import annotations

import json
import time
from pathlib import Path

from conftest import ExampleRepo

# A play without a name and a task without one: `name[play]` and `name[missing]`, both in
# the `basic` profile (and so in every profile above it).
UNNAMED = """
- hosts: web
  tasks:
    - ansible.builtin.command: /bin/true
      changed_when: false
"""


def test_a_lint_violation_stops_the_run_before_any_container(tmp_path: Path) -> None:
    example = ExampleRepo(tmp_path / "infra")
    with (example.path / "tdi.yml").open("a", encoding="utf-8") as cfg:
        cfg.write("lint: basic\n")
    with (example.path / "playbooks" / "site.yml").open("a", encoding="utf-8") as playbook:
        playbook.write(UNNAMED)
    example.commit("an unnamed play")
    sarif = tmp_path / "out" / "lint.sarif"
    start = time.monotonic()
    outcome = example.tdi("test", "--sarif", str(sarif))
    seconds = time.monotonic() - start
    assert outcome.code == 1, outcome.stderr
    assert "the run stopped before any container" in outcome.stderr
    # The run is recorded before any container is made: no record, no container.
    assert not list((example.path / ".tdi").glob("runs/*"))
    lint = outcome.report["lint"]
    assert (outcome.report["result"], lint["result"], lint["profile"]) == ("failed",) * 2 + (
        "basic",
    )
    assert outcome.report["states"] == {} and outcome.report["comparisons"] == []
    rules = {(f["rule"], f["file"]) for f in lint["findings"]}
    assert ("name[play]", "playbooks/site.yml") in rules
    assert ("name[missing]", "playbooks/site.yml") in rules
    play = next(f for f in lint["findings"] if f["rule"] == "name[play]")
    assert play["line"] == 11 and play["level"] == "error"
    assert "| `playbooks/site.yml:11` | `name[play]` | error |" in outcome.markdown.read_text()
    junit = outcome.junit.read_text()
    assert 'name="tdi.lint"' in junit and "lint[name[play]:playbooks/site.yml:11]" in junit
    assert "<failure" in junit
    # The SARIF is ansible-lint's own, its paths relative to the repo (as code scanning
    # wants them).
    results = json.loads(sarif.read_text())["runs"][0]["results"]
    located = {
        (r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"])
        for r in results
    }
    assert ("name[play]", "playbooks/site.yml") in located
    # ansible-lint wrote nothing into the repo (offline, its cache is ~/.ansible): what
    # is new there is the reports this test asked for, and tdi's own .tdi.
    new = set(example.git("status", "--porcelain", "--ignored").splitlines())
    reports = {"junit.xml", "report.html", "report.json", "summary.md"}
    assert new == {"!! .tdi/", *(f"?? {name}" for name in reports)}
    print(f"lint stop: {seconds:.1f} s")


def test_an_ansible_lint_that_fails_is_one_line_exit_2(tmp_path: Path) -> None:
    example = ExampleRepo(tmp_path / "infra")
    with (example.path / "tdi.yml").open("a", encoding="utf-8") as cfg:
        cfg.write("lint: min\n")
    # An option ansible-lint does not know: it refuses its own configuration (exit 3).
    (example.path / ".ansible-lint").write_text("no_such_option: 1\n", encoding="utf-8")
    outcome = example.tdi("test")
    assert outcome.code == 2, outcome.stderr
    errors = [ln for ln in outcome.stderr.splitlines() if ln.startswith("tdi: error:")]
    assert len(errors) == 1 and "Traceback" not in outcome.stderr, outcome.stderr
    assert errors[0].startswith("tdi: error: ansible-lint: exited 3: Invalid configuration file")
    assert not list((example.path / ".tdi").glob("runs/*"))
