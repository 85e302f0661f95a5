"""Run ansible-playbook with argument lists and read its results from JSON events."""

from __future__ import annotations

import configparser
import dataclasses
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from tdi import process, secrets
from tdi.engine import registry
from tdi.errors import AnsibleError
from tdi.process import PROCESSES, TIMED_OUT
from tdi.state.content import MAX_LINES, mask

log = logging.getLogger(__name__)

CONNECTION = "community.docker.docker"
# The converge's extra vars (JSON, a list of -e values) in the tests' environment, for a
# verify playbook the tests run (verifier.py): not in a file, as they may hold a secret.
EXTRA_VARS_ENV = "TDI_VERIFY_EXTRA_VARS"


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
    diff: str = ""  # what a changed task changed (diff mode), or why the module says so
    output: str = ""  # a failed result's stderr (else stdout), its last 2000 characters
    no_log: bool = False  # the task has no_log: what it wrote is never shown
    # When the task began on this host and when this result came, in seconds since the
    # epoch (0: an events file written before tdi recorded them).
    start: float = 0.0
    end: float = 0.0
    path: str = ""  # where the task is, "FILE:LINE" (Ansible's task.get_path())

    @property
    def reason(self) -> str:
        """Ansible's first line, and the output's last line where it adds to it:
        `non-zero return code: ls: cannot access '/x': No such file or directory`."""
        first = self.msg.splitlines()[0] if self.msg else ""
        last = last_line(mask(self.output)[0])  # as diffs are: `password = ****`
        if not last or last in self.msg:
            return first
        return f"{first}: {last}" if first else last


def last_line(text: str) -> str:
    """The last line of ``text`` that is not blank, stripped."""
    return next((ln.strip() for ln in reversed(text.splitlines()) if ln.strip()), "")


@dataclass(frozen=True)
class ChangedTask:
    """A task that reported changed, and what it changed: Ansible's diff, secret-looking
    values masked, or the module's reason where it has no diff."""

    task: str
    diff: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"task": self.task, "diff": self.diff}


def changed_tasks(events: Sequence[TaskEvent]) -> list[ChangedTask]:
    """Each changed task once, in order, with the diffs of all its results (loop items)."""
    diffs: dict[str, list[str]] = {}
    for e in events:
        if e.status == "changed":
            diffs.setdefault(e.task, []).extend([e.diff] if e.diff else [])
    return [ChangedTask(task, _masked("\n".join(d))) for task, d in diffs.items()]


def _masked(text: str) -> str:
    lines = mask(text)[0].splitlines(keepends=True)
    if len(lines) > MAX_LINES:
        lines = [*lines[:MAX_LINES], f"... cut at {MAX_LINES} of {len(lines)} lines\n"]
    return "".join(lines)


@dataclass(frozen=True)
class PlaybookResult:
    returncode: int
    events: tuple[TaskEvent, ...]
    log: Path
    # Hosts whose play recap counts failures or unreachables (a failure that a rescue
    # handled is not one); None when the run ended before its recap.
    failed: tuple[str, ...] | None = None
    stopped: str = ""  # why tdi stopped the run before it ended: a limit, and where
    # The plays that never ran, and on which hosts: Ansible ends the playbook when every
    # host of a play failed, and the hosts of the later plays did not fail, nor finish.
    unstarted: tuple[tuple[str, tuple[str, ...]], ...] = ()
    prompt: str = ""  # the prompt the run met, and ended at (tdi's children have no stdin)

    @property
    def ok(self) -> bool:
        # The exit code, not the events: a failure that a block's rescue handled is fine.
        return self.returncode == 0

    @property
    def changed_tasks(self) -> list[ChangedTask]:
        return changed_tasks(self.events)

    @property
    def failed_hosts(self) -> list[str]:
        if self.failed is not None:
            found = list(self.failed)
        else:
            found = [e.host for e in self.events if e.status in ("failed", "unreachable")]
        cut_short = [h for _, hosts in self.unstarted for h in hosts] if not self.ok else []
        return list(dict.fromkeys([*found, *cut_short]))

    def for_host(self, host: str) -> PlaybookResult:
        """This run as ``host`` saw it: its events, and failed only where it failed (or
        where the run failed and no host did, say a play that could not start)."""
        failed = self.failed_hosts
        code = self.returncode if host in failed or not failed else 0
        events = tuple(e for e in self.events if e.host == host)
        mine = tuple(h for h in failed if h == host)
        stopped = self.stopped
        plays = [play for play, hosts in self.unstarted if host in hosts]
        if plays and not self.ok and not any(e.status in ("failed", "unreachable") for e in events):
            culprits = [h for h in (self.failed or ()) if h != host] or ["a host"]
            stopped = stopped or (
                f"play '{plays[0]}' never ran: the playbook stopped when "
                f"{', '.join(culprits)} failed"
            )
        return PlaybookResult(code, events, self.log, mine, stopped, (), self.prompt)

    @property
    def failed_event(self) -> TaskEvent | None:
        """The first result that failed (or found its host unreachable) and stopped its
        host: not one a block's rescue handled, after which the host ran other tasks."""
        failed = [i for i, e in enumerate(self.events) if e.status in ("failed", "unreachable")]
        for i in failed:
            e = self.events[i]
            went_on = (
                later.host == e.host and later.task != e.task and later.status in _WENT_ON
                for later in self.events[i + 1 :]
            )
            if not any(went_on):
                return e
        return self.events[failed[0]] if failed else None  # handlers forced after it, say

    def failure(self) -> str:
        """A one-line reason for a failed run."""
        if self.stopped or self.prompt:
            return self.stopped or self.prompt
        if (e := self.failed_event) is not None:
            return f"task '{e.task}' {e.status}: {e.reason}"
        return f"ansible-playbook exited {self.returncode}; see {self.log}"


_WENT_ON = ("ok", "changed", "skipped")


def child_environment() -> dict[str, str]:
    """This process's environment without the registry credentials: no child needs them."""
    secret = (registry.USERNAME_ENV, registry.PASSWORD_ENV)
    return {k: v for k, v in os.environ.items() if k not in secret}


def binary(name: str = "ansible-playbook") -> str:
    # Prefer the one installed beside this interpreter (the tdi venv).
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        raise AnsibleError(f"{name} not found: install tdi with its dependencies")
    return found


@dataclass(frozen=True)
class AnsibleEnv:
    """How every Ansible process of a command sees the repo: started in ``root``, finding
    the collections and roles its requirements installed (requirements.install) before
    Ansible's own. One value per command, made from the config, passed to each child."""

    root: Path
    collections: tuple[Path, ...] = ()
    roles: tuple[Path, ...] = ()
    task_timeout: int = 0  # seconds a task may run (Ansible's own task_timeout); 0: none
    vault_ids: tuple[str, ...] = ()  # "[label@]/abs/source", for every run
    vault_password_file: str = ""  # absolute: a baseline's tree lacks a git-ignored one
    # tdi.yml's ansible_env (Molecule's provisioner.env): set for every Ansible child.
    environment: tuple[tuple[str, str], ...] = ()

    def variables(self, events: Path | None = None) -> dict[str, str]:
        """The environment of an Ansible child; ``events``: where tdi_events writes."""
        env = secrets.for_children(child_environment())
        given = dict(self.environment)
        for name in ("ANSIBLE_ROLES_PATH", "ANSIBLE_COLLECTIONS_PATH"):
            if name in given:  # before ansible.cfg's, as Molecule adds its own after it
                given[name] = f"{given[name]}:{_default_path(self.root, name)}"
        env.update(given)
        env.update(
            **self.callbacks(env),
            ANSIBLE_FORCE_COLOR="0",
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_PIPELINING="True",
            ANSIBLE_HOST_KEY_CHECKING="False",
            ANSIBLE_RETRY_FILES_ENABLED="False",
            PYTHONUNBUFFERED="1",
        )
        # The layout tdi expects keeps roles/ at the top; say so unless ansible.cfg does.
        if not (self.root / "ansible.cfg").exists() and "ANSIBLE_ROLES_PATH" not in env:
            env["ANSIBLE_ROLES_PATH"] = str(self.root / "roles")
        if events is not None:
            env["TDI_EVENTS_FILE"] = str(events)
        if self.task_timeout:
            env["ANSIBLE_TASK_TIMEOUT"] = str(self.task_timeout)
        if self.vault_ids:
            env["ANSIBLE_VAULT_IDENTITY_LIST"] = ",".join(self.vault_ids)
        if self.vault_password_file and "ANSIBLE_VAULT_PASSWORD_FILE" not in os.environ:
            env["ANSIBLE_VAULT_PASSWORD_FILE"] = self.vault_password_file
        for name, extra in (
            ("ANSIBLE_COLLECTIONS_PATH", self.collections),
            ("ANSIBLE_ROLES_PATH", self.roles),
        ):
            if extra:
                # Ansible's own defaults stay after ours: the collections in the venv, say.
                default = env.get(name) or _default_path(self.root, name)
                env[name] = ":".join([*map(str, extra), default])
        return env

    def callbacks(self, env: Mapping[str, str]) -> dict[str, str]:
        """tdi's callback (tdi_events) with the user's: the plugin paths and the enabled
        callbacks their environment or ansible.cfg sets (ARA's, say), after tdi's own.
        Setting Ansible's variables replaces ansible.cfg's values: these keep them."""
        ours = resources.files("tdi").joinpath("provision", "ansible_plugins", "callback")
        home = env.get("ANSIBLE_HOME", "~/.ansible")
        default = f"{home}/plugins/callback:/usr/share/ansible/plugins/callback"
        paths = env.get("ANSIBLE_CALLBACK_PLUGINS") or _cfg_paths(self.root, "callback_plugins")
        enabled = env.get("ANSIBLE_CALLBACKS_ENABLED") or _cfg(self.root, "callbacks_enabled")
        names = [n.strip() for n in enabled.split(",") if n.strip()]
        return {
            "ANSIBLE_CALLBACK_PLUGINS": ":".join([str(ours), paths or default]),
            "ANSIBLE_CALLBACKS_ENABLED": ",".join(dict.fromkeys(["tdi_events", *names])),
        }


def _cfg(root: Path, key: str) -> str:
    """ansible.cfg's ``[defaults] key`` in the repo, or ""."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(root / "ansible.cfg", encoding="utf-8")
    return parser.get("defaults", key, fallback="").strip()


def _cfg_paths(root: Path, key: str) -> str:
    """ansible.cfg's paths at ``key``, made absolute against the repo as Ansible does."""
    parts = (os.path.expanduser(p.strip()) for p in _cfg(root, key).split(":") if p.strip())
    return ":".join(str(root / p) for p in parts)


def _default_path(root: Path, name: str) -> str:
    """What ansible.cfg says (relative to the repo), else Ansible's own default."""
    roles = name == "ANSIBLE_ROLES_PATH"
    keys = ("roles_path",) if roles else ("collections_path", "collections_paths")
    for key in keys:
        if value := _cfg_paths(root, key):
            return value
    if roles:
        return f"{root / 'roles'}:~/.ansible/roles:/usr/share/ansible/roles:/etc/ansible/roles"
    return "~/.ansible/collections:/usr/share/ansible/collections"


@dataclass(frozen=True)
class Play:
    """A play of the playbook and the hosts its pattern matches (``--list-hosts``)."""

    name: str
    pattern: str
    hosts: tuple[str, ...]


_PLAY = re.compile(r"^\s*play #\d+ \((?P<pattern>.*?)\): (?P<name>.*?)\tTAGS:")
_HOST = re.compile(r"^\s*hosts \((?P<count>\d+)\):")


@dataclass(frozen=True)
class Listing:
    """What preflight reads of a playbook in one Ansible process (ansible_plugins/plays.py):
    its plays, with the hosts each matches, and the prompts it would meet."""

    plays: list[Play]
    prompts: list[dict[str, str]]


PLAYS = resources.files("tdi").joinpath("provision", "ansible_plugins", "plays.py")


def list_plays(
    env: AnsibleEnv, playbook: Path, inventory: Path, extra_vars: Sequence[str] = ()
) -> Listing:
    """Check the playbook parses; say which hosts each play matches (``--list-hosts``), and
    which prompts it would meet.

    An AnsibleError carries Ansible's own first error line, with its file and line.
    """
    if not playbook.is_file():
        raise AnsibleError(f"playbook {playbook} does not exist: pass --playbook or set 'playbook'")
    argv = [sys.executable, str(PLAYS), str(playbook), str(inventory), *extra_vars]
    proc = process.run(argv, cwd=env.root, env=env.variables())
    if proc.returncode != 0:
        raise AnsibleError(syntax_error(env.root, playbook, proc.stderr))
    lines = proc.stdout.strip().splitlines()
    return Listing(parse_plays(proc.stdout), json.loads(lines[-1]) if lines else [])


# Where Ansible says the error is: 2.19 prints `Origin: PATH:LINE:COL`, earlier releases
# "The error appears to be in 'PATH': line N, column M".
_ORIGIN = (
    re.compile(r"^Origin: (?P<file>.+?)(?::(?P<line>\d+))?(?::(?P<col>\d+))?$"),
    re.compile(r"appears to be in '(?P<file>[^']+)': line (?P<line>\d+), column (?P<col>\d+)"),
)


def syntax_error(root: Path, playbook: Path, stderr: str) -> str:
    """One line for a playbook Ansible refused: Ansible's own FILE:LINE:COL (a role's task
    file, say) and its first error, and the playbook when the error is in another file."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    first = next((i for i, ln in enumerate(lines) if ln.lstrip("[").startswith("ERROR")), 0)
    message = re.sub(r"^\[?ERROR\]?!?:?\s*", "", lines[first]) if lines else "no output"
    if "has been removed" in message:  # written for an older Ansible: say which one runs
        message += f" (tdi runs ansible-core {metadata.version('ansible-core')})"
    found = next((m for ln in lines[first:] for r in _ORIGIN if (m := r.search(ln))), None)
    if found is None or found["file"].startswith("<"):
        return f"{relative(playbook, root)}: syntax check failed: {message}"
    origin = Path(found["file"])
    place = ":".join([relative(origin, root), *(n for n in found.group("line", "col") if n)])
    elsewhere = "" if origin == playbook else f" (playbook {relative(playbook, root)})"
    return f"{place}: syntax check failed: {message}{elsewhere}"


def relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` when it is below it, for a message."""
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def parse_plays(text: str) -> list[Play]:
    plays: list[Play] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if (found := _PLAY.match(line)) is not None:
            plays.append(Play(found["name"].strip(), found["pattern"], ()))
        elif plays and (count := _HOST.match(line)) is not None:
            hosts = tuple(h.strip() for h in lines[i + 1 : i + 1 + int(count["count"])])
            plays[-1] = Play(plays[-1].name, plays[-1].pattern, hosts)
    return plays


def run_playbook(
    env: AnsibleEnv,
    playbook: Path,
    inventory: Path,
    hosts: Sequence[str],
    log_path: Path,
    extra_vars: Sequence[str] = (),
    diff: bool = False,
    timeout: float | None = None,
) -> PlaybookResult:
    """Converge ``hosts``; output goes to ``log_path``, events beside it. ``diff``: in
    Ansible's diff mode, so each changed task's event says what it changed. Stopped after
    ``timeout`` seconds, naming the task it was in."""
    events_path = log_path.with_suffix(".events.jsonl")
    events_path.unlink(missing_ok=True)
    argv = [binary(), "-i", str(inventory), "--limit", ",".join(hosts)]
    argv += [arg for value in extra_vars for arg in ("-e", value)]
    argv += ["--diff"] if diff else []
    # The live display follows the events file while the playbook runs.
    log.debug("ansible-playbook: %s", log_path)
    with secrets.MaskedOutput(log_path) as out:
        code = PROCESSES.run(
            [*argv, str(playbook)],
            timeout,
            lambda seconds: _still(log_path, events_path, seconds),
            cwd=env.root,
            env=env.variables(events_path),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    log.debug("ansible-playbook done: %s", log_path)
    text = events_path.read_text(encoding="utf-8") if events_path.exists() else ""
    stopped = ""
    if code == TIMED_OUT and timeout is not None:
        task = current_task(text)
        during = f", during task '{task}'" if task else ""
        stopped = f"stopped after {timeout:.0f} s (the phase or run limit){during}"
    unstarted = tuple((r["play"], tuple(r["hosts"])) for r in _records(text, "unstarted"))
    asked = _records(text, "prompt")
    prompt = prompt_message(relative(playbook, env.root), asked[0]) if asked else ""
    return PlaybookResult(
        code, parse_events(text), log_path, parse_failed(text), stopped, unstarted, prompt
    )


def prompt_message(playbook: str, prompt: dict[str, str]) -> str:
    """One line for a prompt a run would meet (preflight) or met (tdi_events)."""
    play, name = prompt["play"], prompt["name"]
    if prompt["kind"] == "vars_prompt":
        return (
            f"{playbook}: play '{play}' prompts for '{name}' (vars_prompt), and tdi runs "
            f"without a terminal: pass it with -e {name}=VALUE, or under extra_vars in tdi.yml"
        )
    return (
        f"{playbook}: play '{play}': task '{name}' waits for input (pause with a prompt), and "
        "tdi runs without a terminal: make it skippable with a `when:` on a variable you "
        "pass with -e"
    )


def _records(text: str, key: str) -> list[Any]:
    """The tdi_events records of one kind (a line each, starting with its key)."""
    start = f'{{"{key}"'
    return [json.loads(line)[key] for line in text.splitlines() if line.startswith(start)]


def _still(log_path: Path, events_path: Path, seconds: float) -> None:
    """A line naming the task a long run is in now."""
    text = events_path.read_text(encoding="utf-8") if events_path.exists() else ""
    task = current_task(text) or "starting"
    log.info("%s: still running after %.0f s, in task '%s'", log_path.stem, seconds, task)


def current_task(text: str) -> str:
    """The task the events file says started last (tdi_events writes each start)."""
    starts = _records(text, "started")
    return str(starts[-1]) if starts else ""


def read_events(path: Path) -> tuple[TaskEvent, ...]:
    return parse_events(path.read_text(encoding="utf-8")) if path.exists() else ()


def parse_events(text: str) -> tuple[TaskEvent, ...]:
    records = (json.loads(line) for line in text.splitlines() if line.strip())
    return tuple(TaskEvent(**r) for r in records if "host" in r)  # not recap, not starts


def parse_failed(text: str) -> tuple[str, ...] | None:
    """The hosts the play recap counts as failed, or None when there is no recap."""
    records = _records(text, "recap")
    if not records:
        return None
    return tuple(h for h, r in records[-1].items() if r["failures"] or r["unreachable"])


def dump_events(events: Sequence[TaskEvent]) -> bytes:
    lines = (json.dumps(dataclasses.asdict(e), default=str) for e in events)
    return "".join(line + "\n" for line in lines).encode()
