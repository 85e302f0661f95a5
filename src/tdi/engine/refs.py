"""Image references: ``[REGISTRY/]NAME[:TAG][@DIGEST]``, read by the Docker SDK's own parser.

The one place that splits a reference. It imports only the SDK's pure parsing helpers
(``docker.utils.parse_repository_tag``, ``docker.auth.resolve_repository_name``), never a
client: talking to the daemon stays in engine.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import docker.auth
import docker.errors
import docker.utils

from tdi.errors import ConfigError

LATEST = "latest"


@dataclass(frozen=True)
class Reference:
    """A parsed image reference."""

    repository: str  # with its registry host, without tag or digest
    tag: str | None = None
    digest: str | None = None  # "sha256:<hex>"

    @property
    def registry(self) -> str | None:
        """The registry host (``127.0.0.1:5000``), or None for Docker Hub or a local name."""
        index, _ = docker.auth.resolve_repository_name(self.repository)
        return None if index == docker.auth.INDEX_NAME else str(index)

    @property
    def path(self) -> str:
        """The repository's name inside its registry (``team/app``)."""
        _, name = docker.auth.resolve_repository_name(self.repository)
        return str(name)

    def __str__(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        digest = f"@{self.digest}" if self.digest else ""
        return f"{self.repository}{tag}{digest}"


def parse(ref: str) -> Reference:
    """``ref`` split into repository, tag and digest; a ConfigError if it is no reference."""
    name, digest = ref, None
    if "@" in ref:
        name, digest = docker.utils.parse_repository_tag(ref)
    repository, tag = docker.utils.parse_repository_tag(name)
    if problem := _problem(repository, tag, digest):
        raise ConfigError(
            f"image reference {ref!r}: {problem}; expected [REGISTRY/]NAME[:TAG][@sha256:DIGEST]"
        )
    return Reference(repository, tag, digest)


def _problem(repository: str, tag: str | None, digest: str | None) -> str:
    if not repository:
        return "no repository name"
    if tag == "" or digest == "":
        return "an empty tag or digest"
    if digest is not None and ":" not in digest:
        return f"digest {digest!r} names no algorithm"
    try:
        _, name = docker.auth.resolve_repository_name(repository)
    except docker.errors.InvalidRepository as exc:
        return str(exc)
    return "a repository name is lower case" if name != name.lower() else ""


def split(ref: str) -> tuple[str, str]:
    """Repository and tag of ``ref`` (``latest`` when it has none), as ``docker tag`` and
    ``docker push`` take them; a reference by digest cannot be tagged or pushed."""
    parsed = parse(ref)
    if parsed.digest:
        raise ConfigError(f"image reference {ref!r}: expected a tag, not a digest")
    return parsed.repository, parsed.tag or LATEST


def registry_of(ref: str) -> str | None:
    """The registry host of ``ref``, or None for a local name (or Docker Hub)."""
    return parse(ref).registry


def with_tag(ref: str, tag: str) -> str:
    """``ref``'s repository with ``tag`` (its own tag or digest dropped)."""
    return f"{parse(ref).repository}:{tag}"
