"""A run's plan, its saved record, and the removal of its containers, with a fake engine."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest
import yaml

from tdi import config
from tdi.engine import RUN_LABEL, STATE_LABEL, Engine
from tdi.errors import TdiError
from tdi.run import CURRENT, WORK_DIR, Run, create, destroy, labels, plan


class FakeEngine:
    def __init__(self) -> None:
        self.running: dict[str, tuple[str, dict[str, str]]] = {}

    def run(self, image: str, name: str, labels: dict[str, str]) -> str:
        self.running[name] = (image, dict(labels))
        return name

    def containers(self, run_id: str | None = None) -> list[str]:
        return [n for n, (_, lab) in self.running.items() if lab.get(RUN_LABEL) == run_id]

    def remove(self, names: list[str]) -> None:
        for name in names:
            del self.running[name]


def test_plan_names_containers_and_writes_inventory(tmp_path: Path) -> None:
    cfg = config.load(tmp_path, {})
    run = plan(cfg, {"fresh": "base:1", "upgrade": "snap:1"}, "abcd1234")
    assert run.id == "abcd1234"
    assert run.containers == {"fresh": "tdi-abcd1234-fresh", "upgrade": "tdi-abcd1234-upgrade"}
    assert run.workdir == cfg.root / WORK_DIR / "runs" / "abcd1234"
    inventory = yaml.safe_load(run.inventory.read_text(encoding="utf-8"))
    assert inventory["all"]["hosts"]["upgrade"]["ansible_host"] == "tdi-abcd1234-upgrade"
    # The work directory keeps itself out of git status.
    assert (cfg.root / WORK_DIR / ".gitignore").read_text(encoding="utf-8") == "*\n"
    assert run.log("fresh", "converge") == run.workdir / "fresh.converge.log"


def test_plan_without_id_makes_a_new_one(tmp_path: Path) -> None:
    cfg = config.load(tmp_path)
    first = plan(cfg, {"fresh": "a"})
    second = plan(cfg, {"fresh": "a"})
    assert first.id != second.id
    assert len(first.id) == 8


def test_save_load_forget(tmp_path: Path) -> None:
    cfg = config.load(tmp_path)
    run = plan(cfg, {"fresh": "base:1", "upgrade": "snap:1"}, "feedbeef")
    run.save(cfg.root)
    assert Run.load(cfg.root) == run
    Run.forget(cfg.root)
    assert not (cfg.root / WORK_DIR / CURRENT).exists()
    Run.forget(cfg.root)  # forgetting twice is fine


def test_load_without_a_current_run(tmp_path: Path) -> None:
    with pytest.raises(TdiError, match="run `tdi create` first"):
        Run.load(tmp_path)


def test_create_and_destroy_by_run_label(tmp_path: Path) -> None:
    cfg = config.load(tmp_path)
    engine = FakeEngine()
    engine.running["tdi-other-fresh"] = ("x", labels("other", "fresh"))
    run = plan(cfg, {"fresh": "base:1", "upgrade": "snap:1"}, "r1")
    create(cast(Engine, engine), run)
    assert engine.running["tdi-r1-upgrade"] == ("snap:1", {RUN_LABEL: "r1", STATE_LABEL: "upgrade"})
    assert destroy(cast(Engine, engine), "r1") == 2
    assert list(engine.running) == ["tdi-other-fresh"]  # another run's container stays
