"""Downtime probes: windows from polls, what ran during each, the probe container's life,
a probe that never answers, and the poller against a real local server."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from fakes import NullEngine

from tdi import config
from tdi.engine.protocol import RUN_LABEL, SIDE_LABEL, ContainerSpec
from tdi.errors import ProbeError
from tdi.hosts.run import Run, plan
from tdi.phases import poller, probes
from tdi.phases.probes import Poll
from tdi.phases.steps import Context
from tdi.provision.ansible import AnsibleEnv, PlaybookResult, TaskEvent
from tdi.provision.inventory import RepoInventory
from tdi.report.model import (
    FAILED,
    PASSED,
    Comparison,
    Downtime,
    ParityResult,
    Report,
    StateReport,
    Window,
)

T0 = 1_800_000_000.0  # the converge's start, seconds since the epoch


def polls(*states: tuple[float, bool]) -> list[Poll]:
    return [Poll(0, T0 + at, ok, "" if ok else "Connection refused") for at, ok in states]


def ev(task: str, start: float, end: float, handler: bool = False, host: str = "web1") -> TaskEvent:
    return TaskEvent(
        host, task, "service", "changed", {}, handler=handler, start=T0 + start, end=T0 + end
    )


EVENTS = [
    ev("Write the page", 0.0, 1.0),
    ev("Start it", 1.0, 2.0),
    ev("Restart it", 2.0, 4.0, handler=True),
]


def test_a_run_of_failed_polls_is_one_window_from_its_first_failure_to_the_next_answer() -> None:
    found = probes.windows(
        polls((0.5, True), (2.5, False), (2.6, False), (3.1, True), (3.2, True)), T0, T0 + 5, EVENTS
    )
    assert found == [Window(2.5, 0.6, (), ("Restart it",), "Connection refused")]


def test_windows_are_counted_only_during_the_converge_and_one_still_open_ends_with_it() -> None:
    found = probes.windows(
        polls((-1.0, False), (0.1, True), (4.5, False), (6.0, False)), T0, T0 + 5, EVENTS
    )
    assert [(w.start, w.seconds, w.open) for w in found] == [(4.5, 0.5, True)]


def test_no_failed_poll_no_window() -> None:
    assert probes.windows(polls((0.1, True), (0.2, True)), T0, T0 + 1, EVENTS) == []


def test_what_ran_during_a_window_names_tasks_and_handlers_apart_with_their_host() -> None:
    found = probes.windows(polls((0.8, False), (2.5, True)), T0, T0 + 5, EVENTS, named=True)
    assert found[0].tasks == ("Write the page (web1)", "Start it (web1)")
    assert found[0].handlers == ("Restart it (web1)",)
    assert found[0].during == (
        "handler 'Restart it (web1)', task 'Write the page (web1)', task 'Start it (web1)'"
    )


def test_a_window_after_every_task_ended_is_put_on_the_last_one() -> None:
    # A service that went down just after its task returned (a restart that is async).
    found = probes.windows(polls((4.2, False), (4.4, True)), T0, T0 + 5, EVENTS)
    assert found[0].handlers == ("Restart it",)


def test_events_without_times_are_not_attributed() -> None:
    old = TaskEvent("web1", "Old", "command", "ok", {})  # an events file of an older tdi
    assert probes.running([old], T0, T0 + 1) == []


def test_a_window_longer_than_max_downtime_fails_naming_probe_window_and_task() -> None:
    window = Window(2.5, 1.3, (), ("Restart it (web1)",), "Connection refused")
    down = Downtime("http://web1:8000/", "upgrade", 1.0, (window,), 40)
    assert down.status == FAILED
    assert down.failure() == (
        "probe http://web1:8000/ on upgrade: down 1.30 s from 2.50 s into the converge "
        "(max_downtime 1 s), during handler 'Restart it (web1)': Connection refused"
    )
    assert Downtime("http://web1:8000/", "upgrade", 2.0, (window,)).status == PASSED
    assert Downtime("http://web1:8000/", "upgrade", 0.0).failure() == ""


def test_downtime_fails_the_run_and_is_in_its_json() -> None:
    state = StateReport("img", converge=PASSED, idempotence=PASSED, verify=PASSED)
    compared = Comparison("upgrade", "web1", "upgrade", "img", result=ParityResult([]))
    report = Report({"upgrade": state}, [compared])
    assert report.result == PASSED
    report.probed([Downtime("tcp://db:5432", "upgrade", 0.0, (Window(1.0, 0.2),), 9)])
    assert report.result == FAILED
    assert report.to_dict()["downtime"] == [
        {
            "probe": "tcp://db:5432",
            "side": "upgrade",
            "result": FAILED,
            "max_downtime": 0.0,
            "polls": 9,
            "windows": [
                {
                    "start": 1.0,
                    "seconds": 0.2,
                    "tasks": [],
                    "handlers": [],
                    "why": "",
                    "open": False,
                }
            ],
        }
    ]


def test_the_upgrade_sides_are_upgrade_and_the_links_of_a_chain() -> None:
    assert [
        s for s in ("upgrade", "upgrade-1", "upgrade-12", "upgrade-x") if probes.upgrading(s)
    ] == [
        "upgrade",
        "upgrade-1",
        "upgrade-12",
    ]


def test_the_pollers_lines_are_read_and_a_cut_line_skipped() -> None:
    text = '[0, 1.5, true, ""]\n[1, 1.6, false, "timed out"]\n[0, 1.7, tr'
    assert probes.parse(text) == [Poll(0, 1.5, True), Poll(1, 1.6, False, "timed out")]


# The probe container's life, on a fake daemon.


class Daemon(NullEngine):
    """Runs the probe container; its polls file holds ``lines``."""

    def __init__(self, lines: Sequence[str]) -> None:
        self.lines = list(lines)
        self.started: list[ContainerSpec] = []
        self.removed: list[str] = []

    def addresses(self, network: str) -> dict[str, str]:
        return {"tdi-r1-upgrade-web1": "172.18.0.3", "tdi-r1-upgrade-lb": "172.18.0.2"}

    def run(self, spec: ContainerSpec) -> str:
        self.started.append(spec)
        return spec.name

    def exec(self, container: str, argv: Sequence[str]) -> tuple[int, bytes, bytes]:
        assert argv == ["cat", probes.OUT]
        return 0, "".join(line + "\n" for line in self.lines).encode(), b""

    def remove(self, names: Sequence[str]) -> None:
        self.removed.extend(names)


@pytest.fixture
def cfg(tmp_path: Path) -> config.Config:
    (tmp_path / "tdi.yml").write_text(
        "hosts: {lb: {}, web1: {}}\nprobes: [{url: 'http://lb/hello.txt'}, {url: 'tcp://web1:22'}]\n"
    )
    return config.load(tmp_path)


@pytest.fixture
def run(cfg: config.Config) -> Run:
    images = {s: {h: f"img-{s}" for h in ("lb", "web1")} for s in ("fresh", "upgrade")}
    return plan(cfg, images, RepoInventory(), "r1")


def context(engine: Daemon, cfg: config.Config, run: Run) -> Context:
    return Context(engine, cfg, AnsibleEnv(cfg.root), run, Report.planned(run))


ANSWERED = ['[0, 1.0, true, ""]', '[1, 1.0, true, ""]']


def test_a_probe_container_polls_from_the_sides_network_and_goes_with_the_converge(
    cfg: config.Config, run: Run
) -> None:
    engine = Daemon(ANSWERED)
    ctx = context(engine, cfg, run)
    with probes.watching(ctx, "upgrade", "converge") as polled:
        assert polled is not None
        assert engine.removed == []
        time.sleep(0.05)  # a converge, during which the load balancer failed once
        engine.lines.append(f'[0, {polled.began + 0.01}, false, "HTTP 502 Bad Gateway"]')
        engine.lines.append(f'[0, {polled.began + 0.02}, true, ""]')
    [spec] = engine.started
    assert (spec.image, spec.network, spec.name) == (
        "img-fresh",
        "tdi-r1-upgrade",
        "tdi-r1-upgrade_probes",
    )
    assert spec.labels == {RUN_LABEL: "r1", SIDE_LABEL: "upgrade"}
    targets = json.loads(spec.command[-1])
    assert targets[0] == {
        "scheme": "http",
        "name": "lb",
        "address": "172.18.0.2",
        "port": 80,
        "path": "/hello.txt",
        "every": 0.1,
    }
    assert (targets[1]["scheme"], targets[1]["address"], targets[1]["port"]) == (
        "tcp",
        "172.18.0.3",
        22,
    )
    assert engine.removed == ["tdi-r1-upgrade_probes"]
    # The probe's start before the converge is a span of its own.
    assert [(s.phase, s.who) for s in ctx.report.timeline] == [("probes", "upgrade")]
    probes.record(ctx, polled, PlaybookResult(0, (), Path("log")))
    first, second = ctx.report.downtime
    assert (first.probe, first.side, first.status) == ("http://lb/hello.txt", "upgrade", FAILED)
    assert [w.why for w in first.windows] == ["HTTP 502 Bad Gateway"]
    assert second.windows == ()


def test_the_probe_container_is_removed_when_the_converge_fails(
    cfg: config.Config, run: Run
) -> None:
    engine = Daemon(ANSWERED)
    with (
        pytest.raises(KeyboardInterrupt),
        probes.watching(context(engine, cfg, run), "upgrade", "converge"),
    ):
        raise KeyboardInterrupt
    assert engine.removed == ["tdi-r1-upgrade_probes"]


@pytest.mark.parametrize(
    ("side", "step"),
    [
        ("fresh", "converge"),
        ("upgrade", "idempotence"),
        ("fresh-2", "converge"),  # tdi calibrate's
        ("baseline", "converge"),
        ("production", "converge"),  # tdi snapshot's
    ],
)
def test_only_an_upgrade_sides_converge_is_probed(
    cfg: config.Config, run: Run, side: str, step: str
) -> None:
    with probes.watching(context(Daemon([]), cfg, run), side, step) as polled:
        assert polled is None


def test_a_probe_that_never_answers_before_the_converge_is_a_bad_probe(
    cfg: config.Config, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(probes, "ANSWER_WITHIN", 0.3)
    engine = Daemon(['[0, 1.0, true, ""]', '[1, 1.0, false, "Connection refused"]'])
    with (
        pytest.raises(ProbeError) as info,
        probes.watching(context(engine, cfg, run), "upgrade", "converge"),
    ):
        raise AssertionError("the converge must not start")
    assert str(info.value).startswith(
        "probe tcp://web1:22 never answered on upgrade in 0 s before the converge "
        "(last poll: Connection refused): a probe must answer before the playbook runs"
    )
    assert info.value.exit_code == 2
    assert engine.removed == ["tdi-r1-upgrade_probes"]


# The poller, against a server on this machine.


class Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        assert self.headers["Host"].startswith("web1:")  # the name, not the address
        self.send_response(200 if self.path == "/" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[int]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def target(scheme: str, port: int, path: str = "/") -> dict[str, object]:
    return {"scheme": scheme, "name": "web1", "address": "127.0.0.1", "port": port, "path": path}


def test_the_poller_says_why_a_poll_failed(server: int) -> None:
    assert poller.poll(target("http", server)) == ""
    assert poller.poll(target("http", server, "/gone")) == "HTTP 404 Not Found"
    assert poller.poll(target("tcp", server)) == ""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert "refused" in poller.poll(target("http", port))
