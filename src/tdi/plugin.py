"""The pytest plugin (entry point ``pytest11``).

Given ``--tdi-nodes FILE`` (tdi writes it: every node's key, side, host, Testinfra URL and
groups, and every comparison), it provides:

- ``host``: Testinfra's host, parametrized over the nodes, ids ``[fresh]``/``[upgrade]``
  or ``[fresh/db]``/``[upgrade/db]`` with several hosts. A module-level
  ``testinfra_hosts = ["ansible://GROUP"]`` (or host names, or globs) chooses the hosts,
  as in Testinfra. ``host.ansible`` works, with the side's inventory (host_backend.py);
- ``fresh_host`` and ``upgrade_host``: both sides of one comparison (fresh against the
  upgrade, or an older link), ids ``[upgrade]`` or ``[upgrade/db]``;
- ``same_on_both``: runs one command on both sides of a comparison and fails when the
  outputs differ. A test on a comparison counts once, under parity, not per side;
- ``baseline_state``: the state captured when the production snapshot was made.

With ``--tdi-ready DIR`` too, pytest starts before the hosts are ready (tdi starts it
with the converge): it runs each group of tests (those of one node, of one comparison,
or of no host, which run at once) as soon as tdi has marked every node the group needs,
in DIR. A mark holds nothing when the node is ready, else why it is not (its converge
failed): then the group's tests are deselected, as if that node were not under test.

Without ``--tdi-nodes``, ``host`` is Testinfra's own and the other fixtures skip.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest
import testinfra

from tdi import secrets, verifier
from tdi.engine import host_backend
from tdi.state.capture import State

NODE_PARAM, PAIR_PARAM = "tdi_node", "tdi_pair"
# What same_on_both found different, kept on its test so that the report carries it.
DIFF = pytest.StashKey[str]()
# Characters of a failed test's report kept for JUnit: its end, where the assertion is.
MAX_DETAILS = 20_000
PLUGIN_NAME = "tdi-nodes"
RANK = {"passed": 0, "skipped": 1, "failed": 2}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tdi")
    group.addoption("--tdi-nodes", metavar="FILE", help="the nodes and comparisons, as JSON")
    group.addoption("--tdi-results", metavar="FILE", help="write counts per node as JSON")
    group.addoption("--tdi-ready", metavar="DIR", help="run tests as tdi marks nodes ready")


def selected(entries: list[str], hosts: dict[str, list[str]], where: str) -> set[str]:
    """The hosts ``testinfra_hosts`` names, of ``hosts`` (every host -> its groups): groups
    or host names (globs), ``ansible://`` prefixes and ``?options`` dropped. An entry that
    matches no host of the topology is an error."""
    chosen: set[str] = set()
    for entry in entries:
        pattern = entry.split("://", 1)[-1].split("?", 1)[0] or "all"
        hits = {
            host
            for host, groups in hosts.items()
            if fnmatch.fnmatchcase(host, pattern)
            or any(fnmatch.fnmatchcase(g, pattern) for g in groups)
        }
        if not hits:
            groups = sorted({g for gs in hosts.values() for g in gs})
            raise pytest.UsageError(
                f"{where}: testinfra_hosts entry '{entry}' matches no host (hosts: "
                f"{', '.join(sorted(hosts))}; groups: {', '.join(groups)})"
            )
        chosen |= hits
    return chosen


class Nodes:
    """Registered during configure, after Testinfra, so that its ``host`` fixture wins."""

    def __init__(self, data: dict[str, Any], results: str | None, ready: str | None) -> None:
        self.nodes: list[dict[str, Any]] = data["nodes"]  # under test
        # Every host of the topology and its groups, converged or not.
        self.hosts: dict[str, list[str]] = data.get("hosts") or {
            n["host"]: n["groups"] for n in self.nodes
        }
        self.pairs: list[dict[str, Any]] = data["comparisons"]
        self.results_path = results
        # One outcome per test, the worst of its phases, and its first failure line.
        self.outcomes: dict[str, tuple[str, str, str]] = {}  # nodeid -> bucket, key, outcome
        self.messages: dict[str, str] = {}
        self.skips: dict[str, str] = {}  # nodeid -> why it was skipped
        self.diffs: dict[str, str] = {}  # nodeid -> what same_on_both found different
        self.seconds: dict[str, float] = {}  # nodeid -> its phases' time
        self.details: dict[str, str] = {}  # nodeid -> its first failure, whole
        self.ready = Path(ready) if ready else None
        self.workdir = Path(data.get("workdir") or ".")
        self.spans: list[tuple[str, float, float]] = []  # side or "run", start, seconds
        self._hosts: dict[str, Any] = {}  # key -> Testinfra's host, made once

    def host_of(self, key: str) -> Any:
        node = next((n for n in self.nodes if n["key"] == key), None)
        if node is None:
            pytest.skip(f"{key} is not under test (its converge failed?)")
        if key not in self._hosts:
            url, inventory = node["url"], node.get("inventory")
            self._hosts[key] = (
                host_backend.host(url.removeprefix("docker://"), node["host"], inventory)
                if url.startswith("docker://") and inventory
                else testinfra.get_host(url)
            )
        return self._hosts[key]

    @pytest.fixture(scope="module")
    def tdi_node(self, request: pytest.FixtureRequest) -> str:
        """The key of the node under test: fresh, upgrade, or SIDE/HOST."""
        return str(request.param)

    @pytest.fixture(scope="module")
    def host(self, tdi_node: str) -> Any:
        """Testinfra's host, connected to the container of ``tdi_node``."""
        return self.host_of(tdi_node)

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> pytest.File | None:
        """A verify playbook given as the tests: its assert tasks, as tests (verifier.py)."""
        if not verifier.is_playbook(file_path) or not parent.session.isinitpath(file_path):
            return None
        return verifier.PlaybookFile.from_parent(
            parent,
            path=file_path,
            nodes=self.nodes,
            workdir=self.workdir,
        )

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        entries = getattr(metafunc.module, "testinfra_hosts", None)
        hosts = (
            selected(list(entries), self.hosts, metafunc.module.__file__)
            if entries is not None
            else set(self.hosts)
        )
        if NODE_PARAM in metafunc.fixturenames:
            keys = [n["key"] for n in self.nodes if n["host"] in hosts]
            metafunc.parametrize(NODE_PARAM, keys, ids=keys, indirect=True, scope="module")
        if PAIR_PARAM in metafunc.fixturenames:
            pairs = [p for p in self.pairs if p["host"] in hosts]
            ids = [p["key"] for p in pairs]
            metafunc.parametrize(PAIR_PARAM, pairs, ids=ids, indirect=True, scope="module")

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        self.seconds[item.nodeid] = self.seconds.get(item.nodeid, 0.0) + report.duration
        if report.when == "call" or not report.passed:
            outcome = report.outcome if report.when == "call" or report.failed else "skipped"
            bucket, key = _owner(item)
            before = self.outcomes.get(item.nodeid, (bucket, key, "passed"))[2]
            self.outcomes[item.nodeid] = (bucket, key, max(before, outcome, key=RANK.__getitem__))
            if outcome == "skipped" and report.skipped and item.nodeid not in self.skips:
                self.skips[item.nodeid] = _skip_reason(report)
            if report.failed and item.nodeid not in self.messages:
                self.messages[item.nodeid] = _first_line(report)
                self.details[item.nodeid] = report.longreprtext[-MAX_DETAILS:]
                if found := item.stash.get(DIFF, ""):
                    self.diffs[item.nodeid] = found
        return report

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool | None:
        """pytest's own loop, but a group at a time, each as soon as its nodes are ready.
        Fixtures are torn down as pytest would, for the item that runs next."""
        if self.ready is None or session.config.option.collectonly:
            return None
        if session.testsfailed and not session.config.option.continue_on_collecterror:
            raise session.Interrupted(f"{session.testsfailed} errors during collection")
        groups: dict[frozenset[str], list[pytest.Item]] = {}
        for item in session.items:
            groups.setdefault(self._needs(item), []).append(item)
        current = self._next_ready(session, groups, wait=True)
        while current is not None:
            items, start = groups.pop(current), time.monotonic()
            following = None
            for i, item in enumerate(items):
                nextitem: pytest.Item | None = items[i + 1] if i + 1 < len(items) else None
                if nextitem is None:  # a group ready now keeps the fixtures both share
                    following = self._next_ready(session, groups, wait=False)
                    nextitem = groups[following][0] if following is not None else None
                item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
                if session.shouldfail:
                    raise session.Failed(session.shouldfail)
                if session.shouldstop:
                    raise session.Interrupted(session.shouldstop)
            self.spans.append((self._who(current), start, time.monotonic() - start))
            if following is None:
                following = self._next_ready(session, groups, wait=True)
            current = following
        return True

    def _needs(self, item: pytest.Item) -> frozenset[str]:
        """The nodes ``item`` tests: its node, its comparison's two, or none (a test that
        uses no host, which runs at once)."""
        bucket, key = _owner(item)
        if bucket == "comparisons":
            pair = next(p for p in self.pairs if p["key"] == key)
            return frozenset((pair["fresh"], pair["other"]))
        return frozenset([key] if key else [])

    def _who(self, keys: frozenset[str]) -> str:
        sides = {n["side"] for n in self.nodes if n["key"] in keys}
        return sides.pop() if len(sides) == 1 else "run"

    def _next_ready(
        self, session: pytest.Session, groups: dict[frozenset[str], list[pytest.Item]], wait: bool
    ) -> frozenset[str] | None:
        """The first group whose nodes are all ready, waiting for one if ``wait``; a group
        with a node that will not be is deselected. None when no group is left (or, without
        ``wait``, none is ready yet)."""
        assert self.ready is not None
        while groups:
            marks: dict[str, str | None] = {}
            for keys in list(groups):
                for key in keys - marks.keys():
                    path = self.ready / key.replace("/", ".")
                    marks[key] = path.read_text(encoding="utf-8") if path.exists() else None
                if all(marks[k] == "" for k in keys):
                    return keys
                if any(marks[k] for k in keys):
                    session.config.hook.pytest_deselected(items=groups.pop(keys))
            if groups and not wait:
                return None
            if groups:
                time.sleep(0.05)
        return None

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        counts: dict[str, dict[str, dict[str, Any]]] = {"nodes": {}, "comparisons": {}}
        for nodeid, (bucket, key, outcome) in self.outcomes.items():
            keys = [key] if key else [n["key"] for n in self.nodes]
            for one in keys:
                entry = counts[bucket].setdefault(
                    one, {"passed": 0, "failed": 0, "skipped": 0, "failures": [], "skips": []}
                )
                entry[outcome] += 1
                reason = self.skips.get(nodeid, "") if outcome == "skipped" else ""
                if reason and reason not in entry["skips"]:
                    entry["skips"].append(reason)
                if outcome == "failed":
                    found = {"diff": self.diffs[nodeid]} if nodeid in self.diffs else {}
                    failure = {"id": nodeid, "message": self.messages[nodeid], **found}
                    entry["failures"].append(failure)
        cases = [
            {
                "id": nodeid,
                "outcome": outcome,
                "seconds": round(self.seconds.get(nodeid, 0.0), 3),
                "message": self.messages.get(nodeid) or self.skips.get(nodeid, ""),
                "details": self.details.get(nodeid, ""),
            }
            for nodeid, (_, _, outcome) in self.outcomes.items()
        ]
        if self.results_path:
            data = {**counts, "spans": self.spans, "cases": cases}
            text = secrets.scrub(json.dumps(data))
            Path(self.results_path).write_text(text, encoding="utf-8")


def _skip_reason(report: pytest.TestReport) -> str:
    """Why a test was skipped: pytest's (path, line, reason) says it."""
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else ""
    return str(reason).removeprefix("Skipped: ")[:200]


def _owner(item: pytest.Item) -> tuple[str, str]:
    """Whose test this is: a node's (``host``), a comparison's, or every node's ("")."""
    if isinstance(node := getattr(item, "tdi_node", None), str):  # a verify playbook's
        return "nodes", node
    params = getattr(getattr(item, "callspec", None), "params", {})
    if isinstance(params.get(NODE_PARAM), str):
        return "nodes", params[NODE_PARAM]
    if isinstance(params.get(PAIR_PARAM), dict):  # not when pytest had no pair to give
        return "comparisons", str(params[PAIR_PARAM]["key"])
    return "nodes", ""


def _first_line(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = getattr(crash, "message", None) or report.longreprtext or report.outcome
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return (lines[0] if lines else "failed")[:300]


def _active(request: pytest.FixtureRequest) -> Nodes:
    plugin = request.config.pluginmanager.get_plugin(PLUGIN_NAME)
    if plugin is None:
        pytest.skip("needs tdi: run by `tdi test` or `tdi verify`")
    assert isinstance(plugin, Nodes)
    return plugin


@pytest.fixture(scope="module")
def tdi_pair(request: pytest.FixtureRequest) -> dict[str, str]:
    """The comparison under test: its key, host, the keys of both sides, its baseline."""
    _active(request)
    return dict(request.param)


@pytest.fixture(scope="module")
def fresh_host(request: pytest.FixtureRequest, tdi_pair: dict[str, str]) -> Any:
    """The fresh side of the comparison under test (a new server)."""
    return _active(request).host_of(tdi_pair["fresh"])


@pytest.fixture(scope="module")
def upgrade_host(request: pytest.FixtureRequest, tdi_pair: dict[str, str]) -> Any:
    """The other side of the comparison under test (an existing server, upgraded)."""
    return _active(request).host_of(tdi_pair["other"])


@pytest.fixture(scope="session")
def baseline_state(request: pytest.FixtureRequest) -> State:
    """What the upgrade image held when it was made (a tdi.state.State): the first
    comparison's."""
    pairs = _active(request).pairs
    path = pairs[0].get("baseline") if pairs else None
    if not path or not Path(path).exists():
        pytest.skip("the upgrade image carries no baseline state")
    return State.from_json(Path(path).read_text(encoding="utf-8"))


@pytest.fixture
def same_on_both(
    request: pytest.FixtureRequest, fresh_host: Any, upgrade_host: Any
) -> Callable[[str], str]:
    """``same_on_both(cmd)`` runs ``cmd`` on both sides and asserts equal output. A
    failure carries the diff, in pytest's output and in tdi's report."""

    def check(command: str) -> str:
        fresh = fresh_host.check_output(command)
        upgrade = upgrade_host.check_output(command)
        if fresh != upgrade:
            delta = "\n".join(
                difflib.unified_diff(
                    fresh.splitlines(), upgrade.splitlines(), "fresh", "upgrade", lineterm=""
                )
            )
            request.node.stash[DIFF] = delta
            pytest.fail(f"`{command}` differs:\n{delta}", pytrace=False)
        return str(fresh)

    return check


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("--tdi-nodes")
    if path:
        secrets.from_environment()
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        plugin = Nodes(data, config.getoption("--tdi-results"), config.getoption("--tdi-ready"))
        config.pluginmanager.register(plugin, PLUGIN_NAME)
