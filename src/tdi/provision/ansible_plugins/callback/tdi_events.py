# Ansible loads this file as a callback plugin; it is not imported by tdi itself.
"""Write one JSON line per task result to the file named by TDI_EVENTS_FILE."""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any

from ansible.playbook.handler import Handler
from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: tdi_events
    type: aggregate
    short_description: JSON-lines task events for tdi
    description: Writes a JSON line per task result to the file in TDI_EVENTS_FILE.
"""

# Arguments that name what a task touched, or how (a whole tree, or one path); kept for
# attribution, nothing else is.
_TARGET_ARGS = (
    "dest",
    "path",
    "name",
    "pkg",
    "deb",
    "src",
    "user",
    "group",
    "creates",
    "removes",
    "recurse",
    "state",
)
# Modules that run a command line: of it, only the absolute paths it names are kept.
_COMMANDS = frozenset({"command", "shell", "raw", "script"})
_PATH = re.compile(r"""(?<![\w.~:/-])/[^\s'"`;|&<>()$*?\[\]{}]*""")


# The known secrets tdi passes (every form each takes in JSON among them): masked in
# every line written, so the events file never holds one.
_KNOWN = sorted(json.loads(os.environ.get("TDI_MASK") or "[]"), key=len, reverse=True)
_SECRETS = re.compile("|".join(map(re.escape, _KNOWN))) if _KNOWN else None


def _line(record: dict[str, Any]) -> str:
    text = json.dumps(record, default=str)
    return (_SECRETS.sub("****", text) if _SECRETS else text) + "\n"


_PAUSE = ("pause", "ansible.builtin.pause", "ansible.legacy.pause")
# The exit code of a run that met a prompt: tdi's children have no stdin, so on a terminal
# or not the prompt would get an empty answer. The run ends there instead, and says where.
PROMPTED = 3


# Characters of one task's diff; tdi cuts it further by lines.
_MAX_DIFF = 64 * 1024
# Characters of a failed result's output (its stderr's tail, else its stdout's).
_MAX_OUTPUT = 2000


def _payload(result: Any) -> dict[str, Any]:
    # ansible-core 2.19 exposes .result; older releases only ._result.
    data = result.result if hasattr(type(result), "result") else result._result
    return dict(data)


def _message(payload: dict[str, Any]) -> str:
    """A failed result's message; an assert's default one says which condition failed."""
    msg = str(payload.get("msg", ""))
    if msg == "Assertion failed" and payload.get("assertion"):
        msg = f"Assertion failed: {payload['assertion']}"
    return msg[:2000]


def _output(task: Any, payload: dict[str, Any]) -> str:
    """The tail of a failed result's stderr, or of its stdout when stderr is empty: the
    command's own reason. Never of a no_log task (Ansible censors its result anyway)."""
    if task.no_log or "results" in payload:  # a loop's summary: each item told its own
        return ""
    for key in ("stderr", "stdout"):
        if text := str(payload.get(key) or "").rstrip():
            return text[-_MAX_OUTPUT:]
    return ""


def _targets(task: Any, payload: dict[str, Any]) -> dict[str, Any]:
    if "results" in payload:
        return {}  # a loop's summary: its items were reported one by one, rendered
    own = dict(task.args or {})
    module_args = (payload.get("invocation") or {}).get("module_args") or {}
    args = {**own, **module_args}
    if own.get("src"):  # copy and template hand their module a temporary file instead
        args["src"] = own["src"]
    targets = {k: args[k] for k in _TARGET_ARGS if args.get(k) not in (None, "", [], False)}
    action = str(task.action).rsplit(".", 1)[-1]
    if action in _COMMANDS:
        line = args.get("_raw_params") or args.get("cmd") or args.get("argv") or ""
        text = " ".join(map(str, line)) if isinstance(line, list) else str(line)
        if paths := sorted(set(_PATH.findall(text))):
            targets["command_paths"] = paths
    # A copy of a directory: its src ends with a slash, or the file its module last copied
    # came from below the src (``_original_basename`` "site/index.html").
    below = "/" in str(module_args.get("_original_basename", ""))
    if action == "copy" and (str(own.get("src", "")).endswith("/") or below):
        targets["tree"] = True
    return targets


class CallbackModule(CallbackBase):  # type: ignore[misc]
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "tdi_events"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        path = os.environ.get("TDI_EVENTS_FILE")
        self._out = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115
        self._plays: list[Any] = []  # the playbook's, in order
        self._started: set[str] = set()  # the plays that started (a copy keeps its uuid)
        self._inventory: Any = None
        self._begun: dict[tuple[str, str], float] = {}  # (host, task uuid) -> its start

    def v2_runner_on_start(self, host: Any, task: Any) -> None:
        # When a task (or handler) began on a host, for its events' ``start``: what was
        # running during a downtime window (phases/probes.py).
        self._begun[host.get_name(), task._uuid] = time.time()

    def _write(self, record: dict[str, Any]) -> None:
        if self._out is not None:
            self._out.write(_line(record))
            self._out.flush()

    def v2_playbook_on_start(self, playbook: Any) -> None:
        self._plays = list(playbook.get_plays())

    def v2_playbook_on_play_start(self, play: Any) -> None:
        self._started.add(play._uuid)
        self._inventory = play.get_variable_manager()._inventory

    def _prompted(self, kind: str, name: str, play: str) -> None:
        self._write({"prompt": {"play": play, "kind": kind, "name": name}})
        raise SystemExit(PROMPTED)  # past Ansible's callback guard, which catches Exception

    def v2_playbook_on_vars_prompt(self, varname: str, *args: Any, **kwargs: Any) -> None:
        # Sent before the play starts: it is the first of the playbook's not yet started.
        play = next((p for p in self._plays if p._uuid not in self._started), None)
        self._prompted("vars_prompt", varname, play.get_name() if play else "")

    def _unstarted(self) -> list[dict[str, Any]]:
        """The plays that never started (every host of an earlier one failed), with the
        hosts they would have run on."""
        found = []
        for play in self._plays:
            if play._uuid in self._started:
                continue
            try:
                hosts = self._inventory.get_hosts(play.hosts, ignore_restrictions=True)
                names = [h.get_name() for h in hosts]
            except Exception:  # a templated pattern: hosts unknown
                names = []
            found.append({"play": play.get_name(), "hosts": names})
        return found

    def _emit(self, status: str, result: Any) -> None:
        if self._out is None:
            return
        payload = _payload(result)
        task = result.task
        now = time.time()
        changed = status == "ok" and bool(payload.get("changed"))
        event = {
            "host": result.host.get_name(),
            "task": task.get_name(),
            "action": task.action,
            "handler": isinstance(task, Handler),
            "status": "changed" if changed else status,
            "args": _targets(task, payload),
            "msg": _message(payload) if status in ("failed", "unreachable") else "",
            "diff": self._changes(payload) if changed else "",
            "output": _output(task, payload) if status == "failed" else "",
            # Seconds since the epoch, as the downtime probes' polls are.
            "start": self._begun.get((result.host.get_name(), task._uuid), now),
            "end": now,
            "path": task.get_path() or "",
        }
        if task.no_log:  # what it wrote is never shown: parity hides those files' content
            event["no_log"] = True
        self._write(event)
        if status == "ok" and task.action in _PAUSE and "prompt" in (task.args or {}):
            play = task.get_play()
            self._prompted("pause", task.get_name(), play.get_name() if play else "")

    def _changes(self, payload: dict[str, Any]) -> str:
        """What a changed task changed: its diff in diff mode, else the module's reason."""
        if payload.get("diff"):
            return str(self._get_diff(payload["diff"]))[:_MAX_DIFF]
        if payload.get("msg"):
            return str(payload["msg"])[:_MAX_DIFF]
        if payload.get("cmd"):
            cmd = payload["cmd"]
            return "ran: " + (" ".join(map(str, cmd)) if isinstance(cmd, list) else str(cmd))
        return ""

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool = False) -> None:
        # For the live display only: which task runs now. parse_events skips these.
        self._write({"started": task.get_name()})

    v2_playbook_on_handler_task_start = v2_playbook_on_task_start

    def v2_playbook_on_stats(self, stats: Any) -> None:
        # The recap: a failure that a rescue handled counts as rescued, not failed.
        if self._out is None:
            return
        recap = {}
        for host in sorted(stats.processed):
            counts = stats.summarize(host)
            recap[host] = {k: counts.get(k, 0) for k in ("failures", "unreachable", "rescued")}
        for play in self._unstarted() if self._started else []:
            self._write({"unstarted": play})
        self._write({"recap": recap})

    def v2_runner_on_ok(self, result: Any) -> None:
        self._emit("ok", result)

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._emit("ignored" if ignore_errors else "failed", result)

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._emit("skipped", result)

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._emit("unreachable", result)

    # A loop's items, each with its own rendered arguments (what attribution needs).
    v2_runner_item_on_ok = v2_runner_on_ok
    v2_runner_item_on_skipped = v2_runner_on_skipped

    def v2_runner_item_on_failed(self, result: Any) -> None:
        # Unlike v2_runner_on_failed, no ignore_errors argument: the task says it.
        self._emit("ignored" if result.task.ignore_errors else "failed", result)
