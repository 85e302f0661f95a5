"""A run's plan, its saved record, and its containers' lifecycle, with a fake engine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import cast

import pytest
import yaml

from tdi import config, packages, run
from tdi.engine import HOST_LABEL, RUN_LABEL, SIDE_LABEL, STATE_LABEL, ContainerSpec, Engine
from tdi.errors import TdiError
from tdi.inventory import RepoInventory
from tdi.run import CURRENT, WORK_DIR, Node, Run, create, destroy, labels, lifecycle, plan

TOPOLOGY = "groups: [web]\nhosts:\n  lb: {groups: [loadbalancer], init: tini}\n  web1: {}\n"


class FakeEngine:
    """Containers and networks by name; images with systemd; boot answers at once."""

    def __init__(
        self, with_systemd: Sequence[str] = (), cgroups: str = "2", cache: bool = True
    ) -> None:
        self.specs: dict[str, ContainerSpec] = {}
        self.nets: dict[str, dict[str, str]] = {}
        self.with_systemd = set(with_systemd)
        self.cgroups = cgroups
        self.looked: list[str] = []
        self.cache = cache  # the package cache answers
        self.attached: list[tuple[str, str, str]] = []

    def is_running(self, name: str) -> bool:
        return name == packages.NAME and self.cache

    def attach(self, network: str, container: str, alias: str) -> None:
        self.attached.append((network, container, alias))

    def has_path(self, image: str, path: str) -> bool:
        self.looked.append(image)
        return image in self.with_systemd

    def cgroup_version(self) -> str:
        return self.cgroups

    def create_network(self, name: str, labels: Mapping[str, str]) -> None:
        self.nets[name] = dict(labels)

    def run(self, spec: ContainerSpec) -> str:
        self.specs[spec.name] = spec
        return spec.name

    def exec(self, container: str, argv: Sequence[str]) -> tuple[int, bytes, bytes]:
        if container == packages.NAME:  # the cache's own port probe
            return (0 if self.cache else 1), b"", b""
        assert container in self.specs, f"exec in {container}, which was not started"
        return 0, b"running", b""

    def containers(self, run_id: str | None = None) -> list[str]:
        return [n for n, s in self.specs.items() if s.labels.get(RUN_LABEL) == run_id]

    def remove(self, names: list[str]) -> None:
        for name in names:
            del self.specs[name]

    def networks(self, run_id: str) -> list[str]:
        return [n for n, lab in self.nets.items() if lab.get(RUN_LABEL) == run_id]

    def remove_networks(self, names: list[str]) -> None:
        for name in names:
            del self.nets[name]


def engine_of(fake: FakeEngine) -> Engine:
    return cast(Engine, fake)


def topology_cfg(root: Path) -> config.Config:
    (root / "tdi.yml").write_text(TOPOLOGY, encoding="utf-8")
    return config.load(root)


def test_plan_names_containers_and_writes_one_inventory_per_side(tmp_path: Path) -> None:
    cfg = config.load(tmp_path, {})
    r = plan(
        cfg,
        {"fresh": {"tdi-host": "base:1"}, "upgrade": {"tdi-host": "snap:1"}},
        RepoInventory(),
        "abcd1234",
    )
    assert r.id == "abcd1234"
    assert r.containers == {"fresh": "tdi-abcd1234-fresh", "upgrade": "tdi-abcd1234-upgrade"}
    assert r.images == {"fresh": "base:1", "upgrade": "snap:1"}
    assert r.nodes["upgrade"] == Node(
        "upgrade", "upgrade", "tdi-host", "snap:1", "tdi-abcd1234-upgrade"
    )
    assert r.sides == ["fresh", "upgrade"]
    assert r.workdir == cfg.root / WORK_DIR / "runs" / "abcd1234"
    inventory = yaml.safe_load(r.inventory("upgrade").read_text(encoding="utf-8"))
    assert inventory["all"]["hosts"]["tdi-host"]["ansible_host"] == "tdi-abcd1234-upgrade"
    fresh = yaml.safe_load(r.inventory("fresh").read_text(encoding="utf-8"))
    assert fresh["all"]["hosts"]["tdi-host"]["ansible_host"] == "tdi-abcd1234-fresh"
    # The work directory keeps itself out of git status.
    assert (cfg.root / WORK_DIR / ".gitignore").read_text(encoding="utf-8") == "*\n"
    assert r.log("fresh", "converge") == r.workdir / "fresh.converge.log"


def test_plan_of_a_topology(tmp_path: Path) -> None:
    cfg = topology_cfg(tmp_path)
    images = {s: {"lb": f"{s}-lb", "web1": f"{s}-web"} for s in ("fresh", "upgrade", "upgrade-1")}
    r = plan(cfg, images, RepoInventory(), "r1")
    assert list(r.nodes) == [
        "fresh/lb",
        "fresh/web1",
        "upgrade/lb",
        "upgrade/web1",
        "upgrade-1/lb",
        "upgrade-1/web1",
    ]
    assert r.sides == ["fresh", "upgrade", "upgrade-1"]
    assert [n.key for n in r.on("upgrade-1")] == ["upgrade-1/lb", "upgrade-1/web1"]
    assert r.containers["upgrade/web1"] == "tdi-r1-upgrade-web1"
    # Each side's inventory holds that side's hosts only, each reaching its own container.
    inventory = yaml.safe_load(r.inventory("upgrade-1").read_text(encoding="utf-8"))
    hosts = inventory["all"]["hosts"]
    assert {h: v["ansible_host"] for h, v in hosts.items()} == {
        "lb": "tdi-r1-upgrade-1-lb",
        "web1": "tdi-r1-upgrade-1-web1",
    }
    assert inventory["all"]["children"]["loadbalancer"]["hosts"] == {"lb": None}


def test_plan_without_id_makes_a_new_one(tmp_path: Path) -> None:
    cfg = config.load(tmp_path)
    first = plan(cfg, {"fresh": {"tdi-host": "a"}}, RepoInventory())
    second = plan(cfg, {"fresh": {"tdi-host": "a"}}, RepoInventory())
    assert first.id != second.id
    assert len(first.id) == 8


def test_save_load_forget(tmp_path: Path) -> None:
    cfg = topology_cfg(tmp_path)
    r = plan(
        cfg,
        {"fresh": {"lb": "a", "web1": "b"}, "upgrade": {"lb": "c", "web1": "d"}},
        RepoInventory(),
        "feedbeef",
    )
    r.save(cfg.root)
    loaded = Run.load(cfg.root)
    assert loaded == r
    assert list(loaded.nodes) == list(r.nodes)
    Run.forget(cfg.root)
    assert not (cfg.root / WORK_DIR / CURRENT).exists()
    Run.forget(cfg.root)  # forgetting twice is fine


def test_load_without_a_current_run(tmp_path: Path) -> None:
    with pytest.raises(TdiError, match="run `tdi create` first"):
        Run.load(tmp_path)


def test_labels_name_run_node_side_and_host() -> None:
    node = Node("upgrade/db", "upgrade", "db", "img", "c")
    assert labels("r1", node) == {
        RUN_LABEL: "r1",
        STATE_LABEL: "upgrade/db",
        SIDE_LABEL: "upgrade",
        HOST_LABEL: "db",
    }


def test_create_starts_every_node_on_its_sides_network(tmp_path: Path) -> None:
    cfg = topology_cfg(tmp_path)
    images = {
        "fresh": {"lb": "base", "web1": "base"},
        "upgrade": {"lb": "snap-lb", "web1": "snap-web"},
    }
    r = plan(cfg, images, RepoInventory(), "r1")
    engine = FakeEngine(with_systemd=["base", "snap-web"], cgroups="1")
    create(engine_of(engine), cfg, r)
    assert engine.nets == {
        "tdi-r1-fresh": {RUN_LABEL: "r1", SIDE_LABEL: "fresh"},
        "tdi-r1-upgrade": {RUN_LABEL: "r1", SIDE_LABEL: "upgrade"},
    }
    web = engine.specs["tdi-r1-upgrade-web1"]
    assert (web.image, web.hostname, web.network) == ("snap-web", "web1", "tdi-r1-upgrade")
    assert web.labels == labels("r1", r.nodes["upgrade/web1"])
    # auto: systemd where the image has it, on the daemon's cgroup version.
    assert web.command[0] == "/lib/systemd/systemd"
    assert "/sys/fs/cgroup:/sys/fs/cgroup:ro" in web.volumes
    # lb says init: tini, so its images are not even inspected.
    lb = engine.specs["tdi-r1-fresh-lb"]
    assert lb.init is True and lb.command == ("sleep", "infinity")
    # One look per image and init, however many nodes share it.
    assert sorted(engine.looked) == ["base", "snap-web"]
    # The package cache joins every side's network; hosts find it through APT_CONFIG on a
    # tmpfs, never a file in /etc.
    assert sorted(n for n, _, _ in engine.attached) == ["tdi-r1-fresh", "tdi-r1-upgrade"]
    assert web.env["APT_CONFIG"] == packages.APT_CONFIG
    assert packages.DIR in web.tmpfs


def test_create_without_the_package_cache(tmp_path: Path) -> None:
    cfg = replace(topology_cfg(tmp_path), package_cache=False)  # package_cache: false
    r = plan(cfg, {"fresh": {"lb": "base", "web1": "base"}}, RepoInventory(), "r1")
    engine = FakeEngine(with_systemd=["base"], cache=False)
    create(engine_of(engine), cfg, r)
    assert engine.attached == []
    assert all(
        "APT_CONFIG" not in s.env and packages.DIR not in s.tmpfs for s in engine.specs.values()
    )


def test_create_refuses_systemd_before_any_container_starts(tmp_path: Path) -> None:
    (tmp_path / "tdi.yml").write_text("init: systemd\n", encoding="utf-8")
    cfg = config.load(tmp_path)
    r = plan(
        cfg, {"fresh": {"tdi-host": "base"}, "upgrade": {"tdi-host": "old"}}, RepoInventory(), "r1"
    )
    engine = FakeEngine(with_systemd=["base"])
    with pytest.raises(TdiError, match="upgrade: init: systemd, but image old"):
        create(engine_of(engine), cfg, r)
    assert engine.specs == {} and engine.nets == {}


def test_lifecycle_removes_what_it_made_unless_kept(tmp_path: Path) -> None:
    cfg = topology_cfg(tmp_path)
    r = plan(cfg, {"fresh": {"lb": "a", "web1": "a"}}, RepoInventory(), "r1")
    engine = FakeEngine()
    engine.specs["tdi-other-fresh"] = ContainerSpec(
        "x", "tdi-other-fresh", "h", "n", {RUN_LABEL: "other"}
    )
    with pytest.raises(RuntimeError), lifecycle(engine_of(engine), cfg, r):
        assert set(engine.containers("r1")) == {"tdi-r1-fresh-lb", "tdi-r1-fresh-web1"}
        raise RuntimeError("a phase failed")
    assert list(engine.specs) == ["tdi-other-fresh"]  # another run's container stays
    assert engine.nets == {}
    with lifecycle(engine_of(engine), cfg, r, keep=True):
        pass
    assert len(engine.containers("r1")) == 2
    assert destroy(engine_of(engine), "r1") == 2
    assert engine.containers("r1") == [] and engine.nets == {}


def test_network_name() -> None:
    assert run.network("r1", "upgrade-1") == "tdi-r1-upgrade-1"
