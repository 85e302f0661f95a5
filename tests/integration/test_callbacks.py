"""The user's own callbacks run beside tdi's: ARA, enabled as its documentation says (its
callback directory in the repo's ansible.cfg), records the converges of `tdi test` while
tdi's tdi_events still writes the events its report is made from. The tiny example on
tini hosts, the base image as production (no snapshot to make)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ONCE, ExampleRepo
from tiny import make_tiny


def ara(command: str, *args: str) -> str:
    """ARA's own command line, in this environment (ARA_BASE_DIR says which database)."""
    argv = [str(Path(sys.executable).parent / command), *args]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def test_ara_records_a_tdi_converge_beside_tdis_callback(
    example: ExampleRepo, base_image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tiny(example, "ara")
    found = [sys.executable, "-m", "ara.setup.callback_plugins"]
    plugins = subprocess.run(found, capture_output=True, text=True, check=True).stdout.strip()
    with (example.path / "ansible.cfg").open("a", encoding="utf-8") as cfg:
        cfg.write(f"callback_plugins = {plugins}\n")
    example.commit("record every playbook in ARA")
    # ARA's default: offline, a sqlite database under ARA_BASE_DIR (~/.ara otherwise),
    # made once before the run: tdi converges its sides at once, and two first runs of
    # ARA's callback race to make that directory (one lost, "File exists", seen here).
    monkeypatch.setenv("ARA_BASE_DIR", str(tmp_path / "ara"))
    ara("ara-manage", "migrate")
    outcome = example.tdi("test", "--production-image", base_image, *ONCE)
    assert outcome.code == 0, outcome.stderr
    # tdi's own callback still ran: its events name the task on both sides.
    for step in ("fresh converge", "upgrade converge"):
        log = Path(outcome.report["logs"][step])
        events = log.with_suffix(".events.jsonl").read_text(encoding="utf-8")
        assert '"task": "Write the release file"' in events
    # ARA recorded every playbook run of tdi (each side's converge), each completed, and
    # its task and host. Not each run's own counts: the two sides converge at once into
    # one sqlite file, and a run's counts were off once under CI's load (right in 3 local runs).
    playbooks = json.loads(ara("ara", "playbook", "list", "--long", "-f", "json"))
    site = [p for p in playbooks if p["path"] == str(example.path / "playbooks" / "site.yml")]
    assert len(site) == len(outcome.report["logs"]) == 2, [p["path"] for p in playbooks]
    assert {p["status"] for p in site} == {"completed"}
    with sqlite3.connect(tmp_path / "ara" / "ansible.sqlite") as db:
        tasks = {name for (name,) in db.execute("select name from tasks")}
        hosts = {name for (name,) in db.execute("select name from hosts")}
    assert "Write the release file" in tasks
    assert hosts == {"tdi-host"}  # the example's one host, as tdi's inventories name it
    print(f"ARA: {len(site)} playbook runs on hosts {sorted(hosts)}")
