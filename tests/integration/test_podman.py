"""tdi on Podman (engine: podman): the example's default scenario under systemd, and its
snapshot pushed to a real registry. One test, for CI's time: the snapshot's run is the
first release (its host booted, converged and tested on Podman), committed and pushed.
`tdi test` on Podman (both sides, parity) and the topology were run by hand (README).

tdi starts Podman's API service itself, for each command; the test only chooses the
engine (TDI_ENGINE) and tells Podman that the test registry speaks plain HTTP, as a
user's registries.conf would (Docker trusts 127.0.0.0/8 unasked; Podman does not).
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from subprocess import CompletedProcess
from typing import Any

import docker.errors
import pytest
from conftest import ExampleRepo
from registry import Registry

Cli = Callable[..., CompletedProcess[str]]
# tdi's line for each host it creates: "create NODE: CONTAINER from IMAGE (INIT)".
SYSTEMD_HOST = re.compile(r"create \S+: \S+ from \S+ \(systemd\)")


def _podman(*args: str) -> str:
    proc = subprocess.run(["podman", *args], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _share(docker_client: Any, base: str) -> None:
    """The base image and the root it was built FROM, moved from Docker: a save and a load
    take seconds where debootstrap and the build take minutes."""
    key = docker_client.images.get(base).labels["tdi.root.key"]
    roots = docker_client.images.list(filters={"label": f"tdi.root.key={key}"})
    root = next(t for i in roots for t in i.tags if t.startswith("tdi-root:"))
    wanted = [
        ref
        for ref in (root, base)
        if subprocess.run(
            ["podman", "image", "exists", ref], capture_output=True, check=False
        ).returncode
    ]
    if not wanted:
        return
    save = subprocess.Popen(["docker", "save", *wanted], stdout=subprocess.PIPE)
    load = subprocess.run(["podman", "load", "-q"], stdin=save.stdout, capture_output=True)
    assert save.wait() == 0 and load.returncode == 0, load.stderr


@pytest.fixture
def on_podman(
    example: ExampleRepo,
    docker_client: Any,
    base_image: str,
    registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[ExampleRepo]:
    _share(docker_client, base_image)
    conf = example.path.parent / "registries.conf"
    conf.write_text(f'[[registry]]\nlocation = "{registry.host}"\ninsecure = true\n')
    monkeypatch.setenv("TDI_ENGINE", "podman")
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(conf))
    # The mirror directly: the package cache's image would be built on Podman first. Each
    # playbook runs once (the test is about the engine, not idempotence; CI's time is short).
    with (example.path / "tdi.yml").open("a", encoding="utf-8") as cfg:
        cfg.write("package_cache: false\nidempotence: false\n")
    example.commit("the example without the package cache, each playbook run once")
    yield example
    runs = example.path / ".tdi" / "runs"
    ids = [p.name for p in runs.iterdir()] if runs.is_dir() else []
    leaked = [
        name
        for run_id in ids
        for name in _podman(
            "ps", "-a", "--filter", f"label=tdi.run={run_id}", "--format", "{{.Names}}"
        ).split()
    ]
    for name in leaked:
        _podman("rm", "-f", name)
    for ref in _podman("images", "--format", "{{.Repository}}:{{.Tag}}").split():
        if ref.startswith(f"{registry.host}/"):
            _podman("rmi", ref)
    assert not leaked, f"tdi left containers behind on Podman: {leaked}"


def test_podman_hosts_boot_systemd_converge_test_snapshot_and_push(
    on_podman: ExampleRepo, registry: Registry, docker_client: Any, run_cli: Cli
) -> None:
    example, name = on_podman, f"podman-{uuid.uuid4().hex[:8]}"
    repo, commit = f"{registry.host}/{name}", example.git("rev-parse", "HEAD")

    # The first release: the default scenario's host, from the base image, under systemd;
    # converged, tested, committed on Podman, and pushed to the registry.
    made = run_cli("snapshot", "--image", repo, "--push", cwd=example.path)
    assert made.returncode == 0, made.stderr
    assert "first release" in made.stderr
    assert len(SYSTEMD_HOST.findall(made.stderr)) == 1, made.stderr
    assert f"push {repo}:{commit}: sha256:" in made.stderr  # Podman's digest, read
    assert registry.tags(name) == sorted([commit, "production"])
    config = json.loads(_podman("image", "inspect", f"{repo}:{commit}"))[0]["Config"]
    assert config["Labels"]["org.opencontainers.image.revision"] == commit
    assert not config["Labels"].get("tdi.run")  # the test host's own labels are not kept
    assert config["Cmd"] == ["sleep", "infinity"]  # the image's own, not systemd's
    with pytest.raises(docker.errors.ImageNotFound):  # made on Podman, not on Docker
        docker_client.images.get(f"{repo}:{commit}")
