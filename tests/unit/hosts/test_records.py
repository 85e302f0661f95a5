"""Run records: who owns a run, whether it is still alive, and which runs are dead."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest

from tdi.hosts import records
from tdi.hosts.records import Owner, Record


def here() -> Owner:
    found = records.me()
    assert found is not None  # these tests run on Linux, with /proc
    return found


def test_process_start_reads_proc_stat_whatever_the_command_name(tmp_path: Path) -> None:
    # A command name with ") " in it must not shift the fields after it.
    odd = tmp_path / "x) 1 2 (y"
    shutil.copy(shutil.which("sleep") or pytest.fail("no sleep"), odd)
    proc = subprocess.Popen([str(odd), "30"])
    try:
        started = records.process_start(proc.pid)
        uptime = float(Path("/proc/uptime").read_text(encoding="utf-8").split()[0])
        now = uptime * os.sysconf("SC_CLK_TCK") + 1  # /proc/uptime has 1/100 s: one tick
        assert started is not None and here().started <= started <= now
    finally:
        proc.kill()
        proc.wait()
    assert records.process_start(proc.pid) is None  # reaped: no such process


def test_alive_tells_a_reused_pid_and_a_restarted_machine() -> None:
    me = here()
    assert records.alive(me, me)
    assert not records.alive(replace(me, started=me.started - 1), me)  # the pid was reused
    assert not records.alive(replace(me, boot="another-boot"), me)
    # What tdi cannot judge counts as alive: another host sharing the repo, no /proc.
    assert records.alive(replace(me, host="elsewhere", started=0), me)
    assert records.alive(replace(me, started=0), None)


def test_write_then_read(tmp_path: Path) -> None:
    record = Record("r1", "/repo", here(), ("tdi-r1-fresh",), ("tdi-r1-fresh",))
    records.write(tmp_path, record)
    assert records.read(tmp_path) == record
    records.write(tmp_path, replace(record, removed=()))
    assert records.read(tmp_path) == replace(record, removed=())
    assert [p.name for p in tmp_path.iterdir()] == [records.RECORD]  # no temp file left


def test_read_without_or_with_a_broken_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert records.read(tmp_path) is None
    (tmp_path / records.RECORD).write_text('{"run": "r1"}', encoding="utf-8")
    assert records.read(tmp_path) is None
    assert caplog.messages == [f"ignoring the run record {tmp_path / records.RECORD}: 'removed'"]


def test_scan_reads_every_run_oldest_first(tmp_path: Path) -> None:
    for i, run in enumerate(("b", "a")):
        (tmp_path / run).mkdir()
        records.write(tmp_path / run, Record(run, "/repo", here(), (), ()))
        os.utime(tmp_path / run, (time.time() - 10 + i, time.time() - 10 + i))
    (tmp_path / "no-record").mkdir()
    (tmp_path / "stray-file").write_text("", encoding="utf-8")
    assert [r.run for r in records.scan(tmp_path)] == ["b", "a"]
    assert records.scan(tmp_path / "absent") == []


def test_dead_keeps_live_kept_removed_and_other_repos_runs() -> None:
    me = here()
    gone = replace(me, pid=me.pid + 1)

    def run(name: str, owner: Owner = gone, root: str = "/repo", removed: bool = False) -> Record:
        names = (f"tdi-{name}-fresh",)
        return Record(name, root, owner, names, (), names if removed else None)

    found = [
        run("dead"),
        run("live", me),
        run("kept"),
        run("removed", removed=True),
        run("clone", root="/clone"),
    ]
    dead = records.dead(found, Path("/repo"), "kept", lambda owner: owner == me)
    assert [r.run for r in dead] == ["dead"]
    assert [r.run for r in records.mine(found, me)] == ["live"]
    assert records.mine(found, None) == []
