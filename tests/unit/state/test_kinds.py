"""Drift kinds: why a difference exists, judged against the snapshot's baseline state."""

from __future__ import annotations

from typing import Any

import pytest

from tdi.provision.ansible import TaskEvent
from tdi.state.capture import Record, State
from tdi.state.diff import Category, Difference, diff
from tdi.state.kinds import (
    CHANGED,
    DIVERGED,
    EXTRA,
    IRREVERSIBLE,
    MEANING,
    MISSING,
    NONDETERMINISTIC,
    NOT_APPLIED,
    STALE,
    UNMANAGED,
    classify,
    irreversible,
)
from tdi.state.rules import Rule

OLD: Record = {"type": "file", "mode": "0644", "owner": "root", "sha256": "old"}
NEW: Record = {"type": "file", "mode": "0644", "owner": "root", "sha256": "new"}


def state(**sections: dict[str, Any]) -> State:
    fields = ("files", "packages", "users", "groups", "ports", "services")
    return State(*(sections.get(name, {}) for name in fields))


def ev(task: str, action: str, **args: Any) -> TaskEvent:
    return TaskEvent("tdi-host", task, action, "changed", args)


WRITES_CONF = [ev("conf", "template", dest="/etc/app.conf")]


def kind_of(
    fresh: State, upgrade: State, baseline: State | None, events: list[TaskEvent] | None = None
) -> list[tuple[str, str]]:
    return [(d.key, d.kind) for d in classify(diff(fresh, upgrade), baseline, events=events or [])]


def test_stale_left_behind_by_the_previous_release() -> None:
    baseline = state(files={"/etc/cron.d/old": OLD}, packages={"cron": {"version": "3.0"}})
    upgrade = state(files={"/etc/cron.d/old": OLD}, packages={"cron": {"version": "3.0"}})
    assert kind_of(state(), upgrade, baseline) == [("/etc/cron.d/old", STALE), ("cron", STALE)]


def test_extra_on_upgrade_that_the_baseline_lacked_diverged() -> None:
    # Neither this release nor the previous one made it: someone else did.
    assert kind_of(state(), state(files={"/etc/x": NEW}), state()) == [("/etc/x", DIVERGED)]


def test_not_applied_when_a_task_of_this_release_changed_what_upgrade_keeps() -> None:
    baseline = state(files={"/etc/app.conf": OLD})
    fresh = state(files={"/etc/app.conf": NEW})
    upgrade = state(files={"/etc/app.conf": OLD})
    assert kind_of(fresh, upgrade, baseline, WRITES_CONF) == [("/etc/app.conf", NOT_APPLIED)]


def test_stale_when_upgrade_keeps_a_value_no_task_of_this_release_sets() -> None:
    # The previous release wrote it; this one no longer does, and fresh has the package's.
    baseline = state(files={"/etc/app.conf": OLD})
    fresh = state(files={"/etc/app.conf": NEW})
    upgrade = state(files={"/etc/app.conf": OLD})
    out = classify(diff(fresh, upgrade), baseline, events=[], baseline_events=WRITES_CONF)
    assert [d.kind for d in out] == [STALE]


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
    touched = [ev("site", "file", path="/srv/site", mode="0750")]
    assert classify([found], baseline, events=touched)[0].kind == NOT_APPLIED


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


# The daemon writes its data file, a postinst makes the host's key: no task names them.
DATA, KEY = "/var/lib/redis/dump.rdb", "/etc/ssl/private/ssl-cert-snakeoil.key"
RELEASE = [
    ev("install", "apt", name=["redis-server", "ssl-cert"]),
    ev("data dir", "file", path="/var/lib/redis", state="directory", owner="redis"),
    ev("conf", "template", dest="/etc/redis/redis.conf"),
]


def test_files_no_task_of_either_release_wrote_are_unmanaged_and_do_not_fail() -> None:
    baseline = state(files={DATA: OLD, KEY: OLD, "/var/lib/redis/temp-1.rdb": OLD})
    fresh = state(files={DATA: NEW, KEY: NEW, "/var/lib/redis/appendonly.aof": NEW})
    upgrade = state(files={DATA: OLD, KEY: OLD, "/var/lib/redis/temp-1.rdb": OLD})
    out = classify(diff(fresh, upgrade), baseline, events=RELEASE, baseline_events=RELEASE)
    assert {d.key: d.kind for d in out} == {
        DATA: UNMANAGED,  # upgrade keeps the baseline's: it would be not-applied
        KEY: UNMANAGED,
        "/var/lib/redis/appendonly.aof": UNMANAGED,  # it would be missing
        "/var/lib/redis/temp-1.rdb": UNMANAGED,  # it would be stale
    }
    assert not any(d.fails for d in out)


def test_a_file_a_task_of_either_release_wrote_is_judged_as_drift() -> None:
    baseline = state(files={"/etc/cron.d/old": OLD, "/etc/app.conf": OLD})
    upgrade = state(files={"/etc/cron.d/old": OLD, "/etc/app.conf": OLD})
    fresh = state(files={"/etc/app.conf": NEW})
    old_release = [*WRITES_CONF, ev("cron job", "copy", dest="/etc/cron.d/old")]
    out = classify(diff(fresh, upgrade), baseline, events=[], baseline_events=old_release)
    assert [(d.key, d.kind) for d in out] == [("/etc/app.conf", STALE), ("/etc/cron.d/old", STALE)]
    assert all(d.fails for d in out)


def test_without_the_baselines_events_or_state_nothing_is_unmanaged() -> None:
    # Who wrote what cannot be told: a production image made elsewhere, say.
    baseline = state(files={DATA: OLD})
    found = diff(state(files={DATA: NEW}), state(files={DATA: OLD}))
    assert classify(found, baseline, events=RELEASE)[0].kind == STALE
    assert classify(found, None, events=RELEASE, baseline_events=RELEASE)[0].kind == CHANGED


UNIT = "apache-htcacheclean"


def services(**units: dict[str, Any]) -> State:
    return state(services=units)


@pytest.mark.parametrize(
    ("fresh", "upgrade"),
    [
        # systemd: the postinst started it, and it is disabled: a host that booted since
        # does not run it.
        (
            {"enabled": "disabled", "active": "active"},
            {"enabled": "disabled", "active": "inactive"},
        ),
        ({"enabled": "static", "active": "active"}, {"enabled": "static", "active": "inactive"}),
        # sysv, under tini: no S link, running on one side only.
        ({"enabled": False, "running": True}, {"enabled": False, "running": False}),
    ],
)
def test_a_service_that_does_not_start_at_boot_runs_by_history(
    fresh: Record, upgrade: Record
) -> None:
    baseline = services(**{UNIT: fresh})
    out = classify(
        diff(services(**{UNIT: fresh}), services(**{UNIT: upgrade})),
        baseline,
        events=RELEASE,
        baseline_events=RELEASE,
        services={UNIT: upgrade},
    )
    assert [(d.key, d.kind, d.fails) for d in out] == [(UNIT, UNMANAGED, False)]


@pytest.mark.parametrize(
    ("fresh", "upgrade", "managing"),
    [
        # A task names it: whether it runs is the playbook's.
        (
            {"enabled": "disabled", "active": "active"},
            {"enabled": "disabled", "active": "inactive"},
            [ev("start it", "service", name=UNIT, state="started")],
        ),
        (
            {"enabled": "disabled", "active": "active"},
            {"enabled": "disabled", "active": "inactive"},
            [ev("install it", "apt", name=UNIT)],
        ),
        # Enabled: it starts at boot, so not running is real.
        (
            {"enabled": "enabled", "active": "active"},
            {"enabled": "enabled", "active": "failed"},
            [],
        ),
        # Its enablement differs: that is configuration.
        (
            {"enabled": "enabled", "active": "active"},
            {"enabled": "disabled", "active": "inactive"},
            [],
        ),
    ],
)
def test_a_managed_or_enabled_service_is_judged_as_drift(
    fresh: Record, upgrade: Record, managing: list[TaskEvent]
) -> None:
    (d,) = classify(
        diff(services(**{UNIT: fresh}), services(**{UNIT: upgrade})),
        services(**{UNIT: fresh}),
        events=[*RELEASE, *managing],
        baseline_events=RELEASE,
        services={UNIT: upgrade},
    )
    assert d.kind == DIVERGED and d.fails


def test_the_port_of_a_service_that_runs_by_history_is_unmanaged_too() -> None:
    fresh = state(
        services={"memcached": {"enabled": "disabled", "active": "active"}},
        ports={"tcp/11211": {"addresses": ["127.0.0.1"], "process": "memcached"}},
    )
    upgrade = state(services={"memcached": {"enabled": "disabled", "active": "inactive"}})
    out = classify(
        diff(fresh, upgrade),
        fresh,
        events=RELEASE,
        baseline_events=RELEASE,
        services=upgrade.services,
    )
    assert [(d.key, d.kind) for d in out] == [("tcp/11211", UNMANAGED), ("memcached", UNMANAGED)]


def test_noise_of_one_host_holds_on_that_host_only() -> None:
    noise = [Rule("file", "/etc/lb.state", "random", host="lb")]
    d = Difference("file", "/etc/lb.state", {"sha256": "a"}, {"sha256": "b"})
    assert classify([d], None, noise, host="lb")[0].kind == NONDETERMINISTIC
    assert classify([d], None, noise, host="web1")[0].kind == CHANGED


def test_a_port_that_systemd_holds_after_boot_for_the_same_daemon_is_boot_history() -> None:
    # mariadb.socket: enabled by the package, started only by a boot (the upgrade host's).
    port = Difference(
        "port",
        "tcp/3306",
        {"addresses": ["0.0.0.0"], "process": "mariadbd"},
        {"addresses": ["::"], "process": "mariadbd,systemd"},
    )
    (found,) = classify([port], None)
    assert found.kind == "unmanaged" and not found.fails
    other = Difference("port", "tcp/80", {"process": "nginx"}, {"process": "apache2,systemd"})
    assert classify([other], None)[0].kind != "unmanaged"


def test_a_rollback_leaves_irreversible_what_this_release_made_and_the_previous_one_keeps() -> None:
    baseline = state(files={"/etc/app.conf": OLD}, packages={"cron": {"version": "3.0"}})
    rolled = state(
        files={"/etc/app.conf": NEW, "/etc/new.conf": NEW},
        packages={"cron": {"version": "3.1"}, "redis": {"version": "7"}},
    )
    ours = [ev("new", "copy", dest="/etc/new.conf"), ev("pkg", "apt", name=["redis", "cron"])]
    theirs = [ev("conf", "template", dest="/etc/app.conf")]
    found = irreversible(diff(baseline, rolled), baseline, events=ours, baseline_events=theirs)
    assert [(d.key, d.kind) for d in found] == [
        ("/etc/app.conf", IRREVERSIBLE),
        ("/etc/new.conf", IRREVERSIBLE),
        ("cron", IRREVERSIBLE),
        ("redis", IRREVERSIBLE),
    ]
    assert all(d.fails for d in found) and IRREVERSIBLE in MEANING


def test_a_rollback_keeps_noise_and_what_no_task_made_quiet() -> None:
    baseline = state(files={"/etc/app.conf": OLD})
    rolled = state(files={"/etc/app.conf": OLD, "/var/lib/app/data": NEW, "/etc/seed": NEW})
    theirs = [ev("conf", "template", dest="/etc/app.conf")]
    noise = [Rule("file", "/etc/seed", "random each run")]
    found = irreversible(diff(baseline, rolled), baseline, noise, baseline_events=theirs)
    assert [(d.key, d.kind) for d in found] == [
        ("/etc/seed", NONDETERMINISTIC),
        ("/var/lib/app/data", UNMANAGED),
    ]
    assert not any(d.fails for d in found)


def test_a_rollback_difference_the_upgrade_never_made_is_the_previous_releases_own() -> None:
    # redis 1.8.0 sets its config dir's mode to 0755 on every run, and the snapshot holds
    # its first run's 2770: the rollback's 0755 is not this release's doing.
    baseline = state(files={"/etc/redis": {"type": "dir", "mode": "2770"}, "/etc/x": {}})
    upgraded = state(
        files={"/etc/redis": {"type": "dir", "mode": "2770"}, "/etc/new.conf": {"type": "file"}}
    )
    left = [
        Difference("file", "/etc/redis", {"mode": "2770"}, {"mode": "0755"}),
        Difference("file", "/etc/new.conf", None, {"type": "file"}, tasks=("Write new",)),
    ]
    events = [TaskEvent("h", "Write new", "copy", "changed", {"dest": "/etc/new.conf"})]
    found = irreversible(left, baseline, events=events, upgraded=upgraded)
    assert [(d.key, d.kind, d.fails) for d in found] == [
        ("/etc/redis", "not-idempotent", False),
        ("/etc/new.conf", "irreversible", True),
    ]
