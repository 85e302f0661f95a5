"""Hosts boot like servers: systemd as PID 1 where the image has it, else a minimal init,
and the services the image has enabled are running before converge.

systemd runs unprivileged. It boots to ``sysinit.target`` first; tdi then relaxes, with
a runtime drop-in under /run (a tmpfs, so never committed into a snapshot), what cannot
work in an unprivileged container, and starts ``default.target``: the enabled units
start as they do when a server boots, with the drop-in in force.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from tdi.engine.protocol import ContainerSpec, Engine
from tdi.errors import BootError
from tdi.topology import Settings

log = logging.getLogger(__name__)

SYSTEMD = "/lib/systemd/systemd"
DROPIN_DIR = "/run/systemd/system/service.d"
# What an unprivileged container cannot give a unit: each directive of systemd.exec(5) was
# started alone in a tdi host, and only those that failed are reset here (README's table
# lists them all, with what each does). Without CAP_SYS_ADMIN there are no mount or user
# namespaces: systemd then runs a unit without its mount namespace when the namespace
# would only protect (ProtectSystem=, PrivateTmp=, ReadOnlyPaths=...), but refuses with
# status=226/NAMESPACE when the unit's files would differ without it (BindPaths= to
# another path, TemporaryFileSystem=, LogNamespace=, DynamicUser=).
DROPIN = """\
# Written by tdi at boot: what an unprivileged container cannot do. /run is a tmpfs.
[Service]
# These need a mount namespace, or the unit fails with status=226/NAMESPACE.
BindPaths=
BindReadOnlyPaths=
TemporaryFileSystem=
LogNamespace=
# User namespaces cannot be made here: such units fail with status=217/USER.
PrivateUsers=no
"""
# Servers have ::1; Docker turns IPv6 off in a container, on lo too, and a daemon that
# binds ::1 (unbound) fails.
IPV6_LOOPBACK = {"net.ipv6.conf.all.disable_ipv6": "0", "net.ipv6.conf.lo.disable_ipv6": "0"}
BOOT_TIMEOUT = 90.0
# systemd ends a reboot with reboot(2), which in a PID namespace ends the namespace's init
# by a signal: SIGHUP for a reboot, SIGINT for a poweroff or halt. Docker reports 128 +
# the signal (measured here: 129 after `systemctl reboot`, 130 after poweroff and halt).
# reboot(2) needs CAP_SYS_BOOT; without it systemd exits 0 after both, and tdi could not
# tell them apart. Docker's seccomp profile lets it allow reboot(2) only, not kexec.
SYS_BOOT = "SYS_BOOT"
REBOOTED = 129
# A reboot's new boot id: /proc/sys/kernel/random/boot_id is the machine's, the same
# after a container restarts, and Ansible's reboot module waits for it to change. LXC
# mounts a file over it at each start; tdi does the same after a reboot, read-only.
BOOT_ID = "/proc/sys/kernel/random/boot_id"
NEW_BOOT_ID = f"""\
cat /proc/sys/kernel/random/uuid > /run/tdi-boot-id
mount --bind /run/tdi-boot-id {BOOT_ID}
mount -o remount,bind,ro {BOOT_ID}
"""
# Start the services whose rc2.d S links the image has, in their order, as sysv-rc does.
SYSV_START = """\
started=""
for link in /etc/rc2.d/S*; do
    [ -x "$link" ] || continue
    name=${link##*/S[0-9][0-9]}
    "$link" start >/dev/null 2>&1 || name="!$name"
    started="$started $name"
done
echo $started
"""


def init_of(engine: Engine, settings: Settings, image: str, host: str) -> str:
    """ "systemd" or "tini" for ``host``'s ``init:`` on ``image``; "auto" picks systemd when
    the image has it."""
    if settings.init == "tini":
        return "tini"
    has = engine.has_path(image, SYSTEMD)
    if settings.init == "systemd" and not has:
        raise BootError(
            f"{host}: init: systemd, but image {image} has no {SYSTEMD}: install the "
            "systemd and systemd-sysv packages in its recipe (tdi's base recipe has them), "
            "or set init: tini"
        )
    return "systemd" if has else "tini"


def dropin(settings: Settings) -> str:
    """The drop-in for a host with ``settings``; empty where the container may make
    namespaces itself (CAP_SYS_ADMIN, or privileged) and every unit runs as on a server."""
    caps = {c.upper().removeprefix("CAP_") for c in settings.capabilities}
    return "" if settings.privileged or caps & {"SYS_ADMIN", "ALL"} else DROPIN


def spec(init: str, settings: Settings, cgroup_version: str, node: ContainerSpec) -> ContainerSpec:
    """``node`` (its image, name, hostname, network and labels) run with ``init``."""
    tmpfs, volumes, cgroupns = (*node.tmpfs, *settings.tmpfs), settings.volumes, None
    env = {**node.env, **settings.env}
    if init == "systemd":
        tmpfs = ("/run", "/run/lock", *tmpfs)
        # v1: the host's hierarchy read-only; v2: the host's cgroup namespace, read-write.
        mode = "ro" if cgroup_version == "1" else "rw"
        volumes = (f"/sys/fs/cgroup:/sys/fs/cgroup:{mode}", *volumes)
        cgroupns = None if cgroup_version == "1" else "host"
        env.setdefault("container", "docker")
        command: tuple[str, ...] = (SYSTEMD, "--unit=sysinit.target")
        caps = tuple(dict.fromkeys((*settings.capabilities, SYS_BOOT)))
    else:
        command, caps = node.command, settings.capabilities
    return replace(
        node,
        command=command,
        init=init != "systemd",
        tmpfs=tmpfs,
        volumes=volumes,
        capabilities=caps,
        env=env,
        privileged=settings.privileged,
        cgroupns=cgroupns,
        sysctls={**node.sysctls, **IPV6_LOOPBACK},
    )


def ready(engine: Engine, container: str, init: str, node: str, settings: Settings) -> None:
    """Bring a started container up as a booted server."""
    if init == "systemd":
        _systemd_up(engine, container, node, dropin(settings))
    else:
        _sysv_up(engine, container, node)


def new_boot_id(engine: Engine, container: str, node: str) -> None:
    """Give a host that has booted again a boot id of its own (see NEW_BOOT_ID)."""
    code, out = engine.as_admin(container, NEW_BOOT_ID)
    if code != 0:
        raise BootError(f"{node}: could not give the host a new boot id: {out or code}")


def _sh(engine: Engine, container: str, script: str) -> tuple[int, str]:
    code, out, err = engine.exec(container, ["sh", "-c", script])
    return code, (out + err).decode(errors="replace").strip()


def _failed_units(engine: Engine, container: str) -> str:
    _, failed = _sh(engine, container, "systemctl --failed --plain --no-legend")
    return ", ".join(line.split()[0] for line in failed.splitlines() if line)


def _wait(engine: Engine, container: str, node: str) -> str:
    """Wait for the boot to end: "running" or "degraded"."""
    deadline = time.monotonic() + BOOT_TIMEOUT
    while True:
        # --wait answers once the boot is over: one exec, not one every 0.2 s (each costs
        # the daemon about 50 ms of CPU). It fails at once while systemd cannot be asked;
        # 5 s at most per exec, so that an interrupt never waits long for a worker.
        wait = "timeout 5 systemctl is-system-running --wait 2>/dev/null"
        _, state = _sh(engine, container, wait)
        if state in ("running", "degraded"):
            return state
        if time.monotonic() > deadline:
            units = _failed_units(engine, container) or "none"
            raise BootError(
                f"{node}: systemd is '{state or 'not answering'}' after {BOOT_TIMEOUT:.0f} s, "
                f"not running; failed units: {units}"
            )
        time.sleep(0.2)


def _systemd_up(engine: Engine, container: str, node: str, relax: str) -> None:
    _wait(engine, container, node)
    script = "systemctl start --no-block default.target"
    if relax:
        script = (
            f"mkdir -p {DROPIN_DIR} && cat > {DROPIN_DIR}/10-tdi-container.conf <<'EOF'\n"
            f"{relax}EOF\nsystemctl daemon-reload && {script}"
        )
    code, out = _sh(engine, container, script)
    if code != 0:
        raise BootError(f"{node}: could not start default.target: {out}")
    _started(engine, container, node)
    if _wait(engine, container, node) == "degraded":
        units = _failed_units(engine, container)
        log.warning("%s: systemd is degraded; failed units: %s", node, units)


def _started(engine: Engine, container: str, node: str) -> None:
    """Wait for default.target's start job: the services it wants have started (a
    daemon's ExecStartPre has run). systemd's own state says "running" as soon as
    sysinit.target, the boot's first target, is up, so it cannot tell. A start of a unit
    whose start job is queued waits for that job: 5 s per exec, so that an interrupt
    never waits long; a boot that does not end in BOOT_TIMEOUT is left as it is."""
    deadline = time.monotonic() + BOOT_TIMEOUT
    while time.monotonic() < deadline:
        code, _ = _sh(engine, container, "timeout 5 systemctl start default.target")
        if code != 124:  # done, or failed (a failed unit: degraded, said below)
            return
    _, jobs = _sh(engine, container, "systemctl list-jobs --no-legend --plain")
    log.warning("%s: still starting after %.0f s: %s", node, BOOT_TIMEOUT, jobs or "no jobs")


def _sysv_up(engine: Engine, container: str, node: str) -> None:
    _, out = _sh(engine, container, SYSV_START)
    names = out.split()
    if names:
        started = [n for n in names if not n.startswith("!")]
        failed = [n[1:] for n in names if n.startswith("!")]
        log.info("%s: started the image's enabled services: %s", node, ", ".join(started) or "none")
        if failed:
            log.warning("%s: enabled services that did not start: %s", node, ", ".join(failed))
