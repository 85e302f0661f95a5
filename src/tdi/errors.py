"""The one error root of tdi. Every handled failure is a TdiError with an exit code."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class TdiError(Exception):
    """A failure tdi can explain in one line. ``exit_code`` is what the CLI returns."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NoRunError(TdiError):
    """There is no kept run (.tdi/current.json) for a phase command to act on."""


class RecordError(TdiError):
    """A file tdi wrote to find its runs again cannot be read (truncated, edited)."""


class ConfigError(TdiError):
    """tdi.yml or a command-line flag is wrong."""


class EngineError(TdiError):
    """The Docker daemon is unreachable or refused a request."""


class HostGoneError(EngineError):
    """A test host's container was removed or stopped, by something else, during a run."""

    def __init__(self, container: str, node: str, phase: str, what: str = "disappeared"):
        super().__init__(f"container {container} ({node}) {what} during {phase}")
        self.container, self.node, self.phase = container, node, phase


class ImageError(TdiError):
    """An image is missing, cannot be pulled, or failed to build."""


class AnsibleError(TdiError):
    """ansible-playbook could not run (not: a playbook that ran and failed)."""


class GitError(TdiError):
    """git could not answer (not installed, a failed command): which command, and why."""


class BootError(TdiError):
    """A host did not boot: systemd missing where asked for, or not running in time."""


class CaptureError(TdiError):
    """The probe could not run, failed, or produced a document that is not a state.

    The message ends with the last line of ``output_tail`` (a traceback's exception
    line); the whole tail is kept for verbose logs.
    """

    def __init__(self, message: str, exit_status: int | None = None, output_tail: str = "") -> None:
        if exit_status is not None:
            message = f"{message} (exit status {exit_status})"
        last_line = output_tail.strip().rpartition("\n")[2]
        super().__init__(f"{message}: {last_line}" if last_line else message)
        self.exit_status = exit_status
        self.output_tail = output_tail


class ProbeError(TdiError):
    """A downtime probe that never answered before the converge: the probe is wrong (its
    host, port or path), not the run."""


class BaselineError(TdiError):
    """The baseline ref is unknown or its snapshot could not be made."""


class VerifyError(TdiError):
    """The Testinfra tests could not be collected or run."""


class RegistryError(TdiError):
    """A registry is unreachable, or refused a pull or a push."""


class SnapshotError(TdiError):
    """The production snapshot was not made: a phase failed on it. Nothing was pushed."""

    exit_code = 1


class ToolError(TdiError):
    """An outside tool could not run, or did not end in time (tdi.process)."""

    def __init__(self, argv: Sequence[str], code: int | None, tail: str) -> None:
        name = Path(argv[0]).name if argv else "?"
        super().__init__(f"{name}: {tail}")
        self.argv, self.code, self.tail = tuple(argv), code, tail
