"""tdi.engine.podman: which engine a command runs on, and Podman's answers read as
Docker's (a fake client; the real service is tests/integration/test_podman.py's)."""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any

import docker.errors
import pytest

from tdi import config
from tdi.engine import podman
from tdi.engine.docker_engine import DockerEngine, _changes
from tdi.errors import ConfigError, EngineError, RegistryError

PODMAN_VERSION = {"Components": [{"Name": "Podman Engine", "Version": "4.3.1"}]}
DOCKER_VERSION = {"Components": [{"Name": "Engine", "Version": "28.2.2"}]}


def test_tdi_engine_overrides_tdi_yml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TDI_ENGINE", raising=False)
    assert podman.chosen(None) is None
    assert podman.chosen("docker") == "docker"
    monkeypatch.setenv("TDI_ENGINE", "podman")
    assert podman.chosen("docker") == "podman"


def test_a_wrong_tdi_engine_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TDI_ENGINE", "lxc")
    with pytest.raises(ConfigError, match=r"^TDI_ENGINE=lxc: expected one of docker, podman$"):
        podman.chosen(None)


def test_tdi_yml_engine_is_checked_by_the_schema(tmp_path: Any) -> None:
    (tmp_path / "tdi.yml").write_text("engine: podman\n")
    assert config.load(tmp_path).engine == "podman"
    (tmp_path / "tdi.yml").write_text("engine: lxc\n")
    with pytest.raises(ConfigError, match=r"tdi.yml: key 'engine': 'lxc' is not one of"):
        config.load(tmp_path)


def test_podman_is_told_from_docker_by_its_version() -> None:
    assert podman.is_podman(PODMAN_VERSION)
    assert not podman.is_podman(DOCKER_VERSION)
    assert not podman.is_podman({})


def test_no_service_is_started_for_docker_or_a_given_docker_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "")  # no podman to start: reached must not look for it
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    with podman.reached("docker"), podman.reached(None):
        assert "DOCKER_HOST" not in os.environ
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/podman/podman.sock")
    with podman.reached("podman"):
        assert os.environ["DOCKER_HOST"] == "unix:///run/podman/podman.sock"


def test_podman_without_podman_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    with (
        pytest.raises(EngineError, match=r"podman is not installed: run scripts/setup\.sh"),
        podman.reached("podman"),
    ):
        pass


class VersionClient:
    def __init__(self, version: dict[str, Any]) -> None:
        self._version = version
        self.closed = False

    def ping(self) -> bool:
        return True

    def version(self) -> dict[str, Any]:
        return self._version

    def close(self) -> None:
        self.closed = True


def test_the_engine_found_at_docker_host_must_be_the_one_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///tmp/x.sock")
    monkeypatch.setattr(docker, "from_env", lambda timeout: VersionClient(PODMAN_VERSION))
    assert DockerEngine.connect().kind == "podman"  # found, not asked for
    assert DockerEngine.connect(engine="podman").kind == "podman"
    with pytest.raises(EngineError, match=r"^engine: docker, but podman answers at DOCKER_HOST="):
        DockerEngine.connect(engine="docker")


class PushClient:
    """Podman's stream: the digest only in a status line; a pull's refusal in the stream."""

    def __init__(self, pulled: list[dict[str, Any]]) -> None:
        self.images = SimpleNamespace(push=self.push)
        self.api = SimpleNamespace(pull=lambda *a, **k: iter(pulled))

    def push(self, *args: Any, **kwargs: Any) -> Any:
        digest = "sha256:" + "ab" * 32
        return iter(
            [{"status": "The push refers to ..."}, {"status": f"1: digest: {digest} size: 744"}]
        )


def test_a_push_digest_is_read_from_podmans_status_line() -> None:
    engine = DockerEngine(PushClient([]), kind="podman")
    assert engine.push("127.0.0.1:5000/app:1") == "sha256:" + "ab" * 32


def test_a_pull_refused_in_the_stream_is_a_registry_error_and_an_absent_tag_none() -> None:
    https = "pinging container registry 127.0.0.1:5000: server gave HTTP response to HTTPS client"
    refused = DockerEngine(PushClient([{"status": "Trying"}, {"error": https}]), kind="podman")
    with pytest.raises(RegistryError, match=r"^pull 127\.0\.0\.1:5000/app:1: pinging"):
        refused.fetch("127.0.0.1:5000/app:1")
    absent = [{"error": "reading manifest 1 in 127.0.0.1:5000/app: manifest unknown"}]
    assert DockerEngine(PushClient(absent), kind="podman").fetch("127.0.0.1:5000/app:1") is None


def test_refused_rlimits_say_where_to_set_them() -> None:
    refused = docker.errors.APIError(
        "500",
        explanation="runc create failed: error setting rlimit type 7: operation not permitted",
    )

    class Refusing:
        api = SimpleNamespace(start=lambda name: (_ for _ in ()).throw(refused))

    with pytest.raises(EngineError, match=r"rlimit type 7.*containers.conf.d/tdi.conf"):
        DockerEngine(Refusing(), kind="podman").start("tdi-r1-fresh")


def test_a_podman_commit_says_the_images_own_settings_as_instructions() -> None:
    conf = {
        "Labels": {"tdi.run": "", "org.opencontainers.image.revision": "abc def"},
        "Cmd": ["sleep", "infinity"],
        "Entrypoint": None,
        "Env": ["LANG=C.UTF-8"],
    }
    given = ["LANG=C.UTF-8", "APT_CONFIG=/run/tdi/apt.conf", "HOME=/root", "container=docker"]
    assert _changes(conf, given) == [
        'LABEL "tdi.run"=""',
        'LABEL "org.opencontainers.image.revision"="abc def"',
        'CMD ["sleep", "infinity"]',
        "ENTRYPOINT []",
        'ENV LANG="C.UTF-8"',
        "ENV APT_CONFIG=",  # cannot be removed: emptied; HOME is Podman's, left to it
        "ENV container=",
    ]
