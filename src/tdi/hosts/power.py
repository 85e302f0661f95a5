"""Hosts that their playbook stops. A reboot under systemd boots the host again, as a
server comes back, and Ansible's reboot module goes on; a poweroff, a halt, or any other
end of a host's init is a finding of the run, not a failure of tdi.

While a side's playbook runs, one thread asks the daemon every ``POLL`` seconds which of
the run's containers have stopped (one cheap list call).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tdi.config import Config
from tdi.engine.protocol import Engine
from tdi.errors import BootError, TdiError
from tdi.hosts import boot
from tdi.hosts.run import Node, Run, boot_again
from tdi.provision import ansible

log = logging.getLogger(__name__)

POLL = 0.5
# How long a host that is shutting down when its playbook ends is waited for.
SETTLE = 15.0
# PID 1's command line (systemd execs systemd-shutdown VERB for the last step) and
# systemd's state ("stopping" before that).
GOING_DOWN = "tr '\\0' ' ' < /proc/1/cmdline; echo; systemctl is-system-running 2>/dev/null"
# What Docker reports after systemd's reboot(2) for a poweroff or halt (see boot.REBOOTED).
POWERED_OFF = 130
UP = "up"  # what Watch._going_down says of a systemd host that runs


@dataclass(frozen=True)
class Stop:
    """A host that its playbook stopped, and that stayed down."""

    code: int  # its init's exit code
    why: str = ""  # a reboot that did not come back: why not
    task: str = ""  # the last task that ran on it before it went down

    def explain(self, events: Sequence[ansible.TaskEvent], host: str) -> str:
        """One line: which task took the host down, and why tdi cannot bring it back."""
        task = self.task or culprit(events, host)
        after = f"after task '{task}'" if task else "during the playbook"
        if self.why:
            return f"the host rebooted {after} and did not come back: {self.why}"
        what = "powered off or halted" if self.code == POWERED_OFF else "its init ended"
        return (
            f"the host went down {after}: {what} (exit code {self.code}); a stopped host "
            "cannot be powered on again, only a reboot under init: systemd comes back"
        )


def culprit(events: Sequence[ansible.TaskEvent], host: str) -> str:
    """The last task with a result on ``host`` before it went down: a command that powers
    off returns, and the next task finds the host unreachable."""
    ran = [e.task for e in events if e.host == host and e.status != "unreachable"]
    return ran[-1] if ran else ""


class Watch:
    """The hosts a playbook runs on: ``stops`` holds those that went down."""

    def __init__(
        self, engine: Engine, cfg: Config, run: Run, nodes: Sequence[Node], events: Path
    ) -> None:
        self._engine, self._cfg, self._run, self._events = engine, cfg, run, events
        self._nodes = {n.container: n for n in nodes}
        self.stops: dict[str, Stop] = {}  # node key -> why it is down
        self.rebooted: list[str] = []  # node keys, once per reboot

    def look(self) -> None:
        """Boot again the hosts that rebooted; record those that stopped otherwise."""
        for name, code in self._exited().items():  # on an error, asked again soon
            node = self._nodes.get(name)
            if node is not None and node.key not in self.stops:
                self._stopped(node, code)

    def _stopped(self, node: Node, code: int) -> None:
        settings = self._cfg.topology.host(node.host).settings
        if (
            code != boot.REBOOTED
            or boot.init_of(self._engine, settings, node.image, node.key) != "systemd"
        ):
            self.stops[node.key] = Stop(code)
            log.info("%s stopped (exit code %d) during its playbook", node.key, code)
            return
        task = ansible.current_task(_read(self._events))
        log.info("%s rebooted (task '%s'): booting it again", node.key, task)
        try:
            boot_again(self._engine, self._cfg, self._run, node)
        except TdiError as exc:
            self.stops[node.key] = Stop(code, str(exc), task)
            log.error("%s did not come back from its reboot: %s", node.key, exc)
            return
        self.rebooted.append(node.key)
        log.info("%s is up again after its reboot", node.key)

    def settle(self) -> None:
        """At the playbook's end: a host still shutting down (a poweroff as the last task,
        or one that an exec racing it slowed) is waited for, up to ``SETTLE`` seconds."""
        systemd = []
        for node in self._nodes.values():
            if node.key in self.stops:
                continue
            verb = self._going_down(node)
            if verb:
                systemd.append(node)
            if verb in ("", UP):
                continue
            deadline = time.monotonic() + SETTLE
            while time.monotonic() < deadline and node.container not in self._exited():
                time.sleep(POLL / 5)
            code = self._exited().get(node.container)
            if code is not None:
                self._stopped(node, code)
            else:  # systemd-shutdown waits 90 s for a process that ignores SIGTERM
                self.stops[node.key] = Stop(boot.REBOOTED if verb == "reboot" else POWERED_OFF)
                log.info("%s is still shutting down (%s) after %.0f s", node.key, verb, SETTLE)
        # A shutdown that had not shown yet when asked (seen under load, in about one run
        # of twenty): one more look, a moment later, finds the host that exits just after.
        # Only systemd shuts a host down in steps; under another init it is gone at once.
        if any(n.key not in self.stops for n in systemd):
            time.sleep(POLL)
            self.look()

    def _going_down(self, node: Node, again: bool = True) -> str:
        """ "poweroff", "reboot"... while systemd shuts ``node`` down; UP while systemd runs
        it; "" under another init, or when it is gone."""
        try:
            _, out, _ = self._engine.exec(node.container, ["sh", "-c", GOING_DOWN])
        except TdiError:
            # Stopped in between, or shutting down: Docker then refuses an exec into a
            # container it still lists as running (measured: "OCI runtime exec failed"),
            # and the next one sees systemd-shutdown. Asked once more, so that an exec that
            # failed for another reason is not taken for a shutdown. One removed from
            # outside is neither, and not a finding.
            if node.container in self._exited():
                return "stopping"
            if not self._running(node.container):
                return ""
            if again:
                time.sleep(POLL)
                return self._going_down(node, again=False)
            return "stopping"
        argv, _, state = out.decode(errors="replace").partition("\n")
        log.debug("%s: pid 1 is %s; systemd says %r", node.key, argv.strip(), state.strip())
        words = argv.split()
        if words and words[0].endswith("systemd-shutdown"):
            return words[1] if len(words) > 1 else "poweroff"
        # While systemd shuts down, systemctl says "stopping", then "unknown", and late
        # in it cannot ask at all (its socket closed); PID 1 then has no command line for
        # a moment, as it execs systemd-shutdown (all measured). A host that runs says
        # running, degraded or starting.
        if not words:
            return "stopping"
        if not words[0].endswith("/systemd"):
            return ""
        return "stopping" if state.strip() in ("stopping", "unknown", "") else UP

    def _running(self, container: str) -> bool:
        try:
            return self._engine.is_running(container)
        except TdiError:
            return False

    def _exited(self) -> dict[str, int]:
        try:
            return self._engine.exited(self._run.id)
        except TdiError as exc:
            log.debug("watching %s: %s", self._run.id, exc)
            return {}


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


@contextmanager
def watching(
    engine: Engine, cfg: Config, run: Run, nodes: Sequence[Node], events: Path
) -> Iterator[Watch]:
    """Watch ``nodes`` while the block runs their playbook (``events``: its events file),
    and look once more at its end: a poweroff as the last task."""
    watch = Watch(engine, cfg, run, nodes, events)
    done = threading.Event()

    def loop() -> None:
        while not done.wait(POLL):
            watch.look()

    thread = threading.Thread(target=loop, name=f"tdi-watch-{events.stem}", daemon=True)
    thread.start()
    try:
        yield watch
    finally:
        done.set()
        thread.join()  # a boot under way ends first: nothing starts after tdi removes a host
    watch.look()
    watch.settle()


# How long a host that tdi reboots may take to shut down (systemd stops every unit).
SHUTDOWN = 90.0


def reboot(engine: Engine, cfg: Config, run: Run, node: Node) -> str:
    """Reboot ``node`` as a server reboots; returns its init. Under systemd, systemd shuts
    down (`systemctl reboot`) and the host boots again with tdi's drop-in; under another
    init the container stops and starts, and the image's enabled services start, as they
    do at create."""
    code, out, _ = engine.exec(node.container, ["cat", "/proc/1/comm"])
    init = "systemd" if code == 0 and out.decode().strip() == "systemd" else "tini"
    if init == "systemd":
        engine.exec(node.container, ["systemctl", "reboot"])
        deadline = time.monotonic() + SHUTDOWN
        while engine.is_running(node.container):
            if time.monotonic() > deadline:
                raise BootError(f"{node.key}: still shutting down {SHUTDOWN:.0f} s after reboot")
            time.sleep(POLL / 5)
    else:
        engine.stop(node.container)
    boot_again(engine, cfg, run, node, init)
    return init
