from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tdi.state.capture import Record, State
from tdi.state.diff import Difference, diff, id_warnings, is_cron

FILE: Record = {"type": "file", "mode": "0644", "owner": "root", "group": "root", "sha256": "aa"}
PACKAGE: Record = {"version": "1.0", "architecture": "amd64", "status": "ii", "auto": False}
USER: Record = {
    "uid": 1000,
    "gid": 1000,
    "home": "/home/deploy",
    "shell": "/bin/bash",
    "group": "deploy",
    "groups": ["www-data"],
}


def state(**sections: dict[str, Any]) -> State:
    empty: dict[str, Any] = {}
    fields = ("files", "packages", "users", "groups", "ports", "services")
    return State(*(sections.get(name, empty) for name in fields))


def changed(record: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**record, **fields}


def test_identical_states_have_no_difference() -> None:
    one = state(files={"/etc/a": FILE}, packages={"nginx": PACKAGE}, users={"deploy": USER})
    assert diff(one, copy.deepcopy(one)) == []


def test_file_only_on_upgrade_is_reported_whole() -> None:
    found = diff(state(), state(files={"/etc/a": FILE}))
    assert found == [Difference("file", "/etc/a", None, FILE)]


def test_file_only_on_fresh_is_reported_whole() -> None:
    found = diff(state(files={"/etc/a": FILE}), state())
    assert found == [Difference("file", "/etc/a", FILE, None)]


def test_mode_only_change_reports_just_the_mode() -> None:
    found = diff(state(files={"/etc/a": FILE}), state(files={"/etc/a": changed(FILE, mode="0600")}))
    assert found == [Difference("file", "/etc/a", {"mode": "0644"}, {"mode": "0600"})]


def test_content_and_owner_change_report_both_fields() -> None:
    upgrade = changed(FILE, sha256="bb", owner="www-data")
    found = diff(state(files={"/etc/a": FILE}), state(files={"/etc/a": upgrade}))
    assert found == [
        Difference(
            "file",
            "/etc/a",
            {"owner": "root", "sha256": "aa"},
            {"owner": "www-data", "sha256": "bb"},
        )
    ]


def test_file_turned_link_shows_each_sides_own_fields() -> None:
    link = {"type": "link", "mode": "0777", "owner": "root", "group": "root", "target": "b"}
    found = diff(state(files={"/etc/a": FILE}), state(files={"/etc/a": link}))
    assert found == [
        Difference(
            "file",
            "/etc/a",
            {"type": "file", "mode": "0644", "sha256": "aa"},
            {"type": "link", "mode": "0777", "target": "b"},
        )
    ]


def test_file_error_on_one_side_is_a_difference() -> None:
    broken = changed(FILE, error="Permission denied")
    found = diff(state(files={"/etc/a": FILE}), state(files={"/etc/a": broken}))
    assert found == [Difference("file", "/etc/a", {}, {"error": "Permission denied"})]


def test_package_version_and_auto_mark() -> None:
    upgrade = changed(PACKAGE, version="1.1", auto=True)
    found = diff(state(packages={"nginx": PACKAGE}), state(packages={"nginx": upgrade}))
    assert found == [
        Difference(
            "package", "nginx", {"auto": False, "version": "1.0"}, {"auto": True, "version": "1.1"}
        )
    ]


def test_package_left_over_on_upgrade() -> None:
    found = diff(state(), state(packages={"telnet": PACKAGE}))
    assert found == [Difference("package", "telnet", None, PACKAGE)]


def test_user_with_other_uid_and_gid_only_is_no_difference() -> None:
    upgrade = changed(USER, uid=1001, gid=1001)
    assert diff(state(users={"deploy": USER}), state(users={"deploy": upgrade})) == []


def test_user_shell_change_leaves_uid_out() -> None:
    upgrade = changed(USER, uid=1001, shell="/bin/sh")
    found = diff(state(users={"deploy": USER}), state(users={"deploy": upgrade}))
    assert found == [Difference("user", "deploy", {"shell": "/bin/bash"}, {"shell": "/bin/sh"})]


def test_user_supplementary_groups_change() -> None:
    upgrade = changed(USER, groups=["sudo", "www-data"])
    found = diff(state(users={"deploy": USER}), state(users={"deploy": upgrade}))
    assert found == [
        Difference("user", "deploy", {"groups": ["www-data"]}, {"groups": ["sudo", "www-data"]})
    ]


def test_user_only_on_one_side_keeps_its_uid() -> None:
    found = diff(state(users={"deploy": USER}), state())
    assert found == [Difference("user", "deploy", USER, None)]


def test_group_gid_is_ignored_but_members_are_not() -> None:
    fresh = state(groups={"web": {"gid": 1000, "members": ["a"]}})
    same = state(groups={"web": {"gid": 1005, "members": ["a"]}})
    other = state(groups={"web": {"gid": 1000, "members": ["a", "b"]}})
    assert diff(fresh, same) == []
    assert diff(fresh, other) == [
        Difference("group", "web", {"members": ["a"]}, {"members": ["a", "b"]})
    ]


def test_ports_added_and_changed() -> None:
    fresh = state(ports={"tcp/80": {"addresses": ["0.0.0.0"], "process": "nginx"}})
    upgrade = state(
        ports={
            "tcp/80": {"addresses": ["0.0.0.0"], "process": "apache2"},
            "tcp/8080": {"addresses": ["::"], "process": None},
        }
    )
    assert diff(fresh, upgrade) == [
        Difference("port", "tcp/80", {"process": "nginx"}, {"process": "apache2"}),
        Difference("port", "tcp/8080", None, {"addresses": ["::"], "process": None}),
    ]


def test_service_enabled_on_one_side() -> None:
    fresh = state(services={"nginx": {"enabled": True, "running": True}})
    upgrade = state(services={"nginx": {"enabled": False, "running": True}})
    assert diff(fresh, upgrade) == [
        Difference("service", "nginx", {"enabled": True}, {"enabled": False})
    ]


def test_sorted_by_category_then_key_whatever_the_input_order() -> None:
    upgrade = state(
        users={"zed": USER, "amy": USER},
        files={"/srv/b": FILE, "/etc/z": FILE, "/etc/a": FILE},
        packages={"nginx": PACKAGE},
        services={"cron": {"enabled": True, "running": False}},
    )
    found = diff(state(), upgrade)
    assert [(d.category, d.key) for d in found] == [
        ("file", "/etc/a"),
        ("file", "/etc/z"),
        ("file", "/srv/b"),
        ("package", "nginx"),
        ("service", "cron"),
        ("user", "amy"),
        ("user", "zed"),
    ]
    assert diff(state(), upgrade) == found


def test_diff_leaves_its_inputs_alone() -> None:
    fresh = state(files={"/etc/a": FILE}, users={"deploy": USER})
    upgrade = state(files={"/etc/a": changed(FILE, mode="0600")}, users={})
    before = (copy.deepcopy(fresh), copy.deepcopy(upgrade))
    diff(fresh, upgrade)
    assert (fresh, upgrade) == before


def test_to_dict() -> None:
    found = Difference("file", "/etc/a", {"mode": "0644"}, {"mode": "0600"})
    assert found.to_dict() == {
        "category": "file",
        "key": "/etc/a",
        "fresh": {"mode": "0644"},
        "upgrade": {"mode": "0600"},
        "kind": "",
        "tasks": [],
        "heading": "file",
        "files": [],
        "allowed": "",
        "content_diff": "",
        "content_notes": [],
    }


def test_to_dict_carries_the_explanation() -> None:
    found = Difference(
        "package",
        "cron",
        None,
        PACKAGE,
        kind="stale",
        tasks=("baseline: Install cron",),
        files=("/etc/init.d/cron",),
        allowed="going in 2.0",
    )
    data = found.to_dict()
    assert data["kind"] == "stale"
    assert data["tasks"] == ["baseline: Install cron"]
    assert data["files"] == ["/etc/init.d/cron"]
    assert data["allowed"] == "going in 2.0"
    assert data["heading"] == "package"
    json.dumps(data)


@pytest.mark.parametrize(
    "path",
    [
        "/etc/crontab",
        "/etc/cron.d/website-cleanup",
        "/etc/cron.daily/logrotate",
        "/etc/cron.allow",
        "/var/spool/cron/crontabs/root",
    ],
)
def test_cron_files_have_their_own_heading(path: str) -> None:
    assert is_cron(path)
    assert Difference("file", path, None, FILE).heading == "cron"


@pytest.mark.parametrize("path", ["/etc/cronjob", "/etc/nginx/cron.conf", "/var/spool/mail/root"])
def test_other_files_are_under_file(path: str) -> None:
    assert not is_cron(path)
    assert Difference("file", path, None, FILE).heading == "file"


def test_only_files_can_be_cron() -> None:
    # A package or service named like a cron path keeps its own heading.
    assert Difference("package", "/etc/crontab", None, PACKAGE).heading == "package"
    assert Difference("service", "cron", None, {"enabled": True}).heading == "service"


@pytest.mark.parametrize(
    ("kind", "allowed", "fails"),
    [
        ("stale", "", True),
        ("", "", True),
        ("nondeterministic", "", False),
        ("diverged", "known, see #12", False),
    ],
)
def test_fails_unless_nondeterministic_or_allowed(kind: str, allowed: str, fails: bool) -> None:
    assert Difference("file", "/etc/a", None, FILE, kind=kind, allowed=allowed).fails is fails


def test_id_warnings_name_each_differing_id() -> None:
    fresh = state(users={"deploy": USER}, groups={"deploy": {"gid": 1000, "members": []}})
    upgrade = state(
        users={"deploy": changed(USER, uid=1001, gid=1001), "new": USER},
        groups={"deploy": {"gid": 1001, "members": []}},
    )
    assert id_warnings(fresh, upgrade) == [
        "group 'deploy': gid 1000 on fresh, 1001 on upgrade",
        "user 'deploy': uid 1000 on fresh, 1001 on upgrade",
        "user 'deploy': gid 1000 on fresh, 1001 on upgrade",
    ]


def test_no_id_warnings_when_ids_match() -> None:
    same = state(users={"deploy": USER}, groups={"deploy": {"gid": 1000, "members": []}})
    assert id_warnings(same, copy.deepcopy(same)) == []
