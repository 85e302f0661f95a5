"""Cleanup on a signal, --keep, and the phase commands a user re-runs while debugging."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import ExampleRepo

Cli = Callable[..., subprocess.CompletedProcess[str]]


def run_containers(client: Any, repo: ExampleRepo) -> list[Any]:
    """Containers of the runs this repo has made (other runs may share the daemon)."""
    runs = repo.path / ".tdi" / "runs"
    ids = [p.name for p in runs.iterdir()] if runs.is_dir() else []
    return [
        c
        for run_id in ids
        for c in client.containers.list(all=True, filters={"label": f"tdi.run={run_id}"})
    ]


def test_sigterm_removes_the_containers(example: ExampleRepo, docker_client: Any) -> None:
    argv = [str(Path(sys.executable).parent / "tdi"), "test", "--baseline", example.baseline]
    proc = subprocess.Popen(argv, cwd=example.path, stderr=subprocess.PIPE, text=True)
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
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr.splitlines()[-1]
    assert [c.name for c in run_containers(docker_client, example)] == []


def test_keep_then_phase_commands(example: ExampleRepo, run_cli: Cli, docker_client: Any) -> None:
    created = run_cli("create", "--baseline", example.baseline, cwd=example.path)
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

    verified = run_cli("verify", cwd=example.path)
    assert verified.returncode == 0, verified.stderr

    # Drift made by hand on one host shows in `tdi diff`.
    docker_client.containers.get(containers["upgrade"]).exec_run(
        ["touch", "/etc/nginx/conf.d/stale.conf"]
    )
    diffed = run_cli("diff", cwd=example.path)
    assert diffed.returncode == 1
    differences = json.loads(diffed.stdout)
    assert [(d["category"], d["key"]) for d in differences] == [
        ("file", "/etc/nginx/conf.d/stale.conf")
    ]

    destroyed = run_cli("destroy", cwd=example.path)
    assert destroyed.returncode == 0, destroyed.stderr
    assert docker_client.containers.list(all=True, filters={"label": f"tdi.run={run['id']}"}) == []
    assert not (example.path / ".tdi" / "current.json").exists()


def test_keep_leaves_containers_and_says_how_to_enter(
    example: ExampleRepo, run_cli: Cli, docker_client: Any
) -> None:
    kept = run_cli("test", "--keep", "--baseline", example.baseline, cwd=example.path)
    assert kept.returncode == 0, kept.stderr
    run = json.loads((example.path / ".tdi" / "current.json").read_text())
    for state, name in ((n["key"], n["container"]) for n in run["nodes"]):
        assert f"{state}: docker exec -it {name} bash" in kept.stderr
        assert docker_client.containers.get(name).status == "running"
    assert run_cli("destroy", cwd=example.path).returncode == 0
