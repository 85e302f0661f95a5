"""Attribution: which Ansible task touched what a difference is about; package file folding."""

from __future__ import annotations

from typing import Any

import pytest

from tdi.provision.ansible import TaskEvent
from tdi.state.attribution import attribute, fold_package_files, touched_by
from tdi.state.diff import Category, Difference


def ev(task: str, action: str, **args: Any) -> TaskEvent:
    return TaskEvent("fresh", task, action, "changed", args)


def tasks_for(
    category: Category,
    key: str,
    events: list[TaskEvent],
    baseline: list[TaskEvent] | None = None,
    upgrade: dict[str, Any] | None = None,
) -> tuple[str, ...]:
    d = Difference(category, key, None, upgrade if upgrade is not None else {})
    (out,) = attribute([d], events, baseline or [])
    return out.tasks


def test_file_matches_dest_or_path_exactly() -> None:
    events = [
        ev(
            "write nginx.conf", "ansible.builtin.template", src="n.j2", dest="/etc/nginx/nginx.conf"
        ),
        ev("site dir", "ansible.builtin.file", path="/etc/nginx/sites", state="directory"),
        ev("tune", "lineinfile", path="/etc/nginx/nginx.conf", line="x"),
        ev("other", "copy", dest="/etc/motd"),
    ]
    assert tasks_for("file", "/etc/nginx/nginx.conf", events) == ("write nginx.conf", "tune")
    assert tasks_for("file", "/etc/motd", events) == ("other",)


def test_file_matches_creates_and_a_trailing_slash() -> None:
    events = [
        ev("unpack", "unarchive", src="a.tgz", dest="/opt/app/"),
        ev("init db", "command", cmd="initdb", creates="/var/lib/app/db"),
    ]
    assert tasks_for("file", "/opt/app", events) == ("unpack",)
    assert tasks_for("file", "/var/lib/app/db", events) == ("init db",)


def test_a_tree_writer_claims_the_files_below_the_nearest_directory_it_wrote() -> None:
    events = [
        ev("srv", "file", path="/srv", recurse=True, owner="www-data"),
        ev("copy site", "copy", src="site/", dest="/srv/www/site"),
    ]
    assert tasks_for("file", "/srv/www/site/css/main.css", events) == ("copy site",)
    assert tasks_for("file", "/srv/other/x", events) == ("srv",)
    # A sibling that merely shares a prefix is not a descendant.
    assert tasks_for("file", "/srv/www/site2/index.html", events) == ("srv",)


@pytest.mark.parametrize(
    "event",
    [
        ev("unpack", "ansible.builtin.unarchive", src="app.tgz", dest="/opt/app"),
        ev("clone", "git", repo="https://example.invalid/app.git", dest="/opt/app"),
        ev("sync", "ansible.posix.synchronize", src="app/", dest="/opt/app"),
        ev("fetch", "get_url", url="https://example.invalid/a.tgz", dest="/opt/app/"),
        ev("copy dir", "copy", src="app", dest="/opt/app", tree=True),
        ev("own it", "file", path="/opt/app", recurse=True),
        ev("remove it", "file", path="/opt/app", state="absent"),
    ],
)
def test_modules_that_write_trees_claim_what_is_below(event: TaskEvent) -> None:
    assert tasks_for("file", "/opt/app/lib/x.py", [event]) == (event.task,)


@pytest.mark.parametrize(
    "event",
    [
        ev("data dir", "file", path="/var/lib/redis", state="directory", owner="redis"),
        ev("conf", "template", src="redis.conf.j2", dest="/var/lib/redis/"),
        ev("one file", "copy", src="redis.conf", dest="/var/lib/redis"),
        ev("content", "copy", content="x", dest="/var/lib/redis"),
    ],
)
def test_a_directory_or_a_file_task_does_not_claim_what_a_daemon_writes_below(
    event: TaskEvent,
) -> None:
    assert tasks_for("file", "/var/lib/redis/dump.rdb", [event]) == ()
    # Its own path, it does.
    assert tasks_for("file", "/var/lib/redis", [event]) == (event.task,)


def test_a_command_claims_the_paths_its_command_line_names() -> None:
    events = [
        ev("record", "ansible.builtin.command", command_paths=["/srv/website/deployed"]),
        ev("make dirs", "shell", command_paths=["/opt/app/data/cache"]),
    ]
    assert tasks_for("file", "/srv/website/deployed", events) == ("record",)
    # mkdir -p /opt/app/data/cache makes /opt/app and /opt/app/data too.
    assert tasks_for("file", "/opt/app/data", events) == ("make dirs",)
    # A path it only names the parent of is not its.
    assert tasks_for("file", "/srv/website/hello.txt", events) == ()
    assert tasks_for("file", "/srv/website/deployed.bak", events) == ()


@pytest.mark.parametrize(
    "path",
    [
        "/etc/systemd/system/multi-user.target.wants/greeter.service",
        "/etc/systemd/system/sockets.target.wants/greeter.socket",
        "/etc/rc2.d/S01greeter",
        "/etc/rc0.d/K01greeter",
    ],
)
def test_a_service_task_or_package_task_wrote_the_links_that_enable_it(path: str) -> None:
    assert tasks_for("file", path, [ev("start", "systemd_service", name="greeter.service")]) == (
        "start",
    )
    assert tasks_for("file", path, [ev("install", "apt", name=["curl", "greeter"])]) == ("install",)
    assert tasks_for("file", path, [ev("user", "user", name="greeter")]) == ()
    assert tasks_for("file", path, [ev("other", "service", name="greeter2")]) == ()


def test_an_exact_match_of_either_release_beats_a_tree_above_it() -> None:
    current = [ev("own the sites", "file", path="/etc/nginx", recurse=True)]
    baseline = [
        ev("web : vhost", "template", src="v.j2", dest="/etc/nginx/sites-available/a"),
        ev("web : vhost", "template", src="v.j2", dest="/etc/nginx/sites-available/b"),
    ]
    # A stale file is its baseline writer's, a looped template's item included.
    stale = tasks_for("file", "/etc/nginx/sites-available/b", current, baseline)
    assert stale == ("baseline: web : vhost",)
    # Where no task names the path, the tree this release wrote explains it.
    other = tasks_for("file", "/etc/nginx/conf.d/x", current, baseline)
    assert other == ("own the sites",)
    baseline_tree = [ev("web : own", "file", path="/etc/nginx", recurse=True)]
    assert tasks_for("file", "/etc/nginx/x", [], baseline_tree) == ("baseline: web : own",)


def test_touched_by_is_what_a_kind_asks() -> None:
    events = [
        ev("conf", "template", dest="/etc/app.conf"),
        ev("unpack", "unarchive", dest="/opt/app"),
        ev("data dir", "file", path="/var/lib/app", state="directory"),
        ev("install", "apt", name="app"),
    ]
    assert touched_by(Difference("file", "/etc/app.conf", None, {}), events) == events[:1]
    assert touched_by(Difference("file", "/opt/app/bin/app", None, {}), events) == events[1:2]
    assert touched_by(Difference("file", "/var/lib/app/data.db", None, {}), events) == []
    assert touched_by(Difference("service", "app", None, {}), events) == events[3:]


def test_exact_match_wins_over_an_ancestor() -> None:
    events = [
        ev("dir", "file", path="/etc/app", recurse=True),
        ev("conf", "template", dest="/etc/app/a.conf"),
    ]
    assert tasks_for("file", "/etc/app/a.conf", events) == ("conf",)


@pytest.mark.parametrize("action", ["stat", "ansible.builtin.stat", "slurp", "find", "assert"])
def test_read_only_modules_are_never_attributed(action: str) -> None:
    events = [ev("look", action, path="/etc/app.conf"), ev("look dir", action, path="/etc")]
    assert tasks_for("file", "/etc/app.conf", events) == ()


@pytest.mark.parametrize(
    "name",
    [["curl", "nginx"], "curl,nginx", "curl, nginx", "nginx=1.22*", ["nginx>=1.2"], "nginx"],
)
def test_package_names_from_lists_strings_and_versions(name: object) -> None:
    events = [ev("install", "ansible.builtin.apt", name=name, state="present")]
    assert tasks_for("package", "nginx", events) == ("install",)


def test_package_name_must_match_exactly() -> None:
    events = [ev("install", "apt", name=["nginx-common"]), ev("pkg", "package", pkg="nginx")]
    assert tasks_for("package", "nginx", events) == ("pkg",)


def test_package_is_only_attributed_to_package_modules() -> None:
    events = [ev("a user named nginx", "user", name="nginx"), ev("pip", "pip", name="nginx")]
    assert tasks_for("package", "nginx", events) == ("pip",)


def test_user_group_and_service() -> None:
    events = [
        ev("add deploy", "ansible.builtin.user", name="deploy", groups="adm,web"),
        ev("add web group", "group", name="web"),
        ev("start cron", "ansible.builtin.service", name="cron", state="started"),
        ev("install cron", "apt", name="cron"),
        ev("unit", "systemd", name="nginx", enabled=True),
    ]
    assert tasks_for("user", "deploy", events) == ("add deploy",)
    assert tasks_for("group", "web", events) == ("add deploy", "add web group")
    assert tasks_for("group", "adm", events) == ("add deploy",)
    assert tasks_for("group", "deploy", events) == ()
    assert tasks_for("service", "cron", events) == ("start cron", "install cron")
    assert tasks_for("service", "nginx", events) == ("unit",)
    assert tasks_for("user", "web", events) == ()


def test_port_is_attributed_through_its_owning_process() -> None:
    events = [
        ev("install nginx", "apt", name="nginx"),
        ev("start nginx", "service", name="nginx"),
        ev("nginx conf", "template", dest="/etc/nginx/nginx.conf"),
    ]
    owned = {"addresses": ["0.0.0.0"], "process": "nginx"}
    assert tasks_for("port", "tcp/80", events, upgrade=owned) == ("install nginx", "start nginx")
    unowned = {"addresses": ["0.0.0.0"], "process": None}
    assert tasks_for("port", "tcp/80", events, upgrade=unowned) == ()


def test_port_missing_on_upgrade_uses_the_fresh_record() -> None:
    d = Difference("port", "tcp/443", {"process": "nginx"}, None)
    (out,) = attribute([d], [ev("start nginx", "service", name="nginx")])
    assert out.tasks == ("start nginx",)


def test_falls_back_to_baseline_events() -> None:
    current = [ev("write conf", "template", dest="/etc/app.conf")]
    baseline = [
        ev("web : Install cron", "apt", name="cron"),
        ev("web : cleanup job", "copy", dest="/etc/cron.d/website-cleanup"),
    ]
    assert tasks_for("package", "cron", current, baseline) == ("baseline: web : Install cron",)
    cron_file = tasks_for("file", "/etc/cron.d/website-cleanup", current, baseline)
    assert cron_file == ("baseline: web : cleanup job",)
    # This release's tasks win when any of them touched it.
    assert tasks_for("file", "/etc/app.conf", current, baseline) == ("write conf",)


def test_tasks_are_unique_and_in_event_order() -> None:
    events = [
        TaskEvent("fresh", "b", "apt", "changed", {"name": "nginx"}),
        TaskEvent("upgrade", "b", "apt", "ok", {"name": "nginx"}),
        TaskEvent("fresh", "a", "service", "changed", {"name": "nginx"}),
    ]
    assert tasks_for("service", "nginx", events) == ("b", "a")


def test_attribute_keeps_everything_else() -> None:
    d = Difference("user", "deploy", None, {"shell": "/bin/sh"}, kind="stale", allowed="x")
    (out,) = attribute([d], [ev("add", "user", name="deploy")])
    assert (out.kind, out.allowed, out.fresh, out.upgrade) == ("stale", "x", None, d.upgrade)
    assert d.tasks == ()


CRON_FILES = frozenset(
    {
        "/etc",
        "/etc/init.d",
        "/etc/init.d/cron",
        "/etc/default/cron",
        "/lib/systemd/system/cron.service",
        "/usr/sbin/cron",
    }
)


def file_diff(path: str) -> Difference:
    return Difference("file", path, None, {"type": "file"})


def test_fold_a_packages_own_files_and_service_links() -> None:
    cron = Difference("package", "cron", None, {"version": "3.0"})
    own = [
        "/etc/default/cron",
        "/etc/init.d/cron",
        "/etc/rc2.d/S01cron",
        "/etc/rc6.d/K01cron",
        "/etc/systemd/system/multi-user.target.wants/cron.service",
        "/etc/systemd/system/cron.service.dsh-also",
    ]
    unrelated = [
        "/etc/cron.d/website-cleanup",
        "/etc/rc2.d/S01crond",
        "/etc/systemd/system/crond.service",
    ]
    differences = [*map(file_diff, sorted(own + unrelated)), cron]
    out = fold_package_files(differences, {"cron": CRON_FILES})
    assert [d.key for d in out] == [*sorted(unrelated), "cron"]
    assert out[-1].files == tuple(sorted(own))
    assert all(d.files == () for d in out[:-1])


def test_service_links_need_the_packages_init_script_or_unit() -> None:
    cron = Difference("package", "cron", None, {"version": "3.0"})
    links = ["/etc/rc2.d/S01cron", "/etc/systemd/system/multi-user.target.wants/cron.service"]
    owned = {"cron": frozenset({"/usr/sbin/cron"})}
    out = fold_package_files([*map(file_diff, links), cron], owned)
    assert [d.key for d in out] == [*links, "cron"]
    assert out[-1].files == ()


def test_unit_under_usr_lib_also_names_its_links() -> None:
    pkg = Difference("package", "nginx", None, {"version": "1.22"})
    link = "/etc/systemd/system/multi-user.target.wants/nginx.service"
    owned = {"nginx": frozenset({"/usr/lib/systemd/system/nginx.service"})}
    out = fold_package_files([file_diff(link), pkg], owned)
    assert out == [Difference("package", "nginx", None, {"version": "1.22"}, files=(link,))]


def test_files_of_a_package_that_does_not_differ_are_kept() -> None:
    differences = [file_diff("/etc/init.d/cron"), file_diff("/etc/rc2.d/S01cron")]
    assert fold_package_files(differences, {"cron": CRON_FILES}) == differences


def test_fold_leaves_other_categories_and_unfolded_packages_alone() -> None:
    differences = [
        Difference("package", "cron", None, {"version": "3.0"}),
        Difference("package", "telnet", None, {"version": "0.17"}),
        Difference("service", "cron", None, {"enabled": True}),
        Difference("user", "cron", None, {"shell": "/bin/sh"}),
    ]
    out = fold_package_files(differences, {"cron": CRON_FILES, "telnet": frozenset()})
    assert out == differences


def test_a_package_installed_from_a_deb_file_is_its_apt_tasks() -> None:
    upgraded = Difference("package", "tdi-demo", {"version": "1.0"}, {"version": "2.0"})
    event = ev("Install the demo package", "apt", deb="/var/tmp/tdi-demo_2.0_all.deb")
    assert attribute([upgraded], [event])[0].tasks == ("Install the demo package",)


@pytest.mark.parametrize(
    "action", ["ansible.builtin.dnf", "dnf5", "zypper", "community.general.apk"]
)
def test_an_rpm_or_apk_package_is_its_package_manager_s_tasks(action: str) -> None:
    stale = Difference("package", "nginx", None, {"version": "1.20-1.el9", "manager": "rpm"})
    event = ev("Install nginx", action, name=["nginx", "curl"])
    assert attribute([stale], [event])[0].tasks == ("Install nginx",)
