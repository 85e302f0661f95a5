"""Why a converge failed: the messages built from a unit's journal and from name resolution
that a firewall task broke, and what tdi asks the container."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fakes import NullEngine

from tdi.errors import EngineError
from tdi.phases import diagnosis
from tdi.provision.ansible import PlaybookResult, TaskEvent

HOST = "tdi-host"
JOB_FAILED = (
    "Unable to start service haproxy: Job for haproxy.service failed because the control "
    'process exited with error code.\nSee "systemctl status haproxy.service" and '
    '"journalctl -xeu haproxy.service" for details.\n'
)
# journalctl -u UNIT -n 30 -o cat on a Debian 12 host under systemd (cgroup v1), where the
# packages' own postinst started them; cut to the end of a restart loop.
HAPROXY = [
    "Starting haproxy.service - HAProxy Load Balancer...",
    "haproxy.service: Failed to set up mount namespacing: Operation not supported",
    "haproxy.service: Failed at step NAMESPACE spawning /usr/sbin/haproxy: Operation not supported",
    "haproxy.service: Main process exited, code=exited, status=226/NAMESPACE",
    "haproxy.service: Failed with result 'exit-code'.",
    "Failed to start haproxy.service - HAProxy Load Balancer.",
    "haproxy.service: Scheduled restart job, restart counter is at 5.",
    "Stopped haproxy.service - HAProxy Load Balancer.",
    "haproxy.service: Failed to get cgroup ID of cgroup /sys/fs/cgroup/unified/docker/1ab6/"
    "system.slice/haproxy.service, ignoring: Operation not permitted",
    "Starting haproxy.service - HAProxy Load Balancer...",
    "haproxy.service: Failed to set up mount namespacing: Operation not supported",
    "haproxy.service: Failed at step NAMESPACE spawning /usr/sbin/haproxy: Operation not supported",
    "haproxy.service: Main process exited, code=exited, status=226/NAMESPACE",
    "haproxy.service: Failed with result 'exit-code'.",
    "Failed to start haproxy.service - HAProxy Load Balancer.",
    "haproxy.service: Start request repeated too quickly.",
    "haproxy.service: Failed with result 'exit-code'.",
    "Failed to start haproxy.service - HAProxy Load Balancer.",
]
# Asked during its restart loop: systemctl show then says Result=success, ExecMainCode=0.
UNBOUND = [
    "unbound.service: Failed to get cgroup ID of cgroup /sys/fs/cgroup/unified/docker/1ab6/"
    "system.slice/unbound.service, ignoring: Operation not permitted",
    "Starting unbound.service - Unbound DNS server...",
    "[1796525210] unbound[475:0] error: can't bind socket: Cannot assign requested address "
    "for ::1 port 53",
    "[1796525210] unbound[475:0] fatal error: could not open ports",
    "unbound.service: Main process exited, code=exited, status=1/FAILURE",
]


def failed(task: str, msg: str, action: str = "command", **args: Any) -> TaskEvent:
    return TaskEvent(HOST, task, action, "failed", args, msg)


def changed(task: str, action: str = "command", diff: str = "", **args: Any) -> TaskEvent:
    return TaskEvent(HOST, task, action, "changed", args, diff=diff)


def test_the_unit_comes_from_the_message_or_a_service_tasks_name() -> None:
    assert diagnosis.failed_unit(failed("start", JOB_FAILED)) == "haproxy.service"
    assert diagnosis.failed_unit(failed("start", "Unable to start service nginx: x")) == "nginx"
    restart = failed("restart", "boom", "ansible.builtin.systemd_service", name="unbound")
    assert diagnosis.failed_unit(restart) == "unbound"
    assert diagnosis.failed_unit(failed("copy", "boom", "copy", name="unbound")) == ""


def test_a_unit_that_failed_at_a_step_names_it_and_systemds_reason() -> None:
    props = {"Result": "exit-code", "ExecMainCode": "1", "ExecMainStatus": "226"}
    assert diagnosis.unit_text("haproxy.service", props, HAPROXY) == (
        "unit haproxy.service: status=226/NAMESPACE: haproxy.service: Failed at step "
        "NAMESPACE spawning /usr/sbin/haproxy: Operation not supported"
    )


def test_a_daemons_own_first_error_wins_over_systemds_lines() -> None:
    props = {"Result": "success", "ExecMainCode": "0", "ExecMainStatus": "0"}
    assert diagnosis.unit_text("unbound", props, UNBOUND) == (
        "unit unbound: status=1/FAILURE: [1796525210] unbound[475:0] error: can't bind "
        "socket: Cannot assign requested address for ::1 port 53"
    )


def test_the_result_is_a_status_a_signal_or_the_units_result() -> None:
    assert diagnosis.unit_result({"ExecMainCode": "1", "ExecMainStatus": "217"}, []) == (
        "status=217/USER"
    )
    assert diagnosis.unit_result({"ExecMainCode": "2", "ExecMainStatus": "9"}, []) == (
        "signal=9/KILL"
    )
    timeout = {"Result": "timeout", "ExecMainCode": "0", "ExecMainStatus": "0"}
    assert diagnosis.unit_result(timeout, []) == "timeout"
    assert diagnosis.unit_result({"Result": "success"}, []) == ""


def test_a_unit_with_nothing_to_say_adds_nothing() -> None:
    assert diagnosis.unit_text("x.service", {"Result": "success"}, []) == ""


def test_systemds_boilerplate_is_never_the_reason() -> None:
    journal = ["Starting x.service - X...", "x.service: Failed with result 'timeout'."]
    assert diagnosis.unit_text("x.service", {"Result": "timeout"}, journal) == (
        "unit x.service: timeout"
    )


def test_the_journal_is_read_from_the_last_start() -> None:
    assert diagnosis.last_start(HAPROXY) == HAPROXY[9:]
    assert diagnosis.last_start(["a", "", "b"]) == ["a", "b"]


def test_without_systemd_the_init_scripts_last_line_is_said() -> None:
    msg = "Unable to start service nginx: Starting nginx:\nnginx: [emerg] bind() failed\n"
    assert diagnosis.sysv_text("nginx", msg) == (
        "unit nginx: no systemd in the container, so no journal; the init script said: "
        "nginx: [emerg] bind() failed"
    )
    assert diagnosis.sysv_text("nginx", "one line") == (
        "unit nginx: no systemd in the container, so no journal"
    )


def test_systemds_pointer_goes_once_tdi_has_looked() -> None:
    assert diagnosis.without_pointer(JOB_FAILED.replace("\n", " ")) == (
        "Unable to start service haproxy: Job for haproxy.service failed because the control "
        "process exited with error code."
    )


def test_the_suspect_is_the_last_changed_firewall_task_before_the_failure() -> None:
    apt = failed("Install tree", "Temporary failure resolving 'tdi-apt-cache'", "apt")
    events = [
        changed("Install iptables", "apt", name="iptables"),  # a package name, not a rule
        changed("Flush nat table", diff="ran: iptables -t nat -F"),
        changed("Allow ssh", "community.general.ufw"),
        TaskEvent(HOST, "Save rules", "command", "ok", {}),  # did not change anything
        changed("Write motd", "copy", dest="/etc/motd"),
        apt,
        changed("Later rule", "ansible.builtin.iptables"),
    ]
    suspect = diagnosis.firewall_suspect(events, apt)
    assert suspect is not None and suspect.task == "Allow ssh"
    assert diagnosis.firewall_suspect([*events[:2], apt], apt) == events[1]
    # A package task that names the firewall counts, when nothing after it touched rules
    # (installing iptables-persistent loads saved rules).
    assert diagnosis.firewall_suspect([events[0], apt], apt) == events[0]
    assert diagnosis.firewall_suspect([apt], apt) is None


def test_firewall_words_are_whole_commands() -> None:
    assert diagnosis.touches_firewall(changed("x", diff="ran: nft flush ruleset"))
    assert diagnosis.touches_firewall(changed("x", "ansible.posix.firewalld"))
    assert diagnosis.touches_firewall(changed("x", "shell", diff="ran: iptables-restore < r"))
    assert not diagnosis.touches_firewall(changed("x", diff="ran: echo nftables-like"))
    assert not diagnosis.touches_firewall(changed("x", "copy", dest="/etc/draft"))


def test_the_resolution_line_names_the_task_or_says_none_changed() -> None:
    assert diagnosis.resolution_text(changed("Flush nat table")) == (
        "name resolution in the container broke after task 'Flush nat table' (firewall): "
        "Docker's DNS at 127.0.0.11 needs the nat rules in the container's network "
        'namespace; see README "Firewall roles"'
    )
    assert "no firewall task changed anything" in diagnosis.resolution_text(None)


class Container(NullEngine):
    """A container that answers tdi's questions as ``answers`` (argv[0] -> reply) say."""

    def __init__(self, answers: dict[str, tuple[int, str]]) -> None:
        self.answers = answers
        self.asked: list[list[str]] = []

    def exec(self, container: str, argv: Sequence[str]) -> tuple[int, bytes, bytes]:
        assert container == "c1"
        self.asked.append(list(argv))
        code, out = self.answers[argv[0]]
        return code, out.encode(), b""


def run(*events: TaskEvent) -> PlaybookResult:
    return PlaybookResult(2, events, Path("c.log"), (HOST,))


def test_explain_asks_systemd_then_the_journal_of_the_unit() -> None:
    engine = Container(
        {
            "systemctl": (0, "Result=exit-code\nExecMainCode=1\nExecMainStatus=226\n"),
            "journalctl": (0, "\n".join([*HAPROXY, "token: abc123"]) + "\n"),
        }
    )
    found = diagnosis.explain(engine, "c1", HOST, run(failed("Start haproxy", JOB_FAILED)))
    assert found.text.startswith("unit haproxy.service: status=226/NAMESPACE: ")
    assert found.journal == (*HAPROXY[9:], "token: ****")
    assert engine.asked == [
        [
            "systemctl",
            "show",
            "-p",
            "Result,ExecMainStatus,ExecMainCode,LoadState",
            "haproxy.service",
        ],
        ["journalctl", "-u", "haproxy.service", "-n", "30", "-o", "cat", "--no-pager"],
    ]


def test_a_unit_systemd_does_not_know_is_not_waited_for() -> None:
    # `systemctl show` answers for any name; a unit that does not exist never logs a line.
    engine = Container({"systemctl": (0, "Result=success\nLoadState=not-found\n")})
    unknown = failed("Stop ntp", "Could not find the requested service ntp", "service", name="ntp")
    start = time.monotonic()
    assert diagnosis.explain(engine, "c1", HOST, run(unknown)) == diagnosis.Explanation()
    assert time.monotonic() - start < 1
    assert [a[0] for a in engine.asked] == ["systemctl"]


def test_explain_without_systemd_asks_no_journal() -> None:
    engine = Container({"systemctl": (1, "System has not been booted with systemd")})
    found = diagnosis.explain(
        engine, "c1", HOST, run(failed("Start nginx", "Unable to start service nginx: no"))
    )
    assert found == diagnosis.Explanation("unit nginx: no systemd in the container, so no journal")
    assert [a[0] for a in engine.asked] == ["systemctl"]
    # A service task that failed for another reason: nothing to add.
    unknown = failed("Enable x", "Could not find the requested service x", "service", name="x")
    assert diagnosis.explain(engine, "c1", HOST, run(unknown)) == diagnosis.Explanation()


def test_explain_checks_dns_by_the_hosts_own_name_and_names_the_firewall_task() -> None:
    engine = Container({"getent": (2, "")})
    flush = changed("Flush nat table", diff="ran: iptables -t nat -F")
    apt = failed("Install tree", "E: Failed to fetch ... Temporary failure resolving 'x'")
    found = diagnosis.explain(engine, "c1", "web1", run(apt), before=[flush])
    assert found.text == diagnosis.resolution_text(flush)
    assert engine.asked == [["getent", "-s", "dns", "hosts", "web1"]]


def test_explain_adds_nothing_when_dns_works_or_the_failure_is_another() -> None:
    resolving = run(failed("apt", "Temporary failure resolving 'deb.debian.org'"))
    assert diagnosis.explain(
        Container({"getent": (0, "10.0.0.2 web1")}), "c1", "web1", resolving
    ) == (diagnosis.Explanation())
    # Any other failure: no question at all (NullEngine would fail the test).
    assert diagnosis.explain(NullEngine(), "c1", "web1", run(failed("copy", "no src"))) == (
        diagnosis.Explanation()
    )


def test_explain_of_a_container_that_is_gone_adds_nothing() -> None:
    class Gone(NullEngine):
        def exec(self, container: str, argv: Sequence[str]) -> tuple[int, bytes, bytes]:
            raise EngineError("no such container")

    assert diagnosis.explain(Gone(), "c1", HOST, run(failed("s", JOB_FAILED))) == (
        diagnosis.Explanation()
    )


def test_a_service_named_firewall_is_a_firewall_task() -> None:
    # geerlingguy.firewall flushes the nat table from its own service's script.
    flush = changed("Ensure the firewall is started", "service", name="firewall")
    assert diagnosis.touches_firewall(flush)
    earlier = changed("Flush iptables the first time", diff="ran: iptables -F")
    apt = failed("Install tree", "Temporary failure resolving 'tdi-apt-cache'")
    assert diagnosis.firewall_suspect([earlier, flush, apt], apt) == flush


def test_iptables_without_net_admin_says_which_capability() -> None:
    refused = failed("Flush iptables", "non-zero return code", cmd="iptables -F")
    refused = TaskEvent(
        HOST,
        refused.task,
        "command",
        "failed",
        {},
        refused.msg,
        output="iptables v1.8.9 (nf_tables): Could not fetch rule set generation id: "
        "Permission denied (you must be root)",
    )
    found = diagnosis.explain(NullEngine(), "c1", "web1", run(refused))
    assert found.text == diagnosis.NET_ADMIN_HINT
