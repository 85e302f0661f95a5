"""A package cache for every test host on a Docker daemon: apt-cacher-ng, in a container
that tdi builds from its own root image and keeps running, so that package lists and
.deb files are downloaded once per daemon rather than once per host and run.

A host finds it through apt's own configuration in tdi's environment: the container's
``APT_CONFIG`` names a file on a tmpfs under /run. Nothing is written into /etc, and a
committed snapshot keeps the image's own environment, so no cache setting is frozen.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from pathlib import Path

from tdi import locks
from tdi.config import DEFAULT_BASE_IMAGE, Config
from tdi.engine.protocol import Engine
from tdi.errors import TdiError
from tdi.hosts import images

log = logging.getLogger(__name__)

NAME = "tdi-apt-cache"  # the container, its network alias and its volume
PORT = 3142
LABEL = "tdi.cache"
DIR = "/run/tdi"  # a tmpfs on every host
APT_CONFIG = f"{DIR}/apt.conf"
PROXY = f'Acquire::http::Proxy "http://{NAME}:{PORT}/";\n'
DOCKERFILE = """\
ARG BASE
FROM ${BASE}
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends apt-cacher-ng \\
 && apt-get clean && rm -rf /var/lib/apt/lists/*
CMD ["/usr/sbin/apt-cacher-ng", "-c", "/etc/apt-cacher-ng", "ForeGround=1"]
"""
_WARNED: set[str] = set()


def ensure(engine: Engine, cfg: Config) -> bool:
    """Start the cache unless it runs; False (said once) when it cannot be had."""
    if not cfg.package_cache:
        return False
    try:
        locks.once(
            NAME, f"start {NAME}", lambda: engine.is_running(NAME), lambda: _start(engine, cfg)
        )
        if _listening(engine):
            return True
        reason = f"{NAME} does not answer on port {PORT}"
    except TdiError as exc:
        reason = str(exc)
    if reason not in _WARNED:
        _WARNED.add(reason)
        log.warning("package cache unavailable (%s): hosts use the mirror directly", reason)
    return False


def _start(engine: Engine, cfg: Config) -> None:
    recipe = cfg.images.get(cfg.base_image) or cfg.images[DEFAULT_BASE_IMAGE]
    ref = _build(engine, images.root_image(engine, recipe).id)
    engine.run_service(NAME, ref, volume=f"{NAME}:/var/cache/apt-cacher-ng", label=LABEL)
    log.info("package cache: started %s (apt-cacher-ng, kept running)", NAME)


def _build(engine: Engine, root: str) -> str:
    key = hashlib.sha256(f"{root}\0{DOCKERFILE}".encode()).hexdigest()[:12]
    ref = f"{NAME}:{key}"
    if engine.image(ref) is None:
        with tempfile.TemporaryDirectory(prefix="tdi-cache-") as tmp:
            Path(tmp, "Dockerfile").write_text(DOCKERFILE, encoding="utf-8")
            engine.build(Path(tmp), ref, {"BASE": root}, {LABEL: "apt"})
    return ref


def _listening(engine: Engine) -> bool:
    probe = (
        "import socket,time\n"
        "for _ in range(50):\n"
        f"    try: socket.create_connection(('127.0.0.1', {PORT}), 1); break\n"
        "    except OSError: time.sleep(0.1)\n"
        "else: raise SystemExit(1)\n"
    )
    code, _, _ = engine.exec(NAME, ["python3", "-c", probe])
    return code == 0


def configure(engine: Engine, container: str) -> None:
    """Write the host's apt configuration that points at the cache (on its tmpfs)."""
    script = f'mkdir -p {DIR} && printf "%s" "$0" > {APT_CONFIG}'
    code, _, err = engine.exec(container, ["sh", "-c", script, PROXY])
    if code != 0:
        raise TdiError(f"{container}: cannot write {APT_CONFIG}: {err.decode(errors='replace')}")
