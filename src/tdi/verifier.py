"""The Ansible verifier: a verify playbook (Molecule's verify.yml) run as tests.

When ``tests:`` names a playbook, the plugin (plugin.py) collects it here: on each node,
one test per ``assert`` (or ``fail``) task found in the playbook and the task files it
imports, named by the task, and one test for the run itself (``ansible-playbook``), which
fails when a task that is not one of those failed (a command, an unreachable host, a
syntax error). The first test of a node runs ``ansible-playbook`` once, on that node
alone, with the side's inventory and tdi's event callback; every test then reads its
task's results from the events. So each failing assert is a failing test with Ansible's
message, in the same report as Testinfra's tests.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tdi.provision.ansible import (
    EXTRA_VARS_ENV,
    AnsibleEnv,
    PlaybookResult,
    TaskEvent,
    run_playbook,
)
from tdi.provision.inputs import PLAYBOOK_SUFFIXES

_PREFIXES = ("", "ansible.builtin.", "ansible.legacy.")
CHECKS = frozenset(p + m for p in _PREFIXES for m in ("assert", "fail"))
_IMPORTS = frozenset(p + m for p in _PREFIXES for m in ("import_tasks", "include_tasks", "include"))
_PLAYBOOK_IMPORTS = frozenset(("import_playbook", "ansible.builtin.import_playbook"))
_SECTIONS = ("pre_tasks", "tasks", "post_tasks")
_BLOCKS = ("block", "rescue", "always")
RUN = "ansible-playbook"  # the name of each node's test of the run itself


def is_playbook(path: Path) -> bool:
    return path.suffix in PLAYBOOK_SUFFIXES


@dataclass(frozen=True)
class Check:
    """An assert (or fail) task of the verify playbook: its name and where it is."""

    name: str
    path: str  # "FILE:LINE", as Ansible's task.get_path() says it, FILE resolved


def checks(playbook: Path) -> list[Check]:
    """The assert and fail tasks of ``playbook``, in order: in its plays, their blocks,
    the task files they import by a literal name, and the playbooks it imports."""
    found = list(_playbook(playbook.resolve(), frozenset()))
    counts = Counter(check.name for check in found)
    # Two tasks of one name are two tests: each says its line.
    return [
        Check(f"{c.name} (line {c.path.rsplit(':', 1)[1]})", c.path) if counts[c.name] > 1 else c
        for c in found
    ]


def _compose(path: Path) -> yaml.Node | None:
    try:
        # Composed, not constructed: Ansible's own tags (!vault, !unsafe) need no loader.
        return yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError) as exc:
        raise pytest.UsageError(f"{path}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise pytest.UsageError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from exc


def _items(node: yaml.Node | None) -> list[yaml.Node]:
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def _keys(node: yaml.Node) -> dict[str, yaml.Node]:
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(k.value): v for k, v in node.value if isinstance(k, yaml.ScalarNode)}


def _literal(node: yaml.Node | None) -> str | None:
    """A scalar's text, or a mapping's ``file:``; None when templated or absent."""
    if isinstance(node, yaml.MappingNode):
        node = _keys(node).get("file")
    if isinstance(node, yaml.ScalarNode) and "{{" not in str(node.value):
        return str(node.value)
    return None


def _playbook(path: Path, seen: frozenset[Path]) -> Iterator[Check]:
    if path in seen or not path.is_file():
        return
    for play in _items(_compose(path)):
        keys = _keys(play)
        imported = next((_literal(keys[k]) for k in _PLAYBOOK_IMPORTS if k in keys), None)
        if imported:
            yield from _playbook((path.parent / imported).resolve(), seen | {path})
            continue
        for section in _SECTIONS:
            yield from _tasks(path, keys.get(section), seen | {path})


def _tasks(path: Path, node: yaml.Node | None, seen: frozenset[Path]) -> Iterator[Check]:
    for task in _items(node):
        keys = _keys(task)
        for block in _BLOCKS:
            yield from _tasks(path, keys.get(block), seen)
        action = next((k for k in keys if k in CHECKS), None)
        if action is not None:
            line = task.start_mark.line + 1
            name = _literal(keys.get("name")) or f"{action} at line {line}"
            yield Check(name, f"{path}:{line}")
        included = next((_literal(keys[k]) for k in _IMPORTS if k in keys), None)
        if included:
            target = (path.parent / included).resolve()
            if target not in seen and target.is_file():
                yield from _tasks(target, _compose(target), seen | {target})


def _same_path(event: TaskEvent, check: Check) -> bool:
    file, _, line = event.path.rpartition(":")
    return bool(file) and f"{os.path.realpath(file)}:{line}" == check.path


class PlaybookFile(pytest.File):
    """A verify playbook: its tests on each node, and the one run per node they share."""

    def __init__(self, *, nodes: list[dict[str, Any]], workdir: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.nodes, self.workdir = nodes, workdir
        self.extra_vars: list[str] = json.loads(os.environ.get(EXTRA_VARS_ENV) or "[]")
        self.runs: dict[str, PlaybookResult] = {}
        self.checks = checks(self.path)

    def collect(self) -> Iterator[pytest.Item]:
        for node in self.nodes:
            key = node["key"]
            yield PlaybookItem.from_parent(self, name=f"{RUN}[{key}]", node=node, check=None)
            for check in self.checks:
                yield PlaybookItem.from_parent(
                    self, name=f"{check.name}[{key}]", node=node, check=check
                )

    def result(self, node: Mapping[str, Any]) -> PlaybookResult:
        """The verify playbook's run on ``node``, made by the first test that asks."""
        key = node["key"]
        if key not in self.runs:
            log = self.workdir / f"{self.path.stem}.{key.replace('/', '.')}.log"
            env = AnsibleEnv(Path.cwd())
            result = run_playbook(
                env, self.path, Path(node["inventory"]), [node["host"]], log, self.extra_vars
            )
            self.runs[key] = result.for_host(node["host"])
        return self.runs[key]


class PlaybookItem(pytest.Item):
    """One check of the verify playbook on one node, or (``check`` None) its run."""

    def __init__(self, *, node: dict[str, Any], check: Check | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.node, self.check = node, check
        self.tdi_node = str(node["key"])  # whose test this is (plugin.py)

    def runtest(self) -> None:
        parent = self.parent
        assert isinstance(parent, PlaybookFile)
        result = parent.result(self.node)
        if self.check is None:
            _run_passed(result, parent.checks)
            return
        mine = [e for e in result.events if _same_path(e, self.check)]
        failed = [e for e in mine if e.status in ("failed", "ignored", "unreachable")]
        if failed:
            messages = [e.msg for e in failed if e.msg and e.msg != "One or more items failed"]
            pytest.fail("; ".join(dict.fromkeys(messages)) or "failed", pytrace=False)
        if not mine:
            why = f": {result.failure()}" if not result.ok else ""
            pytest.skip(f"did not run on {self.node['host']}{why}")
        if all(e.status == "skipped" for e in mine):
            pytest.skip("skipped by its when: condition")

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, self.name

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        return str(excinfo.value)


def _run_passed(result: PlaybookResult, checks: list[Check]) -> None:
    """The run's own test: it fails when the run did, by something no check stands for."""
    if result.ok:
        return
    failed = [e for e in result.events if e.status in ("failed", "unreachable")]
    for e in failed:
        if not any(_same_path(e, c) for c in checks):
            pytest.fail(f"task '{e.task}' {e.status}: {e.reason}", pytrace=False)
    if not failed:
        text = result.log.read_text(encoding="utf-8") if result.log.exists() else ""
        errors = [ln.strip() for ln in text.splitlines() if ln.lstrip("[").startswith("ERROR")]
        pytest.fail(errors[0] if errors else result.failure(), pytrace=False)
