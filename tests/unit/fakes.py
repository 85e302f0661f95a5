"""Fakes for unit tests. ``NullEngine`` is an ``Engine`` that expects no call: a test's
fake engine subclasses it and overrides what the code under test asks for, so that mypy
checks each fake against the protocol and an unexpected call fails loudly."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from tdi.engine.protocol import ContainerSpec, Engine, ImageInfo, Manifest


class NullEngine(Engine):
    """Every method fails the test: override the ones the code under test should call."""

    kind = "docker"

    def image(self, ref: str) -> ImageInfo | None:
        raise AssertionError("unexpected call: engine.image")

    def pull(self, ref: str) -> ImageInfo | None:
        raise AssertionError("unexpected call: engine.pull")

    def fetch(self, ref: str) -> ImageInfo | None:
        raise AssertionError("unexpected call: engine.fetch")

    def push(self, ref: str) -> str:
        raise AssertionError("unexpected call: engine.push")

    def manifest(self, ref: str) -> Manifest | None:
        raise AssertionError("unexpected call: engine.manifest")

    def registry_tags(self, repository: str) -> list[str] | None:
        raise AssertionError("unexpected call: engine.registry_tags")

    def untag(self, ref: str) -> None:
        raise AssertionError("unexpected call: engine.untag")

    def tag(self, image_id: str, ref: str) -> None:
        raise AssertionError("unexpected call: engine.tag")

    def import_rootfs(self, tarball: Path, ref: str, labels: Mapping[str, str]) -> str:
        raise AssertionError("unexpected call: engine.import_rootfs")

    def build(
        self, context: Path, ref: str, buildargs: Mapping[str, str], labels: Mapping[str, str]
    ) -> str:
        raise AssertionError("unexpected call: engine.build")

    def remove_image(self, ref: str) -> None:
        raise AssertionError("unexpected call: engine.remove_image")

    def scratch_images(self, run_id: str) -> list[str]:
        raise AssertionError("unexpected call: engine.scratch_images")

    def run(self, spec: ContainerSpec) -> str:
        raise AssertionError("unexpected call: engine.run")

    def cgroup_version(self) -> str:
        raise AssertionError("unexpected call: engine.cgroup_version")

    def has_path(self, image: str, path: str) -> bool:
        raise AssertionError("unexpected call: engine.has_path")

    def read_files(self, image: str, paths: Sequence[str], limit: int) -> dict[str, bytes | None]:
        raise AssertionError("unexpected call: engine.read_files")

    def create_network(self, name: str, labels: Mapping[str, str]) -> None:
        raise AssertionError("unexpected call: engine.create_network")

    def networks(self, run_id: str) -> list[str]:
        raise AssertionError("unexpected call: engine.networks")

    def attach(self, network: str, container: str, alias: str) -> None:
        raise AssertionError("unexpected call: engine.attach")

    def addresses(self, network: str) -> dict[str, str]:
        raise AssertionError("unexpected call: engine.addresses")

    def remove_networks(self, names: Sequence[str]) -> None:
        raise AssertionError("unexpected call: engine.remove_networks")

    def is_running(self, name: str) -> bool:
        raise AssertionError("unexpected call: engine.is_running")

    def exited(self, run_id: str) -> dict[str, int]:
        raise AssertionError("unexpected call: engine.exited")

    def start(self, name: str) -> None:
        raise AssertionError("unexpected call: engine.start")

    def stop(self, name: str) -> None:
        raise AssertionError("unexpected call: engine.stop")

    def as_admin(self, container: str, script: str) -> tuple[int, str]:
        raise AssertionError("unexpected call: engine.as_admin")

    def run_service(self, name: str, image: str, volume: str, label: str) -> None:
        raise AssertionError("unexpected call: engine.run_service")

    def exec(self, container: str, argv: Sequence[str]) -> tuple[int, bytes, bytes]:
        raise AssertionError("unexpected call: engine.exec")

    def put_file(self, container: str, path: str, data: bytes) -> None:
        raise AssertionError("unexpected call: engine.put_file")

    def commit(self, container: str, ref: str, labels: Mapping[str, str], image: ImageInfo) -> str:
        raise AssertionError("unexpected call: engine.commit")

    def containers(self, run_id: str | None = None) -> list[str]:
        raise AssertionError("unexpected call: engine.containers")

    def remove(self, names: Sequence[str]) -> None:
        raise AssertionError("unexpected call: engine.remove")
