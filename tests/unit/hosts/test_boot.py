"""How a host boots: the container spec per init and cgroup version, and which init."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from fakes import NullEngine

from tdi.engine.protocol import ContainerSpec
from tdi.errors import BootError, TdiError
from tdi.hosts import boot
from tdi.topology import Settings

NODE = ContainerSpec(
    image="tdi-base:abc",
    name="tdi-r1-fresh-db",
    hostname="db",
    network="tdi-r1-fresh",
    labels={"tdi.run": "r1"},
)
SETTINGS = Settings(
    capabilities=("SYS_PTRACE", "NET_ADMIN"),
    tmpfs=("/var/cache",),
    volumes=("/srv/data:/data:ro",),
    env={"TZ": "UTC"},
)


def test_systemd_on_cgroup_v1() -> None:
    spec = boot.spec("systemd", SETTINGS, "1", NODE)
    assert spec.command == ("/lib/systemd/systemd", "--unit=sysinit.target")
    assert spec.init is False  # systemd is PID 1, not behind Docker's init
    assert spec.tmpfs == ("/run", "/run/lock", "/var/cache")
    assert spec.volumes == ("/sys/fs/cgroup:/sys/fs/cgroup:ro", "/srv/data:/data:ro")
    assert spec.cgroupns is None
    assert spec.env == {"TZ": "UTC", "container": "docker"}
    # SYS_BOOT: systemd's reboot then ends the container with 129, a poweroff with 130.
    assert spec.capabilities == ("SYS_PTRACE", "NET_ADMIN", "SYS_BOOT")
    assert spec.privileged is False
    # The node's identity is kept.
    assert (spec.image, spec.name, spec.hostname, spec.network, spec.labels) == (
        NODE.image,
        NODE.name,
        NODE.hostname,
        NODE.network,
        NODE.labels,
    )


def test_systemd_on_cgroup_v2() -> None:
    spec = boot.spec("systemd", SETTINGS, "2", NODE)
    assert spec.volumes[0] == "/sys/fs/cgroup:/sys/fs/cgroup:rw"
    assert spec.cgroupns == "host"
    assert spec.init is False
    assert spec.tmpfs[:2] == ("/run", "/run/lock")


def test_systemd_asks_for_sys_boot_once() -> None:
    spec = boot.spec("systemd", Settings(capabilities=("SYS_BOOT",)), "1", NODE)
    assert spec.capabilities == ("SYS_BOOT",)


def test_systemd_keeps_a_container_variable_the_host_sets() -> None:
    spec = boot.spec("systemd", Settings(env={"container": "podman"}), "2", NODE)
    assert spec.env == {"container": "podman"}


def test_tini_keeps_the_command_and_adds_docker_init() -> None:
    node = ContainerSpec("img", "c", "h", "n", {}, command=("sleep", "infinity"))
    spec = boot.spec("tini", SETTINGS, "2", node)
    assert spec.init is True
    assert spec.command == ("sleep", "infinity")
    assert spec.tmpfs == ("/var/cache",)
    assert spec.volumes == ("/srv/data:/data:ro",)
    assert spec.cgroupns is None
    assert spec.env == {"TZ": "UTC"}
    assert spec.capabilities == ("SYS_PTRACE", "NET_ADMIN")


@pytest.mark.parametrize("init", ["systemd", "tini"])
def test_every_host_has_an_ipv6_loopback(init: str) -> None:
    spec = boot.spec(init, SETTINGS, "1", NODE)
    assert spec.sysctls == {
        "net.ipv6.conf.all.disable_ipv6": "0",
        "net.ipv6.conf.lo.disable_ipv6": "0",
    }


def test_privileged_is_passed_on() -> None:
    assert boot.spec("tini", Settings(privileged=True), "1", NODE).privileged is True


class FakeEngine(NullEngine):
    """Images that have /lib/systemd/systemd, and what has_path was asked."""

    def __init__(self, with_systemd: Sequence[str]) -> None:
        self.with_systemd = set(with_systemd)
        self.asked: list[tuple[str, str]] = []

    def has_path(self, image: str, path: str) -> bool:
        self.asked.append((image, path))
        return image in self.with_systemd


@pytest.mark.parametrize(
    ("init", "image", "expected"),
    [
        ("auto", "with-systemd", "systemd"),
        ("auto", "bare", "tini"),
        ("systemd", "with-systemd", "systemd"),
        ("tini", "with-systemd", "tini"),
    ],
)
def test_init_of(init: str, image: str, expected: str) -> None:
    engine = FakeEngine(["with-systemd"])
    found = boot.init_of(engine, Settings(init=init), image, "fresh/db")
    assert found == expected
    # tini is what was asked for: the image is not inspected.
    assert engine.asked == ([] if init == "tini" else [(image, boot.SYSTEMD)])


def test_init_systemd_without_systemd_says_how_to_add_it() -> None:
    engine = FakeEngine([])
    with pytest.raises(BootError) as info:
        boot.init_of(engine, Settings(init="systemd"), "debian:12", "fresh/db")
    message = str(info.value)
    assert message.startswith("fresh/db: init: systemd, but image debian:12 has no ")
    assert "/lib/systemd/systemd" in message
    assert "systemd-sysv" in message  # the packages to install
    assert "init: tini" in message  # or the way out
    assert isinstance(info.value, TdiError) and info.value.exit_code == 2


class BootingEngine(NullEngine):
    """Answers `systemctl is-system-running` with the next of ``states``; runs nothing else."""

    def __init__(self, states: Sequence[str], sysv: str = "") -> None:
        self.states = list(states)
        self.sysv = sysv
        self.scripts: list[str] = []

    def exec(self, container: str, argv: Sequence[str]) -> tuple[int, bytes, bytes]:
        script = argv[-1]
        self.scripts.append(script)
        if "is-system-running" in script:
            return 0, self.states.pop(0).encode(), b""
        if "rc2.d" in script:
            return 0, self.sysv.encode(), b""
        return 0, b"", b""


def test_ready_systemd_waits_then_starts_default_target() -> None:
    engine = BootingEngine(["starting", "running", "running"])
    boot.ready(engine, "c", "systemd", "fresh", Settings())
    dropin = next(s for s in engine.scripts if boot.DROPIN_DIR in s)
    assert boot.DROPIN in dropin
    assert dropin.endswith("systemctl start --no-block default.target")
    assert engine.states == []  # waited again after starting default.target


def test_ready_tini_starts_the_images_enabled_services(caplog: pytest.LogCaptureFixture) -> None:
    engine = BootingEngine([], sysv="cron !nginx ssh")
    with caplog.at_level("INFO", logger="tdi.hosts.boot"):
        boot.ready(engine, "c", "tini", "upgrade", Settings())
    assert engine.scripts == [boot.SYSV_START]
    assert "upgrade: started the image's enabled services: cron, ssh" in caplog.messages
    assert "upgrade: enabled services that did not start: nginx" in caplog.messages


def test_systemd_that_never_runs_names_its_failed_units(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(boot, "BOOT_TIMEOUT", 0.0)

    class Stuck(BootingEngine):
        def exec(self, container: str, argv: Sequence[str]) -> tuple[int, bytes, bytes]:
            if "--failed" in argv[-1]:
                return 0, b"nginx.service loaded failed failed nginx\n", b""
            return 0, b"starting", b""

    with pytest.raises(BootError, match=r"fresh: systemd is 'starting' .*failed units: nginx"):
        boot.ready(Stuck([]), "c", "systemd", "fresh", Settings())


@pytest.mark.parametrize(
    "directive",
    [
        "BindPaths=",
        "BindReadOnlyPaths=",
        "TemporaryFileSystem=",
        "LogNamespace=",
        "PrivateUsers=no",
    ],
)
def test_the_dropin_resets_what_fails_unprivileged(directive: str) -> None:
    assert directive in boot.dropin(Settings()).splitlines()


def test_the_dropin_keeps_what_systemd_skips_by_itself() -> None:
    # Measured: these start as they are in an unprivileged container.
    for kept in ("ProtectSystem", "PrivateTmp", "DynamicUser", "SystemCallFilter"):
        assert kept not in boot.dropin(Settings())


@pytest.mark.parametrize(
    "settings",
    [
        Settings(capabilities=("SYS_PTRACE", "SYS_ADMIN")),
        Settings(capabilities=("CAP_SYS_ADMIN",)),
        Settings(privileged=True),
    ],
)
def test_a_host_that_may_make_namespaces_gets_no_dropin(settings: Settings) -> None:
    engine = BootingEngine(["running", "running"])
    boot.ready(engine, "c", "systemd", "fresh", settings)
    assert boot.dropin(settings) == ""
    assert not any(boot.DROPIN_DIR in s for s in engine.scripts)
    assert "systemctl start --no-block default.target" in engine.scripts
