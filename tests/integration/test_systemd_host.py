"""A systemd host as tdi boots one: each directive tdi's drop-in relaxes fails without it
and starts with it, and the host has ::1.

The host is made by tdi's own code (boot.spec, DockerEngine.run, boot.ready) on this
daemon, so the drop-in stays measured: a directive that no longer fails here, or a new
one that does, shows up as a failure of this test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tdi.engine.docker_engine import DockerEngine
from tdi.engine.protocol import ContainerSpec
from tdi.hosts import boot
from tdi.topology import Settings

LABELS = {"tdi.test": "systemd-host"}
# Each directive tdi relaxes, and how a unit that has it fails without the drop-in.
RELAXED = {
    "BindPaths=/tmp:/mnt": "226",
    "BindReadOnlyPaths=-/dev/log:/var/lib/tdi/dev/log": "226",  # as haproxy.service has it
    "TemporaryFileSystem=/mnt": "226",
    "LogNamespace=tdi": "226",
    "PrivateUsers=yes": "217",
}
UNIT = "[Service]\nExecStart=/bin/sleep infinity\n{directive}\n"


@pytest.fixture(scope="module")
def host(docker_client: Any, base_image: str) -> Iterator[tuple[DockerEngine, str]]:
    engine = DockerEngine(docker_client)
    name = f"tdi-test-systemd-{uuid.uuid4().hex[:8]}"
    engine.create_network(name, LABELS)
    node = ContainerSpec(image=base_image, name=name, hostname="sd", network=name, labels=LABELS)
    try:
        engine.run(boot.spec("systemd", Settings(), engine.cgroup_version(), node))
        boot.ready(engine, name, "systemd", name, Settings())
        yield engine, name
    finally:
        engine.remove([name])
        engine.remove_networks([name])


def sh(host: tuple[DockerEngine, str], script: str) -> str:
    engine, name = host
    code, out, err = engine.exec(name, ["sh", "-c", script])
    assert code == 0, (script, err.decode(errors="replace"))
    return out.decode().strip()


def start(host: tuple[DockerEngine, str], unit: str) -> str:
    """Start ``unit``; its exit status: "0" while it runs, else systemd's (226/NAMESPACE)."""
    sh(host, f"systemctl daemon-reload; systemctl start {unit} || true; sleep 0.3")
    return sh(host, f"systemctl show -P ExecMainStatus {unit}")


def test_each_relaxed_directive_fails_without_the_dropin_and_starts_with_it(
    host: tuple[DockerEngine, str],
) -> None:
    got = {}
    for number, directive in enumerate(RELAXED):
        # As the unit's own file has it: tdi's drop-in, read after, resets it.
        relaxed = f"tdi-relaxed-{number}.service"
        sh(host, f"printf '{UNIT.format(directive=directive)}' > /etc/systemd/system/{relaxed}")
        # In a drop-in read after tdi's: as if tdi had written none.
        kept = f"tdi-kept-{number}.service"
        sh(host, f"printf '{UNIT.format(directive='')}' > /etc/systemd/system/{kept}")
        sh(host, f"mkdir -p /etc/systemd/system/{kept}.d")
        sh(
            host,
            f"printf '[Service]\\n{directive}\\n' > /etc/systemd/system/{kept}.d/99-again.conf",
        )
        got[directive] = (start(host, relaxed), start(host, kept))
    assert got == {directive: ("0", status) for directive, status in RELAXED.items()}


def test_dynamic_user_still_needs_a_mount_namespace(host: tuple[DockerEngine, str]) -> None:
    # systemd insists on the namespace for DynamicUser=: README says to add SYS_ADMIN.
    sh(
        host,
        f"printf '{UNIT.format(directive='DynamicUser=yes')}' > /etc/systemd/system/tdi-du.service",
    )
    assert start(host, "tdi-du.service") == "226"


def test_the_host_has_an_ipv6_loopback(host: tuple[DockerEngine, str]) -> None:
    bind = "import socket; socket.socket(socket.AF_INET6).bind(('::1', 0)); print('bound')"
    assert sh(host, f'python3 -c "{bind}"') == "bound"
