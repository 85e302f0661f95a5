"""Run the Testinfra tests on every node, in one pytest process, with node-named ids.

The process starts with the converge and runs each node's tests as soon as tdi marks the
node ready (plugin.py), so that no side waits for the other to be tested."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tdi import process, secrets
from tdi.config import Config
from tdi.errors import VerifyError
from tdi.hosts.run import Node, Run
from tdi.phases.parity import baseline_name
from tdi.process import PROCESSES, TIMED_OUT
from tdi.progress import KEY, Started
from tdi.provision import inventory
from tdi.provision.ansible import EXTRA_VARS_ENV, AnsibleEnv, binary
from tdi.provision.inventory import RepoInventory
from tdi.report.model import FAILED, PASSED, CaseResult, Comparison, Finding, Report, Span
from tdi.topology import FRESH, UPGRADE

log = logging.getLogger(__name__)

Counts = dict[str, int]
NODES = "nodes.json"  # the plugin's input (nodes_file), in the work directory


def has_tests(tests: Path) -> bool:
    if tests.is_file():  # a test module, or a verify playbook (verifier.py)
        return tests.suffix in (".py", ".yml", ".yaml")
    return any(tests.rglob("test_*.py")) or any(tests.rglob("*_test.py"))


def check_tests(tests: Path) -> None:
    """Fail before any container starts when there is nothing to verify with."""
    if not tests.exists():
        raise VerifyError(f"tests directory {tests} does not exist: pass --tests or set 'tests'")
    if not has_tests(tests):
        raise VerifyError(f"tests directory {tests} has no tests (no test_*.py or *_test.py)")


@dataclass
class Outcome:
    """What the plugin wrote: counts and failures per node and per comparison."""

    results: dict[str, Any] = field(default_factory=dict)

    @property
    def spans(self) -> list[tuple[str, float, float]]:
        """When each group of tests ran: side (or "run"), time.monotonic() start, seconds."""
        return [(str(w), float(s), float(n)) for w, s, n in self.results.get("spans", [])]

    def counts(self, key: str, comparison: bool = False) -> tuple[Counts, list[dict[str, str]]]:
        entry = self.results.get("comparisons" if comparison else "nodes", {}).get(key, {})
        tests = {"passed": entry.get("passed", 0), "failed": entry.get("failed", 0)}
        return tests, list(entry.get("failures", []))

    @property
    def cases(self) -> list[CaseResult]:
        return [CaseResult(**case) for case in self.results.get("cases", [])]

    def skipped(self, key: str) -> tuple[int, list[str]]:
        """How many of a node's tests were skipped, and the reasons given."""
        entry = self.results.get("nodes", {}).get(key, {})
        return int(entry.get("skipped", 0)), list(entry.get("skips", []))


def _groups(cfg: Config, repo: RepoInventory) -> dict[str, list[str]]:
    """Each host's groups, with every group above them and "all", as the inventory has."""
    parents: dict[str, set[str]] = {}
    for group, children in repo.children.items():
        for child in children:
            parents.setdefault(child, set()).add(group)
    out = {}
    for host, own in inventory.host_groups(cfg.topology, repo).items():
        found, todo = set(own), list(own)
        while todo:
            for parent in parents.get(todo.pop(), ()):
                if parent not in found:
                    found.add(parent)
                    todo.append(parent)
        out[host] = sorted(found | {"all"})
    return out


def nodes_file(
    cfg: Config,
    repo: RepoInventory,
    nodes: Sequence[Node],
    comparisons: Sequence[Comparison],
    workdir: Path,
    inventories: Mapping[str, Path],
) -> Path:
    """The plugin's input, in ``workdir``: every node under test (with its side's inventory,
    for ``host.ansible``), and every comparison both of whose sides are."""
    groups = _groups(cfg, repo)
    keys = {n.key for n in nodes}
    data = {
        "hosts": {host: groups[host] for host in cfg.topology.names},
        "workdir": str(workdir),  # where a verify playbook's runs log
        "nodes": [
            {
                "key": n.key,
                "side": n.side,
                "host": n.host,
                "url": f"docker://{n.container}",
                "inventory": str(inventories[n.side]),
                "groups": groups[n.host],
            }
            for n in nodes
        ],
        "comparisons": [
            {
                "key": c.key,
                "host": c.host,
                "fresh": cfg.topology.key(FRESH, c.host),
                "other": c.key,
                "baseline": str(workdir / baseline_name(c.key)),
            }
            for c in comparisons
            if c.key in keys and cfg.topology.key(FRESH, c.host) in keys
        ],
    }
    path = workdir / NODES
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def environment(
    env: AnsibleEnv, extra_vars: Sequence[str] = (), inventory: Path | None = None
) -> dict[str, str]:
    """The tests' environment: the command's Ansible one, so that ``host.ansible`` sees
    what the converge saw, with Ansible's commands first on PATH (Testinfra runs them by
    name); the converge's extra vars, for a verify playbook (in the environment, not in a
    file: they may hold a secret); and, as Molecule names it, an inventory of the hosts,
    which Molecule's Testinfra tests read for their ``testinfra_hosts``. No bytecode: tdi
    writes nothing into the repo's test folders."""
    variables = env.variables()
    variables["PYTHONDONTWRITEBYTECODE"] = "1"
    variables[EXTRA_VARS_ENV] = json.dumps(list(extra_vars))
    if inventory is not None:
        variables["MOLECULE_INVENTORY_FILE"] = str(inventory)
    bindir = str(Path(binary()).parent)
    variables["PATH"] = os.pathsep.join([bindir, variables.get("PATH", os.defpath)])
    return variables


def _argv(cfg: Config, workdir: Path, *extra: str) -> list[str]:
    # tdi's own ini, so that the repo's pytest settings for tdi's unit tests do not apply.
    ini = workdir / "pytest.ini"
    ini.write_text("[pytest]\n", encoding="utf-8")
    argv = [sys.executable, "-m", "pytest", "-c", str(ini), "--rootdir", str(cfg.root)]
    argv += ["-p", "no:cacheprovider"]
    # pytest-timeout: a test that hangs fails by its name, and the others go on.
    argv.append(f"--timeout={cfg.test_timeout}")
    # Assertion values whole: a secret cut in half would escape masking by value.
    argv += ["-o", "verbosity_assertions=2"]
    return [*argv, f"--tdi-nodes={workdir / NODES}", *extra, str(cfg.tests)]


def collect(cfg: Config, env: AnsibleEnv, repo: RepoInventory, tmp: Path) -> None:
    """Collect the tests against the planned nodes and resolve their fixtures, before any
    container starts: a test file or conftest that does not import, a fixture that does
    not exist, or a ``testinfra_hosts`` that matches no host, is bad input."""
    planned = [
        Node(cfg.topology.key(side, h), side, h, "none", "none")
        for side in (FRESH, UPGRADE)
        for h in cfg.topology.names
    ]
    comparisons = [Comparison(n.side, n.host, n.key, "none") for n in planned if n.side != FRESH]
    placeholder = {side: tmp / "inventory.yml" for side in (FRESH, UPGRADE)}
    nodes_file(cfg, repo, planned, comparisons, tmp, placeholder)
    # --setup-plan: collect, then look every fixture up without running one or any test.
    proc = process.run(
        _argv(cfg, tmp, "--setup-plan", "-qq"),
        cwd=cfg.root,
        env=environment(env, cfg.extra_vars, placeholder[FRESH]),
    )
    if proc.returncode == 5:
        raise VerifyError(f"pytest collected no tests in {cfg.tests}")
    if proc.returncode != 0:
        why = _why(proc.stdout + proc.stderr, cfg.root)
        raise VerifyError(f"the tests in {cfg.rel(cfg.tests)} do not collect: {why}")


# Where a block of pytest's output starts: a test file, a test, or a conftest.
_BLOCK = re.compile(
    r"ERROR collecting (\S+)|ERROR at setup of (\S+)|ImportError while loading conftest '([^']+)'"
)
# Where the error is, best first: a SyntaxError's own place; the definition of the
# fixture or test whose fixture is missing; the last traceback frame in the repo (pytest
# prints those relative to the repo, the others absolute).
_PLACES = (
    re.compile(r'^E\s+File "(?P<file>[^"]+)", line (?P<line>\d+)'),
    re.compile(r"^file (?P<file>.+), line (?P<line>\d+)$"),
    re.compile(r"^(?P<file>[^/<\s][^:]*):(?P<line>\d+): in "),
)


def _why(output: str, root: Path) -> str:
    """The first error as ``FILE:LINE: ERROR``, from pytest's output."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    usage = [ln.removeprefix("ERROR: ") for ln in lines if ln.startswith("ERROR: ")]
    if usage:
        return usage[0]
    start = next((i for i, ln in enumerate(lines) if _BLOCK.search(ln)), None)
    if start is None:
        return lines[-1] if lines else "no output"
    found = _BLOCK.search(lines[start])
    where = next((g for g in found.groups() if g), "a test file") if found else "a test file"
    block = []
    for ln in lines[start + 1 :]:
        if _BLOCK.search(ln) or ln.startswith("="):
            break
        block.append(ln)
    for pattern in _PLACES:
        places = [m for ln in block if (m := pattern.search(ln))]
        if places:
            where = f"{_relative(places[-1]['file'], root)}:{places[-1]['line']}"
            break
    errors = [ln.removeprefix("E").strip() for ln in block if ln.startswith("E ")]
    return f"{_relative(where, root)}: {errors[-1] if errors else 'cannot be imported'}"


def _relative(path: str, root: Path) -> str:
    return path.removeprefix(f"{root}/")


class Session:
    """The run's one pytest process, started before its hosts are ready (the plugin's
    ``--tdi-ready``): ``mark`` each node when its side is done with it, then ``finish``."""

    def __init__(
        self,
        cfg: Config,
        env: AnsibleEnv,
        run: Run,
        comparisons: Sequence[Comparison],
        name: str = "verify",
    ) -> None:
        self.results = run.workdir / f"{name}.results.json"
        self.results.unlink(missing_ok=True)
        self.ready = run.workdir / f"{name}.ready"
        shutil.rmtree(self.ready, ignore_errors=True)
        self.ready.mkdir()
        nodes = list(run.nodes.values())
        repo = inventory.read(run.inventory(nodes[0].side))
        inventories = {side: run.inventory(side) for side in run.sides}
        nodes_file(cfg, repo, nodes, comparisons, run.workdir, inventories)
        flags = ("-q", "-rfE", f"--tdi-results={self.results}", f"--tdi-ready={self.ready}")
        argv = _argv(cfg, run.workdir, *flags)
        self.tests = cfg.tests
        self.log = run.workdir / f"{name}.log"
        self.output = secrets.MaskedOutput(self.log)
        try:
            self.proc = PROCESSES.start(
                argv,
                cwd=cfg.root,
                env=environment(env, cfg.extra_vars, inventories[nodes[0].side]),
                stdout=self.output.fd,
                stderr=subprocess.STDOUT,
            )
        finally:
            self.output.release()

    def mark(self, node: Node, why_not: str = "") -> None:
        """``node`` is ready for its tests, or will not be (``why_not``)."""
        name = node.key.replace("/", ".")
        part = self.ready / f".{name}.part"
        part.write_text(why_not, encoding="utf-8")
        part.replace(self.ready / name)  # whole, or not there at all

    def finish(self, timeout: float | None = None) -> Outcome:
        """Wait for the tests (every node must be marked), ``timeout`` seconds at most."""
        code = PROCESSES.wait(self.proc, timeout)
        self.output.drain()
        if code == TIMED_OUT:
            raise VerifyError(
                f"the tests in {self.tests} were stopped after {timeout:.0f} s (the phase or "
                f"run limit); see {self.log}"
            )
        if code == 5:
            raise VerifyError(f"pytest collected no tests in {self.tests}; see {self.log}")
        if code not in (0, 1) or not self.results.exists():
            raise VerifyError(
                f"pytest could not run the tests in {self.tests} (exit {code}); see {self.log}"
            )
        return Outcome(json.loads(self.results.read_text(encoding="utf-8")))

    def stop(self) -> None:
        PROCESSES.stop(self.proc)


def run(cfg: Config, env: AnsibleEnv, run: Run, report: Report) -> None:
    """Verify hosts already converged (`tdi verify`)."""
    with verification(cfg, env, run, report) as tests:
        mark_ready(tests, report, list(run.nodes.values()))


def mark_ready(tests: Session, report: Report, nodes: Sequence[Node]) -> None:
    ready = [n for n in nodes if report.converged(n.key) and not report.states[n.key].down]
    for side in dict.fromkeys(n.side for n in ready):
        log.info("verify of %s ...", side, extra={KEY: Started(side, "verify")})
    for node in nodes:
        why = "the host is down" if report.states[node.key].down else "converge failed"
        tests.mark(node, "" if node in ready else why)


@contextmanager
def verification(
    cfg: Config, env: AnsibleEnv, run: Run, report: Report, rebooted: bool = False
) -> Iterator[Session]:
    """The run's tests, started at once: mark each node in the session when it is ready.
    At the end, wait for them and record what they found. ``rebooted``: the tests again,
    after the reboot step; a test that passed before and fails now fails the reboot."""
    begun = time.monotonic()
    name = "retest" if rebooted else "verify"
    tests = Session(cfg, env, run, report.comparisons, name)
    try:
        yield tests
    except BaseException:
        tests.stop()
        raise
    ready = [n for n in run.nodes.values() if report.converged(n.key)]
    ready = [n for n in ready if not report.states[n.key].down]
    outcome = Outcome()
    try:
        outcome = tests.finish(cfg.limit())
        log.info("%s done (pytest ran %.1f s)", name, time.monotonic() - begun)
    except VerifyError as exc:  # the tests could not run: a failed phase, not bad input
        log.error("%s: %s", name, exc)
        for node in ready:
            found = Finding("reboot" if rebooted else "verify", FAILED, f"{name}: {exc}")
            report.record(node.key, found)
        ready = []
    report.timeline += [Span(name, who, at, seconds) for who, at, seconds in outcome.spans]
    if rebooted:
        _after_reboot(report, outcome, ready)
        return
    report.cases += outcome.cases  # a rollback's own tests ran in a session of their own
    for node in ready:
        found = _finding(node.key, outcome)
        report.record(node.key, found)
        log.info(
            "verify %s: %s (%s)", node.key, found.status, report.states[node.key].tests_summary
        )
    for c in (c for c in report.comparisons if c.key in run.nodes):
        counts, failures = outcome.counts(c.key, comparison=True)
        report.compared(c.key, tests=counts, failures=failures)


def _after_reboot(report: Report, outcome: Outcome, nodes: Sequence[Node]) -> None:
    """The tests after the reboot: each that passed before and fails now fails the
    reboot step of its node. Their cases join the run's, marked as after the reboot."""
    before = {c.id: c.outcome for c in report.cases}
    report.cases += [replace(c, id=f"{c.id} (after the reboot)") for c in outcome.cases]
    for node in nodes:
        _, failures = outcome.counts(node.key)
        _, compared = outcome.counts(node.key, comparison=True)  # same_on_both, by other
        if broken := [f["id"] for f in [*failures, *compared] if before.get(f["id"]) == PASSED]:
            said = f"{len(broken)} tests passed before the reboot and fail after it: "
            state = report.states[node.key]
            prior = f"{state.error}; " if state.reboot == FAILED and state.error else "reboot: "
            found = Finding("reboot", FAILED, prior + said + ", ".join(broken))
            report.record(node.key, found)
            log.info("reboot %s: %s", node.key, found.error)


def _finding(key: str, outcome: Outcome) -> Finding:
    """What the tests found on node ``key``: passed when some ran and none failed."""
    tests, failures = outcome.counts(key)
    ran = tests.get("passed", 0) + tests.get("failed", 0)
    status = PASSED if ran and not tests.get("failed") else FAILED
    error = "" if ran else f"verify: {_none_ran(key, *outcome.skipped(key))}"
    return Finding("verify", status, error, tests=tests, failures=tuple(failures))


def _none_ran(key: str, skipped: int, reasons: list[str]) -> str:
    """Why no test ran on a node, in one line."""
    if skipped:
        why = "; ".join(reasons[:2]) or "no reason given"
        return f"no test ran on {key}: {skipped} skipped ({why})"
    return (
        f"no test ran on {key}: none selected it (a module's testinfra_hosts, or -k/-m "
        "in the tests' own settings)"
    )
