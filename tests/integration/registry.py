"""A real registry for tests: Debian's docker-registry on 127.0.0.1, optionally htpasswd."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

MANIFESTS = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Registry:
    """One docker-registry process with its own storage; stopped by ``stop``."""

    def __init__(self, workdir: Path, user: str | None = None, password: str | None = None):
        binary = shutil.which("docker-registry")
        assert binary, "docker-registry is not installed: run scripts/setup.sh"
        self.workdir = workdir
        self.storage = workdir / "storage"
        self.host = f"127.0.0.1:{free_port()}"
        self.user, self.password = user, password
        config = [
            "version: 0.1",
            "log: {level: error}",
            f"storage: {{filesystem: {{rootdirectory: {self.storage}}}}}",
            f"http: {{addr: '{self.host}'}}",
        ]
        if user and password:
            hashed = subprocess.run(
                ["htpasswd", "-Bbn", user, password], check=True, capture_output=True, text=True
            ).stdout
            (workdir / "htpasswd").write_text(hashed)
            config.append(f"auth: {{htpasswd: {{realm: tdi-tests, path: {workdir / 'htpasswd'}}}}}")
        (workdir / "config.yml").write_text("\n".join(config) + "\n")
        self.log = (workdir / "registry.log").open("w")
        self.proc = subprocess.Popen(
            [binary, "serve", str(workdir / "config.yml")],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait()

    def _wait(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self._get("")
                return
            except urllib.error.HTTPError:
                return  # 401 from an htpasswd registry: it is up
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"registry on {self.host} did not start; see {self.log.name}")

    def _get(self, path: str, method: str = "GET") -> tuple[dict[str, str], bytes]:
        request = urllib.request.Request(f"http://{self.host}/v2/{path}", method=method)
        request.add_header("Accept", MANIFESTS)
        if self.user and self.password:
            token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=30) as response:
            return dict(response.headers), response.read()

    def digest(self, name: str, tag: str) -> str | None:
        """The manifest digest the registry serves for name:tag, or None."""
        try:
            headers, _ = self._get(f"{name}/manifests/{tag}", method="HEAD")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise
        return headers.get("Docker-Content-Digest")

    def image_id(self, name: str, tag: str) -> str | None:
        """The image id (config digest) the registry holds for name:tag, or None."""
        try:
            _, body = self._get(f"{name}/manifests/{tag}")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise
        return str(json.loads(body)["config"]["digest"])

    def tags(self, name: str) -> list[str]:
        try:
            _, body = self._get(f"{name}/tags/list")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return []
            raise
        return sorted(json.loads(body).get("tags") or [])

    def tag_dir(self, name: str) -> Path:
        return self.storage / "docker/registry/v2/repositories" / name / "_manifests/tags"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


class StallingProxy:
    """A TCP proxy in front of a registry that holds back the first request that starts
    with ``stall_on`` (it is never forwarded) and sets ``stalled``: a test acts while the
    pushing daemon waits. Everything else, the same request again included, goes through.
    """

    def __init__(self, upstream: str, stall_on: bytes) -> None:
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.stall_on = stall_on
        self.stalled = threading.Event()
        self.release = threading.Event()
        self._once = threading.Lock()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.host = f"127.0.0.1:{self.server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return  # stopped
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client, socket.create_connection(self.upstream) as upstream:
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()
            tail = b""
            try:
                while chunk := client.recv(65536):
                    if self.stall_on in tail + chunk and self._once.acquire(blocking=False):
                        self.stalled.set()
                        self.release.wait()
                        return  # the held request is dropped with its connection
                    tail = (tail + chunk)[-len(self.stall_on) :]
                    upstream.sendall(chunk)
            except OSError:
                return

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                target.sendall(chunk)
            target.shutdown(socket.SHUT_WR)  # the registry closed: let the client see it
        except OSError:
            return

    def stop(self) -> None:
        self.release.set()
        self.server.close()
