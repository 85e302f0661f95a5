"""tdi.registry against a stub registry on 127.0.0.1: tags, and the manifest of a tag."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tdi.engine import registry
from tdi.engine.protocol import Manifest
from tdi.errors import RegistryError

CONFIG = "sha256:" + "c" * 64
# path -> (status, body); a manifest list points at one manifest per platform.
ROUTES: dict[str, tuple[int, dict[str, Any]]] = {
    "/v2/team/app/tags/list": (200, {"name": "team/app", "tags": ["1", "production"]}),
    "/v2/team/app/manifests/1": (
        200,
        {"mediaType": registry.MANIFEST, "config": {"digest": CONFIG}},
    ),
    "/v2/team/app/manifests/multi": (
        200,
        {"mediaType": registry.OCI_INDEX, "manifests": [{"digest": "sha256:amd64"}]},
    ),
    "/v2/team/app/manifests/sha256:amd64": (
        200,
        {"mediaType": registry.OCI_MANIFEST, "config": {"digest": CONFIG}},
    ),
    "/v2/team/app/manifests/broken": (500, {}),
}


class Stub(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, body = ROUTES.get(self.path, (404, {"errors": [{"code": "MANIFEST_UNKNOWN"}]}))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Docker-Content-Digest", f"sha256:manifest-{self.path.rsplit('/', 1)[1]}")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def stub() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}/team/app"
    server.shutdown()
    server.server_close()


def test_tags(stub: str) -> None:
    assert registry.tags(stub) == ["1", "production"]
    assert registry.tags(stub.replace("team/app", "team/new")) == []
    assert registry.tags("team/app") is None  # Docker Hub: not asked


def test_manifest_of_one_image(stub: str) -> None:
    assert registry.manifest(f"{stub}:1") == Manifest("sha256:manifest-1", (CONFIG,))


def test_manifest_of_a_list_names_each_platforms_image(stub: str) -> None:
    found = registry.manifest(f"{stub}:multi")
    assert found == Manifest("sha256:manifest-multi", (CONFIG,))


def test_manifest_of_no_such_tag_is_none(stub: str) -> None:
    assert registry.manifest(f"{stub}:missing") is None


@pytest.mark.parametrize(
    ("tail", "message"),
    [(":broken", "HTTP 500"), ("", "names no registry or tag")],
)
def test_manifest_that_cannot_be_read_is_a_registry_error(
    stub: str, tail: str, message: str
) -> None:
    with pytest.raises(RegistryError, match=message):
        registry.manifest(f"{stub}{tail}")
