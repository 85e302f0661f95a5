"""The package cache: used when it answers, and a cache that is down is said once."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pytest
from fakes import NullEngine

from tdi import config
from tdi.errors import EngineError
from tdi.hosts import packages


class DownEngine(NullEngine):
    """A daemon on which the cache container cannot be inspected."""

    def is_running(self, name: str) -> bool:
        raise EngineError(f"inspect container {name}: connection reset")


class UpEngine(NullEngine):
    def __init__(self) -> None:
        self.execs: list[list[str]] = []

    def is_running(self, name: str) -> bool:
        return name == packages.NAME

    def exec(self, container: str, argv: Sequence[str]) -> tuple[int, bytes, bytes]:
        self.execs.append([container, *argv])
        return 0, b"", b""


def test_a_cache_that_is_down_falls_back_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = config.load(tmp_path)
    engine = DownEngine()
    with caplog.at_level(logging.WARNING):
        assert packages.ensure(engine, cfg) is False
        assert packages.ensure(engine, cfg) is False
    said = [r.getMessage() for r in caplog.records if "package cache unavailable" in r.message]
    assert len(said) == 1
    assert "connection reset" in said[0] and "use the mirror" in said[0]


def test_a_running_cache_is_used_and_hosts_get_a_proxy_file_under_run(tmp_path: Path) -> None:
    engine = UpEngine()
    assert packages.ensure(engine, config.load(tmp_path)) is True
    packages.configure(engine, "tdi-r1-fresh")
    container, *argv = engine.execs[-1]
    assert container == "tdi-r1-fresh"
    assert packages.APT_CONFIG in argv[2] and packages.APT_CONFIG.startswith("/run/")
    assert argv[3] == f'Acquire::http::Proxy "http://{packages.NAME}:{packages.PORT}/";\n'


def test_turned_off_in_tdi_yml(tmp_path: Path) -> None:
    (tmp_path / "tdi.yml").write_text("package_cache: false\n", encoding="utf-8")
    assert packages.ensure(DownEngine(), config.load(tmp_path)) is False
