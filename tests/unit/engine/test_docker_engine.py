"""tdi.engine: what it asks of a (fake) Docker client."""

from __future__ import annotations

import io
import tarfile
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import docker.errors
import pytest

from tdi.engine import registry
from tdi.engine.docker_engine import DockerEngine, _Stream
from tdi.engine.protocol import ContainerSpec
from tdi.errors import EngineError


class FakeBox:
    def __init__(self, status: str = "running") -> None:
        self.id = "box1"
        self.status = status
        self.started = False
        self.removed = False

    def start(self) -> None:
        self.started = True

    def reload(self) -> None:
        pass

    def logs(self, tail: int) -> bytes:
        return b"exec: sleep: not found\n"

    def remove(self, force: bool) -> None:
        self.removed = force


class FakeClient:
    """The part of docker.DockerClient that Engine.run, cgroup_version and has_path use."""

    def __init__(self, status: str = "running", cgroups: str | None = "2") -> None:
        self.created: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self.box = FakeBox(status)
        self.cgroups = cgroups
        self.api = SimpleNamespace(
            create_endpoint_config=lambda aliases: {"Aliases": aliases},
            create_networking_config=lambda endpoints: {"EndpointsConfig": endpoints},
            get_archive=lambda box_id, path: (io.BytesIO(b""), {}),
        )
        self.containers = SimpleNamespace(create=self.create)

    def create(self, *args: Any, **kwargs: Any) -> FakeBox:
        self.created.append((args, kwargs))
        return self.box

    def info(self) -> dict[str, Any]:
        return {"CgroupVersion": self.cgroups} if self.cgroups else {}


SPEC = ContainerSpec(
    image="tdi-base:1",
    name="tdi-r1-fresh-db",
    hostname="db",
    network="tdi-r1-fresh",
    labels={"tdi.run": "r1"},
    command=("/lib/systemd/systemd", "--unit=sysinit.target"),
    init=False,
    tmpfs=("/run", "/run/lock"),
    volumes=("/sys/fs/cgroup:/sys/fs/cgroup:rw",),
    capabilities=("SYS_PTRACE",),
    env={"container": "docker"},
    cgroupns="host",
    sysctls={"net.ipv6.conf.lo.disable_ipv6": "0"},
)


def test_run_creates_the_container_the_spec_says() -> None:
    client = FakeClient()
    assert DockerEngine(client).run(SPEC) == "tdi-r1-fresh-db"
    ((args, kwargs),) = client.created
    assert args == ("tdi-base:1",)
    assert kwargs == {
        "command": ["/lib/systemd/systemd", "--unit=sysinit.target"],
        "entrypoint": [],
        "name": "tdi-r1-fresh-db",
        "hostname": "db",
        "labels": {"tdi.run": "r1"},
        "init": False,
        "tmpfs": {"/run": "", "/run/lock": ""},
        "volumes": ["/sys/fs/cgroup:/sys/fs/cgroup:rw"],
        "cap_add": ["SYS_PTRACE"],
        "environment": {"container": "docker"},
        "privileged": False,
        "cgroupns": "host",
        "sysctls": {"net.ipv6.conf.lo.disable_ipv6": "0"},
        "network": "tdi-r1-fresh",
        # Reachable by its inventory name on its side's network.
        "networking_config": {"EndpointsConfig": {"tdi-r1-fresh": {"Aliases": ["db"]}}},
        "detach": True,
    }
    assert client.box.started


def test_run_leaves_empty_settings_to_docker() -> None:
    client = FakeClient()
    DockerEngine(client).run(ContainerSpec("img", "c", "h", "n", {}))
    ((_, kwargs),) = client.created
    assert kwargs["command"] == ["sleep", "infinity"]
    assert kwargs["init"] is True
    assert kwargs["tmpfs"] is None and kwargs["volumes"] is None
    assert kwargs["cap_add"] is None and kwargs["environment"] is None
    assert kwargs["cgroupns"] is None
    assert kwargs["sysctls"] is None


def test_run_of_a_container_that_exits_at_once() -> None:
    with pytest.raises(EngineError, match=r"tdi-r1-fresh-db from tdi-base:1 exited at once: exec"):
        DockerEngine(FakeClient(status="exited")).run(SPEC)


class RefusedBox(FakeBox):
    """A container runc cannot start: the daemon lacks a capability it asks for."""

    def start(self) -> None:
        raise docker.errors.APIError(
            "500 Server Error",
            explanation="failed to create shim task: OCI runtime create failed: runc create "
            "failed: unable to start container process: unable to apply caps: operation not "
            "permitted: unknown",
        )


def test_a_refused_privileged_container_says_what_to_use_instead() -> None:
    client = FakeClient()
    client.box = RefusedBox()
    with pytest.raises(EngineError) as info:
        DockerEngine(client).run(replace(SPEC, privileged=True))
    message = str(info.value)
    assert "\n" not in message and info.value.exit_code == 2
    assert "the Docker daemon refuses privileged containers" in message
    assert "remove privileged: true" in message and "capabilities:" in message
    assert client.box.removed  # created, refused: not left behind


def test_a_refused_capability_is_named() -> None:
    client = FakeClient()
    client.box = RefusedBox()
    with pytest.raises(EngineError, match=r"cannot grant one of the capabilities SYS_PTRACE"):
        DockerEngine(client).run(SPEC)
    assert client.box.removed


@pytest.mark.parametrize(("reported", "version"), [("2", "2"), ("1", "1"), (None, "1")])
def test_cgroup_version(reported: str | None, version: str) -> None:
    assert DockerEngine(FakeClient(cgroups=reported)).cgroup_version() == version


def test_has_path_looks_in_a_container_it_removes() -> None:
    client = FakeClient()
    assert DockerEngine(client).has_path("tdi-base:1", "/lib/systemd/systemd") is True
    ((args, kwargs),) = client.created
    assert args == ("tdi-base:1",)
    assert kwargs == {"command": ["true"], "entrypoint": []}
    assert client.box.removed and not client.box.started


class RacyBox:
    """A container whose output docker-py misreads ``misreads`` times (docker-py#3160)."""

    def __init__(self, misreads: int) -> None:
        self.misreads = misreads
        self.calls = 0

    def exec_run(self, argv: list[str], demux: bool) -> SimpleNamespace:
        self.calls += 1
        if self.calls <= self.misreads:
            raise ValueError("32 is not a valid stream")
        return SimpleNamespace(exit_code=0, output=(b"out", None))


def _racy(misreads: int) -> tuple[DockerEngine, RacyBox]:
    box = RacyBox(misreads)
    client = SimpleNamespace(containers=SimpleNamespace(get=lambda name: box))
    return DockerEngine(client), box


def test_exec_reads_again_when_the_sdk_misreads_the_stream() -> None:
    engine, box = _racy(misreads=2)
    assert engine.exec("c", ["true"]) == (0, b"out", b"")
    assert box.calls == 3


def test_exec_gives_up_with_one_line_after_every_try_misreads() -> None:
    engine, box = _racy(misreads=99)
    with pytest.raises(EngineError, match=r"^exec in c: the Docker SDK could not read .* 3 tries"):
        engine.exec("c", ["true"])
    assert box.calls == 3


def test_containers_are_listed_as_the_daemon_answers_without_inspecting_each() -> None:
    asked: list[dict[str, Any]] = []

    def listed(**kwargs: Any) -> list[dict[str, Any]]:
        asked.append(kwargs)
        return [{"Id": "a1", "Names": ["/tdi-r1-fresh"]}, {"Id": "b2", "Names": []}]

    def inspect(name: str) -> None:  # what the SDK's containers.list does for each one
        raise AssertionError("a container another run removes meanwhile would fail this")

    client = SimpleNamespace(
        api=SimpleNamespace(containers=listed), containers=SimpleNamespace(get=inspect)
    )
    assert DockerEngine(client).containers("r1") == ["tdi-r1-fresh"]
    assert asked == [{"all": True, "filters": {"label": "tdi.run=r1"}}]


def test_only_the_engines_trusted_registry_gets_the_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TDI_REGISTRY_USERNAME", "ci")
    monkeypatch.setenv("TDI_REGISTRY_PASSWORD", "s3cret-pass")
    mine = DockerEngine(client=None, trusting="127.0.0.1:5000/app")
    other = DockerEngine(client=None)  # another engine, in the same process, trusts none
    assert registry.credentials("127.0.0.1:5000/app/web:1", mine._trusted) == {
        "username": "ci",
        "password": "s3cret-pass",
    }
    assert registry.credentials("127.0.0.2:5000/app/web:1", mine._trusted) is None
    assert registry.credentials("127.0.0.1:5000/app/web:1", other._trusted) is None


def test_a_stream_with_an_empty_chunk_reads_whole_as_a_tar() -> None:
    # An SDK stream may hand on an empty chunk mid-way; it is not the end of the archive.
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo("etc/motd")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    raw = data.getvalue()
    chunks = iter([raw[:100], b"", raw[100:600], b"", raw[600:]])  # the header, cut twice
    with tarfile.open(fileobj=_Stream(chunks), mode="r|") as tar:  # as DockerEngine reads
        member = tar.next()
        assert member is not None and member.name == "etc/motd"
        found = tar.extractfile(member)
        assert found is not None and found.read() == b"hello"
