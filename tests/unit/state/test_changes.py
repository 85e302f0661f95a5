"""The plan's pure part: systemd's journal read as service actions, state differences read
as changes."""

from __future__ import annotations

from typing import Any

from tdi.state.changes import ServiceChange, changes, handlers, service_changes
from tdi.state.diff import Difference


def job(unit: str, kind: str, result: str | None = "done") -> dict[str, Any]:
    return {"UNIT": unit, "JOB_TYPE": kind, "JOB_RESULT": result, "MESSAGE": "..."}


def test_a_restart_is_one_restarted_and_a_reload_is_reloaded() -> None:
    # As systemd 252 logs `systemctl restart nginx; systemctl reload nginx` (measured): the
    # restart job's stop, then the start that ends it, then the reload.
    journal = [
        job("nginx.service", "stop", None),  # "Stopping": the job has not ended
        job("nginx.service", "restart"),
        job("nginx.service", "start", None),
        job("nginx.service", "start"),
        job("nginx.service", "reload", None),
        job("nginx.service", "reload"),
    ]
    assert service_changes(journal) == (ServiceChange("nginx", ("restarted", "reloaded")),)


def test_a_stop_then_a_start_is_a_restart_and_other_units_are_left_out() -> None:
    journal = [
        job("cron.service", "stop"),
        job("cron.service", "start"),
        job("redis-server.service", "start"),
        job("apt-daily.timer", "start"),
        job("multi-user.target", "start"),
        job("systemd-update-utmp-runlevel.service", "start"),  # the end of the boot
        {"MESSAGE": "Reloading.", "JOB_TYPE": None},  # a daemon-reload names no unit
        job("ssh.service", "stop"),
        job("haproxy.service", "restart", "failed"),
    ]
    assert service_changes(journal) == (
        ServiceChange("cron", ("restarted",)),
        ServiceChange("redis-server", ("started",)),
        ServiceChange("ssh", ("stopped",)),
    )


class Ev:
    def __init__(self, task: str, status: str, handler: bool) -> None:
        self.task, self.status, self.handler = task, status, handler


def test_handlers_are_those_that_ran_each_once() -> None:
    events = [
        Ev("Write config", "changed", False),
        Ev("Restart nginx", "changed", True),
        Ev("Restart nginx", "changed", True),  # two hosts, or a flush and the end
        Ev("Reload haproxy", "skipped", True),
        Ev("Check nginx", "ok", True),
    ]
    assert handlers(events) == ("Restart nginx", "Check nginx")


def test_each_difference_is_a_change_with_its_action_and_summary() -> None:
    found = changes(
        [
            Difference("package", "nginx", {"version": "1.22"}, {"version": "1.24"}),
            Difference("package", "libssl", {"version": "3.1"}, {"version": "3.0"}),
            Difference("package", "jq", None, {"version": "1.6", "status": "ii"}),
            Difference("package", "tree", {"version": "2.1"}, None, tasks=("Remove tree",)),
            Difference("file", "/etc/x", {"sha256": "a"}, {"sha256": "b"}, tasks=("Write x",)),
            Difference("file", "/etc/y", {"mode": "0644"}, {"mode": "0600"}),
            Difference("user", "deploy", None, {"uid": 1001}),
            Difference("service", "nginx", {"enabled": "disabled"}, {"enabled": "enabled"}),
            Difference("package", "ntpsec", {"auto": True}, {"auto": False}),
        ],
        newer={"nginx": True, "libssl": False},
    )
    assert [c.summary for c in found] == [
        "upgraded package nginx 1.22 → 1.24",
        "downgraded package libssl 3.1 → 3.0",
        "installed package jq",
        "removed package tree",
        "changed file /etc/x: content",
        "changed file /etc/y: mode 0644 → 0600",
        "added user deploy",
        "changed service nginx: enabled disabled → enabled",
        "changed package ntpsec: auto True → False",  # its version the same: what changed
    ]
    assert found[3].tasks == ("Remove tree",)
    assert found[3].to_dict()["before"] == {"version": "2.1"}
    assert found[3].to_dict()["after"] is None
