"""Cleanup on a signal, --keep, and the phase commands a user re-runs while debugging."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import docker.errors
import pytest
from conftest import ExampleRepo
from tiny import make_tiny

from tdi.hosts import records

Cli = Callable[..., subprocess.CompletedProcess[str]]


def run_containers(client: Any, repo: ExampleRepo) -> list[Any]:
    """Containers of the runs this repo has made (other runs may share the daemon). The
    SDK inspects each container it lists: one removed in between (a baseline build's,
    say) is listed again."""
    runs = repo.path / ".tdi" / "runs"
    ids = [p.name for p in runs.iterdir()] if runs.is_dir() else []
    for _ in range(5):
        try:
            return [
                c
                for run_id in ids
                for c in client.containers.list(all=True, filters={"label": f"tdi.run={run_id}"})
            ]
        except docker.errors.NotFound:
            time.sleep(0.2)
    return []


@pytest.mark.parametrize("hangup", [False, True], ids=["sigterm", "closed-terminal"])
def test_sigterm_removes_the_containers(
    example: ExampleRepo, docker_client: Any, hangup: bool
) -> None:
    argv = [str(Path(sys.executable).parent / "tdi"), "test", "--baseline", example.baseline]
    proc = subprocess.Popen(
        argv, cwd=example.path, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 180
    started: list[Any] = []
    while time.monotonic() < deadline and len(started) < 2 and proc.poll() is None:
        started = [
            c
            for c in run_containers(docker_client, example)
            if c.labels.get("tdi.state") in ("fresh", "upgrade")
        ]
        time.sleep(0.5)
    assert len(started) == 2, "tdi test never started both containers"
    time.sleep(2)  # into the converge, with ansible-playbook running
    if hangup:  # as a terminal that closes: SIGHUP to tdi's whole process group
        os.killpg(proc.pid, signal.SIGHUP)
    else:
        proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr.splitlines()[-1]
    assert [c.name for c in run_containers(docker_client, example)] == []
    playbooks = subprocess.run(["pgrep", "-f", f"ansible-playbook.*{example.path}"], check=False)
    assert playbooks.returncode == 1, "an ansible-playbook of the run is still running"


def test_keep_then_phase_commands(example: ExampleRepo, run_cli: Cli, docker_client: Any) -> None:
    baseline = make_tiny(example, "phases")
    created = run_cli("create", "--baseline", baseline, cwd=example.path)
    assert created.returncode == 0, created.stderr
    run = json.loads((example.path / ".tdi" / "current.json").read_text())
    containers = {n["key"]: n["container"] for n in run["nodes"]}
    names = sorted(containers.values())
    running = sorted(
        c.name for c in docker_client.containers.list(filters={"label": f"tdi.run={run['id']}"})
    )
    assert running == names
    assert f"docker exec -it {containers['fresh']} bash" in created.stdout

    converged = run_cli("converge", cwd=example.path)
    assert converged.returncode == 0, converged.stderr
    assert "fresh: converge passed" in converged.stdout

    # From a subdirectory, as git does: tdi finds the repo's root by its tdi.yml.
    verified = run_cli("verify", cwd=example.path / "roles" / "website")
    assert verified.returncode == 0, verified.stderr

    # Drift made by hand on one host, in a file a task manages, shows in `tdi diff`; a file
    # no task wrote is listed too, but does not fail (unmanaged).
    upgrade = docker_client.containers.get(containers["upgrade"])
    upgrade.exec_run(["sh", "-c", "echo tampered > /etc/tdi-release && touch /etc/stray.conf"])
    diffed = run_cli("diff", cwd=example.path / "playbooks")
    assert diffed.returncode == 1, diffed.stderr
    differences = json.loads(diffed.stdout)
    kinds = {d["key"]: d["kind"] for d in differences}
    assert kinds["/etc/stray.conf"] == "unmanaged"
    assert kinds["/etc/tdi-release"] not in ("unmanaged", "nondeterministic")

    destroyed = run_cli("destroy", cwd=example.path)
    assert destroyed.returncode == 0, destroyed.stderr
    assert docker_client.containers.list(all=True, filters={"label": f"tdi.run={run['id']}"}) == []
    assert not (example.path / ".tdi" / "current.json").exists()


def test_keep_leaves_containers_and_says_how_to_enter(
    example: ExampleRepo, run_cli: Cli, docker_client: Any
) -> None:
    baseline = make_tiny(example, "keep")
    kept = run_cli("test", "--keep", "--baseline", baseline, cwd=example.path)
    assert kept.returncode == 0, kept.stderr
    run = json.loads((example.path / ".tdi" / "current.json").read_text())
    for state, name in ((n["key"], n["container"]) for n in run["nodes"]):
        assert f"{state}: docker exec -it {name} bash" in kept.stderr
        assert docker_client.containers.get(name).status == "running"
    assert run_cli("destroy", cwd=example.path).returncode == 0


# A converge of the tiny example that holds in its first task while TDI_TEST_HOLD is set:
# a tdi to kill there. The baseline commit has no such task.
HOLD = """  pre_tasks:
    - name: Hold here, to be killed
      ansible.builtin.command: sleep 300
      changed_when: false
      when: lookup('env', 'TDI_TEST_HOLD') != ''
  tasks:"""


def processes_with(fragment: str) -> dict[int, str]:
    """Processes whose command line holds ``fragment``: pid -> command line."""
    found = {}
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # exited meanwhile, or not a process
        if fragment in cmdline and proc.name.isdigit():
            found[int(proc.name)] = cmdline
    return found


def until(check: Callable[[], bool], what: str, proc: subprocess.Popen[str] | None = None) -> None:
    deadline = time.monotonic() + 180
    while not check():
        assert proc is None or proc.poll() is None, f"tdi exited ({proc.returncode}) before {what}"
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


def held(repo: ExampleRepo, baseline: str, log: IO[str]) -> tuple[subprocess.Popen[str], str]:
    """A `tdi test` held in its converge, with ansible-playbook running on both sides; and
    its run id."""
    argv = [str(Path(sys.executable).parent / "tdi"), "test", "--baseline", baseline]
    env = {**os.environ, "TDI_TEST_HOLD": "1"}
    proc = subprocess.Popen(argv, cwd=repo.path, env=env, stderr=log, text=True)
    runs = repo.path / ".tdi" / "runs"
    pattern = re.compile(rf"{re.escape(str(runs))}/(\w+)/inventory\.fresh\.yml")

    def converging() -> list[str]:
        found = (pattern.search(cmdline) for cmdline in processes_with(f"{runs}/").values())
        return [m[1] for m in found if m]

    until(lambda: bool(converging()), "ansible-playbook ran", proc)
    run_id = converging()[0]
    until(
        lambda: bool(processes_with(f"{runs / run_id}/inventory.upgrade.yml")), "both sides", proc
    )
    return proc, run_id


def left_by(client: Any, run_id: str) -> str:
    """The containers and networks labelled with the run, as tdi names them in its log."""
    label = {"label": f"tdi.run={run_id}"}
    found = {
        "containers": sorted(c.name for c in client.containers.list(all=True, filters=label)),
        "networks": sorted(n.name for n in client.networks.list(filters=label)),
    }
    return "; ".join(f"{k} {', '.join(v)}" for k, v in found.items() if v) or "nothing"


def both(run_id: str) -> str:
    return f"tdi-{run_id}-fresh, tdi-{run_id}-upgrade"


def test_nothing_outlives_a_killed_tdi(
    example: ExampleRepo, run_cli: Cli, docker_client: Any, tmp_path: Path
) -> None:
    baseline = make_tiny(example, "killed")
    example.edit("playbooks/site.yml", "  tasks:", HOLD)
    log = tmp_path / "tdi.log"
    with log.open("w") as out:
        proc, run_id = held(example, baseline, out)
        workdir = example.path / ".tdi" / "runs" / run_id
        left = left_by(docker_client, run_id)
        assert left == f"containers {both(run_id)}; networks {both(run_id)}"
        # A live run is not touched, neither from this repo nor from a copy of it.
        clone = tmp_path / "clone"
        shutil.copytree(example.path, clone, symlinks=True)
        for repo in (example.path, clone):
            destroyed = run_cli("destroy", cwd=repo)
            assert destroyed.returncode == 0, destroyed.stderr
            assert "removed 0 containers" in destroyed.stderr
        assert left_by(docker_client, run_id) == left

        proc.kill()
        proc.wait()
    # Nothing tdi started survives it: ansible-playbook and the workers it forked.
    until(lambda: not processes_with(str(workdir)), "ansible-playbook is gone")
    assert left_by(docker_client, run_id) == left  # the containers wait for a later tdi

    destroyed = run_cli("destroy", cwd=example.path)
    assert destroyed.returncode == 0, destroyed.stderr
    assert f"removed run {run_id}, whose tdi (pid {proc.pid}) is gone: {left}" in destroyed.stderr
    assert "removed 2 containers" in destroyed.stderr
    assert left_by(docker_client, run_id) == "nothing"

    # The next run's start removes what a killed one left, then goes on.
    with log.open("w") as out:
        killed, dead_id = held(example, baseline, out)
        dead_left = left_by(docker_client, dead_id)
        killed.kill()
        killed.wait()
        dead_dir = str(example.path / ".tdi" / "runs" / dead_id)
        until(lambda: not processes_with(dead_dir), "the killed run's ansible-playbook is gone")
        later, later_id = held(example, baseline, out)
        later.send_signal(signal.SIGTERM)
        assert later.wait(timeout=120) == 130
    stderr = log.read_text()
    assert f"removed run {dead_id}, whose tdi (pid {killed.pid}) is gone: {dead_left}" in stderr
    assert stderr.splitlines()[-1] == f"tdi: interrupted; removed {both(later_id)}"
    assert left_by(docker_client, dead_id) == left_by(docker_client, later_id) == "nothing"


class Created:
    """The containers the daemon creates while it watches, as its event stream says them.

    Live, not the daemon's past events: those are a ring of 256 that a busy daemon (exec
    events of parallel tests) overwrites within seconds."""

    def __init__(self, client: Any) -> None:
        filters = {"type": "container", "event": "create", "label": "tdi.run"}
        self.stream = client.events(decode=True, filters=filters)
        self.seen: list[dict[str, str]] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        with contextlib.suppress(Exception):  # the stream ends when closed
            for event in self.stream:
                self.seen.append(event["Actor"]["Attributes"])

    def of(self, run_id: str) -> list[str]:
        time.sleep(1)  # events of the last instant arrive
        self.stream.close()
        self.thread.join(10)
        return sorted(a["name"] for a in self.seen if a.get("tdi.run") == run_id)


def create_then_interrupt(
    repo: ExampleRepo, baseline: str, delay: float, client: Any
) -> tuple[int, str, str, list[str]]:
    """`tdi create`, SIGINT ``delay`` seconds after its run recorded itself (just before
    its first network): exit code, stderr, run id, and the containers the daemon made."""
    argv = [str(Path(sys.executable).parent / "tdi"), "create", "--baseline", baseline]
    runs = repo.path / ".tdi" / "runs"
    before = set(runs.iterdir()) if runs.is_dir() else set()

    def recorded() -> list[Path]:
        return [p.parent for p in runs.glob(f"*/{records.RECORD}") if p.parent not in before]

    watch = Created(client)
    proc = subprocess.Popen(argv, cwd=repo.path, stderr=subprocess.PIPE, text=True)
    until(lambda: bool(recorded()), "the run recorded itself", proc)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    run_id = recorded()[0].name
    return proc.returncode, stderr, run_id, watch.of(run_id)


def test_an_interrupt_around_container_creation_leaves_nothing(
    example: ExampleRepo, run_cli: Cli, docker_client: Any
) -> None:
    baseline = make_tiny(example, "interrupt")
    # The baseline snapshot first: the signals are for the hosts' creation, not its build.
    assert run_cli("create", "--baseline", baseline, cwd=example.path).returncode == 0
    assert run_cli("destroy", cwd=example.path).returncode == 0
    interrupted = made_some = 0
    # From the run's record to past its hosts' boot, a second or two later.
    for delay in (0.0, 0.25, 0.5, 0.8, 1.2, 1.7, 2.4):
        code, stderr, run_id, containers = create_then_interrupt(
            example, baseline, delay, docker_client
        )
        made = ", ".join(containers)
        made_some += bool(made)
        last = stderr.splitlines()[-1]
        if code == 0 or " kept " in last:  # made before the signal, so kept
            assert code == 0 or last.startswith(f"tdi: interrupted; kept {made} ")
            assert run_cli("destroy", cwd=example.path).returncode == 0
            continue
        interrupted += 1
        assert code == 130, stderr
        assert last == (f"tdi: interrupted; removed {made}" if made else "tdi: interrupted")
        assert left_by(docker_client, run_id) == "nothing", f"SIGINT after {delay} s"
    assert interrupted >= 4  # most signals came while the run was being made
    assert made_some  # and some once the daemon had made hosts
