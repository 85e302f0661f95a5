"""What tdi needs of a Docker daemon: the ``Engine`` protocol, and the shapes it speaks
(a container's settings, an image's facts, tdi's labels). ``docker_engine.DockerEngine``
is the implementation, on the docker SDK.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

RUN_LABEL = "tdi.run"
STATE_LABEL = "tdi.state"  # the node: SIDE or SIDE/HOST
SIDE_LABEL = "tdi.side"
HOST_LABEL = "tdi.host"
# An image that lives as long as its run (a rollback node's start): removed with the run's
# containers, by the run's end or by the reap of a run whose tdi is gone.
SCRATCH_LABEL = "tdi.scratch"


@dataclass(frozen=True)
class ContainerSpec:
    """Everything a test host's container is created with."""

    image: str
    name: str
    hostname: str  # also its alias on ``network``
    network: str
    labels: Mapping[str, str]
    command: tuple[str, ...] = ("sleep", "infinity")
    init: bool = True  # Docker's minimal init (tini) as PID 1, in front of ``command``
    tmpfs: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()  # "SOURCE:TARGET[:ro|rw]"
    capabilities: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    privileged: bool = False
    cgroupns: str | None = None
    sysctls: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageInfo:
    id: str
    tags: tuple[str, ...]
    labels: Mapping[str, str]
    cmd: tuple[str, ...] | None
    entrypoint: tuple[str, ...] | None
    env: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Manifest:
    """What a registry holds under a tag: its manifest digest and the image ids (config
    digests) it names, one per platform."""

    digest: str
    images: tuple[str, ...]


class Engine(Protocol):
    """What tdi asks of a Docker daemon, and of the registries its images are pushed to
    (``fetch``, ``push``, ``manifest``). ``docker_engine.DockerEngine`` is the real one;
    unit tests type their fakes with it. Failures are EngineError, ImageError or
    RegistryError, never the SDK's own."""

    kind: str  # "docker" or "podman": the engine that answers, and the CLI that reaches it

    # images

    def image(self, ref: str) -> ImageInfo | None:
        """The local image ``ref`` (name or id), or None."""
        ...

    def pull(self, ref: str) -> ImageInfo | None:
        """Pull ``ref`` where it may be: None when it cannot be had, for any reason."""
        ...

    def fetch(self, ref: str) -> ImageInfo | None:
        """Pull ``ref`` from a registry that must answer: None when the registry says it
        does not exist; a RegistryError when it cannot be reached or refuses."""
        ...

    def push(self, ref: str) -> str:
        """Push ``ref``; returns the digest the registry gave it."""
        ...

    def manifest(self, ref: str) -> Manifest | None:
        """What ``ref``'s registry holds under its tag; None if nothing. A RegistryError
        when it cannot be asked."""
        ...

    def registry_tags(self, repository: str) -> list[str] | None:
        """The tags of ``repository`` in its registry; [] if none; None if unknown."""
        ...

    def untag(self, ref: str) -> None:
        """Remove the tag ``ref`` here (not the image, if other tags hold it)."""
        ...

    def tag(self, image_id: str, ref: str) -> None:
        """Point the tag ``ref`` at an image here."""
        ...

    def import_rootfs(self, tarball: Path, ref: str, labels: Mapping[str, str]) -> str:
        """``docker import`` a root file system tarball; returns the image id."""
        ...

    def build(
        self, context: Path, ref: str, buildargs: Mapping[str, str], labels: Mapping[str, str]
    ) -> str:
        """``docker build`` a context; returns the image id."""
        ...

    def remove_image(self, ref: str) -> None:
        """Remove an image here, by tag or id; one that is gone already is fine."""
        ...

    def scratch_images(self, run_id: str) -> list[str]:
        """The ids of the images labelled as run ``run_id``'s scratch (SCRATCH_LABEL)."""
        ...

    # containers and networks

    def run(self, spec: ContainerSpec) -> str:
        """Start a long-lived container as ``spec`` says; returns its name."""
        ...

    def cgroup_version(self) -> str:
        """The daemon's cgroup version, "1" or "2": systemd needs another mount on each."""
        ...

    def has_path(self, image: str, path: str) -> bool:
        """Whether ``image`` holds ``path``, looked up without starting a container."""
        ...

    def read_files(self, image: str, paths: Sequence[str], limit: int) -> dict[str, bytes | None]:
        """The first ``limit`` + 1 bytes of each regular file of ``paths`` as ``image``
        holds it (None where it is not one), read without starting a container."""
        ...

    def create_network(self, name: str, labels: Mapping[str, str]) -> None:
        """Create a bridge network with these labels."""
        ...

    def networks(self, run_id: str) -> list[str]:
        """The networks labelled with run ``run_id``."""
        ...

    def attach(self, network: str, container: str, alias: str) -> None:
        """Attach a running container to ``network``, reachable there as ``alias``."""
        ...

    def addresses(self, network: str) -> dict[str, str]:
        """The IPv4 address of each container on ``network``, by container name."""
        ...

    def remove_networks(self, names: Sequence[str]) -> None:
        """Remove networks, first detaching what is still attached (the package cache)."""
        ...

    def is_running(self, name: str) -> bool:
        """Whether the container ``name`` exists and runs."""
        ...

    def exited(self, run_id: str) -> dict[str, int]:
        """The containers of run ``run_id`` that have stopped, with their exit codes."""
        ...

    def start(self, name: str) -> None:
        """Start a stopped container again, with the settings it was created with."""
        ...

    def stop(self, name: str) -> None:
        """Stop a running container (SIGTERM to its init, SIGKILL 10 s later)."""
        ...

    def as_admin(self, container: str, script: str) -> tuple[int, str]:
        """Run ``script`` in ``container``'s mount namespace with CAP_SYS_ADMIN, which the
        container itself lacks; returns its exit code and output."""
        ...

    def run_service(self, name: str, image: str, volume: str, label: str) -> None:
        """Start a service container that outlives runs (and restarts with the daemon);
        one that another run started first is fine."""
        ...

    def exec(self, container: str, argv: Sequence[str]) -> tuple[int, bytes, bytes]:
        """Run argv in the container; returns exit code, stdout, stderr."""
        ...

    def put_file(self, container: str, path: str, data: bytes) -> None:
        """Write ``data`` to ``path`` in the container, making its directory."""
        ...

    def commit(self, container: str, ref: str, labels: Mapping[str, str], image: ImageInfo) -> str:
        """Commit a container as ``ref`` with ``image``'s own CMD, ENTRYPOINT and
        environment; returns the image id."""
        ...

    def containers(self, run_id: str | None = None) -> list[str]:
        """The names of the containers of run ``run_id`` (of every run when None)."""
        ...

    def remove(self, names: Sequence[str]) -> None:
        """Remove containers, running or not; one that is gone already is fine."""
        ...
