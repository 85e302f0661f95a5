"""Parity: capture both states and compare them."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from tdi.config import ParityConfig
from tdi.engine import Engine
from tdi.state.capture import State, capture
from tdi.state.diff import Difference, diff
from tdi.state.noise import DEFAULT_IGNORE, DEFAULT_ROOTS

log = logging.getLogger(__name__)


def roots_and_ignores(cfg: ParityConfig) -> tuple[list[str], list[str]]:
    """Configured roots (or the defaults) and the built-in noise list plus configured ignores."""
    roots = list(cfg.roots) if cfg.roots is not None else list(DEFAULT_ROOTS)
    return roots, [*DEFAULT_IGNORE, *cfg.ignore]


def capture_container(engine: Engine, container: str, cfg: ParityConfig) -> State:
    roots, ignore = roots_and_ignores(cfg)

    def run(argv: list[str]) -> tuple[int, bytes]:
        code, out, _ = engine.exec(container, argv)
        return code, out

    return capture(run, roots, ignore)


def compare(engine: Engine, containers: Mapping[str, str], cfg: ParityConfig) -> list[Difference]:
    """Differences between the fresh and the upgrade container, fresh side first."""
    fresh = capture_container(engine, containers["fresh"], cfg)
    upgrade = capture_container(engine, containers["upgrade"], cfg)
    return diff(fresh, upgrade)
