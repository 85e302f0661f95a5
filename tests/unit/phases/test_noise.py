"""The calibrated noise file that `tdi calibrate` writes and `tdi test` reads."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tdi.errors import ConfigError
from tdi.phases import noise
from tdi.state.diff import Difference
from tdi.state.rules import Rule


def test_entries_from_differences_explain_each_one() -> None:
    differences = [
        Difference("file", "/var/lib/systemd/random-seed", {"sha256": "a"}, {"sha256": "b"}),
        Difference("port", "udp/68", None, {"process": "dhclient"}),
        Difference("user", "x", {"shell": "/bin/sh", "home": "/x"}, {"shell": "/bin/bash"}),
    ]
    assert noise.entries_from([("tdi-host", d) for d in differences], ["tdi-host"]) == [
        Rule("file", "/var/lib/systemd/random-seed", "differs between two fresh hosts: sha256"),
        Rule("port", "udp/68", "present on only one of two fresh hosts"),
        Rule("user", "x", "differs between two fresh hosts: home, shell"),
    ]


def test_each_difference_is_written_once_with_its_host_when_hosts_differ() -> None:
    seed = Difference("file", "/var/lib/systemd/random-seed", {"sha256": "a"}, {"sha256": "b"})
    lb_only = Difference("file", "/var/lib/haproxy/state", {"sha256": "a"}, {"sha256": "b"})
    found = [("lb", seed), ("lb", lb_only), ("web1", seed)]
    assert noise.entries_from(found, ["lb", "web1"]) == [
        Rule("file", seed.key, "differs between two fresh hosts: sha256"),
        Rule("file", lb_only.key, "differs between two fresh hosts: sha256", host="lb"),
    ]
    # The same key, another reason on each host: one entry each, with its host.
    web = Difference("file", lb_only.key, None, {"type": "file"})
    assert noise.entries_from([("lb", lb_only), ("web1", web)], ["lb", "web1"]) == [
        Rule("file", lb_only.key, "differs between two fresh hosts: sha256", host="lb"),
        Rule("file", lb_only.key, "present on only one of two fresh hosts", host="web1"),
    ]


def test_an_entry_with_a_host_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "tdi-noise.yml"
    entries = [Rule("file", "/var/lib/haproxy/state", "r", host="lb"), Rule("port", "udp/68", "r")]
    noise.save(path, entries)
    assert yaml.safe_load(path.read_text(encoding="utf-8"))["noise"][0] == {
        "category": "file",
        "key": "/var/lib/haproxy/state",
        "host": "lb",
        "reason": "r",
    }
    assert noise.load(path) == entries


def test_save_then_load_round_trip(tmp_path: Path) -> None:
    entries = [
        Rule("file", "/var/lib/apt-daily/*", "timer stamps: a: b"),
        Rule("service", "apt-daily.timer", "starts at a random time"),
    ]
    path = tmp_path / "tdi-noise.yml"
    noise.save(path, entries)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# ")  # the header says what the file is, for reviewers
    assert yaml.safe_load(text)["noise"][0] == {
        "category": "file",
        "key": "/var/lib/apt-daily/*",
        "reason": "timer stamps: a: b",
    }
    assert noise.load(path) == entries


def test_save_nothing_loads_nothing(tmp_path: Path) -> None:
    path = tmp_path / "tdi-noise.yml"
    noise.save(path, [])
    assert noise.load(path) == []


def test_missing_file_or_none_is_no_noise(tmp_path: Path) -> None:
    assert noise.load(tmp_path / "absent.yml") == []
    assert noise.load(None) == []


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("noise: {}\n", "'noise'"),
        ("other: []\n", "'noise'"),
        ("- a\n", "'noise'"),
        ("noise:\n  - category: file\n    key: /a\n", "'noise[0]'"),
        (
            "noise:\n  - {category: file, key: /a, reason: r}\n  - {category: file, key: '', "
            "reason: r}\n",
            "'noise[1]'",
        ),
        ("noise:\n  - just a string\n", "'noise[0]'"),
        ("noise:\n  - {category: files, key: /a, reason: r}\n", "'noise[0].category'"),
        ("noise:\n  - {category: file, key: /a, reason: r, host: [a]}\n", "'noise[0].host'"),
    ],
)
def test_load_errors_name_the_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "tdi-noise.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        noise.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: key {key}: ")
    assert "\n" not in message


def test_bad_category_error_lists_the_categories(tmp_path: Path) -> None:
    path = tmp_path / "tdi-noise.yml"
    path.write_text("noise:\n  - {category: files, key: /a, reason: r}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="file, package, user, group, service, port"):
        noise.load(path)


def test_invalid_yaml_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "tdi-noise.yml"
    path.write_text("noise: [\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        noise.load(path)
    assert str(info.value).startswith(f"{path}: line 2: not valid YAML")
    assert "\n" not in str(info.value)
