"""Run ansible-playbook with argument lists and read its results from JSON events."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from tdi.errors import AnsibleError

log = logging.getLogger(__name__)

CONNECTION = "community.docker.docker"


@dataclass(frozen=True)
class TaskEvent:
    """One task result on one host, as the tdi_events callback wrote it."""

    host: str
    task: str
    action: str
    status: str  # ok, changed, failed, ignored, skipped, unreachable
    args: Mapping[str, Any]
    msg: str = ""
    handler: bool = False


@dataclass(frozen=True)
class PlaybookResult:
    returncode: int
    events: tuple[TaskEvent, ...]
    log: Path

    @property
    def ok(self) -> bool:
        # The exit code, not the events: a failure that a block's rescue handled is fine.
        return self.returncode == 0

    @property
    def changed_tasks(self) -> list[str]:
        return _unique(e.task for e in self.events if e.status == "changed")

    @property
    def failed_tasks(self) -> list[str]:
        return _unique(e.task for e in self.events if e.status in ("failed", "unreachable"))

    def failure(self) -> str:
        """A one-line reason for a failed run."""
        for e in self.events:
            if e.status in ("failed", "unreachable"):
                return f"task '{e.task}' {e.status}: {e.msg.splitlines()[0] if e.msg else ''}"
        return f"ansible-playbook exited {self.returncode}; see {self.log}"


def _unique(names: Any) -> list[str]:
    return list(dict.fromkeys(names))


class Processes:
    """Child processes still running, so that an interrupt can stop them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: set[subprocess.Popen[bytes]] = set()

    def run(self, argv: Sequence[str], **kwargs: Any) -> int:
        proc = subprocess.Popen(argv, **kwargs)
        with self._lock:
            self._procs.add(proc)
        try:
            return proc.wait()
        except BaseException:
            # Interrupted while waiting (in the main thread): stop the child, then go on.
            self.terminate()
            raise
        finally:
            with self._lock:
                if proc.poll() is not None:
                    self._procs.discard(proc)

    def terminate(self, grace: float = 10.0) -> None:
        """Stop every child still running: SIGTERM, then SIGKILL after ``grace`` seconds."""
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        with self._lock:
            self._procs.difference_update(procs)


PROCESSES = Processes()


def write_inventory(path: Path, hosts: Mapping[str, str], groups: Sequence[str]) -> Path:
    """An inventory with one host per state (named after it) reaching its container."""
    host_vars = {
        state: {
            "ansible_connection": CONNECTION,
            "ansible_host": container,
            "ansible_python_interpreter": "/usr/bin/python3",
        }
        for state, container in hosts.items()
    }
    children: dict[str, Any] = {g: {"hosts": {s: {} for s in hosts}} for g in groups if g != "all"}
    inventory: dict[str, Any] = {"all": {"hosts": host_vars}}
    if children:
        inventory["all"]["children"] = children
    path.write_text(yaml.safe_dump(inventory, sort_keys=True), encoding="utf-8")
    return path


def child_environment() -> dict[str, str]:
    """This process's environment without the registry credentials: no child needs them."""
    secret = ("TDI_REGISTRY_USERNAME", "TDI_REGISTRY_PASSWORD")
    return {k: v for k, v in os.environ.items() if k not in secret}


def _binary() -> str:
    # Prefer the ansible-playbook installed beside this interpreter (the tdi venv).
    local = Path(sys.executable).parent / "ansible-playbook"
    found = str(local) if local.exists() else shutil.which("ansible-playbook")
    if not found:
        raise AnsibleError("ansible-playbook not found: install tdi with its dependencies")
    return found


def environment(root: Path, events: Path | None = None) -> dict[str, str]:
    callbacks = resources.files("tdi").joinpath("ansible_plugins", "callback")
    env = child_environment()
    env.update(
        ANSIBLE_CALLBACK_PLUGINS=str(callbacks),
        ANSIBLE_CALLBACKS_ENABLED="tdi_events",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_PIPELINING="True",
        ANSIBLE_HOST_KEY_CHECKING="False",
        ANSIBLE_RETRY_FILES_ENABLED="False",
        PYTHONUNBUFFERED="1",
    )
    # The layout tdi expects keeps roles/ at the top; say so unless ansible.cfg does.
    if not (root / "ansible.cfg").exists() and "ANSIBLE_ROLES_PATH" not in os.environ:
        env["ANSIBLE_ROLES_PATH"] = str(root / "roles")
    if events is not None:
        env["TDI_EVENTS_FILE"] = str(events)
    return env


def syntax_check(root: Path, playbook: Path, inventory: Path) -> None:
    """Raise AnsibleError with ansible's first error line if the playbook is malformed."""
    if not playbook.is_file():
        raise AnsibleError(f"playbook {playbook} does not exist: pass --playbook or set 'playbook'")
    argv = [_binary(), "--syntax-check", "-i", str(inventory), str(playbook)]
    proc = subprocess.run(
        argv, cwd=root, env=environment(root), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        first = next((ln for ln in lines if ln.startswith("ERROR")), lines[0] if lines else "")
        raise AnsibleError(f"{playbook}: syntax check failed: {first}")


def run_playbook(
    root: Path, playbook: Path, inventory: Path, limit: str, log_path: Path
) -> PlaybookResult:
    """Converge the hosts in ``limit``; output goes to ``log_path``, events beside it."""
    events_path = log_path.with_suffix(".events.jsonl")
    events_path.unlink(missing_ok=True)
    argv = [_binary(), "-i", str(inventory), "--limit", limit, str(playbook)]
    with log_path.open("wb") as out:
        code = PROCESSES.run(
            argv, cwd=root, env=environment(root, events_path), stdout=out, stderr=subprocess.STDOUT
        )
    return PlaybookResult(code, read_events(events_path), log_path)


def read_events(path: Path) -> tuple[TaskEvent, ...]:
    if not path.exists():
        return ()
    return parse_events(path.read_text(encoding="utf-8"))


def parse_events(text: str) -> tuple[TaskEvent, ...]:
    return tuple(TaskEvent(**json.loads(line)) for line in text.splitlines() if line.strip())


def dump_events(events: Sequence[TaskEvent]) -> bytes:
    lines = (json.dumps(dataclasses.asdict(e), default=str) for e in events)
    return "".join(line + "\n" for line in lines).encode()
