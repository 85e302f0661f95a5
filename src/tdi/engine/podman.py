"""Podman, reached through its Docker-compatible API: the engine a command runs on, and
the API service tdi starts for the command when none is given.

The docker SDK (``DockerEngine``), the ``docker`` CLI of Ansible's
``community.docker.docker`` connection and Testinfra's docker backend all find the
engine by DOCKER_HOST. So one socket serves them all: ``podman system service`` on a
socket of tdi's own, pointed at by DOCKER_HOST for tdi and its children, and stopped when
the command ends. The service runs under tdi's guard, so it dies with tdi however tdi
ends; the containers it started live on (conmon holds them) and tdi removes them as on
Docker.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from tdi import guard
from tdi.errors import ConfigError, EngineError

log = logging.getLogger(__name__)

ENGINES = ("docker", "podman")
ENV = "TDI_ENGINE"
# What `docker version` names a Podman server's component.
PODMAN_COMPONENT = "Podman Engine"
# Seconds for the service to answer; it answers in well under one here.
START_TIMEOUT = 30.0
# runc's words when a container's rlimits exceed what the engine itself may grant: Podman
# asks for more than a machine with lower hard limits allows.
RLIMIT_REFUSED = "error setting rlimit"
RLIMIT_HINT = (
    "Podman asks for more open files or processes than this machine allows: set "
    "default_ulimits within `ulimit -Hn` and `ulimit -Hu` in containers.conf "
    "(scripts/setup.sh writes /etc/containers/containers.conf.d/tdi.conf)"
)


def chosen(configured: str | None) -> str | None:
    """The engine asked for: TDI_ENGINE, else tdi.yml's ``engine:``; None when neither
    says (the daemon at DOCKER_HOST decides)."""
    value = os.environ.get(ENV) or None
    if value is not None and value not in ENGINES:
        raise ConfigError(f"{ENV}={value}: expected one of {', '.join(ENGINES)}")
    return value or configured


def is_podman(version: Mapping[str, Any]) -> bool:
    """Whether a daemon's ``/version`` answer is Podman's."""
    components = version.get("Components") or []
    return any(isinstance(c, dict) and c.get("Name") == PODMAN_COMPONENT for c in components)


@contextlib.contextmanager
def reached(engine: str | None) -> Iterator[None]:
    """For ``engine: podman`` without DOCKER_HOST: a Podman API service of this command's
    own, DOCKER_HOST pointing at it (for tdi and every child) while the block runs."""
    if engine != "podman" or os.environ.get("DOCKER_HOST"):
        yield
        return
    podman = shutil.which("podman")
    if podman is None:
        raise EngineError(
            "engine: podman, but podman is not installed: run scripts/setup.sh "
            "(or apt-get install podman catatonit), or set DOCKER_HOST to a Podman socket"
        )
    with tempfile.TemporaryDirectory(prefix="tdi-podman-") as tmp:
        sock, errors = Path(tmp, "podman.sock"), Path(tmp, "service.log")
        url = f"unix://{sock}"
        argv = [podman, "system", "service", "--time=0", url]
        # Its warnings go to a file: a pipe nobody reads would stall it once full.
        with errors.open("wb") as out:
            proc = subprocess.Popen(
                guard.command(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )
        try:
            _wait_for(sock, proc, errors)
            log.debug("podman system service %s (pid %d)", url, proc.pid)
            os.environ["DOCKER_HOST"] = url
            yield
        finally:
            os.environ.pop("DOCKER_HOST", None)
            _stop(proc)


def _wait_for(sock: Path, proc: subprocess.Popen[bytes], errors: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = errors.read_text(encoding="utf-8", errors="replace").strip()
            last = err.splitlines()[-1] if err else f"exit status {proc.returncode}"
            raise EngineError(f"podman system service did not start: {last}")
        if sock.exists():
            with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as probe:
                probe.connect(str(sock))
                return
        time.sleep(0.05)
    _stop(proc)
    raise EngineError(f"podman system service did not answer in {START_TIMEOUT:.0f} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the guard, which stops the service's whole group."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=2 * guard.GRACE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
