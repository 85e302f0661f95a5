"""The topology of tdi.yml: implicit single host or named hosts, and their settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from tdi import config
from tdi.errors import ConfigError
from tdi.topology import DEFAULT_CAPABILITIES, SINGLE_HOST, Host, Settings, from_config


def test_without_hosts_one_implicit_host_named_after_the_side() -> None:
    topo = from_config({}, ("web", "db"), "tdi.yml")
    assert not topo.named
    assert topo.names == (SINGLE_HOST,) == ("tdi-host",)
    assert topo.hosts == (Host(SINGLE_HOST, ("web", "db"), None, Settings()),)
    assert topo.key("fresh", SINGLE_HOST) == "fresh"
    assert topo.key("upgrade-1", SINGLE_HOST) == "upgrade-1"
    assert topo.container("r1", "fresh", SINGLE_HOST) == "tdi-r1-fresh"
    # The same hostname on every side: nothing may differ by it.
    assert topo.hostname(SINGLE_HOST) == "tdi-host"
    assert topo.images("reg.example/app", "abc") == {SINGLE_HOST: "reg.example/app:abc"}


def test_named_hosts_are_keyed_side_slash_host() -> None:
    data = {"hosts": {"db": {"groups": ["db"], "base_image": "pg-base"}, "web1": None}}
    topo = from_config(data, ("all",), "tdi.yml")
    assert topo.named
    assert topo.names == ("db", "web1")
    assert topo.key("fresh", "db") == "fresh/db"
    assert topo.key("upgrade", "web1") == "upgrade/web1"
    assert topo.container("r1", "fresh", "db") == "tdi-r1-fresh-db"
    assert topo.hostname("db") == "db"
    assert topo.images("reg.example/app", "production") == {
        "db": "reg.example/app/db:production",
        "web1": "reg.example/app/web1:production",
    }
    assert topo.host("db").groups == ("db",)
    assert topo.host("db").base_image == "pg-base"
    # A host given as `web1:` (null) has no groups of its own and the run's base image;
    # the top-level `groups` are for the implicit host only.
    assert topo.host("web1") == Host("web1", (), None, Settings())


@pytest.mark.parametrize("name", ["db_1", "-web", "web-", "a..b", "x" * 64, "web 1"])
def test_invalid_hostname_names_the_file_and_key(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        from_config({"hosts": {name: {}}}, ("all",), "/repo/tdi.yml")
    message = str(info.value)
    assert message.startswith(f"/repo/tdi.yml: key 'hosts.{name}': not a valid hostname")
    assert info.value.exit_code == 2


@pytest.mark.parametrize("name", ["db", "web-1", "db.example.com", "A1", "x" * 63])
def test_valid_hostnames(name: str) -> None:
    assert from_config({"hosts": {name: {}}}, ("all",), "tdi.yml").names == (name,)


def test_settings_defaults_keep_sys_ptrace() -> None:
    settings = from_config({}, ("all",), None).hosts[0].settings
    assert settings.init == "auto"
    assert settings.capabilities == DEFAULT_CAPABILITIES == ("SYS_PTRACE", "NET_ADMIN")
    assert settings.privileged is False


def test_top_level_settings_apply_to_the_implicit_host() -> None:
    data = {
        "init": "systemd",
        "capabilities": ["NET_ADMIN"],
        "tmpfs": ["/tmp"],
        "volumes": ["/srv:/srv:ro"],
        "env": {"TZ": "UTC", "DEBUG": 1},
        "privileged": True,
    }
    settings = from_config(data, ("all",), None).hosts[0].settings
    assert settings == Settings(
        init="systemd",
        capabilities=("SYS_PTRACE", "NET_ADMIN"),
        tmpfs=("/tmp",),
        volumes=("/srv:/srv:ro",),
        env={"TZ": "UTC", "DEBUG": "1"},  # environment values are text
        privileged=True,
    )


def test_host_settings_merge_over_the_top_level_ones() -> None:
    data = {
        "init": "systemd",
        "capabilities": ["NET_ADMIN"],
        "tmpfs": ["/tmp"],
        "env": {"TZ": "UTC", "LANG": "C"},
        "hosts": {
            "db": {
                "init": "tini",
                "capabilities": ["IPC_LOCK", "SYS_PTRACE"],
                "tmpfs": ["/var/cache"],
                "env": {"LANG": "C.UTF-8", "PGDATA": "/srv/pg"},
            },
            "web": {},
        },
    }
    topo = from_config(data, ("all",), None)
    db, web = topo.host("db").settings, topo.host("web").settings
    # capabilities and env add to the top-level ones; SYS_PTRACE is there once.
    assert db.capabilities == ("SYS_PTRACE", "NET_ADMIN", "IPC_LOCK")
    assert db.env == {"TZ": "UTC", "LANG": "C.UTF-8", "PGDATA": "/srv/pg"}
    # The other keys replace.
    assert db.init == "tini"
    assert db.tmpfs == ("/var/cache",)
    # A host that says nothing gets the top level's.
    assert web == Settings(
        init="systemd",
        capabilities=("SYS_PTRACE", "NET_ADMIN"),
        tmpfs=("/tmp",),
        env={"TZ": "UTC", "LANG": "C"},
    )


def test_config_loads_the_topology_and_names_the_file(tmp_path: Path) -> None:
    source = tmp_path / "tdi.yml"
    source.write_text("groups: [web]\nhosts:\n  lb: {groups: [loadbalancer]}\n  web1: {}\n")
    cfg = config.load(tmp_path)
    assert cfg.topology.names == ("lb", "web1")
    assert cfg.topology.host("lb").groups == ("loadbalancer",)
    source.write_text("hosts:\n  web.1-: {}\n")
    with pytest.raises(ConfigError, match=r"tdi\.yml: key 'hosts\.web\.1-': not a valid hostname"):
        config.load(tmp_path)


def test_config_without_tdi_yml_has_the_implicit_host_in_groups(tmp_path: Path) -> None:
    cfg = config.load(tmp_path)
    assert not cfg.topology.named
    assert cfg.topology.hosts[0].groups == ("all",)
    cfg = config.load(tmp_path, {"groups": ["web"]})
    assert cfg.topology.hosts[0].groups == ("web",)
