"""power: which task took a host down, what the step's error says about it, and which
hosts are looked at again when their playbook ends."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from fakes import NullEngine

from tdi import config
from tdi.hosts import power
from tdi.hosts.run import Node, Run
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


TINI = b"/sbin/docker-init -- sleep infinity\n\n"
SYSTEMD_UP = b"/lib/systemd/systemd --unit=sysinit.target\nrunning\n"


class Hosts(NullEngine):
    """Hosts that answer ``GOING_DOWN`` with ``pid1``: none is shutting down when asked,
    but those in ``exits`` have exited when the daemon is asked (a shutdown that showed
    late)."""

    def __init__(self, pid1: Mapping[str, bytes], exits: Mapping[str, int] | None = None) -> None:
        self.pid1, self.exits, self.asked = pid1, dict(exits or {}), 0

    def exec(self, container: str, argv: Sequence[str]) -> tuple[int, bytes, bytes]:
        assert argv[-1] == power.GOING_DOWN
        return 0, self.pid1[container], b""

    def exited(self, run_id: str) -> dict[str, int]:
        self.asked += 1
        return self.exits


def watch(tmp_path: Path, engine: Hosts) -> power.Watch:
    cfg = config.load(tmp_path)
    host = cfg.topology.names[0]
    nodes = {s: Node(s, s, host, "img", f"c-{s}") for s in ("fresh", "upgrade")}
    run = Run("r1", tmp_path, nodes)
    return power.Watch(engine, cfg, run, list(nodes.values()), tmp_path / "events.jsonl")


def test_a_systemd_host_is_looked_at_once_more_and_a_late_poweroff_is_found(
    tmp_path: Path,
) -> None:
    engine = Hosts({"c-fresh": SYSTEMD_UP, "c-upgrade": TINI}, {"c-fresh": power.POWERED_OFF})
    found = watch(tmp_path, engine)
    found.settle()
    assert engine.asked == 1
    assert found.stops == {"fresh": power.Stop(power.POWERED_OFF)}


def test_hosts_under_another_init_are_not_waited_for(tmp_path: Path) -> None:
    engine = Hosts({"c-fresh": TINI, "c-upgrade": TINI})
    start = time.monotonic()
    watch(tmp_path, engine).settle()
    assert engine.asked == 0 and time.monotonic() - start < power.POLL
