"""Read-only questions to a registry's HTTP API (distribution v2), with basic auth."""

from __future__ import annotations

import base64
import json
import logging
import urllib.error
import urllib.request

from tdi.engine import basic_auth, registry_of

log = logging.getLogger(__name__)


def _url(registry: str, path: str) -> str:
    # Docker treats loopback registries as insecure (plain HTTP); others speak HTTPS.
    host = registry.rsplit(":", 1)[0] if not registry.endswith("]") else registry
    loopback = host in ("localhost", "[::1]") or host.startswith("127.")
    scheme = "http" if loopback else "https"
    return f"{scheme}://{registry}/v2/{path}"


def tags(repository: str) -> list[str] | None:
    """The tags of ``repository`` in its registry; [] if it has none; None if unknown."""
    registry = registry_of(repository)
    if registry is None:
        return None
    name = repository.split("/", 1)[1]
    request = urllib.request.Request(_url(registry, f"{name}/tags/list"))
    auth = basic_auth(repository)
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return list(json.load(response).get("tags") or [])
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return []
        log.debug("tags of %s: HTTP %s", repository, exc.code)
    except (OSError, ValueError) as exc:
        log.debug("tags of %s: %s", repository, exc)
    return None
