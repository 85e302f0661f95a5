"""The production snapshot lifecycle against a real local registry (Debian's docker-registry)."""

from __future__ import annotations

import io
import json
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import docker.errors
import pytest
from conftest import ONCE, ExampleRepo
from registry import Registry, StallingProxy
from tiny import broken_release, make_tiny, release

Cli = Callable[..., CompletedProcess[str]]


def fresh_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def one_error(proc: CompletedProcess[str], code: int = 2) -> str:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("tdi: error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def test_first_release_failed_upgrade_promotion_and_rollback(
    example: ExampleRepo, registry: Registry, run_cli: Cli, docker_client: Any
) -> None:
    name = fresh_name("lifecycle")
    repo = f"{registry.host}/{name}"
    first = make_tiny(example, name)

    # First release: nothing in the registry yet, so it starts from the base image.
    made = run_cli("snapshot", "--image", repo, "--push", cwd=example.path)
    assert made.returncode == 0, made.stderr
    assert "first release" in made.stderr
    assert made.stdout.strip().splitlines()[-1] == f"{repo}:{first}"
    assert registry.tags(name) == sorted([first, "production"])
    first_digest = registry.digest(name, first)
    assert registry.digest(name, "production") == first_digest
    config = docker_client.images.get(f"{repo}:{first}").attrs["Config"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.revision"] == first
    assert labels["org.opencontainers.image.created"].startswith("20")
    assert labels["tdi.parent"].startswith("tdi-base:")
    assert labels["tdi.playbook.digest"].startswith("sha256:")
    assert config["Cmd"] == ["sleep", "infinity"]  # the image's own, not the test container's

    # A failing upgrade changes nothing: no commit, no tag, no push.
    broken = broken_release(example)
    failed = run_cli("snapshot", "--image", repo, "--push", cwd=example.path)
    line = one_error(failed, code=1)
    assert "snapshot not made" in line and "Break the upgrade" in line
    assert registry.tags(name) == sorted([first, "production"])
    assert registry.digest(name, "production") == first_digest
    assert not docker_client.images.list(name=f"{repo}:{broken}")

    # A good upgrade is promoted, and the old production is kept as production-previous.
    example.git("revert", "--no-edit", "HEAD")
    good = release(example, "two")
    promoted = run_cli("snapshot", "--image", repo, "--push", cwd=example.path)
    assert promoted.returncode == 0, promoted.stderr
    assert registry.digest(name, "production") == registry.digest(name, good)
    assert registry.digest(name, "production-previous") == first_digest
    labels = docker_client.images.get(f"{repo}:{good}").attrs["Config"]["Labels"]
    assert labels["tdi.parent"] == f"{repo}:{first}"

    # A re-run of the same job must not demote production-previous.
    again = run_cli("snapshot", "--image", repo, "--push", cwd=example.path)
    assert f"production already runs {good[:12]}" in one_error(again)
    assert registry.digest(name, "production-previous") == first_digest

    # tdi test upgrades from the pushed snapshot, which carries its baseline state, and
    # with --chain 2 also from the one before it, found through tdi.parent.
    out = example.tdi("test", "--production-image", repo, "--chain", "2", *ONCE)
    assert out.code == 0, out.stderr
    assert out.report["upgrade_source"] == f"production image {repo}:production"
    assert out.report["parity"]["kinds"] == "three-way"
    chain = out.report["comparisons"]
    assert [(link["side"], link["image"]) for link in chain] == [
        ("upgrade", f"{repo}:production"),
        ("upgrade-1", f"{repo}:{first}"),
    ]
    assert all(link["result"] == "passed" for link in chain)
    assert out.state("upgrade-1")["verify"] == "passed"

    # Rollback moves production back.
    rolled = run_cli("snapshot", "rollback", "--image", repo, "--push", cwd=example.path)
    assert rolled.returncode == 0, rolled.stderr
    assert registry.digest(name, "production") == first_digest


def test_a_push_that_fails_halfway_leaves_production(
    example: ExampleRepo, registry: Registry, run_cli: Cli
) -> None:
    name = fresh_name("halfway")
    repo = f"{registry.host}/{name}"
    make_tiny(example, name)
    assert run_cli("snapshot", "--image", repo, "--push", cwd=example.path).returncode == 0
    production = registry.digest(name, "production")
    good = release(example, "halfway")
    # The registry cannot store the production-previous tag: step 2 of 3 fails for real.
    (registry.tag_dir(name) / "production-previous").write_text("in the way\n")
    failed = run_cli("snapshot", "--image", repo, "--push", cwd=example.path)
    line = one_error(failed)
    assert "production-previous" in line
    assert registry.digest(name, good) is not None  # step 1 went through
    assert registry.digest(name, "production") == production


def test_htpasswd_registry_credentials_from_the_environment(
    example: ExampleRepo, auth_registry: Registry, run_cli: Cli
) -> None:
    name = fresh_name("private")
    repo = f"{auth_registry.host}/{name}"
    make_tiny(example, name)
    password = auth_registry.password
    assert password
    env = {"TDI_REGISTRY_USERNAME": auth_registry.user or "", "TDI_REGISTRY_PASSWORD": password}

    wrong = run_cli(
        "snapshot",
        "--image",
        repo,
        "--push",
        cwd=example.path,
        env={**env, "TDI_REGISTRY_PASSWORD": "wrong-password-123"},
    )
    line = one_error(wrong)
    assert "wrong-password-123" not in wrong.stdout + wrong.stderr
    assert "unauthorized" in line.lower() or "authentication" in line.lower()
    assert auth_registry.tags(name) == []

    made = run_cli("snapshot", "-v", "--image", repo, "--push", cwd=example.path, env=env)
    assert made.returncode == 0, made.stderr
    assert auth_registry.digest(name, "production") is not None
    assert password not in made.stdout + made.stderr

    report = example.path / "report.json"
    tested = run_cli(
        "test",
        "-v",
        "--production-image",
        repo,
        "--report",
        str(report),
        *ONCE,
        cwd=example.path,
        env=env,
    )
    assert tested.returncode == 0, tested.stderr
    assert password not in tested.stdout + tested.stderr + report.read_text()
    assert json.loads(report.read_text())["upgrade_source"].startswith("production image")


def test_unreachable_registry(example: ExampleRepo, run_cli: Cli) -> None:
    line = one_error(
        run_cli("snapshot", "--image", "127.0.0.1:9/nowhere", "--push", cwd=example.path)
    )
    assert "127.0.0.1:9/nowhere:production" in line


def test_rollback_without_previous(example: ExampleRepo, registry: Registry, run_cli: Cli) -> None:
    repo = f"{registry.host}/{fresh_name('norollback')}"
    line = one_error(run_cli("snapshot", "rollback", "--image", repo, cwd=example.path))
    assert "no :production-previous" in line


def test_repository_without_production_needs_from(
    example: ExampleRepo, registry: Registry, run_cli: Cli, docker_client: Any, base_image: str
) -> None:
    name = fresh_name("orphan")
    repo = f"{registry.host}/{name}"
    docker_client.images.get(base_image).tag(repo, "someday")
    docker_client.images.push(repo, tag="someday")
    assert registry.tags(name) == ["someday"]
    line = one_error(run_cli("snapshot", "--image", repo, cwd=example.path))
    assert "has no :production tag but has others (someday)" in line
    assert "--from" in line


@pytest.mark.parametrize("action", [[], ["rollback"]])
def test_snapshot_needs_a_repository(example: ExampleRepo, run_cli: Cli, action: list[str]) -> None:
    line = one_error(run_cli("snapshot", *action, cwd=example.path))
    assert "--image REPOSITORY" in line


def test_a_topology_is_promoted_all_or_nothing(
    example: ExampleRepo, registry: Registry, run_cli: Cli
) -> None:
    name = fresh_name("topology")
    repo = f"{registry.host}/{name}"
    hosts = ("lb", "web1")
    snapshot = ("snapshot", "--scenario", "topology", "--image", repo, "--push")

    def digests(tag: str) -> dict[str, str | None]:
        return {h: registry.digest(f"{name}/{h}", tag) for h in hosts}

    # First release: one image per host, REPOSITORY/HOST:<commit>, each promoted.
    first = make_tiny(example, name)
    made = run_cli(*snapshot, cwd=example.path)
    assert made.returncode == 0, made.stderr
    assert made.stdout.split() == [f"{repo}/{h}:{first}" for h in hosts]
    assert digests("production") == digests(first)

    # Second release: the registry can read web1's production but not move it, so step 3
    # fails on the last host, after lb's production moved. lb's is put back.
    second = release(example, "two")
    index = registry.tag_dir(f"{name}/web1") / "production" / "index"
    shutil.rmtree(index)
    index.write_text("in the way\n")
    failed = run_cli(*snapshot, cwd=example.path)
    assert "production" in one_error(failed)
    assert all(d is not None for d in digests(second).values())  # step 1 went through
    assert digests("production-previous") == digests(first)  # step 2 went through
    assert digests("production") == digests(first)  # step 3: lb's moved, then put back

    # A half-promoted set (hosts on different revisions) is refused by tdi test, by name.
    index.unlink()
    lb = f"{repo}/lb"
    subprocess.run(["docker", "tag", f"{lb}:{second}", f"{lb}:production"], check=True)
    subprocess.run(["docker", "push", "-q", f"{lb}:production"], check=True, capture_output=True)
    refused = run_cli(
        "test", "--scenario", "topology", "--production-image", repo, cwd=example.path
    )
    line = one_error(refused)
    assert "half-promoted" in line
    assert f"lb runs {second[:12]}" in line and f"web1 runs {first[:12]}" in line


@pytest.fixture
def stalling(registry: Registry) -> Iterator[Callable[[str], StallingProxy]]:
    """Proxies to ``registry`` that hold back the first push of one repository's
    :production manifest, that is, the moment between promotion's pushes."""
    made: list[StallingProxy] = []

    def proxy(name: str) -> StallingProxy:
        made.append(StallingProxy(registry.host, f"PUT /v2/{name}/manifests/production ".encode()))
        return made[-1]

    yield proxy
    for one in made:
        one.stop()


def release_image(docker_client: Any, base_image: str, revision: str, ref: str) -> str:
    """An image that says it is ``revision`` (no new layer), pushed as ``ref``; its id."""
    dockerfile = io.BytesIO(f"FROM {base_image}\n".encode())
    labels = {"org.opencontainers.image.revision": revision}
    image, _ = docker_client.images.build(fileobj=dockerfile, labels=labels, rm=True)
    repository, tag = ref.rsplit(":", 1)
    image.tag(repository, tag)
    docker_client.images.push(repository, tag=tag)
    return str(image.id)


def test_an_interrupted_promotion_leaves_local_tags_as_the_registry_has_them(
    example: ExampleRepo,
    registry: Registry,
    stalling: Callable[[str], StallingProxy],
    run_cli: Cli,
    docker_client: Any,
    base_image: str,
) -> None:
    name = fresh_name("interrupted")
    proxy = stalling(name)
    repo, direct = f"{proxy.host}/{name}", f"{registry.host}/{name}"
    # Production runs r1, production-previous the example before it: pushed by hand.
    r1 = make_tiny(example, name)
    previous = f"{direct}:production-previous"
    older = release_image(docker_client, base_image, example.baseline, previous)
    r1_image = release_image(docker_client, base_image, r1, f"{direct}:{r1}")
    docker_client.images.get(r1_image).tag(direct, "production")
    docker_client.images.push(direct, tag="production")
    r2 = release(example, "two")
    try:
        # SIGTERM while the registry holds the push of :production: the commit tag and
        # production-previous are pushed, production is not.
        argv = [str(Path(sys.executable).parent / "tdi"), "snapshot", "--image", repo, "--push"]
        snapshot = subprocess.Popen(argv, cwd=example.path, stderr=subprocess.PIPE, text=True)
        assert proxy.stalled.wait(600), "the promotion never pushed :production"
        snapshot.send_signal(signal.SIGTERM)
        _, err = snapshot.communicate(timeout=300)
        sys.stderr.write(err)
        assert snapshot.returncode == 130, err
        assert "could not put" not in err
        tags = (r2, "production", "production-previous")
        held = {t: registry.image_id(name, t) for t in tags}
        assert held["production"] == r1_image and held["production-previous"] == older
        assert {t: docker_client.images.get(f"{repo}:{t}").id for t in tags} == held

        # The retry finishes that promotion with the image already pushed under r2 (made
        # and tested before its push), instead of making another: the commit tag keeps
        # its image, production moves to it and production-previous to r1.
        retry = run_cli("snapshot", "--image", repo, "--push", cwd=example.path)
        assert retry.returncode == 0, retry.stderr
        assert "stopped before promoting it: promoting it as it is" in retry.stderr
        promoted = {r2: held[r2], "production": held[r2], "production-previous": r1_image}
        assert {t: registry.image_id(name, t) for t in tags} == promoted
        assert {t: docker_client.images.get(f"{repo}:{t}").id for t in tags} == promoted

        # Rollback moves production to production-previous, here and there; once.
        rollback = ("snapshot", "rollback", "--image", repo, "--push")
        assert run_cli(*rollback, cwd=example.path).returncode == 0
        assert registry.image_id(name, "production") == r1_image
        assert docker_client.images.get(f"{repo}:production").id == r1_image
        again = one_error(run_cli(*rollback, cwd=example.path))
        assert f"{repo}:production already is :production-previous" in again
    finally:  # every image of the repository, by id: tags and pulled digests alike
        remove_images(
            docker_client, {i.id for n in (repo, direct) for i in docker_client.images.list(name=n)}
        )


def remove_images(docker_client: Any, ids: set[str]) -> None:
    """Remove these images; a parent waits for a pass after its children (r2 is committed
    from a container of r1, so r1 has a child), in whatever order the set gives them."""
    for _ in range(len(ids) + 1):
        for image_id in sorted(ids):
            try:
                docker_client.images.remove(image_id, force=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError:  # 409: it still has a child
                continue
            ids.discard(image_id)
        if not ids:
            return
    raise AssertionError(f"images left: {sorted(ids)}")
