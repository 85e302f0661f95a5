from __future__ import annotations

import time
from pathlib import Path

import pytest

from tdi import yamlfile
from tdi.errors import ConfigError

BOMB = """\
a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def test_an_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "tdi.yml"
    path.write_text(BOMB)
    start = time.monotonic()
    with pytest.raises(ConfigError, match=r"tdi.yml: its aliases expand to more than"):
        yamlfile.read(path)
    assert time.monotonic() - start < 0.5


def test_an_alias_that_contains_itself_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tdi.yml"
    path.write_text("a: &a\n  b: *a\n")
    with pytest.raises(ConfigError, match=r"tdi.yml: line \d+: an alias refers to itself"):
        yamlfile.read(path)


def test_bytes_that_are_not_utf8_are_named_by_offset(tmp_path: Path) -> None:
    path = tmp_path / "tdi.yml"
    path.write_bytes(b"playbook: caf\xe9.yml\n")
    with pytest.raises(ConfigError, match=r"tdi.yml: not UTF-8: byte 0xe9 at offset 13"):
        yamlfile.read(path)


def test_a_few_shared_anchors_read_as_usual(tmp_path: Path) -> None:
    path = tmp_path / "tdi.yml"
    path.write_text("base: &s {init: systemd}\nhosts:\n  a: *s\n  b: *s\nwhen: 2026-01-01\n")
    data = yamlfile.read(path, yamlfile.TextDates)
    assert data["hosts"] == {"a": {"init": "systemd"}, "b": {"init": "systemd"}}
    assert data["when"] == "2026-01-01"


def test_an_empty_file_is_none(tmp_path: Path) -> None:
    path = tmp_path / "tdi.yml"
    path.write_text("# nothing\n")
    assert yamlfile.read(path) is None


def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "tdi.yml"
    path.write_text("a: [1, 2\nb: 3\n")
    with pytest.raises(ConfigError, match=r"tdi.yml: line \d+: not valid YAML"):
        yamlfile.read(path)
