"""The Docker daemon through the docker SDK: ``DockerEngine``, the ``Engine`` tdi runs
with. The only module that imports ``docker`` for the daemon; every SDK failure is
translated here into an EngineError or ImageError.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests

from tdi import interrupts
from tdi.engine import podman, registry
from tdi.engine.protocol import (
    HOST_LABEL,
    RUN_LABEL,
    SCRATCH_LABEL,
    SIDE_LABEL,
    STATE_LABEL,
    ContainerSpec,
    ImageInfo,
    Manifest,
)
from tdi.engine.refs import registry_of, split
from tdi.engine.registry import credentials
from tdi.errors import EngineError, ImageError, RegistryError

log = logging.getLogger(__name__)

# The registry's own words for "no such tag or repository". "pull access denied ...
# repository does not exist or may require 'docker login'" is a refusal, not an absence.
NOT_FOUND = ("manifest unknown", "name unknown")
PUSHED = re.compile(r"digest: (sha256:[0-9a-f]{64})")
# What the SDK raises: its own errors, and requests' (a daemon that died, a timeout).
SDK_ERRORS = (docker.errors.DockerException, requests.RequestException)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "no reason given"


def _where() -> str:
    host = os.environ.get("DOCKER_HOST")
    return f"DOCKER_HOST={host}" if host else "unix:///var/run/docker.sock"


@contextmanager
def _wrapped(what: str) -> Iterator[None]:
    try:
        yield
    except docker.errors.ImageNotFound as exc:
        raise ImageError(f"{what}: image not found") from exc
    except docker.errors.APIError as exc:
        text = str(exc.explanation or exc)
        hint = f": {podman.RLIMIT_HINT}" if podman.RLIMIT_REFUSED in text else ""
        raise EngineError(f"{what}: {text}{hint}") from exc
    except (*SDK_ERRORS, OSError) as exc:
        raise EngineError(f"{what}: {_first_line(str(exc))}") from exc


# runc's words when a container asks for a capability the daemon does not hold itself (a
# daemon that runs in a container, say); `privileged` asks for every one of them.
CAPS_REFUSED = "unable to apply caps"


def _caps_refused(spec: ContainerSpec) -> str:
    start = f"start container {spec.name} from {spec.image}"
    if spec.privileged:
        return (
            f"{start}: the Docker daemon refuses privileged containers (runc: {CAPS_REFUSED}): "
            "remove privileged: true; under init: systemd tdi's drop-in already relaxes what "
            "needs namespaces, and capabilities: adds what a unit needs (SYS_ADMIN for "
            "DynamicUser=)"
        )
    return (
        f"{start}: the Docker daemon cannot grant one of the capabilities "
        f"{', '.join(spec.capabilities)} (runc: {CAPS_REFUSED}): remove it from capabilities:"
    )


# Tries of one exec whose output docker-py could not read; see DockerEngine.exec.
EXEC_TRIES = 3


class _Stream(io.RawIOBase):
    """The chunks of an SDK stream as a file, for tarfile."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        # An empty chunk would read as the end: readinto takes the next one, once.
        self._chunks, self._left = (c for c in chunks if c), b""

    def readinto(self, buffer: Any) -> int:
        self._left = self._left or next(self._chunks, b"")
        n = min(len(buffer), len(self._left))
        buffer[:n], self._left = self._left[:n], self._left[n:]
        return n


# What Podman puts in every container's environment, and puts again in one of a snapshot.
PODMAN_SETS = {"HOME", "HOSTNAME", "TERM", "container_uuid"}


def _changes(conf: Mapping[str, Any], container_env: Sequence[str]) -> list[str]:
    """``conf`` (a commit's labels, CMD, ENTRYPOINT and environment) as the instructions of
    a commit's ``changes``. An instruction cannot remove a variable: one the container was
    given and ``conf`` has not (APT_CONFIG) is left empty, which apt reads as unset; those
    Podman gives every container are left out (an empty HOME would stay empty)."""
    env = dict(e.split("=", 1) for e in conf["Env"] if "=" in e)
    added = {e.split("=", 1)[0] for e in container_env} - set(env) - PODMAN_SETS
    return [
        *(f"LABEL {json.dumps(k)}={json.dumps(v)}" for k, v in conf["Labels"].items()),
        f"CMD {json.dumps(conf['Cmd'] or [])}",
        f"ENTRYPOINT {json.dumps(conf['Entrypoint'] or [])}",
        *(f"ENV {k}={json.dumps(v)}" for k, v in env.items()),
        *(f"ENV {k}=" for k in sorted(added)),
    ]


class DockerEngine:
    """A connected Docker daemon: tdi's ``Engine``."""

    def __init__(self, client: Any, trusting: str | None = None, kind: str = "docker") -> None:
        self._client = client
        # The one registry that may receive the credentials from the environment.
        self._trusted = registry_of(trusting) if trusting else None
        self.kind = kind  # "docker" or "podman": what answers at DOCKER_HOST

    @classmethod
    def connect(cls, trusting: str | None = None, engine: str | None = None) -> DockerEngine:
        """Connect and ping, or raise one EngineError that says how to start a daemon.
        ``trusting``: the configured repository, whose registry may get the credentials;
        ``engine``: the one asked for (docker or podman), None for whichever answers."""
        try:
            client = docker.from_env(timeout=300)
            client.ping()
            kind = "podman" if podman.is_podman(client.version()) else "docker"
        except (*SDK_ERRORS, OSError) as exc:
            raise EngineError(
                f"no Docker daemon answers at {_where()}: start one "
                "(scripts/setup.sh does, or run `dockerd &` as root) or set DOCKER_HOST"
            ) from exc
        if engine is not None and engine != kind:
            client.close()
            raise EngineError(f"engine: {engine}, but {kind} answers at {_where()}")
        log.debug("engine: %s at %s", kind, _where())
        return cls(client, trusting, kind)

    # images

    def image(self, ref: str) -> ImageInfo | None:
        """The local image ``ref`` (name or id), or None."""
        with _wrapped(f"inspect image {ref}"):
            try:
                img = self._client.images.get(ref)
            except docker.errors.APIError as exc:
                # A malformed reference (400) is just absent, as a missing image is.
                if isinstance(exc, docker.errors.ImageNotFound) or exc.status_code in (400, 404):
                    return None
                raise
        config = img.attrs.get("Config") or {}
        return ImageInfo(
            id=img.id,
            tags=tuple(img.tags),
            labels=dict(config.get("Labels") or {}),
            cmd=tuple(config["Cmd"]) if config.get("Cmd") else None,
            entrypoint=tuple(config["Entrypoint"]) if config.get("Entrypoint") else None,
            env=tuple(config["Env"]) if config.get("Env") else None,
        )

    def pull(self, ref: str) -> ImageInfo | None:
        """Pull ``ref``; None when it cannot be pulled (absent, or no registry reachable)."""
        try:
            self._client.images.pull(ref)
        except SDK_ERRORS as exc:
            log.debug("pull %s failed: %s", ref, exc)
            return None
        return self.image(ref)

    def fetch(self, ref: str) -> ImageInfo | None:
        """Pull ``ref``: None when its registry says it does not exist; a RegistryError
        when the registry cannot be reached or refuses."""
        repo, tag = split(ref)
        auth, cause = credentials(ref, self._trusted), None
        try:
            # Docker fails the request; Podman answers 200 and streams the registry's "no".
            chunks = self._client.api.pull(
                repo, tag=tag, stream=True, decode=True, auth_config=auth
            )
            said = next((str(c["error"]) for c in chunks if c.get("error")), None)
        except SDK_ERRORS as exc:
            said, cause = str(getattr(exc, "explanation", None) or exc), exc
        if said is None:
            return self.image(ref)
        if any(marker in said for marker in NOT_FOUND):
            return None
        raise RegistryError(f"pull {ref}: {_first_line(said)}") from cause

    def push(self, ref: str) -> str:
        """Push ``ref``; returns the digest the registry gave it."""
        repo, tag = split(ref)
        digest = ""
        try:
            stream = self._client.images.push(
                repo, tag=tag, stream=True, decode=True, auth_config=credentials(ref, self._trusted)
            )
            for chunk in stream:
                if "error" in chunk:
                    raise RegistryError(f"push {ref} refused: {_first_line(chunk['error'])}")
                digest = chunk.get("aux", {}).get("Digest", digest)
                # Podman says it only in words, as the docker CLI prints it: "TAG: digest: ..."
                if not digest and (said := PUSHED.search(str(chunk.get("status", "")))):
                    digest = said.group(1)
        except SDK_ERRORS as exc:
            raise RegistryError(f"push {ref}: {_first_line(str(exc))}") from exc
        return str(digest)

    def manifest(self, ref: str) -> Manifest | None:
        return registry.manifest(ref)

    def registry_tags(self, repository: str) -> list[str] | None:
        return registry.tags(repository)

    def untag(self, ref: str) -> None:
        try:
            self._client.images.remove(ref, noprune=True)
        except SDK_ERRORS as exc:
            log.debug("untag %s: %s", ref, exc)

    def tag(self, image_id: str, ref: str) -> None:
        repo, tag = split(ref)
        with _wrapped(f"tag {ref}"):
            self._client.images.get(image_id).tag(repo, tag)

    def import_rootfs(self, tarball: Path, ref: str, labels: Mapping[str, str]) -> str:
        """``docker import`` a root file system tarball; returns the image id."""
        repo, tag = split(ref)
        changes = [f"LABEL {k}={v}" for k, v in labels.items()] + ['CMD ["sleep", "infinity"]']
        with _wrapped(f"import {tarball} as {ref}"):
            self._client.api.import_image_from_file(
                str(tarball), repository=repo, tag=tag, changes=changes
            )
        info = self.image(ref)
        if info is None:
            raise ImageError(f"import {tarball} as {ref}: the image did not appear")
        return info.id

    def build(
        self, context: Path, ref: str, buildargs: Mapping[str, str], labels: Mapping[str, str]
    ) -> str:
        """``docker build`` a context; returns the image id. Build output goes to debug log."""
        try:
            image, output = self._client.images.build(
                path=str(context), tag=ref, buildargs=dict(buildargs), labels=dict(labels), rm=True
            )
        except docker.errors.BuildError as exc:
            tail = [str(c.get("stream") or c.get("error") or "").strip() for c in exc.build_log]
            last = next((t for t in reversed(tail) if t), str(exc))
            raise ImageError(f"build {context}/Dockerfile failed: {last}") from exc
        except SDK_ERRORS as exc:  # a build longer than the client's timeout, too
            raise ImageError(f"build {context}/Dockerfile failed: {_first_line(str(exc))}") from exc
        for chunk in output:
            if chunk.get("stream", "").strip():
                log.debug("build: %s", chunk["stream"].rstrip())
        return str(image.id)

    def remove_image(self, ref: str) -> None:
        with _wrapped(f"remove image {ref}"):
            self._client.images.remove(ref, noprune=False)

    def scratch_images(self, run_id: str) -> list[str]:
        with _wrapped("list images"):
            found = self._client.api.images(filters={"label": f"{SCRATCH_LABEL}={run_id}"})
        return [str(i["Id"]) for i in found]

    # containers

    def run(self, spec: ContainerSpec) -> str:
        """Start a long-lived container as ``spec`` says; returns its name."""
        net = self._client.api.create_networking_config(
            {spec.network: self._client.api.create_endpoint_config(aliases=[spec.hostname])}
        )
        with _wrapped(f"start container {spec.name} from {spec.image}"):
            box = self._client.containers.create(
                spec.image,
                command=list(spec.command),
                entrypoint=[],
                name=spec.name,
                hostname=spec.hostname,
                labels=dict(spec.labels),
                init=spec.init,
                tmpfs={path: "" for path in spec.tmpfs} or None,
                volumes=list(spec.volumes) or None,
                cap_add=list(spec.capabilities) or None,
                environment=dict(spec.env) or None,
                privileged=spec.privileged,
                cgroupns=spec.cgroupns,
                sysctls=dict(spec.sysctls) or None,
                network=spec.network,
                networking_config=net,
                detach=True,
            )
            try:
                box.start()
            except docker.errors.APIError as exc:
                if CAPS_REFUSED not in str(exc.explanation or exc):
                    raise
                with contextlib.suppress(*SDK_ERRORS):  # created, never started: nothing left
                    box.remove(force=True)
                raise EngineError(_caps_refused(spec)) from exc
            box.reload()
            if box.status != "running":  # an image without `sleep`, say
                output = box.logs(tail=3).decode(errors="replace")
                raise EngineError(
                    f"container {spec.name} from {spec.image} exited at once: {_first_line(output)}"
                )
        return spec.name

    def cgroup_version(self) -> str:
        """The daemon's cgroup version, "1" or "2": systemd needs a different mount on each."""
        with _wrapped("docker info"):
            return str(self._client.info().get("CgroupVersion") or "1")

    @contextmanager
    def _unstarted(self, image: str, what: str) -> Iterator[str]:
        """The id of a container of ``image``, created, never started, and removed after
        the block. An interrupt waits: the container has no name or label to find it by."""
        with interrupts.deferred(), _wrapped(what):
            box = self._client.containers.create(image, command=["true"], entrypoint=[])
            try:
                yield box.id
            finally:
                box.remove(force=True)

    def has_path(self, image: str, path: str) -> bool:
        """Whether ``image`` holds ``path``; looks without starting a container."""
        with self._unstarted(image, f"look for {path} in {image}") as box:
            try:
                self._client.api.get_archive(box, path)[0].close()
                return True
            except docker.errors.NotFound:
                return False

    def read_files(self, image: str, paths: Sequence[str], limit: int) -> dict[str, bytes | None]:
        """The first ``limit`` + 1 bytes of each regular file of ``paths`` in ``image``
        (None where it is not one), from a container created and never started."""
        with self._unstarted(image, f"read files of {image}") as box:
            return {path: self._head(box, path, limit) for path in paths}

    def _head(self, container: str, path: str, limit: int) -> bytes | None:
        try:
            stream, _ = self._client.api.get_archive(container, path)
        except docker.errors.NotFound:
            return None
        # Streamed: only the head of a large file is read from the daemon.
        with tarfile.open(fileobj=_Stream(stream), mode="r|") as tar:
            member = next(iter(tar), None)
            if member is None or not member.isreg():
                return None
            data = tar.extractfile(member)
            return data.read(limit + 1) if data is not None else None

    def create_network(self, name: str, labels: Mapping[str, str]) -> None:
        with _wrapped(f"create network {name}"):
            self._client.networks.create(name, labels=dict(labels), check_duplicate=True)

    def networks(self, run_id: str) -> list[str]:
        with _wrapped("list networks"):
            found = self._client.networks.list(filters={"label": f"{RUN_LABEL}={run_id}"})
        return [n.name for n in found]

    def attach(self, network: str, container: str, alias: str) -> None:
        """Attach a running container to ``network``, reachable there as ``alias``."""
        with _wrapped(f"connect {container} to {network}"):
            self._client.networks.get(network).connect(container, aliases=[alias])

    def addresses(self, network: str) -> dict[str, str]:
        """The IPv4 address of each container on ``network``, by container name."""
        with _wrapped(f"inspect network {network}"):
            found = self._client.api.inspect_network(network)
        return {
            str(c.get("Name")): str(c.get("IPv4Address", "")).split("/")[0]
            for c in (found.get("Containers") or {}).values()
            if c.get("IPv4Address")
        }

    def remove_networks(self, names: Sequence[str]) -> None:
        """Remove networks, first detaching what is still attached (the package cache)."""
        for name in names:
            try:
                network = self._client.networks.get(name)
                for box in network.containers:
                    network.disconnect(box, force=True)
                network.remove()
            except docker.errors.NotFound:
                continue
            except SDK_ERRORS as exc:
                log.warning("could not remove network %s: %s", name, exc)

    def _state(self, name: str) -> dict[str, Any] | None:
        """The container's state as the daemon inspects it; None when there is none."""
        try:
            return dict(self._client.api.inspect_container(name)["State"])
        except docker.errors.NotFound:
            return None
        except SDK_ERRORS as exc:
            raise EngineError(f"inspect container {name}: {_first_line(str(exc))}") from exc

    def is_running(self, name: str) -> bool:
        state = self._state(name)
        return state is not None and state.get("Status") == "running"

    def exited(self, run_id: str) -> dict[str, int]:
        """The containers of run ``run_id`` that have stopped, with their exit codes: one
        list, cheap enough to ask every half second, then one inspect per stopped one."""
        found = self._names({"label": f"{RUN_LABEL}={run_id}", "status": "exited"})
        states = {name: self._state(name) for name in found}  # None: removed in between
        return {name: int(s.get("ExitCode", 0)) for name, s in states.items() if s is not None}

    def start(self, name: str) -> None:
        with _wrapped(f"start container {name}"):
            self._client.api.start(name)

    def stop(self, name: str) -> None:
        with _wrapped(f"stop container {name}"):
            self._client.api.stop(name, timeout=10)

    def as_admin(self, container: str, script: str) -> tuple[int, str]:
        """Run ``script`` in ``container``'s mount namespace with CAP_SYS_ADMIN, which the
        container itself lacks: from a helper container of its image that shares its PID
        namespace (no privileged container, which some daemons refuse), labelled with its
        run, and removed before this returns. An interrupt waits for the removal."""
        argv = ["nsenter", "--target", "1", "--mount", "sh", "-c", script]
        with _wrapped(f"inspect container {container}"):
            box = self._client.containers.get(container)
        with interrupts.deferred(), _wrapped(f"run a helper in {container}'s namespaces"):
            helper = self._client.containers.create(
                box.attrs["Image"],
                command=argv,
                entrypoint=[],
                name=f"{container}-admin",
                labels={RUN_LABEL: box.labels.get(RUN_LABEL, "")},
                pid_mode=f"container:{container}",
                cap_add=["SYS_ADMIN", "SYS_PTRACE"],  # mount; open PID 1's namespaces
                network_mode="none",
                detach=True,
            )
            try:
                helper.start()
                code = int(helper.wait(timeout=30)["StatusCode"])
                return code, helper.logs().decode(errors="replace").strip()
            finally:
                helper.remove(force=True)

    def run_service(self, name: str, image: str, volume: str, label: str) -> None:
        """Start a long-lived service container that outlives runs (it restarts with the
        daemon); one that another run started first is fine."""
        try:
            found = self._client.containers.get(name)
            if found.status == "running":
                return  # another run started it a moment ago
            found.remove(force=True)  # stopped: start it anew
        except docker.errors.NotFound:
            pass
        except SDK_ERRORS as exc:
            raise EngineError(f"replace container {name}: {_first_line(str(exc))}") from exc
        try:
            self._client.containers.run(
                image,
                name=name,
                labels={label: "apt"},
                volumes=[volume],
                init=True,
                detach=True,
                restart_policy={"Name": "unless-stopped"},
            )
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # 409: another run started it a moment ago
                raise EngineError(f"start {name}: {exc.explanation or exc}") from exc
        except SDK_ERRORS as exc:
            raise EngineError(f"start {name}: {_first_line(str(exc))}") from exc

    def exec(self, container: str, argv: Sequence[str]) -> tuple[int, bytes, bytes]:
        """Run argv in the container; returns exit code, stdout, stderr.

        docker-py's demultiplexer sometimes reads payload bytes as a frame header under
        load ("ValueError: 32 is not a valid stream", docker/docker-py#3160): the command
        ran, only reading its output failed. Every argv tdi runs this way reads state or
        is idempotent, so it is run again, up to ``EXEC_TRIES`` times in all.
        """
        for attempt in range(1, EXEC_TRIES + 1):
            try:
                with _wrapped(f"exec in {container}"):
                    box = self._client.containers.get(container)
                    result = box.exec_run(list(argv), demux=True)
                break
            except ValueError as exc:
                log.debug("exec in %s: %s (try %d of %d)", container, exc, attempt, EXEC_TRIES)
        else:
            raise EngineError(
                f"exec in {container}: the Docker SDK could not read the output of "
                f"{argv[0]} in {EXEC_TRIES} tries (docker-py#3160)"
            )
        out, err = result.output
        return result.exit_code, out or b"", err or b""

    def put_file(self, container: str, path: str, data: bytes) -> None:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(os.path.basename(path))
            info.size = len(data)  # and mode 0o644, TarInfo's own
            tar.addfile(info, io.BytesIO(data))
        with _wrapped(f"write {path} in {container}"):
            box = self._client.containers.get(container)
            box.exec_run(["mkdir", "-p", os.path.dirname(path)])
            box.put_archive(os.path.dirname(path), buf.getvalue())

    def commit(self, container: str, ref: str, labels: Mapping[str, str], image: ImageInfo) -> str:
        """Commit a container as ``ref``, restoring the image's own CMD, ENTRYPOINT and
        environment (a test host's own, the package cache's say, is not frozen)."""
        repo, tag = split(ref)
        # The daemon adds the container's own labels (tdi.run, ...) unless they are set here.
        ours = dict.fromkeys((RUN_LABEL, STATE_LABEL, SIDE_LABEL, HOST_LABEL), "")
        conf: dict[str, Any] = {
            "Labels": {**image.labels, **ours, **labels},
            "Cmd": list(image.cmd) if image.cmd else None,
            "Entrypoint": list(image.entrypoint) if image.entrypoint else None,
            "Env": list(image.env or ()),
        }
        with _wrapped(f"commit {container} as {ref}"):
            box = self._client.containers.get(container)
            # Podman's API ignores ``conf``: the same settings, as Dockerfile instructions.
            changes = (
                _changes(conf, box.attrs["Config"].get("Env") or [])
                if self.kind == "podman"
                else None
            )
            committed = box.commit(repository=repo, tag=tag, conf=conf, changes=changes)
        return str(committed.id)

    def containers(self, run_id: str | None = None) -> list[str]:
        """The names of the containers of run ``run_id`` (of every run when None).

        The daemon's list as it answers it: the SDK's ``containers.list`` inspects each one
        after listing, and fails with "No such container" on one another run removes in
        between (seen with 8 runs at once)."""
        return self._names({"label": f"{RUN_LABEL}={run_id}" if run_id else RUN_LABEL})

    def _names(self, filters: Mapping[str, str]) -> list[str]:
        with _wrapped("list containers"):
            found = self._client.api.containers(all=True, filters=dict(filters))
        return [str(c["Names"][0]).lstrip("/") for c in found if c.get("Names")]

    def remove(self, names: Sequence[str]) -> None:
        for name in names:
            try:
                self._client.containers.get(name).remove(force=True)
            except docker.errors.NotFound:
                continue
            except SDK_ERRORS as exc:
                log.warning("could not remove container %s: %s", name, exc)
