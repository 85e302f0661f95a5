"""A run's plan, its saved record, and its containers' lifecycle, with a fake engine."""

from __future__ import annotations

import errno
import json
import logging
import signal
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from fakes import NullEngine

from tdi import config
from tdi.engine.protocol import (
    HOST_LABEL,
    RUN_LABEL,
    SIDE_LABEL,
    STATE_LABEL,
    ContainerSpec,
    Engine,
)
from tdi.errors import EngineError, RecordError, TdiError
from tdi.hosts import packages, records, run
from tdi.hosts.run import CURRENT, WORK_DIR, Node, Run, create, destroy, labels, lifecycle, plan
from tdi.process import PROCESSES
from tdi.provision.inventory import RepoInventory

TOPOLOGY = "groups: [web]\nhosts:\n  lb: {groups: [loadbalancer], init: tini}\n  web1: {}\n"


class FakeEngine(NullEngine):
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
        self.removed: list[str] = []  # every name removal was asked for
        self.stuck: set[str] = set()  # containers the daemon fails to remove
        self.interrupt_at = ""  # a container whose start is cut off by Ctrl-C
        self.hosts_lines: dict[str, list[str]] = {}  # what each container's /etc/hosts got
        self.scratch: dict[str, str] = {}  # image id -> the run it is scratch of

    def is_running(self, name: str) -> bool:
        return name == packages.NAME and self.cache

    def attach(self, network: str, container: str, alias: str) -> None:
        if self.interrupt_at == network:  # Ctrl-C while the daemon attaches the cache
            signal.raise_signal(signal.SIGINT)
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
        if spec.name == self.interrupt_at:  # made, but tdi never heard back
            raise KeyboardInterrupt
        return spec.name

    def addresses(self, network: str) -> dict[str, str]:
        on = [n for n, s in self.specs.items() if s.network == network]
        on += [c for net, c, _ in self.attached if net == network]
        return {name: f"10.0.0.{i + 2}" for i, name in enumerate(on)}

    def exec(self, container: str, argv: Sequence[str]) -> tuple[int, bytes, bytes]:
        if container == packages.NAME:  # the cache's own port probe
            return (0 if self.cache else 1), b"", b""
        assert container in self.specs, f"exec in {container}, which was not started"
        if "/etc/hosts" in " ".join(argv):
            self.hosts_lines.setdefault(container, []).append(argv[-1])
        return 0, b"running", b""

    def containers(self, run_id: str | None = None) -> list[str]:
        """As the daemon's label filter: ``tdi.run=ID``, or any ``tdi.run``."""
        return [
            n
            for n, s in self.specs.items()
            if RUN_LABEL in s.labels and run_id in (None, s.labels[RUN_LABEL])
        ]

    def remove(self, names: Sequence[str]) -> None:
        self.removed.extend(names)
        for name in names:
            if name not in self.stuck:
                self.specs.pop(name, None)  # an absent one is fine, as on the daemon

    def networks(self, run_id: str) -> list[str]:
        return [n for n, lab in self.nets.items() if lab.get(RUN_LABEL) == run_id]

    def remove_networks(self, names: Sequence[str]) -> None:
        for name in names:
            self.nets.pop(name, None)

    def scratch_images(self, run_id: str) -> list[str]:
        return [i for i, r in self.scratch.items() if r == run_id]

    def remove_image(self, ref: str) -> None:
        if any(s.image == ref for s in self.specs.values()):
            raise EngineError(f"remove image {ref}: conflict: in use")
        self.scratch.pop(ref, None)


def engine_of(fake: FakeEngine) -> Engine:
    return fake


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
    assert {k: n.image for k, n in r.nodes.items()} == {"fresh": "base:1", "upgrade": "snap:1"}
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
    # Each host finds its side's hosts and the cache without Docker's DNS (a firewall role
    # may flush the nat table it answers through).
    (written,) = engine.hosts_lines["tdi-r1-upgrade-web1"]
    assert sorted(line.split("\t")[1] for line in written.splitlines()) == [
        "lb",
        packages.NAME,
        "web1",
    ]


def test_an_interrupt_while_the_cache_is_attached_waits_for_the_attach(tmp_path: Path) -> None:
    # Cut off, the request is carried out unseen: the cache stays attached, and the network
    # cannot be removed (seen in CI). Held back, it is done, then the interrupt acts.
    cfg = topology_cfg(tmp_path)
    r = plan(cfg, {"fresh": {"lb": "base", "web1": "base"}}, RepoInventory(), "r1")
    engine = FakeEngine(with_systemd=["base"])
    engine.interrupt_at = "tdi-r1-fresh"
    with pytest.raises(KeyboardInterrupt):
        create(engine_of(engine), cfg, r)
    assert [n for n, _, _ in engine.attached] == ["tdi-r1-fresh"]
    assert engine.specs == {}  # no host was started after it


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
    removed = destroy(engine_of(engine), r.workdir, "r1")
    assert removed.containers == ["tdi-r1-fresh-lb", "tdi-r1-fresh-web1"]
    assert removed.networks == ["tdi-r1-fresh"]
    assert engine.containers("r1") == [] and engine.nets == {}


def test_a_disk_full_while_destroying_leaves_no_stale_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = topology_cfg(tmp_path)
    r = plan(cfg, {"fresh": {"lb": "a", "web1": "a"}}, RepoInventory(), "r1")
    engine = FakeEngine()
    with lifecycle(engine_of(engine), cfg, r, keep=True):
        pass
    write = Path.write_text

    def full(path: Path, *args: Any, **kwargs: Any) -> int:
        if path.name.startswith(f".{records.RECORD}"):
            write(path, "")  # the temp file exists, as on a real full disk
            raise OSError(errno.ENOSPC, "No space left on device")
        return write(path, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full)
    removed = destroy(engine_of(engine), r.workdir, "r1")
    assert removed.containers == ["tdi-r1-fresh-lb", "tdi-r1-fresh-web1"]
    # Neither a half-written temp file nor a record that says the run is still there.
    assert sorted(p.name for p in r.workdir.iterdir() if "record" in p.name) == []


def test_network_name() -> None:
    assert run.network("r1", "upgrade-1") == "tdi-r1-upgrade-1"


def dead_owner() -> records.Owner:
    """This process's pid with another start time: a pid reused since its tdi died."""
    here = records.me()
    assert here is not None
    return replace(here, started=here.started - 1)


def leftover(engine: FakeEngine, root: Path, run_id: str, owner: records.Owner) -> Path:
    """A run of ``root`` recorded by ``owner``, with its container and network still there."""
    name = f"tdi-{run_id}-fresh"
    engine.specs[name] = ContainerSpec("img", name, "h", name, {RUN_LABEL: run_id})
    engine.nets[name] = {RUN_LABEL: run_id}
    workdir = run.runs_dir(root) / run_id
    workdir.mkdir(parents=True)
    records.write(workdir, records.Record(run_id, str(root), owner, (name,), (name,)))
    return workdir


def test_reap_removes_what_dead_runs_of_this_repo_left(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root, engine = tmp_path / "repo", FakeEngine()
    here = records.me()
    assert here is not None
    dead = leftover(engine, root, "dead", dead_owner())
    leftover(engine, root, "live", here)  # this process: alive
    leftover(engine, root, "kept", dead_owner())
    (root / WORK_DIR / CURRENT).write_text(json.dumps({"id": "kept"}), encoding="utf-8")
    # A record copied from another clone names that clone's root: not this repo's run.
    leftover(engine, root, "clone", dead_owner())
    records.write(
        run.runs_dir(root) / "clone",
        replace(records.read(run.runs_dir(root) / "clone") or pytest.fail(), root="/elsewhere"),
    )
    with caplog.at_level(logging.INFO, logger="tdi.hosts.run"):
        assert run.reap(engine_of(engine), root) == 1
    assert sorted(engine.containers()) == ["tdi-clone-fresh", "tdi-kept-fresh", "tdi-live-fresh"]
    assert sorted(engine.nets) == ["tdi-clone-fresh", "tdi-kept-fresh", "tdi-live-fresh"]
    left = "containers tdi-dead-fresh; networks tdi-dead-fresh"
    assert caplog.messages == [f"removed run dead, whose tdi (pid {here.pid}) is gone: {left}"]
    assert (records.read(dead) or pytest.fail()).removed == ("tdi-dead-fresh",)
    # Recorded as removed: the next start does not look again.
    asked = list(engine.removed)
    assert run.reap(engine_of(engine), root) == 0
    assert engine.removed == asked


def test_a_run_is_recorded_removed_only_once_the_daemon_lists_none(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = FakeEngine()
    workdir = leftover(engine, tmp_path, "dead", dead_owner())
    engine.stuck = {"tdi-dead-fresh"}
    assert run.reap(engine_of(engine), tmp_path) == 0
    assert "run dead: could not remove tdi-dead-fresh" in caplog.messages
    assert (records.read(workdir) or pytest.fail()).removed is None
    engine.stuck = set()  # the daemon recovers: the next start removes it
    assert run.reap(engine_of(engine), tmp_path) == 1
    assert engine.specs == {}


def test_destroy_removes_by_recorded_name_and_by_label(tmp_path: Path) -> None:
    engine = FakeEngine()
    workdir = leftover(engine, tmp_path, "r1", dead_owner())
    # One the record does not name, found by its label; one recorded, not (yet) listed.
    engine.specs["tdi-r1-extra"] = ContainerSpec("img", "tdi-r1-extra", "h", "n", {RUN_LABEL: "r1"})
    record = records.read(workdir) or pytest.fail()
    records.write(workdir, replace(record, containers=(*record.containers, "tdi-r1-upgrade")))
    removed = destroy(engine_of(engine), workdir, "r1")
    assert removed.containers == ["tdi-r1-extra", "tdi-r1-fresh"]
    assert "tdi-r1-upgrade" in engine.removed
    assert engine.specs == {} and engine.nets == {}


def test_destroy_removes_the_runs_scratch_images_once_its_containers_are_gone(
    tmp_path: Path,
) -> None:
    engine = FakeEngine()
    workdir = leftover(engine, tmp_path, "r1", dead_owner())
    engine.specs["tdi-r1-rollback"] = ContainerSpec(
        "sha256:r1", "tdi-r1-rollback", "h", "n", {RUN_LABEL: "r1"}
    )
    engine.scratch = {"sha256:r1": "r1", "sha256:r2": "r2"}
    removed = destroy(engine_of(engine), workdir, "r1")
    assert engine.scratch == {"sha256:r2": "r2"}  # another run's stays
    assert removed.images == ["r1"] and str(removed).endswith("; images r1")
    assert (records.read(workdir) or pytest.fail()).removed is not None


def test_a_scratch_image_still_in_use_is_left_for_a_later_reap(tmp_path: Path) -> None:
    engine = FakeEngine()
    workdir = leftover(engine, tmp_path, "r1", dead_owner())
    engine.specs["tdi-r1-rollback"] = ContainerSpec(
        "sha256:r1", "tdi-r1-rollback", "h", "n", {RUN_LABEL: "r1"}
    )
    engine.stuck = {"tdi-r1-rollback"}  # the daemon fails to remove it: its image is in use
    engine.scratch = {"sha256:r1": "r1"}
    removed = destroy(engine_of(engine), workdir, "r1")
    assert engine.scratch == {"sha256:r1": "r1"} and removed.images == []
    assert (records.read(workdir) or pytest.fail()).removed is None  # a reap tries again


def test_lifecycle_records_every_container_before_it_creates_one(tmp_path: Path) -> None:
    cfg = topology_cfg(tmp_path)
    r = plan(cfg, {"fresh": {"lb": "a", "web1": "a"}}, RepoInventory(), "r1")
    recorded: list[tuple[str, ...]] = []

    class Recorded(FakeEngine):
        def run(self, spec: ContainerSpec) -> str:
            recorded.append((records.read(r.workdir) or pytest.fail()).containers)
            return super().run(spec)

    with lifecycle(engine_of(Recorded()), cfg, r):
        pass
    assert recorded == [("tdi-r1-fresh-lb", "tdi-r1-fresh-web1")] * 2


def test_an_interrupt_while_creating_a_kept_run_removes_it_and_says_so(tmp_path: Path) -> None:
    cfg = topology_cfg(tmp_path)
    r = plan(cfg, {"fresh": {"lb": "a", "web1": "a"}}, RepoInventory(), "r1")
    r.save(cfg.root)  # `tdi create` keeps its run
    engine = FakeEngine()
    engine.interrupt_at = "tdi-r1-fresh-web1"  # the daemon made it; tdi never heard back
    with pytest.raises(KeyboardInterrupt), lifecycle(engine_of(engine), cfg, r, keep=True):
        pytest.fail("the run was not created")
    assert engine.specs == {} and engine.nets == {}
    assert (records.read(r.workdir) or pytest.fail()).removed == (
        "tdi-r1-fresh-lb",
        "tdi-r1-fresh-web1",
    )
    assert run.interrupted(cfg.root) == "removed tdi-r1-fresh-lb, tdi-r1-fresh-web1"
    assert run.keep_id(cfg.root) is None  # a kept run that never was


def test_interrupted_names_kept_containers_and_is_silent_without_any(tmp_path: Path) -> None:
    cfg = topology_cfg(tmp_path)
    assert run.interrupted(cfg.root) == ""
    r = plan(cfg, {"fresh": {"lb": "a", "web1": "a"}}, RepoInventory(), "r1")
    with lifecycle(engine_of(FakeEngine()), cfg, r, keep=True):
        pass
    assert run.interrupted(cfg.root) == (
        "kept tdi-r1-fresh-lb, tdi-r1-fresh-web1 (`tdi destroy` removes them)"
    )


def test_in_parallel_stops_the_children_of_the_others_when_one_fails() -> None:
    def work(item: str) -> int:
        if item == "fails":
            raise RuntimeError("one side failed")
        return PROCESSES.run(["sleep", "300"])  # stopped, or this test takes 5 minutes

    assert run.in_parallel([1, 2, 3], lambda i: 2 * i) == [2, 4, 6]
    with pytest.raises(RuntimeError, match="one side failed"):
        run.in_parallel(["sleeps", "fails"], work)


def test_an_interrupt_just_after_the_record_is_written_still_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = topology_cfg(tmp_path)
    r = plan(cfg, {"fresh": {"lb": "a", "web1": "a"}}, RepoInventory(), "r1")
    write = records.write

    def then_interrupted(workdir: Path, record: records.Record) -> None:
        write(workdir, record)
        if record.removed is None:  # the first write; not the one that says removed
            raise KeyboardInterrupt

    monkeypatch.setattr(records, "write", then_interrupted)
    engine = FakeEngine()
    with pytest.raises(KeyboardInterrupt), lifecycle(engine_of(engine), cfg, r, keep=True):
        pytest.fail("the run was not created")
    assert engine.specs == {} and engine.nets == {}
    assert (records.read(r.workdir) or pytest.fail()).removed == ()
    assert run.interrupted(cfg.root) == ""  # no container was made: nothing to say


@pytest.mark.parametrize(
    "text",
    ['{"id": "feedbeef", "workd', "[]", '{"id": "x"}', '{"id": 1, "workdir": "/x", "nodes": [{}]}'],
)
def test_load_an_unreadable_current_run_names_the_file(tmp_path: Path, text: str) -> None:
    (tmp_path / WORK_DIR).mkdir()
    (tmp_path / WORK_DIR / CURRENT).write_text(text, encoding="utf-8")
    with pytest.raises(RecordError) as info:
        Run.load(tmp_path)
    assert str(info.value).startswith(f"{tmp_path / WORK_DIR / CURRENT} cannot be read (")


def test_the_work_directory_is_the_owners_only(tmp_path: Path) -> None:
    from tdi.hosts.run import work_dir

    (tmp_path / ".tdi").mkdir(mode=0o755)
    assert work_dir(tmp_path).stat().st_mode & 0o777 == 0o700
