"""`tdi test`'s choice of every side's images, with production and baseline faked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fakes import NullEngine

from tdi import config, git
from tdi.engine.protocol import Engine, ImageInfo
from tdi.errors import TdiError
from tdi.hosts import boot, images
from tdi.phases import preflight, setup
from tdi.pipelines import baseline, production, test
from tdi.provision.ansible import AnsibleEnv
from tdi.provision.inventory import RepoInventory

ENGINE = NullEngine()  # these tests stub every step that would ask the daemon
ENV = AnsibleEnv(Path("/repo"))
FRESH = {"tdi-host": ("tdi-base:1", ImageInfo("sha256:base", (), {}, None, None))}


def fake_production(
    monkeypatch: pytest.MonkeyPatch, links: list[dict[str, str]] | None
) -> list[str]:
    calls: list[str] = []

    def current(engine: Engine, cfg: config.Config) -> Any:
        calls.append("current")
        return None if links is None else {"tdi-host": (links[0]["tdi-host"], None)}

    def chain(engine: Engine, cfg: config.Config, found: Any) -> list[dict[str, str]]:
        calls.append("chain")
        assert links is not None
        return links[: cfg.chain]

    monkeypatch.setattr(production, "current", current)
    monkeypatch.setattr(production, "chain", chain)
    return calls


def fake_baseline(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    refs: list[str] = []

    def snapshot(engine: Engine, cfg: config.Config, fresh: Any, ref: str, run_id: str) -> Any:
        refs.append(ref)
        return {"tdi-host": f"tdi-snapshot:{ref}"}

    monkeypatch.setattr(baseline, "snapshot", snapshot)
    monkeypatch.setattr(git, "resolve_commit", lambda root, ref: "c0ffee" * 7)
    monkeypatch.setattr(git, "merge_base", lambda root, branch: f"merge-base-of-{branch}")
    monkeypatch.setattr(git, "check_repo", lambda root: None)
    return refs


def test_production_set_and_its_chain_are_the_upgrade_sides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    links = [{"tdi-host": "app:production"}, {"tdi-host": "app:r2"}, {"tdi-host": "app:r1"}]
    fake_production(monkeypatch, links)
    refs = fake_baseline(monkeypatch)
    cfg = config.load(tmp_path, {"production_image": "app:production", "chain": 3})
    sides, source = test.upgrade_sides(ENGINE, cfg, FRESH, "r1")
    assert sides == {
        "upgrade": {"tdi-host": "app:production"},
        "upgrade-1": {"tdi-host": "app:r2"},
        "upgrade-2": {"tdi-host": "app:r1"},
    }
    assert source == "production image app:production"
    assert refs == []  # no baseline snapshot is made


def test_without_a_production_image_the_baseline_of_the_merge_base(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = fake_production(monkeypatch, None)
    refs = fake_baseline(monkeypatch)
    cfg = config.load(tmp_path, {"main_branch": "trunk"})
    sides, source = test.upgrade_sides(ENGINE, cfg, FRESH, "r1")
    assert calls == []  # production is not asked when none is configured
    assert refs == ["merge-base-of-trunk"]
    assert sides == {"upgrade": {"tdi-host": "tdi-snapshot:merge-base-of-trunk"}}
    assert source == "snapshot of baseline merge-base-of-trunk (c0ffeec0ffee)"


def test_a_production_image_that_is_absent_falls_back_to_the_baseline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = fake_production(monkeypatch, None)
    refs = fake_baseline(monkeypatch)
    cfg = config.load(tmp_path, {"production_image": "app:production", "baseline": "v1"})
    sides, _ = test.upgrade_sides(ENGINE, cfg, FRESH, "r1")
    assert calls == ["current"]
    assert refs == ["v1"]
    assert list(sides) == ["upgrade"]


def test_an_absent_production_set_names_each_hosts_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fake_production(monkeypatch, None)
    fake_baseline(monkeypatch)
    (tmp_path / "tdi.yml").write_text("hosts:\n  lb: {}\n  web1: {}\n", encoding="utf-8")
    cfg = config.load(tmp_path, {"production_image": "registry.example/app"})
    fresh = dict.fromkeys(("lb", "web1"), FRESH["tdi-host"])
    test.upgrade_sides(ENGINE, cfg, fresh, "r1")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        "production image registry.example/app: none of registry.example/app/lb:production, "
        "registry.example/app/web1:production is here or in its registry; upgrading from a "
        "baseline snapshot instead"
    ]


def test_a_chain_needs_a_production_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_production(monkeypatch, None)
    refs = fake_baseline(monkeypatch)
    cfg = config.load(tmp_path, {"chain": 2})
    with pytest.raises(TdiError, match=r"--chain 2 needs a production image"):
        test.upgrade_sides(ENGINE, cfg, FRESH, "r1")
    assert refs == []


def test_prepare_plans_every_side_and_one_comparison_per_other_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tdi.yml").write_text("hosts:\n  lb: {}\n  web1: {}\n", encoding="utf-8")
    cfg = config.load(tmp_path, {"production_image": "app"})
    base = ImageInfo("sha256:base", (), {}, None, None)
    sides = {
        "upgrade": {"lb": "app/lb:production", "web1": "app/web1:production"},
        "upgrade-1": {"lb": "app/lb:r1", "web1": "app/web1:r1"},
    }
    checked: list[str] = []
    monkeypatch.setattr(setup, "prepare", lambda cfg: (ENV, RepoInventory()))
    monkeypatch.setattr(preflight, "check", lambda cfg, env, repo, syntax: checked.append("yes"))
    fresh = dict.fromkeys(("lb", "web1"), ("tdi-base:1", base))
    monkeypatch.setattr(images, "resolve_hosts", lambda engine, cfg: fresh)
    monkeypatch.setattr(
        test, "upgrade_sides", lambda engine, cfg, fresh, run_id: (sides, "production image x")
    )
    inits: list[str] = []
    monkeypatch.setattr(boot, "init_of", lambda engine, settings, image, key: inits.append(key))
    started = test.prepare(ENGINE, cfg)
    run, report = started.run, started.report
    assert inits == ["fresh/lb", "fresh/web1"]  # checked before any container starts
    assert checked == ["yes"]
    assert list(run.nodes) == [
        "fresh/lb",
        "fresh/web1",
        "upgrade/lb",
        "upgrade/web1",
        "upgrade-1/lb",
        "upgrade-1/web1",
    ]
    assert report.upgrade_source == "production image x"
    assert set(report.states) == set(run.nodes)
    assert report.states["upgrade-1/web1"].image == "app/web1:r1"
    assert [(c.side, c.host, c.key, c.image) for c in report.comparisons] == [
        ("upgrade", "lb", "upgrade/lb", "app/lb:production"),
        ("upgrade", "web1", "upgrade/web1", "app/web1:production"),
        ("upgrade-1", "lb", "upgrade-1/lb", "app/lb:r1"),
        ("upgrade-1", "web1", "upgrade-1/web1", "app/web1:r1"),
    ]


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({}, "is not a git repository"),
        ({"baseline": "v9"}, "is not a git repository"),
        ({"chain": 2}, "--chain 2 needs a production image"),
    ],
)
def test_what_a_baseline_needs_is_checked_before_any_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: dict[str, Any], expected: str
) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    monkeypatch.setattr(setup, "prepare", lambda cfg: (ENV, RepoInventory()))
    monkeypatch.setattr(preflight, "check", lambda cfg, env, repo, syntax: None)
    resolved: list[str] = []
    monkeypatch.setattr(images, "resolve_hosts", lambda engine, cfg: resolved.append("x"))
    with pytest.raises(TdiError, match=expected):
        test.prepare(ENGINE, config.load(tmp_path, flags))
    assert resolved == []
