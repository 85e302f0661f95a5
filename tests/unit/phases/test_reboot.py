"""The reboot step's judgement: which services a reboot lost, and which task started each."""

from __future__ import annotations

from tdi.phases.reboot import lost_services, starter
from tdi.provision.ansible import TaskEvent
from tdi.state.capture import Section


def test_a_service_running_before_and_not_after_is_lost_under_either_init() -> None:
    before: Section = {
        "nginx": {"enabled": "enabled", "active": "active"},
        "once": {"enabled": "", "active": "active"},
        "idle": {"enabled": "disabled", "active": "inactive"},
        "cron": {"enabled": True, "running": True},  # an init script, under tini
        "atd": {"enabled": False, "running": True},
    }
    after: Section = {
        "nginx": {"enabled": "enabled", "active": "active"},
        "once": {"enabled": "", "active": "inactive"},
        "idle": {"enabled": "disabled", "active": "inactive"},
        "cron": {"enabled": True, "running": True},
    }
    assert lost_services(before, after) == ["atd", "once"]


def ev(task: str, action: str, status: str = "changed", **args: str) -> TaskEvent:
    return TaskEvent("web1", task, action, status, args)


def test_the_starter_is_the_last_service_task_that_started_the_unit() -> None:
    events = [
        ev("Install once", "ansible.builtin.apt", name="once"),
        ev("Start once", "ansible.builtin.systemd_service", name="once.service", state="started"),
        ev("Stop other", "ansible.builtin.service", name="other", state="stopped"),
        ev("Restart once", "service", "ok", name="once", state="restarted"),
        ev("Skipped", "service", "skipped", name="once", state="started"),
    ]
    assert starter("once", events) == "Restart once"
    assert starter("other", events) == ""
