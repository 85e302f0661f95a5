"""Fixtures for tdi's integration tests: real Docker, real Ansible, temp git repos.

Each test copies the example infrastructure into a temp git repo, commits it as the
baseline with fixed dates (so every test gets the same commit and reuses one snapshot),
commits a mutation on top, and runs the real `tdi` command.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from registry import Registry

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = (
    "tdi.yml",
    "ansible.cfg",
    "playbooks",
    "roles",
    "images",
    "inventory",
    "tests/infra",
    "tests/topology",
)
# A mutation that fails only on upgrade: the website's document root becomes a link, fine
# on a new host, refused over the directory an old one has.
DOC_ROOT_TASK = """- name: Create the website document root
  ansible.builtin.file:
    path: "{{ website_root }}"
    state: directory
    owner: root
    group: root
    mode: "0755"
"""
DOC_ROOT_LINK = """- name: Create the directory that holds the website
  ansible.builtin.file:
    path: /srv/www
    state: directory
    mode: "0755"

- name: Point the website document root at it
  ansible.builtin.file:
    src: /srv/www
    dest: "{{ website_root }}"
    state: link
"""
# For a test that is not about idempotence: each side's playbook runs once. A second run
# costs as much as the converge, and CI's 15 minutes are mostly playbook runs.
ONCE = ("--no-idempotence",)
GIT_ENV = {
    "GIT_AUTHOR_NAME": "tdi tests",
    "GIT_AUTHOR_EMAIL": "tests@tdi.invalid",
    "GIT_COMMITTER_NAME": "tdi tests",
    "GIT_COMMITTER_EMAIL": "tests@tdi.invalid",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
}


def role_tarball(files: dict[str, str]) -> bytes:
    """A vendored role as ansible-galaxy takes it: a tar.gz of ``files`` (path -> text)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def pytest_configure(config: pytest.Config) -> None:
    # A job a non-interactive shell starts in the background ignores SIGINT, and so would
    # every tdi these tests start: the interrupt tests (here and in tests/unit, which run in
    # the same session) would test nothing.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@dataclass
class Outcome:
    code: int
    stderr: str
    report: dict[str, Any]
    junit: Path
    markdown: Path
    html: Path

    def state(self, name: str) -> dict[str, Any]:
        states: dict[str, Any] = self.report["states"]
        return dict(states[name])


class ExampleRepo:
    """A temp git repo holding the example, with a baseline commit and edits on top."""

    def __init__(self, path: Path) -> None:
        self.path = path
        for item in EXAMPLE:
            src, dst = REPO / item, path / item
            if src.is_dir():
                shutil.copytree(
                    src, dst, symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
                )
            else:
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
        # ansible-lint costs seconds a run, and these tests are about other things: it
        # runs in test_lint.py (and in `tox -e example`, on the example itself).
        self.edit("tdi.yml", "lint: production\n", "")
        self.git("init", "-q", "-b", "main")
        self.baseline = self.commit("baseline: the example as it is")

    def git(self, *args: str) -> str:
        env = {**os.environ, **GIT_ENV}
        out = subprocess.run(
            ["git", *args], cwd=self.path, env=env, check=True, capture_output=True, text=True
        )
        return out.stdout.strip()

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def edit(self, relpath: str, old: str, new: str) -> None:
        """Replace every ``old`` (which must be there) by ``new`` in a file of the repo."""
        path = self.path / relpath
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{relpath} no longer contains {old!r}: update the mutation"
        path.write_text(text.replace(old, new), encoding="utf-8")

    def tdi(self, *args: str) -> Outcome:
        report, junit = self.path / "report.json", self.path / "junit.xml"
        markdown, html = self.path / "summary.md", self.path / "report.html"
        report.unlink(missing_ok=True)
        argv = [
            str(Path(sys.executable).parent / "tdi"),
            *args,
            "--report",
            str(report),
            "--junit",
            str(junit),
            "--markdown",
            str(markdown),
            "--html",
            str(html),
        ]
        proc = subprocess.run(argv, cwd=self.path, capture_output=True, text=True, check=False)
        sys.stderr.write(proc.stderr)  # shown by pytest when a test fails
        data = json.loads(report.read_text()) if report.exists() else {}
        return Outcome(proc.returncode, proc.stderr, data, junit, markdown, html)


# The modules whose tests take minutes: run first, so that xdist's workers do not wait at
# the end on one long test.
SLOW_FIRST = (
    "test_podman.py",
    "test_release.py",
    "test_daemons.py",
    "test_drift.py",
    "test_topologies.py",
    "test_init.py",
    "test_lifecycle.py",
    "test_failures.py",
    "test_probes.py",
    "test_upgrade_safety.py",
    "test_rpm_host.py",
    "test_reboot.py",
    "test_rollback.py",
    "test_callbacks.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/integration needs Docker and Ansible: mark them here, once."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.integration)

    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return SLOW_FIRST.index(name) if name in SLOW_FIRST else len(SLOW_FIRST)

    items.sort(key=rank)  # stable: the rest keep their order


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    client = docker.from_env()
    client.ping()  # integration tests need a real daemon: fail, don't skip, without one
    yield client
    client.close()


@pytest.fixture(scope="session")
def base_image(docker_client: Any) -> str:
    """The example's base image, built (or found) by `tdi images build`."""
    argv = [str(Path(sys.executable).parent / "tdi"), "images", "build", "-C", str(REPO)]
    # One build for all xdist workers (and tox environments): tdi's own machine lock makes
    # the others wait, then find it made.
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture
def example(tmp_path: Path, docker_client: Any, base_image: str) -> Iterator[ExampleRepo]:
    # base_image: built once, under a lock, before any test's tdi would build it too.
    repo = ExampleRepo(tmp_path / "infra")
    yield repo
    # Only this repo's runs: other tdi runs may share the daemon.
    runs = repo.path / ".tdi" / "runs"
    ids = [p.name for p in runs.iterdir()] if runs.is_dir() else []
    leaked = [
        c
        for run_id in ids
        for c in docker_client.containers.list(all=True, filters={"label": f"tdi.run={run_id}"})
    ]
    for container in leaked:
        container.remove(force=True)
    networks = [
        n
        for run_id in ids
        for n in docker_client.networks.list(filters={"label": f"tdi.run={run_id}"})
    ]
    for network in networks:
        network.reload()
        for attached in network.containers:  # the package cache, which outlives runs
            network.disconnect(attached, force=True)
        network.remove()
    assert not leaked, f"tdi left containers behind: {[c.name for c in leaked]}"
    assert not networks, f"tdi left networks behind: {[n.name for n in networks]}"


@pytest.fixture
def run_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(
        *args: str, cwd: Path, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(Path(sys.executable).parent / "tdi"), *args]
        return subprocess.run(
            argv,
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, **(env or {})},
        )

    return run


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory, docker_client: Any) -> Iterator[Registry]:
    """A real registry on 127.0.0.1, no auth."""
    server = Registry(tmp_path_factory.mktemp("registry"))
    yield server
    server.stop()
    forget_images(docker_client, server)


@pytest.fixture(scope="session")
def auth_registry(
    tmp_path_factory: pytest.TempPathFactory, docker_client: Any
) -> Iterator[Registry]:
    """A real registry on 127.0.0.1 that wants htpasswd credentials."""
    server = Registry(tmp_path_factory.mktemp("auth-registry"), "tdi-ci", "correct-horse-42")
    yield server
    server.stop()
    forget_images(docker_client, server)


def forget_images(docker_client: Any, server: Registry) -> None:
    """The local tags for ``server`` (tdi snapshot tags what it pushes): its port dies with
    it, so no later run can use them. By tag, not by id: a test tags the shared base image
    for a registry too, and that image must stay. An image loses its last tag and goes;
    an untagged parent goes with its child."""
    prefix = f"{server.host}/"
    tags = [t for i in docker_client.images.list() for t in i.tags if t.startswith(prefix)]
    for tag in tags:
        with contextlib.suppress(docker.errors.APIError):  # tidying only
            docker_client.images.remove(tag)


@pytest.fixture
def cleanup(docker_client: Any) -> Iterator[list[Any]]:
    """Remove what the repos' runs made (test_init.Repo: a temp git repo of files as
    given): containers, networks, baseline snapshots."""
    repos: list[Any] = []
    yield repos
    leaked = []
    for repo in repos:
        runs = repo.path / ".tdi" / "runs"
        for run_id in [p.name for p in runs.iterdir()] if runs.is_dir() else []:
            found = {"label": f"tdi.run={run_id}"}
            for container in docker_client.containers.list(all=True, filters=found):
                leaked.append(container.name)
                container.remove(force=True)
            for network in docker_client.networks.list(filters=found):
                leaked.append(network.name)
                network.remove()
        head = {"label": f"tdi.baseline.commit={repo.git('rev-parse', 'HEAD')}"}
        for image in docker_client.images.list(filters=head):
            docker_client.images.remove(image.id, force=True)
    assert not leaked, f"tdi left these behind: {leaked}"
