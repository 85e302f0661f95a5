"""State capture against real bookworm containers: parity holds, and real changes show."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tdi.state import capture, diff, id_warnings
from tdi.state.capture import ExecFn
from tdi.state.probe import NO_DATABASE

LABELS = {"tdi.test": "1"}


@pytest.fixture(scope="module")
def client(docker_client: Any) -> Any:
    return docker_client


@pytest.fixture
def start(client: Any, base_image: str, request: pytest.FixtureRequest) -> Callable[[], Any]:
    """Starts a labelled container that the test's finalizer removes."""

    def start_one() -> Any:
        container = client.containers.run(
            base_image,
            ["sleep", "infinity"],
            init=True,
            hostname="tdi",  # Same on both sides, as the engine runs them.
            labels=LABELS,
            detach=True,
        )
        request.addfinalizer(lambda: container.remove(force=True))
        return container

    return start_one


def exec_in(container: Any) -> ExecFn:
    def run(argv: list[str]) -> tuple[int, bytes]:
        code, (stdout, _stderr) = container.exec_run(argv, demux=True)
        return int(code), stdout or b""

    return run


def sh(container: Any, script: str) -> None:
    code, output = container.exec_run(["sh", "-ec", script])
    assert code == 0, output.decode(errors="replace")


def test_capture_is_fast_and_stable(start: Callable[[], Any]) -> None:
    container = start()
    began = time.monotonic()
    first = capture(exec_in(container))
    elapsed = time.monotonic() - began
    second = capture(exec_in(container))
    assert elapsed < 5, f"capture took {elapsed:.2f} s"
    assert "/etc/debian_version" in first.files
    assert "python3" in first.packages
    assert first.users["root"]["uid"] == 0
    assert diff(first, second) == []
    assert first.to_json() == second.to_json()


def test_same_state_reached_another_way_has_no_difference(start: Callable[[], Any]) -> None:
    fresh, upgrade = start(), start()
    sh(fresh, "useradd -m alice; useradd -m bob; echo hi > /srv/a; chmod 0640 /srv/a")
    sh(upgrade, "useradd -m bob; sleep 1; echo hi > /srv/a; chmod 0640 /srv/a; useradd -m alice")
    before, after = capture(exec_in(fresh)), capture(exec_in(upgrade))
    assert diff(before, after) == []
    assert "user 'alice': uid 1000 on fresh, 1001 on upgrade" in id_warnings(before, after)


def test_real_changes_are_each_reported(start: Callable[[], Any]) -> None:
    fresh, upgrade = start(), start()
    sh(fresh, "useradd -m -s /bin/bash deploy; echo hi > /srv/a")
    sh(upgrade, "useradd -m -s /bin/sh deploy; echo hi > /srv/a; chmod 0600 /srv/a")
    upgrade.exec_run(["python3", "-m", "http.server", "8080"], detach=True)
    deadline = time.monotonic() + 10
    while "tcp/8080" not in capture(exec_in(upgrade), roots=[], ignore=[]).ports:
        assert time.monotonic() < deadline, "the test server never listened"
        time.sleep(0.1)
    differences = diff(capture(exec_in(fresh)), capture(exec_in(upgrade)))
    found = [
        {k: d.to_dict()[k] for k in ("category", "key", "fresh", "upgrade")} for d in differences
    ]
    assert found == [
        {
            "category": "file",
            "key": "/srv/a",
            "fresh": {"mode": "0644"},
            "upgrade": {"mode": "0600"},
        },
        {
            "category": "port",
            "key": "tcp/8080",
            "fresh": None,
            "upgrade": {"addresses": ["0.0.0.0"], "process": "python3"},
        },
        {
            "category": "user",
            "key": "deploy",
            "fresh": {"shell": "/bin/bash"},
            "upgrade": {"shell": "/bin/sh"},
        },
    ]


def test_a_host_whose_packages_cannot_be_read_says_so(start: Callable[[], Any]) -> None:
    """No silence: a database without its tool (a distroless image), then none at all."""
    container = start()
    assert capture(exec_in(container)).notes == ()
    sh(container, "rm /usr/bin/dpkg-query")
    state = capture(exec_in(container))
    assert state.packages == {}
    assert state.notes == (
        "/var/lib/dpkg/status is here but no dpkg-query: dpkg's packages are not captured",
    )
    sh(container, "mv /var/lib/dpkg /var/lib/dpkg.gone")
    assert capture(exec_in(container)).notes == (NO_DATABASE,)
