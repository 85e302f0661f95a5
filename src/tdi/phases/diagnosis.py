"""Why a converge failed, where Ansible's message only shows the symptom: a service that
did not start (its unit's result and journal, asked of the container), or name resolution
that a firewall task broke (Docker's DNS needs nat rules inside the container).

The message building is pure; ``explain`` is the one function that asks the container.
"""

from __future__ import annotations

import logging
import re
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tdi.engine.protocol import Engine
from tdi.errors import TdiError
from tdi.provision.ansible import PlaybookResult, TaskEvent, last_line
from tdi.state.content import mask

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Explanation:
    """What tdi found out: ``text`` goes on the error line, ``journal`` into the report."""

    text: str = ""
    journal: tuple[str, ...] = ()


# --- a service that did not start -----------------------------------------------------

_SERVICE_ACTIONS = ("service", "systemd", "systemd_service", "sysvinit")
_UNIT_IN_MESSAGE = (
    re.compile(r"Job for (\S+?) failed"),
    re.compile(r"Unable to (?:start|restart|reload) service (\S+?):"),
)
# systemd's own exit codes (systemd.exec(5), "Process exit codes"), named as systemd names them.
_EXIT_NAMES = {
    1: "FAILURE", 2: "INVALIDARGUMENT", 3: "NOTIMPLEMENTED", 4: "NOPERMISSION",
    5: "NOTINSTALLED", 6: "NOTCONFIGURED", 7: "NOTRUNNING", 200: "CHDIR", 201: "NICE",
    202: "FDS", 203: "EXEC", 204: "MEMORY", 205: "LIMITS", 206: "OOM_ADJUST",
    207: "SIGNAL_MASK", 208: "STDIN", 209: "STDOUT", 210: "CHROOT", 211: "IOPRIO",
    212: "TIMERSLACK", 213: "SECUREBITS", 214: "SETSCHEDULER", 215: "CPUAFFINITY",
    216: "GROUP", 217: "USER", 218: "CAPABILITIES", 219: "CGROUP", 220: "SETSID",
    221: "CONFIRM", 222: "STDERR", 224: "PAM", 225: "NETWORK", 226: "NAMESPACE",
    227: "NO_NEW_PRIVILEGES", 228: "SECCOMP", 229: "SELINUX_CONTEXT", 230: "PERSONALITY",
    231: "APPARMOR_PROFILE", 232: "ADDRESS_FAMILIES", 233: "RUNTIME_DIRECTORY",
    235: "CHOWN", 236: "SMACK_PROCESS_LABEL", 237: "KEYRING", 238: "STATE_DIRECTORY",
    239: "CACHE_DIRECTORY", 240: "LOGS_DIRECTORY", 241: "CONFIGURATION_DIRECTORY",
    242: "NUMA_POLICY", 243: "CREDENTIALS",
}  # fmt: skip
# systemd's lines about a unit's life, which say that it failed but never why, and what
# it says it ignores (under cgroup v1: "Failed to get cgroup ID ..., ignoring: ...").
_BOILERPLATE = re.compile(
    r"Failed with result|Failed to start|Main process exited|Control process exited|"
    r"Scheduled restart job|Start request repeated too quickly|Consumed .* CPU time|"
    r"Deactivated successfully|, ignoring: |^(Starting|Started|Stopping|Stopped) "
)
_STARTING = re.compile(r"^Starting ")
_ERRORISH = re.compile(r"error|fail|cannot|can't|could not|unable|denied|not found|invalid", re.I)
_STATUS = re.compile(r"status=(\d+)/(\w+)")
JOURNAL_LINES = 30  # asked of journalctl; the report keeps the last start's lines
# Seconds journald may take to log a daemon's last words (5 s was short once in CI).
JOURNAL_WAIT = 10.0
JOURNAL_POLL = 0.5


def failed_unit(event: TaskEvent) -> str:
    """The unit a failed task names: a service/systemd task's ``name``, or the unit in
    the message (`Job for X failed`, `Unable to start service X:`); "" when none."""
    for pattern in _UNIT_IN_MESSAGE:
        if found := pattern.search(event.msg):
            return found[1]
    if event.action.rsplit(".", 1)[-1] in _SERVICE_ACTIONS:
        return str(event.args.get("name") or "")
    return ""


def unit_result(props: Mapping[str, str], journal: Sequence[str]) -> str:
    """How the unit's process ended, as systemd says it: `status=226/NAMESPACE`,
    `signal=9/KILL`, else the unit's Result (`exit-code`, `timeout`)."""
    code, status = props.get("ExecMainCode", "0"), int(props.get("ExecMainStatus") or 0)
    if code == "1" and status:  # CLD_EXITED
        return f"status={status}/{_EXIT_NAMES.get(status, '')}".rstrip("/")
    if code in ("2", "3") and status:  # killed, dumped
        try:
            return f"signal={status}/{signal.Signals(status).name.removeprefix('SIG')}"
        except ValueError:
            return f"signal={status}"
    # The main process never ran (ExecStartPre failed, say): systemd's journal has it.
    found = next((m for ln in reversed(last_start(journal)) if (m := _STATUS.search(ln))), None)
    if found is not None:
        return found[0]
    return props.get("Result", "") if props.get("Result") != "success" else ""


def last_start(journal: Sequence[str]) -> list[str]:
    """The journal's lines from the unit's last start on (all of them without one)."""
    starts = [i for i, ln in enumerate(journal) if _STARTING.match(ln)]
    return [ln for ln in journal[starts[-1] if starts else 0 :] if ln.strip()]


def daemon_lines(journal: Sequence[str], unit: str) -> list[str]:
    """The lines of the last start that the daemon wrote, not systemd about it."""
    lines = [ln.strip() for ln in last_start(journal) if not _BOILERPLATE.search(ln)]
    own = re.compile(rf"^{re.escape(unit.removesuffix('.service'))}(\.service)?: ")
    return [ln for ln in lines if not own.match(ln)]


def journal_reason(journal: Sequence[str], unit: str) -> str:
    """The line of the last start that says why: the daemon's first error-like line (its
    first, since what follows is often `fatal error: could not open ports`), else its
    last line, else systemd's own (`Failed at step NAMESPACE spawning ...`)."""
    lines = [ln.strip() for ln in last_start(journal) if not _BOILERPLATE.search(ln)]
    daemon = daemon_lines(journal, unit)
    erring = [ln for ln in daemon if _ERRORISH.search(ln)]
    for candidates, pick in ((erring, 0), (daemon, -1), (lines, -1)):
        if candidates:
            return candidates[pick]
    return ""  # only systemd's boilerplate: the result says as much


def _journal(engine: Engine, container: str, unit: str) -> list[str]:
    argv = ["journalctl", "-u", unit, "-n", str(JOURNAL_LINES), "-o", "cat", "--no-pager"]
    # Masked as diffs are: a daemon may log the line of its configuration it refused.
    return mask(engine.exec(container, argv)[1].decode(errors="replace"))[0].splitlines()


def unit_text(unit: str, props: Mapping[str, str], journal: Sequence[str]) -> str:
    """`unit haproxy.service: status=226/NAMESPACE: Failed at step NAMESPACE ...`."""
    found = [unit_result(props, journal), journal_reason(journal, unit)]
    return ": ".join([f"unit {unit}", *(f for f in found if f)]) if any(found) else ""


def sysv_text(unit: str, msg: str) -> str:
    """Under a minimal init there is no journal: the init script's last line, which
    Ansible's message holds after its first line."""
    said = last_line(msg) if len(msg.strip().splitlines()) > 1 else ""
    text = f"unit {unit}: no systemd in the container, so no journal"
    return f"{text}; the init script said: {said}" if said else text


def parse_show(text: str) -> dict[str, str]:
    """``systemctl show -p ...`` output as a dict."""
    return dict(ln.split("=", 1) for ln in text.splitlines() if "=" in ln)


def without_pointer(msg: str) -> str:
    """Ansible's message without systemd's `See "systemctl status ..." for details.`:
    tdi has looked."""
    return re.sub(r'\s*See "systemctl status.*$', "", msg, flags=re.S)


# --- name resolution that a firewall task broke ----------------------------------------

# What a lookup that failed looks like. The apt module's cache update says no more than
# "Failed to update apt cache after 5 retries: " (python-apt drops apt's reason), so that
# counts as a symptom too: the check that follows decides.
SYMPTOMS = re.compile(
    r"Temporary failure resolving|Could not resolve host|Name or service not known|"
    r"Temporary failure in name resolution|Failed to update apt cache|Failed to fetch"
)
_FIREWALL = re.compile(
    r"(?<![\w-])(iptables|ip6tables|iptables-restore|ip6tables-restore|iptables-legacy|"
    r"iptables-nft|nft|nftables|ufw|firewalld|firewall-cmd|netfilter-persistent|firewall)"
    r"(?![\w-])"
)
# What iptables says in a container without NET_ADMIN (Docker's default capabilities).
_NO_NET_ADMIN = re.compile(
    r"Permission denied \(you must be root\)|can't initialize ip6?tables table|"
    r"Could not fetch rule set generation id: Operation not permitted"
)
NET_ADMIN_HINT = (
    "the firewall needs the NET_ADMIN capability in a container: add "
    "`capabilities: [NET_ADMIN]` in tdi.yml"
)
README_SECTION = 'see README "Firewall roles"'


def touches_firewall(event: TaskEvent) -> bool:
    """Whether a task's module, arguments or command are the firewall's."""
    words = [event.action, *map(str, event.args.values()), event.diff]
    return any(_FIREWALL.search(w) for w in words)


def firewall_suspect(events: Sequence[TaskEvent], failed: TaskEvent) -> TaskEvent | None:
    """The last changed task before ``failed`` that touched the firewall."""
    before = list(events[: events.index(failed)]) if failed in events else list(events)
    return next(
        (e for e in reversed(before) if e.status == "changed" and touches_firewall(e)), None
    )


def resolution_text(suspect: TaskEvent | None) -> str:
    why = "Docker's DNS at 127.0.0.11 needs the nat rules in the container's network namespace"
    if suspect is None:
        return (
            f"name resolution in the container does not work (Docker's DNS at 127.0.0.11 does "
            f"not answer), and no firewall task changed anything before; {README_SECTION}"
        )
    return (
        f"name resolution in the container broke after task '{suspect.task}' (firewall): "
        f"{why}; {README_SECTION}"
    )


# --- asking the container ---------------------------------------------------------------


def explain(
    engine: Engine,
    container: str,
    hostname: str,
    result: PlaybookResult,
    before: Sequence[TaskEvent] = (),
) -> Explanation:
    """What the container says about ``result``'s failure (one host's run); ``before``:
    this host's events of earlier runs. Nothing when it says nothing, or cannot be asked."""
    failed = result.failed_event
    if failed is None or failed.status != "failed":
        return Explanation()
    try:
        if _NO_NET_ADMIN.search(failed.msg) or _NO_NET_ADMIN.search(failed.output):
            return Explanation(NET_ADMIN_HINT)
        if unit := failed_unit(failed):
            return _unit(engine, container, unit, failed)
        if SYMPTOMS.search(failed.msg) or SYMPTOMS.search(failed.output):
            return _resolution(engine, container, hostname, [*before, *result.events], failed)
    except TdiError as exc:  # a container gone: check_hosts names it next
        log.debug("could not ask %s why: %s", container, exc)
    return Explanation()


def _unit(engine: Engine, container: str, unit: str, failed: TaskEvent) -> Explanation:
    props = ("-p", "Result,ExecMainStatus,ExecMainCode,LoadState", unit)
    code, out, _ = engine.exec(container, ["systemctl", "show", *props])
    if code != 0:  # no systemd as PID 1: a sysv script, whose output is Ansible's message
        started = _UNIT_IN_MESSAGE[1].search(failed.msg)
        return Explanation(sysv_text(unit, failed.msg)) if started else Explanation()
    shown = parse_show(out.decode(errors="replace"))
    if shown.get("LoadState") == "not-found":  # no such unit: Ansible's message says so
        return Explanation()
    journal = _journal(engine, container, unit)
    # journald reads a daemon's output from a stream, and may log systemd's "Main process
    # exited" first: a moment later it has the daemon's (seconds, under CI's load).
    deadline = time.monotonic() + JOURNAL_WAIT
    while not daemon_lines(journal, unit) and time.monotonic() < deadline:
        time.sleep(JOURNAL_POLL)
        journal = _journal(engine, container, unit)
    text = unit_text(unit, shown, journal)
    return Explanation(text, tuple(last_start(journal))) if text else Explanation()


def _resolution(
    engine: Engine, container: str, hostname: str, events: Sequence[TaskEvent], failed: TaskEvent
) -> Explanation:
    # Over DNS only (not /etc/hosts, which always knows the host's own name): Docker's
    # embedded DNS knows every container of the network by its alias.
    code = engine.exec(container, ["getent", "-s", "dns", "hosts", hostname])[0]
    if code == 0:
        return Explanation()  # the name resolution works: the failure is elsewhere
    return Explanation(resolution_text(firewall_suspect(events, failed)))
