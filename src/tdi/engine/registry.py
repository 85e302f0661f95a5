"""Read-only questions to a registry's HTTP API (distribution v2), with basic auth, and
whose credentials a registry gets. DockerEngine asks them for tdi (Engine.manifest and
Engine.registry_tags), so that tests answer them with a fake engine."""

from __future__ import annotations

import base64
import json
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import docker.auth
import docker.errors

from tdi.engine import refs
from tdi.engine.protocol import Manifest
from tdi.engine.refs import registry_of
from tdi.errors import RegistryError

log = logging.getLogger(__name__)

MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
_ACCEPT = ", ".join((MANIFEST, OCI_MANIFEST, LIST, OCI_INDEX))
USERNAME_ENV, PASSWORD_ENV = "TDI_REGISTRY_USERNAME", "TDI_REGISTRY_PASSWORD"


def credentials(ref: str, trusted: str | None) -> dict[str, str] | None:
    """TDI_REGISTRY_USERNAME/PASSWORD where ``ref`` is in the ``trusted`` registry (the
    configured repository's), else None (the SDK then reads ~/.docker/config.json). Image
    labels name other registries (tdi.parent), and they must not get the password."""
    user, password = os.environ.get(USERNAME_ENV), os.environ.get(PASSWORD_ENV)
    if user and password and trusted and registry_of(ref) == trusted:
        return {"username": user, "password": password}
    return None


def basic_auth(ref: str, trusted: str | None) -> tuple[str, str] | None:
    """Username and password for ``ref``'s registry, from the environment or docker config."""
    found = credentials(ref, trusted)
    if found is None and (registry := registry_of(ref)):
        try:
            found = docker.auth.resolve_authconfig(docker.auth.load_config(), registry)
        except docker.errors.DockerException as exc:  # a credential helper that fails
            log.debug("docker config credentials for %s: %s", registry, exc)
    if found and found.get("username") and found.get("password"):
        return str(found["username"]), str(found["password"])
    return None


def _url(registry: str, path: str) -> str:
    # Docker treats loopback registries as insecure (plain HTTP); others speak HTTPS.
    host = urllib.parse.urlsplit(f"//{registry}").hostname or ""
    loopback = host in ("localhost", "::1") or host.startswith("127.")
    scheme = "http" if loopback else "https"
    return f"{scheme}://{registry}/v2/{path}"


def _get(repository: str, path: str, accept: str = "") -> tuple[Any, bytes]:
    """GET ``path`` under ``repository``'s name; returns the headers and the body."""
    ref = refs.parse(repository)
    assert ref.registry
    request = urllib.request.Request(_url(ref.registry, f"{ref.path}/{path}"))
    if accept:
        request.add_header("Accept", accept)
    # Only the configured repository is ever asked: its registry may get the credentials.
    if auth := basic_auth(repository, ref.registry):
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.headers, response.read()


def tags(repository: str) -> list[str] | None:
    """The tags of ``repository`` in its registry; [] if it has none; None if unknown."""
    if refs.registry_of(repository) is None:
        return None
    try:
        return list(json.loads(_get(repository, "tags/list")[1]).get("tags") or [])
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return []
        log.debug("tags of %s: HTTP %s", repository, exc.code)
    except (OSError, ValueError) as exc:
        log.debug("tags of %s: %s", repository, exc)
    return None


def manifest(ref: str) -> Manifest | None:
    """What the registry holds under the tag ``ref``; None if nothing. A RegistryError when
    it cannot be asked (no registry host, token auth, unreachable)."""
    parsed = refs.parse(ref)
    if parsed.registry is None or parsed.tag is None:
        raise RegistryError(f"cannot ask a registry about {ref}: it names no registry or tag")
    try:
        headers, body = _get(parsed.repository, f"manifests/{parsed.tag}", _ACCEPT)
        data = json.loads(body)
        if data.get("mediaType") in (LIST, OCI_INDEX) or "manifests" in data:
            images = tuple(_config_of(parsed.repository, m["digest"]) for m in data["manifests"])
        else:
            images = (str(data["config"]["digest"]),)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise RegistryError(f"ask for {ref}: HTTP {exc.code} {exc.reason}") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RegistryError(f"ask for {ref}: {exc}") from exc
    return Manifest(str(headers.get("Docker-Content-Digest") or ""), images)


def _config_of(repository: str, digest: str) -> str:
    """The image id of one platform's manifest of a list (attestations have one too)."""
    data = json.loads(_get(repository, f"manifests/{digest}", _ACCEPT)[1])
    return str(data["config"]["digest"])
