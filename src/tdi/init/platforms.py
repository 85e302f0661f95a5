"""One Molecule platform as a host of tdi.yml: its groups, image, init and container
settings, and a note for each key tdi does not take as it is (init/molecule.py)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from tdi.config import DEFAULT_BASE_IMAGE

# Images of the Debian family: tdi's own base image (Debian 12 with systemd, built here
# with debootstrap) stands in for them where none can be pulled.
_DEBIAN = re.compile(r"(^|[/_-])(debian|ubuntu)[0-9.:_-]*|(^|/)(debian|ubuntu)(:|$)")
# Molecule's platform commands that boot systemd.
_SYSTEMD = ("/lib/systemd/systemd", "/usr/lib/systemd/systemd", "/sbin/init", "/usr/sbin/init")
# What tdi gives a systemd host itself (hosts/boot.py): mounting them twice would fail.
_OWN_TMPFS = ("/run", "/run/lock")
_VOLUME = re.compile(r"^[^:]+:/[^:]*(:(ro|rw))?$")


Note = Callable[[str, str], None]  # (the platform's key, what was done instead)


def settings(data: Mapping[str, Any], note: Note) -> Iterator[tuple[str, Any]]:
    """The host's keys for ``data``, one Molecule platform; ``note`` hears of each key
    that tdi does not take as it is."""
    return _Platform(data, note).settings()


class _Platform:
    def __init__(self, data: Mapping[str, Any], note: Note) -> None:
        self.data, self.note = data, note

    def settings(self) -> Iterator[tuple[str, Any]]:
        data = self.data
        if data.get("groups"):
            yield "groups", [str(g) for g in data["groups"]]
        yield from self._image()
        yield from self._init()
        if data.get("capabilities"):
            caps = [str(c).upper().removeprefix("CAP_") for c in data["capabilities"]]
            yield "capabilities", caps
        tmpfs = [str(t) for t in data.get("tmpfs") or ()]
        if own := [t for t in tmpfs if t.split(":")[0] in _OWN_TMPFS]:
            self.note("tmpfs", f"{', '.join(own)}: tdi mounts these itself on a systemd host")
        if rest := [t for t in tmpfs if t.split(":")[0] not in _OWN_TMPFS]:
            yield "tmpfs", rest
        if volumes := self._volumes():
            yield "volumes", volumes
        env = data.get("env")
        if isinstance(env, dict) and env:
            yield "env", {str(k): str(v) for k, v in env.items()}
        if data.get("privileged"):
            self.note(
                "privileged",
                "not carried over: tdi boots systemd unprivileged (many daemons refuse "
                "--privileged); set privileged: true on the host if a task truly needs it",
            )
        if "cgroupns_mode" in data:
            self.note("cgroupns_mode", "tdi chooses the cgroup namespace for its daemon itself")
        if data.get("pre_build_image") is False or "dockerfile" in data:
            self.note(
                "dockerfile" if "dockerfile" in data else "pre_build_image",
                "Molecule's Dockerfile template is not built: the host runs tdi's base "
                "image, which has python3, sudo and systemd (add what it needs to "
                "images/base/Dockerfile)",
            )
        if "box" in data:
            self.note("box", f"a Vagrant box: the host runs {DEFAULT_BASE_IMAGE}")
        if "tty" in data:
            self.note("tty", "not needed: tdi's hosts need no terminal")
        done = {"name", "groups", "image", "command", "capabilities", "tmpfs", "volumes", "env"}
        done |= {"privileged", "cgroupns_mode", "pre_build_image", "dockerfile", "box", "tty"}
        done |= {"systemd", "override_command"}
        for key in sorted(set(data) - done):
            self.note(key, "not mapped: the host runs without it")

    def _image(self) -> Iterator[tuple[str, Any]]:
        image = str(self.data.get("image") or "")
        if not image:
            return
        if "{{" in image:
            self.note("image", f"{image}: templated; the host runs {DEFAULT_BASE_IMAGE}")
        elif _DEBIAN.search(image.lower()):
            self.note(
                "image",
                f"{image} mapped to {DEFAULT_BASE_IMAGE} (tdi's Debian 12 image with systemd, "
                "built here; no registry is needed). Set base_image on the host to keep yours",
            )
        else:
            yield "base_image", image

    def _init(self) -> Iterator[tuple[str, Any]]:
        """The host's init, from the command it runs (or podman's ``systemd``)."""
        command = str(self.data.get("command") or "").strip().strip("'\"")
        systemd = str(self.data.get("systemd", "")).lower() in ("true", "always")
        if systemd and not command:
            yield "init", "systemd"
        if "override_command" in self.data:
            self.note("override_command", "tdi runs the image's systemd, or tini (init)")
        if not command:
            return
        if command.split()[0] in _SYSTEMD:
            yield "init", "systemd"
        elif command.startswith(("sleep", "tail", "bash -c", "/bin/sleep")):
            yield "init", "tini"
            self.note("command", f"'{command}': the host runs tini (tdi's minimal init)")
        else:
            self.note("command", f"'{command}' not mapped: tdi runs systemd or tini (init)")

    def _volumes(self) -> list[str]:
        out = []
        for volume in (str(v) for v in self.data.get("volumes") or ()):
            if volume.split(":")[0] == "/sys/fs/cgroup":
                self.note("volumes", f"{volume}: tdi mounts /sys/fs/cgroup itself for systemd")
            elif not _VOLUME.match(volume):
                self.note("volumes", f"{volume}: not mapped (tdi takes SOURCE:TARGET[:ro|rw])")
            else:
                out.append(volume)
        return out
