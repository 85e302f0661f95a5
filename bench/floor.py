"""The floor for one state: plain Ansible and Testinfra on one bare container, with no
tool around them. `docker run` of the same base image under the same systemd tdi boots,
`ansible-playbook` twice (the converge and the idempotence check), `pytest
--hosts=docker://` on the same tests, `docker rm`. Whatever tdi spends above this, for its
two states and their comparison, is tdi's own cost.

The container finds tdi's package cache by its address on Docker's default bridge (tdi's
hosts find it by name), so the floor's packages come from the same cache as tdi's.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

# systemd unprivileged, as tdi boots it on a cgroup v1 daemon (ENVIRONMENT.md).
SYSTEMD = ["--tmpfs", "/run", "--tmpfs", "/run/lock", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:ro"]
CACHE, PORT = "tdi-apt-cache", 3142
APT_CONFIG = "/run/floor-apt.conf"


def _cache_proxy() -> str:
    """apt's proxy line for tdi's package cache, by its bridge address ("" if not running)."""
    inspect = ["docker", "inspect", CACHE, "--format", "{{json .NetworkSettings.Networks}}"]
    proc = subprocess.run(inspect, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return ""
    addresses = [n["IPAddress"] for n in json.loads(proc.stdout).values() if n.get("IPAddress")]
    return f'Acquire::http::Proxy "http://{addresses[0]}:{PORT}/";\n' if addresses else ""


def run(
    root: Path,
    image: str,
    name: str,
    tool: Callable[[str], str],
    step: Callable[[str, list[str]], None],
) -> dict[str, float]:
    """One floor run in ``root`` (the example): each step's seconds. ``step(label, argv)``
    runs one command and raises if it fails; ``tool`` finds ansible-playbook and pytest."""
    seconds: dict[str, float] = {}

    def timed(label: str, argv: list[str]) -> None:
        start = time.monotonic()
        step(label, argv)
        seconds[label] = round(time.monotonic() - start, 2)

    inventory = root / f".floor-{name}.yml"
    inventory.write_text(
        f"web:\n  hosts:\n    {name}:\n      ansible_connection: community.docker.docker\n",
        encoding="utf-8",
    )
    env = ["-e", f"APT_CONFIG={APT_CONFIG}"]
    try:
        timed(
            "run",
            ["docker", "run", "-d", "--name", name, *SYSTEMD, *env, image, "/lib/systemd/systemd"],
        )
        wait = "systemctl is-system-running --wait >/dev/null || true"
        proxy = _cache_proxy()
        conf = f"printf '%s' '{proxy}' > {APT_CONFIG}"
        timed("boot", ["docker", "exec", name, "sh", "-c", f"{wait}; {conf}"])
        playbook = [tool("ansible-playbook"), "-i", str(inventory), "playbooks/site.yml"]
        timed("converge", playbook)
        timed("idempotence", playbook)
        timed(
            "verify",
            [
                tool("pytest"),
                "-q",
                "-p",
                "no:cacheprovider",
                f"--hosts=docker://{name}",
                "tests/infra",
            ],
        )
    finally:
        timed("rm", ["docker", "rm", "-f", name])
        inventory.unlink(missing_ok=True)
    return seconds
