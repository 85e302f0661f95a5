"""The inventory tdi writes, the events it reads back, and ansible-playbook's environment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tdi import ansible
from tdi.ansible import CONNECTION, PlaybookResult, TaskEvent

HOSTS = {"fresh": "tdi-abcd-fresh", "upgrade": "tdi-abcd-upgrade"}


def load_inventory(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


def test_inventory_hosts_are_named_after_states(tmp_path: Path) -> None:
    path = ansible.write_inventory(tmp_path / "inventory.yml", HOSTS, ["all"])
    assert path == tmp_path / "inventory.yml"
    inventory = load_inventory(path)
    assert list(inventory) == ["all"]
    hosts = inventory["all"]["hosts"]
    assert set(hosts) == {"fresh", "upgrade"}
    for state, container in HOSTS.items():
        assert hosts[state]["ansible_connection"] == "community.docker.docker"
        assert hosts[state]["ansible_host"] == container
        assert hosts[state]["ansible_python_interpreter"] == "/usr/bin/python3"
    assert "children" not in inventory["all"]  # 'all' is not a child of itself
    assert CONNECTION == "community.docker.docker"


def test_inventory_groups_are_children_holding_every_state(tmp_path: Path) -> None:
    path = ansible.write_inventory(tmp_path / "inventory.yml", HOSTS, ["web", "all", "db"])
    children = load_inventory(path)["all"]["children"]
    assert set(children) == {"web", "db"}
    for group in ("web", "db"):
        assert set(children[group]["hosts"]) == {"fresh", "upgrade"}
    # Connection variables live once, on the hosts under 'all', not per group.
    assert children["web"]["hosts"]["fresh"] in ({}, None)


def event(task: str, status: str, msg: str = "", host: str = "fresh") -> dict[str, Any]:
    return {
        "host": host,
        "task": task,
        "action": "ansible.builtin.command",
        "handler": False,
        "status": status,
        "args": {"name": task},
        "msg": msg,
    }


def write_events(path: Path, events: list[dict[str, Any]]) -> Path:
    lines = [json.dumps(e) for e in events]
    # A blank line (an interrupted write, a trailing newline) is not an event.
    path.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    return path


def test_read_events(tmp_path: Path) -> None:
    path = write_events(tmp_path / "c.events.jsonl", [event("a", "ok"), event("b", "changed")])
    events = ansible.read_events(path)
    assert events == (
        TaskEvent("fresh", "a", "ansible.builtin.command", "ok", {"name": "a"}),
        TaskEvent("fresh", "b", "ansible.builtin.command", "changed", {"name": "b"}),
    )


def test_read_events_missing_file(tmp_path: Path) -> None:
    assert ansible.read_events(tmp_path / "absent.jsonl") == ()


def test_dump_events_parses_back() -> None:
    # The snapshot stores its converge's events in the image this way, for attribution.
    events = (
        TaskEvent("baseline", "Install cron", "ansible.builtin.apt", "changed", {"name": "cron"}),
        TaskEvent("baseline", "restart", "service", "changed", {"name": "x"}, "", handler=True),
    )
    text = ansible.dump_events(events)
    assert text.endswith(b"\n") and text.count(b"\n") == 2
    assert ansible.parse_events(text.decode()) == events
    assert ansible.parse_events("") == ()


def test_changed_tasks_unique_and_in_order(tmp_path: Path) -> None:
    path = write_events(
        tmp_path / "e.jsonl",
        [
            event("install nginx", "changed"),
            event("gather", "ok"),
            event("write config", "changed"),
            event("install nginx", "changed", host="upgrade"),
            event("skipped one", "skipped"),
            event("restart nginx", "changed"),
            event("write config", "changed"),
        ],
    )
    result = PlaybookResult(0, ansible.read_events(path), tmp_path / "c.log")
    assert result.changed_tasks == ["install nginx", "write config", "restart nginx"]
    assert result.failed_tasks == []
    assert result.ok


def test_failed_tasks_and_failure_line(tmp_path: Path) -> None:
    path = write_events(
        tmp_path / "e.jsonl",
        [
            event("install nginx", "changed"),
            event("tolerated", "ignored", msg="ignored error"),
            event("copy site", "failed", msg="Source site/ not found\nTraceback: ...\nmore"),
            event("reach host", "unreachable", msg="no container"),
            event("copy site", "failed", msg="again", host="upgrade"),
        ],
    )
    result = PlaybookResult(2, ansible.read_events(path), tmp_path / "c.log")
    assert result.failed_tasks == ["copy site", "reach host"]
    assert not result.ok
    assert result.failure() == "task 'copy site' failed: Source site/ not found"


def test_failure_without_events_points_at_the_log(tmp_path: Path) -> None:
    result = PlaybookResult(4, (), tmp_path / "c.log")
    assert not result.ok
    line = result.failure()
    assert line == f"ansible-playbook exited 4; see {tmp_path / 'c.log'}"


def test_nonzero_exit_without_failed_events_is_not_ok(tmp_path: Path) -> None:
    events = ansible.read_events(write_events(tmp_path / "e.jsonl", [event("a", "ok")]))
    assert not PlaybookResult(1, events, tmp_path / "c.log").ok


def test_rescued_failure_is_ok(tmp_path: Path) -> None:
    # These are the events tdi_events writes for block: [command: /bin/false] rescue: [debug].
    path = write_events(
        tmp_path / "e.jsonl",
        [event("boom", "failed", msg="non-zero return code"), event("r", "ok")],
    )
    assert PlaybookResult(0, ansible.read_events(path), tmp_path / "c.log").ok


def test_environment_sets_roles_path_without_ansible_cfg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANSIBLE_ROLES_PATH", raising=False)
    env = ansible.environment(tmp_path)
    assert env["ANSIBLE_ROLES_PATH"] == str(tmp_path / "roles")
    assert env["ANSIBLE_CALLBACKS_ENABLED"] == "tdi_events"
    assert Path(env["ANSIBLE_CALLBACK_PLUGINS"], "tdi_events.py").is_file()
    assert "TDI_EVENTS_FILE" not in env


def test_environment_leaves_roles_path_to_ansible_cfg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANSIBLE_ROLES_PATH", raising=False)
    (tmp_path / "ansible.cfg").write_text("[defaults]\nroles_path = elsewhere\n", encoding="utf-8")
    assert "ANSIBLE_ROLES_PATH" not in ansible.environment(tmp_path)


def test_environment_keeps_the_users_roles_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANSIBLE_ROLES_PATH", "/mine")
    assert ansible.environment(tmp_path)["ANSIBLE_ROLES_PATH"] == "/mine"


def test_environment_names_the_events_file(tmp_path: Path) -> None:
    env = ansible.environment(tmp_path, tmp_path / "x.events.jsonl")
    assert env["TDI_EVENTS_FILE"] == str(tmp_path / "x.events.jsonl")
