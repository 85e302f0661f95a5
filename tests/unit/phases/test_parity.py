"""Parity end to end with a stand-in engine: capture, diff, fold, classify, attribute, allow."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fakes import NullEngine

from tdi.config import ParityConfig
from tdi.phases import noise, parity
from tdi.phases.parity import (
    BASELINE_EVENTS,
    BASELINE_STATE,
    Captures,
    baseline_name,
    compare,
    read_baseline,
    roots_and_ignores,
    with_history,
)
from tdi.provision import ansible
from tdi.provision.ansible import TaskEvent
from tdi.report.model import Baseline, ParityResult
from tdi.state.capture import State
from tdi.state.diff import Difference
from tdi.state.rules import Rule
from tdi.state.scope import DEFAULT_IGNORE, DEFAULT_ROOTS


def state(**sections: dict[str, Any]) -> State:
    fields = ("files", "packages", "users", "groups", "ports", "services")
    return State(*(sections.get(name, {}) for name in fields))


class FakeEngine(NullEngine):
    """Answers the probe with a prepared state per container, dpkg-query and cat from dicts."""

    def __init__(
        self,
        states: Mapping[str, State],
        dpkg: Mapping[str, Sequence[str]] | None = None,
        files: Mapping[str, bytes] | None = None,
        content: Mapping[tuple[str, str], bytes] | None = None,
    ) -> None:
        self.states = states
        self.dpkg = dpkg or {}
        self.files = files or {}
        self.content = content or {}  # (container, path) -> the file's bytes
        self.calls: list[tuple[str, list[str]]] = []

    def exec(self, container: str, argv: Sequence[str]) -> tuple[int, bytes, bytes]:
        argv = list(argv)
        self.calls.append((container, argv))
        if argv[:3] == ["python3", "-c", parity._READ]:
            limit, paths = int(argv[3]), argv[4:]
            heads = {p: self.content.get((container, p)) for p in paths}
            found = {
                p: base64.b64encode(h[: limit + 1]).decode() if h else None
                for p, h in heads.items()
            }
            return 0, json.dumps(found).encode(), b""
        if argv[0] == "python3":
            # The probe prints its document on one line, last.
            line = json.dumps(json.loads(self.states[container].to_json()))
            return 0, f"probe chatter\n{line}\n".encode(), b""
        if argv[:2] in (["dpkg-query", "-L"], ["rpm", "-ql"]):  # either, from ``dpkg``
            if argv[2] not in self.dpkg:
                return 1, b"", b"not installed"
            return 0, "".join(f"{p}\n" for p in self.dpkg[argv[2]]).encode(), b""
        if argv[0] == "cat" and argv[1] in self.files:
            return 0, self.files[argv[1]], b""
        return 1, b"", b"No such file"


CONTAINERS = {"fresh": "c-fresh", "upgrade": "c-upgrade"}
CRON = {"version": "3.0", "architecture": "amd64", "status": "ii", "auto": False}
FILE = {"type": "file", "mode": "0644", "owner": "root", "group": "root", "sha256": "aa"}


def run_compare(
    engine: FakeEngine,
    cfg: ParityConfig | None = None,
    events: Sequence[TaskEvent] = (),
    baseline: Baseline | None = None,
) -> ParityResult:
    return compare(
        engine,
        CONTAINERS,
        cfg or ParityConfig(),
        events,
        baseline,
        today=dt.date(2026, 6, 15),
    )


def test_identical_hosts_pass() -> None:
    same = state(files={"/etc/a": FILE}, users={"root": {"uid": 0, "shell": "/bin/bash"}})
    result = run_compare(FakeEngine({"c-fresh": same, "c-upgrade": same}))
    assert result.differences == []
    assert result.passed
    assert not result.three_way
    assert set(result.capture_seconds) == {"fresh", "upgrade"}


def test_stale_package_with_its_files_folded_and_attributed() -> None:
    fresh = state(files={"/etc/a": FILE})
    upgrade = state(
        files={
            "/etc/a": FILE,
            "/etc/init.d/cron": FILE,
            "/etc/rc2.d/S01cron": {"type": "link", "target": "../init.d/cron"},
            "/etc/cron.d/cleanup": FILE,
        },
        packages={"cron": CRON},
    )
    baseline = Baseline(
        upgrade,
        (
            TaskEvent("baseline", "Install cron", "apt", "changed", {"name": "cron"}),
            TaskEvent("baseline", "job", "copy", "changed", {"dest": "/etc/cron.d/cleanup"}),
        ),
    )
    engine = FakeEngine(
        {"c-fresh": fresh, "c-upgrade": upgrade},
        dpkg={"cron": ["/etc/init.d/cron", "/usr/sbin/cron"]},
    )
    result = run_compare(engine, baseline=baseline)
    assert ("c-upgrade", ["dpkg-query", "-L", "cron"]) in engine.calls
    assert [(d.category, d.key, d.kind, d.tasks) for d in result.differences] == [
        ("file", "/etc/cron.d/cleanup", "stale", ("baseline: job",)),
        ("package", "cron", "stale", ("baseline: Install cron",)),
    ]
    assert result.differences[1].files == ("/etc/init.d/cron", "/etc/rc2.d/S01cron")
    assert result.three_way
    assert not result.passed


def test_noise_allow_and_expired_entries(tmp_path: Path) -> None:
    noise_file = tmp_path / "tdi-noise.yml"
    noise.save(noise_file, [Rule("file", "/var/lib/seed*", "random")])
    cfg = ParityConfig(
        allow=(
            Rule("package", "telnet", "support needs it", None, "parity.allow[0]"),
            Rule("user", "old", "gone soon", dt.date(2026, 1, 1), "parity.allow[1]"),
        ),
        noise=noise_file,
    )
    fresh = state(files={"/var/lib/seed": {**FILE, "sha256": "1"}})
    upgrade = state(files={"/var/lib/seed": {**FILE, "sha256": "2"}}, packages={"telnet": CRON})
    result = run_compare(FakeEngine({"c-fresh": fresh, "c-upgrade": upgrade}), cfg)
    assert [(d.key, d.kind, d.allowed) for d in result.differences] == [
        ("/var/lib/seed", "nondeterministic", ""),
        ("telnet", "extra", "support needs it"),
    ]
    assert not any(d.fails for d in result.differences)
    assert [m.split(" ")[0] for m in result.expired] == ["parity.allow[1]"]
    assert not result.passed  # an expired entry fails the run on its own
    assert result.differences[0].fails is False


def test_id_warnings_are_passed_on() -> None:
    fresh = state(users={"deploy": {"uid": 1000, "shell": "/bin/sh"}})
    upgrade = state(users={"deploy": {"uid": 1001, "shell": "/bin/sh"}})
    result = run_compare(FakeEngine({"c-fresh": fresh, "c-upgrade": upgrade}))
    assert result.differences == []
    assert result.warnings == ["user 'deploy': uid 1000 on fresh, 1001 on upgrade"]
    assert result.passed


@pytest.mark.parametrize(
    ("differences", "expired", "passed"),
    [
        ([], [], True),
        ([Difference("user", "a", None, {}, kind="extra")], [], False),
        ([Difference("user", "a", None, {}, kind="extra", allowed="ok")], [], True),
        ([Difference("user", "a", None, {}, kind="nondeterministic")], [], True),
        ([], ["parity.allow[0] expired"], False),
    ],
)
def test_parity_result_passed(
    differences: list[Difference], expired: list[str], passed: bool
) -> None:
    assert ParityResult(differences, expired).passed is passed


def test_roots_and_ignores() -> None:
    assert roots_and_ignores(ParityConfig()) == (list(DEFAULT_ROOTS), list(DEFAULT_IGNORE))
    roots, ignore = roots_and_ignores(ParityConfig(roots=("/srv",), ignore=("/srv/cache",)))
    assert roots == ["/srv"]
    assert ignore == [*DEFAULT_IGNORE, "/srv/cache"]


def test_read_baseline_copies_state_and_events(tmp_path: Path) -> None:
    recorded = state(packages={"cron": CRON})
    events = (TaskEvent("baseline", "Install cron", "apt", "changed", {"name": "cron"}),)
    engine = FakeEngine(
        {},
        files={
            BASELINE_STATE: recorded.to_json().encode(),
            BASELINE_EVENTS: ansible.dump_events(events),
        },
    )
    name = baseline_name("upgrade-1/db")
    baseline = read_baseline(engine, "c-upgrade", tmp_path, name)
    assert baseline == Baseline(recorded, events)
    # verify passes this copy to the plugin's baseline_state fixture, one per comparison.
    assert State.from_json((tmp_path / name).read_text()) == recorded


def test_read_baseline_without_one(tmp_path: Path) -> None:
    name = baseline_name("upgrade")
    baseline = read_baseline(FakeEngine({}), "c-upgrade", tmp_path, name)
    assert baseline == Baseline()
    assert not (tmp_path / name).exists()


def test_baseline_name_is_a_file_name_per_node() -> None:
    assert baseline_name("upgrade") == "baseline-state.upgrade.json"
    assert baseline_name("upgrade-1/db") == "baseline-state.upgrade-1.db.json"


def _text_file(mode: str, text: str) -> dict[str, str]:
    return {**FILE, "mode": mode, "sha256": str(hash(text))}


def test_a_changed_file_carries_its_content_diff_with_secrets_masked() -> None:
    old = "listen 80\npassword = hunter2\n"
    new = "listen 8080\npassword = s3cret-new\n"
    engine = FakeEngine(
        {
            "c-fresh": state(files={"/etc/app.conf": _text_file("0644", new)}),
            "c-upgrade": state(files={"/etc/app.conf": _text_file("0644", old)}),
        },
        content={
            ("c-fresh", "/etc/app.conf"): new.encode(),
            ("c-upgrade", "/etc/app.conf"): old.encode(),
        },
    )
    (d,) = run_compare(engine).differences
    assert "-listen 8080\n+listen 80\n" in d.content_diff
    assert d.content_diff.startswith("--- fresh:/etc/app.conf\n+++ upgrade:/etc/app.conf\n")
    assert "hunter2" not in d.content_diff and "s3cret" not in d.content_diff
    assert d.content_notes == ("values of 2 secret-looking lines masked",)
    assert d.to_dict()["content_diff"] == d.content_diff


def test_a_file_others_may_not_read_is_only_said_to_differ() -> None:
    engine = FakeEngine(
        {
            "c-fresh": state(files={"/etc/app.secret": _text_file("0640", "a")}),
            "c-upgrade": state(files={"/etc/app.secret": _text_file("0640", "b")}),
        },
        content={("c-fresh", "/etc/app.secret"): b"token=a\n"},
    )
    (d,) = run_compare(engine).differences
    assert d.content_diff == ""
    assert d.content_notes == ("not world-readable: its content is not shown",)
    assert not any("/etc/app.secret" in argv[3:] for _, argv in engine.calls)


def test_a_stale_file_shows_its_upgrade_content_and_binary_is_not_shown() -> None:
    engine = FakeEngine(
        {
            "c-fresh": state(files={"/etc/blob": _text_file("0644", "x")}),
            "c-upgrade": state(files={"/etc/old.conf": FILE, "/etc/blob": _text_file("0644", "y")}),
        },
        content={
            ("c-upgrade", "/etc/old.conf"): b"left = behind\n",
            ("c-fresh", "/etc/blob"): b"\0\1",
            ("c-upgrade", "/etc/blob"): b"\0\2",
        },
    )
    blob, old = run_compare(engine).differences
    assert old.content_diff.startswith("--- /dev/null\n+++ upgrade:/etc/old.conf\n")
    assert old.content_diff.endswith("+left = behind\n")
    assert blob.content_diff == ""
    assert blob.content_notes == ("fresh side is binary or unreadable: its content is not shown",)


def test_a_runs_comparisons_capture_fresh_once_and_read_the_noise_file_once(
    tmp_path: Path,
) -> None:
    same = state(files={"/etc/a": FILE})
    engine = FakeEngine({"c-fresh": same, "c-upgrade": same, "c-upgrade-1": same})
    rules = tmp_path / "tdi-noise.yml"
    rules.write_text("noise: []\n", encoding="utf-8")
    cfg = ParityConfig(noise=rules)
    captures = Captures(cfg)
    for upgrade in ("c-upgrade", "c-upgrade-1"):  # a chain of two links
        pair = {"fresh": "c-fresh", "upgrade": upgrade}
        assert compare(engine, pair, cfg, captures=captures).passed
        rules.write_text("noise: not a list\n", encoding="utf-8")  # read again: an error
    probes = [c for c, argv in engine.calls if argv[0] == "python3"]
    assert probes == ["c-fresh", "c-upgrade", "c-upgrade-1"]


def test_thousands_of_stale_files_are_read_in_few_execs_and_the_rest_is_noted() -> None:
    paths = [f"/opt/old/mod{i}.js" for i in range(1200)]
    engine = FakeEngine(
        {
            "c-fresh": state(),
            "c-upgrade": state(files={p: _text_file("0644", p) for p in paths}),
        },
        content={("c-upgrade", p): f"// {p}\n".encode() for p in paths},
    )
    differences = run_compare(engine).differences
    reads = [argv for _, argv in engine.calls if argv[:3] == ["python3", "-c", parity._READ]]
    assert len(reads) == 1  # one exec for the MAX_CONTENT_DIFFS files shown
    shown = [d for d in differences if d.content_diff]
    assert len(shown) == parity.MAX_CONTENT_DIFFS
    assert "+// /opt/old/mod0.js" in shown[0].content_diff
    rest = [d for d in differences if not d.content_diff]
    assert len(rest) == 1200 - parity.MAX_CONTENT_DIFFS
    assert rest[0].content_notes == (
        f"content not read: over {parity.MAX_CONTENT_DIFFS} files differ",
    )


def test_a_production_snapshot_keeps_the_earlier_releases_writers_once() -> None:
    old = TaskEvent("web", "cleanup job", "copy", "ok", {"dest": "/etc/cron.d/cleanup"})
    kept = TaskEvent("web", "site", "template", "ok", {"dest": "/etc/nginx/site"})
    changed = TaskEvent("web", "site", "template", "changed", {"dest": "/etc/nginx/site"})
    assert with_history([old, kept], [kept]) == (old, kept)
    assert with_history([kept, old], [kept, changed]) == (old, kept, changed)
    assert with_history([], [kept]) == (kept,)


def test_what_a_no_log_task_wrote_is_never_shown() -> None:
    engine = FakeEngine(
        {
            "c-fresh": state(files={"/etc/app/dsn": _text_file("0644", "new")}),
            "c-upgrade": state(files={"/etc/app/dsn": _text_file("0644", "old")}),
        },
        content={
            ("c-fresh", "/etc/app/dsn"): b"postgres://app:NEW-S3CR3T@db/app\n",
            ("c-upgrade", "/etc/app/dsn"): b"postgres://app:OLD-S3CR3T@db/app\n",
        },
    )
    write = TaskEvent(
        "tdi-host", "Write the DSN", "copy", "changed", {"dest": "/etc/app/dsn"}, no_log=True
    )
    (d,) = run_compare(engine, events=[write]).differences
    assert d.content_diff == ""
    assert d.content_notes == (parity.NO_LOG_NOTE,)
    assert not any("/etc/app/dsn" in argv[3:] for _, argv in engine.calls)


def test_an_rpm_package_lists_its_files_with_rpm() -> None:
    """Debian with rpm installed: the RPM's key ends in @rpm, and rpm -ql takes its name."""
    old = {"version": "1.0-1", "architecture": "noarch", "manager": "rpm"}
    fresh = state(files={"/etc/a": FILE})
    upgrade = state(
        files={"/etc/a": FILE, "/etc/tdi-old.conf": FILE}, packages={"tdi-old@rpm": old}
    )
    engine = FakeEngine(
        {"c-fresh": fresh, "c-upgrade": upgrade}, dpkg={"tdi-old": ["/etc/tdi-old.conf"]}
    )
    result = run_compare(engine)
    assert ("c-upgrade", ["rpm", "-ql", "tdi-old"]) in engine.calls
    (stale,) = result.differences
    assert (stale.category, stale.key, stale.files) == (
        "package",
        "tdi-old@rpm",
        ("/etc/tdi-old.conf",),
    )


def test_what_the_probe_could_not_read_is_said_once_per_comparison() -> None:
    none = "no package database found (looked for dpkg, rpm and apk): packages are not captured"
    unread = "an rpm database is at /var/lib/rpm but no rpm command: its packages are not captured"
    fresh = replace(state(), notes=(none,))
    upgrade = replace(state(), notes=(none, unread))
    result = run_compare(FakeEngine({"c-fresh": fresh, "c-upgrade": upgrade}))
    assert result.warnings == [none, f"upgrade: {unread}"]
    assert result.passed
