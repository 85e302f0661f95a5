"""The reboot step's judgement: which services a reboot lost, and which task started each."""

from __future__ import annotations

from tdi.phases.reboot import judge, lost_services, starter
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


def test_a_lost_service_fails_the_step_only_where_a_task_started_it() -> None:
    units = ("once", "apache-htcacheclean")
    before: Section = {u: {"enabled": "disabled", "active": "active"} for u in units}
    after: Section = {u: {"enabled": "disabled", "active": "inactive"} for u in units}
    events = [ev("Start once", "service", name="once", state="started")]
    failing, quiet = judge(before, after, events)
    assert failing == (
        "service once was running before the reboot and is not after: task 'Start once' "
        "started it, but nothing enables it at boot"
    )
    # A package's postinst started it (apache2's starts htcacheclean): said, not failed.
    assert quiet == [
        "service apache-htcacheclean was running before the reboot and is not after: no task "
        "started it (a package's own script?), but nothing enables it at boot"
    ]
    failing, quiet = judge(before, after, [])
    assert failing == ""
    assert [q.split()[1] for q in quiet] == ["apache-htcacheclean", "once"]
