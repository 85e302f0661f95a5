"""`tdi test --all`: the scheduling of one child per scenario, their lines, default -j."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from tdi import config
from tdi.pipelines import scenarios
from tdi.process import Processes

GIB = 2**30


def child(script: str) -> list[str]:
    return ["sh", "-c", script]


class Seen:
    """What schedule reported, and how many children ran at once at most."""

    def __init__(self, tmp_path: Path) -> None:
        self.lines: list[tuple[str, str]] = []
        self.ends: dict[str, int] = {}
        self.started: list[str] = []
        self.live = tmp_path / "live"
        self.live.mkdir()

    def argv(self, name: str) -> list[str]:
        self.started.append(name)
        # Each child marks itself live for a moment; the most marks at once are the jobs.
        mark = self.live / name
        return child(
            f"touch {mark}; ls {self.live} | wc -l; sleep 1; rm {mark}; exit {len(name) % 3}"
        )

    def said(self, name: str, line: str) -> None:
        self.lines.append((name, line))

    def ended(self, name: str, code: int, seconds: float) -> None:
        self.ends[name] = code


@pytest.mark.parametrize("jobs", [1, 2])
def test_at_most_jobs_children_run_at_once_in_order(tmp_path: Path, jobs: int) -> None:
    seen = Seen(tmp_path)
    names = ["a", "bb", "ccc"]
    scenarios.schedule(names, jobs, seen.argv, seen.said, seen.ended, Processes())
    assert seen.started == names
    assert max(int(line) for _, line in seen.lines) == jobs
    assert seen.ends == {"a": 1, "bb": 2, "ccc": 0}  # each child's own exit code


def test_each_line_is_said_whole_with_its_childs_name(tmp_path: Path) -> None:
    seen = Seen(tmp_path)
    argv = {"x": child("echo one; echo two >&2"), "y": child("printf 'last, no newline'")}
    scenarios.schedule(list(argv), 2, argv.__getitem__, seen.said, seen.ended, Processes())
    assert sorted(seen.lines) == [("x", "one"), ("x", "two"), ("y", "last, no newline")]
    assert scenarios.prefixed("x", "[  3.0s] images ...") == "[x] [  3.0s] images ..."


def test_an_interrupt_stops_the_running_children_and_starts_no_more(tmp_path: Path) -> None:
    cleaned = tmp_path / "cleaned"
    # "slow" cleans up (a child tdi removing its containers) when stopped.
    argv = {
        "quick": child("exit 0"),
        "slow": child(f"trap 'sleep 0.5; touch {cleaned}; exit 130' TERM; sleep 60 & wait"),
        "later": child("exit 0"),
    }
    ends: dict[str, int] = {}

    def ended(name: str, code: int, seconds: float) -> None:
        ends[name] = code
        if name == "quick":  # as Ctrl-C while "slow" runs
            time.sleep(0.3)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        scenarios.schedule(
            list(argv), 2, argv.__getitem__, lambda n, line: None, ended, Processes()
        )
    assert ends == {"quick": 0, "slow": 128 + signal.SIGTERM}
    assert cleaned.exists()  # it had its time to clean up


def test_default_jobs_is_the_cpus_or_what_memory_holds_at_least_one() -> None:
    assert scenarios.default_jobs(cpus=8, available=64 * GIB) == 8
    assert scenarios.default_jobs(cpus=8, available=6 * GIB) == 4  # 1.5 GiB each
    assert scenarios.default_jobs(cpus=2, available=1 * GIB) == 1
    assert scenarios.default_jobs(cpus=4, available=None) == 4  # memory unknown
    assert scenarios.default_jobs() >= 1  # this machine's


def test_a_line_that_starts_a_phase_names_it() -> None:
    assert scenarios.phase_of("[  6.0s] converge of fresh ...") == "converge of fresh"
    assert scenarios.phase_of("[ 19.3s] parity ...") == "parity"
    assert scenarios.phase_of("[ 19.3s] parity done in 0.0 s") == ""
    assert scenarios.phase_of("fresh    converge passed") == ""


def test_each_scenario_runs_this_tdi_with_its_own_reports(tmp_path: Path) -> None:
    cfg = config.load(tmp_path, {"report": str(tmp_path / "out" / "index.json")})
    where = scenarios.layout(cfg)
    assert where.of("web") == tmp_path / "out" / "web"
    assert where.paths.html == tmp_path / "out" / "index.html"
    argv = scenarios.child_argv(cfg, "web", ["--no-idempotence"], where.of("web"))
    assert argv[:5] == [sys.executable, "-m", "tdi", "test", "-C"]
    assert argv[6:9] == ["--no-idempotence", "--scenario", "web"]
    assert f"--report {tmp_path}/out/web/report.json" in " ".join(argv)
    assert "--sarif" not in argv  # only when SARIF is asked for


def test_without_a_report_flag_everything_goes_under_tdi_all(tmp_path: Path) -> None:
    where = scenarios.layout(config.load(tmp_path))
    assert where.paths.json == tmp_path / ".tdi" / "all" / "index.json"
    assert where.of("default") == tmp_path / ".tdi" / "all" / "default"
    assert where.of("..") == tmp_path / ".tdi" / "all" / "_.."  # a name, not a way out
