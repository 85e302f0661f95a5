"""Drift kinds: why a difference exists, judged against the snapshot's baseline state."""

from __future__ import annotations

from typing import Any

import pytest

from tdi.state.capture import Record, State
from tdi.state.diff import Category, Difference, diff
from tdi.state.kinds import (
    CHANGED,
    DIVERGED,
    EXTRA,
    MISSING,
    NONDETERMINISTIC,
    NOT_APPLIED,
    STALE,
    classify,
)
from tdi.state.rules import Rule

OLD: Record = {"type": "file", "mode": "0644", "owner": "root", "sha256": "old"}
NEW: Record = {"type": "file", "mode": "0644", "owner": "root", "sha256": "new"}


def state(**sections: dict[str, Any]) -> State:
    fields = ("files", "packages", "users", "groups", "ports", "services")
    return State(**{name: sections.get(name, {}) for name in fields})


def kind_of(fresh: State, upgrade: State, baseline: State | None) -> list[tuple[str, str]]:
    return [(d.key, d.kind) for d in classify(diff(fresh, upgrade), baseline)]


def test_stale_left_behind_by_the_previous_release() -> None:
    baseline = state(files={"/etc/cron.d/old": OLD}, packages={"cron": {"version": "3.0"}})
    upgrade = state(files={"/etc/cron.d/old": OLD}, packages={"cron": {"version": "3.0"}})
    assert kind_of(state(), upgrade, baseline) == [("/etc/cron.d/old", STALE), ("cron", STALE)]


def test_extra_on_upgrade_that_the_baseline_lacked_diverged() -> None:
    # Neither this release nor the previous one made it: someone else did.
    assert kind_of(state(), state(files={"/etc/x": NEW}), state()) == [("/etc/x", DIVERGED)]


def test_not_applied_when_upgrade_keeps_the_baseline_value() -> None:
    baseline = state(files={"/etc/app.conf": OLD})
    fresh = state(files={"/etc/app.conf": NEW})
    upgrade = state(files={"/etc/app.conf": OLD})
    assert kind_of(fresh, upgrade, baseline) == [("/etc/app.conf", NOT_APPLIED)]


def test_diverged_when_upgrade_matches_neither() -> None:
    baseline = state(files={"/etc/app.conf": OLD})
    fresh = state(files={"/etc/app.conf": NEW})
    upgrade = state(files={"/etc/app.conf": {**OLD, "sha256": "hand-edited"}})
    assert kind_of(fresh, upgrade, baseline) == [("/etc/app.conf", DIVERGED)]


def test_changed_on_both_but_absent_from_the_baseline_diverged() -> None:
    fresh = state(files={"/etc/app.conf": NEW})
    upgrade = state(files={"/etc/app.conf": OLD})
    assert kind_of(fresh, upgrade, state()) == [("/etc/app.conf", DIVERGED)]


def test_not_applied_compares_only_the_differing_fields() -> None:
    # The owner changed since the baseline on both hosts; only the mode differs between
    # fresh and upgrade, and there upgrade still holds the baseline's value.
    baseline = state(files={"/srv/site": {**OLD, "owner": "root", "mode": "0755"}})
    fresh = state(files={"/srv/site": {**OLD, "owner": "www-data", "mode": "0750"}})
    upgrade = state(files={"/srv/site": {**OLD, "owner": "www-data", "mode": "0755"}})
    (found,) = diff(fresh, upgrade)
    assert found.upgrade == {"mode": "0755"}
    assert classify([found], baseline)[0].kind == NOT_APPLIED


def test_a_field_lost_on_upgrade_is_not_the_baseline_value() -> None:
    baseline = state(services={"app": {"enabled": True, "running": True}})
    fresh = state(services={"app": {"enabled": False, "running": True}})
    upgrade = state(services={"app": {"running": True}})
    (found,) = diff(fresh, upgrade)
    assert found.upgrade == {}
    assert classify([found], baseline)[0].kind == DIVERGED


def test_missing_on_upgrade_with_or_without_a_baseline() -> None:
    fresh = state(users={"deploy": {"shell": "/bin/bash"}})
    assert kind_of(fresh, state(), state()) == [("deploy", MISSING)]
    assert kind_of(fresh, state(), None) == [("deploy", MISSING)]


def test_two_way_kinds_without_a_baseline() -> None:
    fresh = state(packages={"nginx": {"version": "1.22"}, "curl": {"version": "7"}})
    upgrade = state(packages={"nginx": {"version": "1.18"}, "telnet": {"version": "0.17"}})
    assert kind_of(fresh, upgrade, None) == [
        ("curl", MISSING),
        ("nginx", CHANGED),
        ("telnet", EXTRA),
    ]


@pytest.mark.parametrize(
    ("category", "section", "key"),
    [
        ("package", "packages", "cron"),
        ("user", "users", "deploy"),
        ("group", "groups", "crontab"),
        ("service", "services", "cron"),
        ("port", "ports", "tcp/8081"),
    ],
)
def test_every_category_looks_in_its_own_baseline_section(
    category: Category, section: str, key: str
) -> None:
    record: Record = {"x": "1"}
    d = Difference(category, key, None, record)
    assert classify([d], state(**{section: {key: record}}))[0].kind == STALE
    other = "files" if section != "files" else "packages"
    assert classify([d], state(**{other: {key: record}}))[0].kind == DIVERGED


def test_noise_match_is_nondeterministic_whatever_the_baseline() -> None:
    noise = [Rule("file", "/var/lib/systemd/random-seed", "random")]
    d = Difference("file", "/var/lib/systemd/random-seed", {"sha256": "a"}, {"sha256": "b"})
    assert classify([d], state(), noise)[0].kind == NONDETERMINISTIC
    assert classify([d], None, noise)[0].kind == NONDETERMINISTIC


def test_noise_key_is_a_glob_within_its_category() -> None:
    noise = [Rule("file", "/var/lib/apt-daily/*", "timer stamps")]
    matching = Difference("file", "/var/lib/apt-daily/stamp/x", None, {})
    other_key = Difference("file", "/var/lib/other", None, {})
    other_category = Difference("package", "/var/lib/apt-daily/x", None, {})
    kinds = [d.kind for d in classify([matching, other_key, other_category], None, noise)]
    assert kinds == [NONDETERMINISTIC, EXTRA, EXTRA]


def test_classify_keeps_order_and_everything_else() -> None:
    first = Difference("user", "b", None, {"shell": "/bin/sh"}, tasks=("t",), allowed="x")
    second = Difference("file", "/a", {"mode": "0644"}, None)
    out = classify([first, second], None)
    assert [(d.category, d.key) for d in out] == [("user", "b"), ("file", "/a")]
    assert out[0].tasks == ("t",) and out[0].allowed == "x"
    assert first.kind == ""  # the input is left alone
