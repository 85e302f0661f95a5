"""`tdi test --all`: every scenario, each by its own tdi, two at once; an interrupt."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from conftest import ONCE, ExampleRepo
from test_lifecycle import HOLD, processes_with, run_containers, until
from tiny import BREAK, make_tiny

# Three scenarios of the tiny example: two that pass, one whose converge fails.
SCENARIOS = """init: tini
package_cache: false
scenarios:
  default: {}
  again: {}
  broken: {playbook: playbooks/broken.yml}
"""


# A secret-named variable of the broken scenario's play, printed by a task before it fails:
# masked in what its tdi writes and prints, so in all that --all writes and prints too.
TOKEN = "planted-7c41e9d2b8"
PLANTED_VARS = f"  vars:\n    api_token: {TOKEN}\n  tasks:"
SAY_TOKEN = """
    - name: Say the token
      ansible.builtin.debug:
        msg: "the token is {{ api_token }}"
"""


def three_scenarios(example: ExampleRepo) -> None:
    make_tiny(example, "all")
    cfg = example.path / "tdi.yml"
    text = cfg.read_text(encoding="utf-8")
    cfg.write_text(text[: text.index("scenarios:")] + SCENARIOS, encoding="utf-8")
    site = (example.path / "playbooks" / "site.yml").read_text(encoding="utf-8")
    broken = site.replace("  tasks:", PLANTED_VARS) + SAY_TOKEN + BREAK
    (example.path / "playbooks" / "broken.yml").write_text(broken, encoding="utf-8")
    example.commit("three scenarios, one broken")


def tdi_all(example: ExampleRepo, base_image: str, *more: str) -> list[str]:
    tdi = str(Path(sys.executable).parent / "tdi")
    return [tdi, "test", "--all", "--production-image", base_image, *ONCE, *more]


def test_all_runs_every_scenario_two_at_once(example: ExampleRepo, base_image: str) -> None:
    three_scenarios(example)
    out = example.path / "out"
    argv = tdi_all(example, base_image, "-j", "2", "--report", str(out / "index.json"))
    proc = subprocess.run(argv, cwd=example.path, capture_output=True, text=True, check=False)
    sys.stderr.write(proc.stderr)
    assert proc.returncode == 1, proc.stderr  # one scenario failed

    found = json.loads((out / "index.json").read_text())
    results = {name: s["result"] for name, s in found["scenarios"].items()}
    assert results == {"default": "passed", "again": "passed", "broken": "failed"}
    assert (found["result"], found["exit_code"], found["jobs"]) == ("failed", 1, 2)
    for name, scenario in found["scenarios"].items():
        reports = scenario["reports"]
        assert set(reports) == {"json", "junit", "markdown", "html", "log"}, name
        report = json.loads((out / reports["json"]).read_text())
        assert report["result"] == results[name]
        assert "--all" not in (out / reports["log"]).read_text()
    broken = json.loads((out / "broken" / "report.json").read_text())
    assert "Break the upgrade" in broken["states"]["fresh"]["error"]

    # Off a terminal, each scenario's lines carry its name; then one summary.
    assert "[broken] " in proc.stderr and "[again] " in proc.stderr
    assert "tdi test --all: failed, 1 of 3 scenarios not passed" in proc.stderr.splitlines()[-1]
    markdown = (out / "index.md").read_text()
    assert "| broken | failed |" in markdown and "`default/summary.md`" in markdown
    page = (out / "index.html").read_text()
    assert "href='again/report.html'" in page
    suites = [s.get("name") for s in ET.parse(out / "junit.xml").getroot()]
    assert {n.partition(":")[0] for n in suites if n} == {"default", "again", "broken"}

    # The token was said, masked; nothing --all or its scenarios wrote or printed holds it.
    said = (example.path / broken["logs"]["fresh converge"]).read_text()
    assert "the token is ****" in said
    assert TOKEN not in proc.stdout + proc.stderr
    for top in (out, example.path / ".tdi"):
        for path in (p for p in top.rglob("*") if p.is_file()):
            assert TOKEN.encode() not in path.read_bytes(), path


def test_an_interrupt_during_all_leaves_nothing(
    example: ExampleRepo, base_image: str, docker_client: Any, tmp_path: Path
) -> None:
    three_scenarios(example)
    example.edit("playbooks/site.yml", "  tasks:", HOLD)  # every converge holds there
    example.commit("hold")
    env = {**os.environ, "TDI_TEST_HOLD": "1"}
    with (tmp_path / "tdi.log").open("w+") as log:
        proc = subprocess.Popen(
            tdi_all(example, base_image, "-j", "2"),
            cwd=example.path,
            env=env,
            stderr=log,
            text=True,
        )
        runs = re.compile(rf"{re.escape(str(example.path))}/\.tdi/runs/(\w+)/inventory\.(\w+)\.yml")

        def converging() -> int:  # the sides whose ansible-playbook runs
            found = processes_with("ansible-playbook").values()
            return len({m.groups() for m in map(runs.search, found) if m})

        until(lambda: converging() >= 4, "two scenarios converge, on both sides", proc)
        time.sleep(1)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 130
        log.seek(0)
        stderr = log.read()
    sys.stderr.write(stderr)
    assert stderr.splitlines()[-1] == "tdi: interrupted"
    assert [c.name for c in run_containers(docker_client, example)] == []
    found = json.loads((example.path / ".tdi" / "all" / "index.json").read_text())
    results = sorted(s["result"] for s in found["scenarios"].values())
    assert results == ["interrupted", "interrupted", "not run"]
    assert (found["result"], found["exit_code"]) == ("interrupted", 130)
