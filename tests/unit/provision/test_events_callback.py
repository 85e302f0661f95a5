"""The tdi_events callback's arguments per task result: what attribution reads."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from importlib import resources
from types import ModuleType
from typing import Any

import pytest


def load() -> ModuleType:
    path = resources.files("tdi").joinpath(
        "provision", "ansible_plugins", "callback", "tdi_events.py"
    )
    spec = importlib.util.spec_from_file_location("tdi_events", str(path))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CALLBACK = load()


@dataclass
class Task:
    action: str
    args: dict[str, Any] = field(default_factory=dict)


def targets(action: str, own: dict[str, Any], module_args: dict[str, Any]) -> dict[str, Any]:
    payload = {"invocation": {"module_args": module_args}}
    result: dict[str, Any] = CALLBACK._targets(Task(action, own), payload)
    return result


@pytest.mark.parametrize(
    ("action", "args", "paths"),
    [
        ("ansible.builtin.command", {"_raw_params": "touch /srv/website/deployed"}, None),
        (
            "shell",
            {"_raw_params": "echo 1 > '/etc/app.conf'; ls /opt/x/"},
            ["/etc/app.conf", "/opt/x/"],
        ),
        ("command", {"argv": ["install", "-d", "/var/lib/app"]}, ["/var/lib/app"]),
        ("command", {"cmd": "curl http://x/y -o /tmp/y"}, ["/tmp/y"]),
    ],
)
def test_a_command_keeps_the_absolute_paths_of_its_command_line(
    action: str, args: dict[str, Any], paths: list[str] | None
) -> None:
    found = targets(action, {}, {**args, "chdir": "/srv"})
    assert found == {"command_paths": paths or ["/srv/website/deployed"]}
    assert "_raw_params" not in found  # the command line itself is not kept


def test_a_copy_of_a_directory_says_it_wrote_a_tree() -> None:
    tmp = "/root/.ansible/tmp/ansible-tmp-1/.source"
    # The module copied srcdir/f1 into /srv/: a tree. The task's own src is kept.
    tree = targets(
        "copy",
        {"src": "srcdir", "dest": "/srv/"},
        {"dest": "/srv/", "src": tmp, "_original_basename": "srcdir/f1"},
    )
    assert tree == {"dest": "/srv/", "src": "srcdir", "tree": True}
    one = targets(
        "copy",
        {"src": "a.conf", "dest": "/etc/a.conf"},
        {"dest": "/etc/a.conf", "src": tmp, "_original_basename": "a.conf"},
    )
    assert one == {"dest": "/etc/a.conf", "src": "a.conf"}
    assert targets("copy", {"src": "site/", "dest": "/srv"}, {})["tree"] is True


def test_a_file_task_keeps_recurse_and_state_but_not_false() -> None:
    found = targets(
        "file",
        {"path": "/opt/app"},
        {"path": "/opt/app", "recurse": False, "state": "directory", "follow": True},
    )
    assert found == {"path": "/opt/app", "state": "directory"}
    assert targets("file", {}, {"path": "/opt/app", "recurse": True})["recurse"] is True
