"""The Testinfra backend of tdi's ``host`` fixture: commands go straight to the container
(``docker exec``, Testinfra's docker backend), and ``host.ansible(...)`` and
``host.ansible.get_variables()`` go through Ansible with the side's inventory, as they do
under Molecule.

Testinfra's own ``ansible://`` backend reaches a docker host the same way, but runs
``ansible-inventory`` before its first command; here only a test that uses
``host.ansible`` pays for that.
"""

from __future__ import annotations

from typing import Any

import testinfra.host
from testinfra.backend.docker import DockerBackend
from testinfra.utils.ansible_runner import AnsibleRunner


class DockerAnsibleBackend(DockerBackend):  # type: ignore[misc]
    """Testinfra's docker backend, with the ``host.ansible`` of its ansible backend."""

    HAS_RUN_ANSIBLE = True

    def __init__(self, container: str, name: str, inventory: str, **kwargs: Any) -> None:
        super().__init__(container, **kwargs)
        self.inventory_name = name  # the host's name in the inventory, not its container's
        self.inventory = inventory

    @property
    def ansible_runner(self) -> AnsibleRunner:
        return AnsibleRunner.get_runner(self.inventory)  # one per inventory, read once

    def run_ansible(self, module_name: str, module_args: str | None = None, **kwargs: Any) -> Any:
        return self.ansible_runner.run_module(
            self.inventory_name,
            module_name,
            module_args,
            get_encoding=lambda: self.encoding,
            **kwargs,
        )

    def get_variables(self) -> dict[str, Any]:
        return dict(self.ansible_runner.get_variables(self.inventory_name))


def host(container: str, name: str, inventory: str) -> testinfra.host.Host:
    """Testinfra's host for ``container``, known to Ansible as ``name`` in ``inventory``."""
    backend = DockerAnsibleBackend(container, name, inventory)
    found = testinfra.host.Host(backend)
    backend.set_host(found)
    return found
