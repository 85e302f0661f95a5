"""power: which task took a host down, and what the step's error says about it."""

from __future__ import annotations

from tdi.hosts import power
from tdi.provision.ansible import TaskEvent


def ev(task: str, status: str, host: str = "web1") -> TaskEvent:
    return TaskEvent(host, task, "ansible.builtin.command", status, {})


def test_the_task_before_the_unreachable_one_took_the_host_down() -> None:
    # `command: poweroff` returns; the next task finds the container stopped.
    events = [ev("Install", "ok"), ev("Power off", "changed"), ev("Write motd", "unreachable")]
    assert power.culprit(events, "web1") == "Power off"
    assert power.culprit([ev("Power off", "changed", host="lb")], "web1") == ""


def test_a_poweroff_says_it_cannot_come_back() -> None:
    text = power.Stop(130).explain([ev("Power off", "changed")], "web1")
    assert text == (
        "the host went down after task 'Power off': powered off or halted (exit code 130); "
        "a stopped host cannot be powered on again, only a reboot under init: systemd comes back"
    )


def test_a_reboot_that_did_not_come_back_says_why() -> None:
    stop = power.Stop(129, "web1: systemd is 'degraded' after 90 s", "Reboot")
    assert stop.explain([], "web1") == (
        "the host rebooted after task 'Reboot' and did not come back: "
        "web1: systemd is 'degraded' after 90 s"
    )
