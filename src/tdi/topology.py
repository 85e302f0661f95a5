"""The hosts tdi provisions on every side, and how each one's container runs.

A *side* is one full copy of the topology: ``fresh`` (from the base image), ``upgrade``
(from the production snapshot) and, with ``--chain``, ``upgrade-1``... A *node* is one
host on one side: one container. Without ``hosts:`` in tdi.yml there is one implicit host
per side and a node's key is the side's name, as reports have always said.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tdi.errors import ConfigError

FRESH, UPGRADE = "fresh", "upgrade"
# The name of the implicit host, and its hostname: one for every side, so that nothing
# (exim's config, say) differs by it.
SINGLE_HOST = "tdi-host"
# start-stop-daemon --exec reads /proc/PID/exe of a daemon that runs as another user;
# without CAP_SYS_PTRACE a sysv restart handler cannot stop the old daemon. NET_ADMIN: a
# server's root manages its firewall (iptables, nft, ufw), in the container's own network.
DEFAULT_CAPABILITIES = ("SYS_PTRACE", "NET_ADMIN")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOSTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")


@dataclass(frozen=True)
class Settings:
    """How a host's container runs: its init, and Molecule's platform keys."""

    init: str = "auto"
    capabilities: tuple[str, ...] = DEFAULT_CAPABILITIES
    tmpfs: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    privileged: bool = False


@dataclass(frozen=True)
class Host:
    """An inventory host that tdi provisions on every side."""

    name: str
    groups: tuple[str, ...]
    base_image: str | None = None  # None: the run's base image
    settings: Settings = Settings()


@dataclass(frozen=True)
class Topology:
    hosts: tuple[Host, ...]
    named: bool  # hosts came from `hosts:` in tdi.yml

    def key(self, side: str, host: str) -> str:
        """A node's name in reports and test ids: ``SIDE/HOST``, or ``SIDE`` for one host."""
        return f"{side}/{host}" if self.named else side

    def container(self, run_id: str, side: str, host: str) -> str:
        return f"tdi-{run_id}-{side}-{host}" if self.named else f"tdi-{run_id}-{side}"

    def hostname(self, host: str) -> str:
        return host if self.named else SINGLE_HOST

    def images(self, repository: str, tag: str) -> dict[str, str]:
        """Each host's image in ``repository``: ``REPOSITORY/HOST:TAG`` (lower case, as an
        image repository is), or ``REPOSITORY:TAG`` for one host."""
        if not self.named:
            return {self.names[0]: f"{repository}:{tag}"}
        return {h: f"{repository}/{h.lower()}:{tag}" for h in self.names}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(h.name for h in self.hosts)

    def host(self, name: str) -> Host:
        return next(h for h in self.hosts if h.name == name)


def _settings(spec: Mapping[str, Any], default: Settings) -> Settings:
    """``spec``'s container keys over ``default``; capabilities and env add to it."""
    return Settings(
        init=spec.get("init", default.init),
        capabilities=tuple(dict.fromkeys([*default.capabilities, *spec.get("capabilities", ())])),
        tmpfs=tuple(spec.get("tmpfs", default.tmpfs)),
        volumes=tuple(spec.get("volumes", default.volumes)),
        env={**default.env, **{k: str(v) for k, v in spec.get("env", {}).items()}},
        privileged=bool(spec.get("privileged", default.privileged)),
    )


def from_config(data: Mapping[str, Any], groups: tuple[str, ...], source: object) -> Topology:
    """The topology of a merged tdi.yml: ``hosts:``, else one implicit host in ``groups``."""
    default = _settings(data, Settings())
    hosts = data.get("hosts")
    if not hosts:
        return Topology((Host(SINGLE_HOST, groups, None, default),), named=False)
    out = []
    for name, spec in hosts.items():
        if not HOSTNAME.match(name) or len(name) > 253:
            raise ConfigError(
                f"{source}: key 'hosts.{name}': not a valid hostname (letters, digits and "
                "'-', in dot-separated labels of at most 63)"
            )
        spec = spec or {}
        host_groups = tuple(spec.get("groups", ()))
        out.append(Host(name, host_groups, spec.get("base_image"), _settings(spec, default)))
    return Topology(tuple(out), named=True)
