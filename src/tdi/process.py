"""The one way tdi runs a short outside tool (git, ansible-inventory, ansible-galaxy,
pytest's collection, debootstrap): its output captured, never tdi's stdin, and a timeout,
so that nothing waits forever. A tool that cannot start or does not end in time is a
ToolError; one that ends is a ``Completed`` whose caller reads its code and output.

The long-running children (ansible-playbook, the run's pytest) run under the guard
instead: see ansible.Processes.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tdi.errors import ToolError

# Long enough for any honest run of the tools above on a slow machine; a hung one ends.
TIMEOUT = 600.0


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self) -> str:
        """The last line of stderr, else of stdout: what a failure usually says."""
        lines = (self.stderr or self.stdout).strip().splitlines()
        return lines[-1].strip() if lines else ""


def run(
    argv: Sequence[str],
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = TIMEOUT,
) -> Completed:
    """Run ``argv`` to its end, at most ``timeout`` seconds."""
    try:
        proc = subprocess.run(
            list(argv),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ToolError(argv, None, f"no end after {timeout:.0f} s; stopped") from None
    except OSError as exc:
        raise ToolError(argv, None, f"cannot run: {exc.strerror}") from exc
    return Completed(tuple(argv), proc.returncode, proc.stdout, proc.stderr)
