"""The production snapshot set: its references, its checks, its chain, and promotion that
is all or nothing (promotion.py), against a fake engine with a fake registry."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
from fakes import NullEngine

from tdi import config, interrupts
from tdi.engine.protocol import ImageInfo, Manifest
from tdi.errors import RegistryError, SnapshotError, TdiError
from tdi.hosts.run import Run
from tdi.pipelines import production, promotion
from tdi.pipelines.production import PARENT, PREVIOUS, PRODUCTION, REVISION
from tdi.report.model import Report, StateReport

TWO_HOSTS = "hosts:\n  lb: {}\n  Web1: {}\n"


def image(image_id: str, revision: str | None = None, parent: str | None = None) -> ImageInfo:
    labels = {}
    if revision:
        labels[REVISION] = revision
    if parent:
        labels[PARENT] = parent
    return ImageInfo(image_id, (), labels, None, None)


class FakeEngine(NullEngine):
    """Local tags and a registry's tags, both pointing at images by id. A push copies the
    local tag to the registry; the ``fail_at``-th push raises ``error`` instead."""

    def __init__(
        self,
        images: list[ImageInfo],
        local: Mapping[str, str] | None = None,
        registry: Mapping[str, str] | None = None,
        fail_at: int = 0,
        error: BaseException | None = None,
    ) -> None:
        self.by_id = {i.id: i for i in images}
        self.local = dict(local or {})
        self.registry = dict(registry or {})
        self.fail_at = fail_at
        self.error = error
        self.pushes: list[str] = []
        self.blocked: list[bool] = []  # per tag(): were SIGINT and SIGTERM held back?
        self.removed: list[str] = []

    def manifest(self, ref: str) -> Manifest | None:
        found = self.registry.get(ref)
        return Manifest(f"sha256:manifest-of-{found}", (found,)) if found else None

    def image(self, ref: str) -> ImageInfo | None:
        found = self.local.get(ref, ref)
        return self.by_id.get(found)

    def fetch(self, ref: str) -> ImageInfo | None:
        if ref not in self.registry:
            return None
        self.local[ref] = self.registry[ref]
        return self.image(ref)

    def pull(self, ref: str) -> ImageInfo | None:
        return self.fetch(ref)

    def push(self, ref: str) -> str:
        self.pushes.append(ref)
        if len(self.pushes) == self.fail_at:
            raise self.error or RegistryError(f"push {ref}: connection reset")
        self.registry[ref] = self.local[ref]
        return f"sha256:{self.local[ref]}"

    def tag(self, image_id: str, ref: str) -> None:
        self.blocked.append(interrupts.held())
        self.local[ref] = self.by_id[self.local.get(image_id, image_id)].id

    def untag(self, ref: str) -> None:
        self.local.pop(ref, None)

    def remove_image(self, ref: str) -> None:
        self.removed.append(ref)


def load(root: Path, text: str = "", **flags: object) -> config.Config:
    if text:
        (root / "tdi.yml").write_text(text, encoding="utf-8")
    return config.load(root, flags)


def test_whole_set_of_one_revision_passes() -> None:
    wanted = {"lb": "app/lb:production", "web1": "app/web1:production"}
    found = {"lb": image("a", "c" * 40), "web1": image("b", "c" * 40)}
    # No error: one release on every host.
    assert production._whole_set(wanted, found) == {h: (wanted[h], found[h]) for h in wanted}


def test_whole_set_half_promoted_names_each_hosts_revision() -> None:
    wanted = {"lb": "app/lb:production", "web1": "app/web1:production"}
    found = {"lb": image("a", "1" * 40), "web1": image("b", "2" * 40)}
    with pytest.raises(TdiError) as info:
        production._whole_set(wanted, found)
    message = str(info.value)
    assert message.startswith("the production set is half-promoted: ")
    assert "lb runs 111111111111, web1 runs 222222222222" in message
    assert "tdi snapshot --push" in message


def test_whole_set_host_without_a_revision_is_half_promoted() -> None:
    wanted = {"lb": "app/lb:production", "web1": "app/web1:production"}
    found = {"lb": image("a", "1" * 40), "web1": image("b")}
    with pytest.raises(TdiError, match="lb runs 111111111111, web1 runs none"):
        production._whole_set(wanted, found)


def test_whole_set_missing_host_image_names_it() -> None:
    wanted = {"lb": "app/lb:production", "web1": "app/web1:production"}
    with pytest.raises(TdiError) as info:
        production._whole_set(wanted, {"lb": image("a", "1" * 40), "web1": None})
    message = str(info.value)
    assert message.startswith("the production set is incomplete: app/web1:production not found")


def test_current_of_a_repository_means_its_production_tag(tmp_path: Path) -> None:
    cfg = load(tmp_path, TWO_HOSTS, production_image="reg.example/app")
    engine = FakeEngine(
        [image("a", "r1"), image("b", "r1")],
        registry={"reg.example/app/lb:production": "a", "reg.example/app/web1:production": "b"},
    )
    found = production.current(engine, cfg)
    assert found is not None
    assert {h: (ref, info.id) for h, (ref, info) in found.items()} == {
        "lb": ("reg.example/app/lb:production", "a"),
        "Web1": ("reg.example/app/web1:production", "b"),
    }


def test_current_is_none_when_no_host_has_one(tmp_path: Path) -> None:
    cfg = load(tmp_path, TWO_HOSTS, production_image="reg.example/app:production")
    assert production.current(FakeEngine([]), cfg) is None


def test_current_refuses_a_half_promoted_set(tmp_path: Path) -> None:
    cfg = load(tmp_path, TWO_HOSTS, production_image="reg.example/app:production")
    engine = FakeEngine(
        [image("a", "r1"), image("b", "r2")],
        registry={"reg.example/app/lb:production": "a", "reg.example/app/web1:production": "b"},
    )
    with pytest.raises(TdiError, match="half-promoted: lb runs r1, Web1 runs r2"):
        production.current(engine, cfg)


def test_current_refuses_an_incomplete_set(tmp_path: Path) -> None:
    cfg = load(tmp_path, TWO_HOSTS, production_image="reg.example/app:production")
    engine = FakeEngine([image("a", "r1")], registry={"reg.example/app/lb:production": "a"})
    with pytest.raises(TdiError, match=r"incomplete: reg\.example/app/web1:production not found"):
        production.current(engine, cfg)


def releases(host: str) -> tuple[list[ImageInfo], dict[str, str]]:
    """Three releases of ``host`` (r3 in production) on top of a base image."""
    repo = f"app/{host}"
    images = [
        image(f"base-{host}"),
        image(f"r1-{host}", "r1", "tdi-base:1"),
        image(f"r2-{host}", "r2", f"{repo}:r1"),
        image(f"r3-{host}", "r3", f"{repo}:r2"),
    ]
    tags = {
        "tdi-base:1": f"base-{host}",
        f"{repo}:r1": f"r1-{host}",
        f"{repo}:r2": f"r2-{host}",
        f"{repo}:production": f"r3-{host}",
    }
    return images, tags


@pytest.mark.parametrize(("length", "found"), [(1, 1), (2, 2), (3, 3), (5, 3)])
def test_chain_follows_parents_and_stops_at_the_base(
    tmp_path: Path, length: int, found: int
) -> None:
    cfg = load(tmp_path, "hosts:\n  lb: {}\n  web1: {}\n", chain=length)
    lb_images, lb_tags = releases("lb")
    web_images, web_tags = releases("web1")
    engine = FakeEngine(lb_images + web_images, registry={**lb_tags, **web_tags})
    start = {
        h: (f"app/{h}:production", image(f"r3-{h}", "r3", f"app/{h}:r2")) for h in ("lb", "web1")
    }
    links = production.chain(engine, cfg, start)
    expected = [
        {"lb": "app/lb:production", "web1": "app/web1:production"},
        {"lb": "app/lb:r2", "web1": "app/web1:r2"},
        {"lb": "app/lb:r1", "web1": "app/web1:r1"},
    ]
    assert links == expected[:found]


def test_chain_without_a_parent_label_uses_production_previous(tmp_path: Path) -> None:
    cfg = load(tmp_path, chain=2)
    engine = FakeEngine(
        [image("new", "r2"), image("old", "r1")],
        registry={"app:production": "new", f"app:{PREVIOUS}": "old"},
    )
    links = production.chain(engine, cfg, {"tdi-host": ("app:production", image("new", "r2"))})
    assert links == [{"tdi-host": "app:production"}, {"tdi-host": f"app:{PREVIOUS}"}]


def test_chain_is_as_long_as_the_shortest_hosts(tmp_path: Path) -> None:
    cfg = load(tmp_path, "hosts:\n  lb: {}\n  web1: {}\n", chain=3)
    lb_images, lb_tags = releases("lb")
    # web1 was added to the topology in r3: its parent is the base image.
    web = image("r3-web1", "r3", "tdi-base:1")
    engine = FakeEngine([*lb_images, web], registry=lb_tags)
    start = {
        "lb": ("app/lb:production", image("r3-lb", "r3", "app/lb:r2")),
        "web1": ("app/web1:production", web),
    }
    assert production.chain(engine, cfg, start) == [
        {"lb": "app/lb:production", "web1": "app/web1:production"}
    ]


TARGETS = {"lb": "reg.example/app/lb:c3", "web1": "reg.example/app/web1:c3"}
MOVED = [f"reg.example/app/{h}:{tag}" for tag in (PRODUCTION, PREVIOUS) for h in ("lb", "web1")]


def promoting(
    fail_at: int, previous_here: bool = True, error: BaseException | None = None
) -> FakeEngine:
    """c3 made here for both hosts; the registry has production (c2) and
    production-previous (c1); this daemon has production-previous if ``previous_here``."""
    images = [image(f"{r}-{h}", r) for r in ("c1", "c2", "c3") for h in ("lb", "web1")]
    remote = {}
    local = {t: f"c3-{h}" for h, t in TARGETS.items()}
    for h in ("lb", "web1"):
        remote[f"reg.example/app/{h}:{PRODUCTION}"] = f"c2-{h}"
        remote[f"reg.example/app/{h}:{PREVIOUS}"] = f"c1-{h}"
        if previous_here:
            local[f"reg.example/app/{h}:{PREVIOUS}"] = f"c1-{h}"
    return FakeEngine(images, local, remote, fail_at, error)


def promote(engine: FakeEngine, targets: Mapping[str, str] = TARGETS) -> None:
    promotion.promote(engine, "reg.example/app", targets)


def test_promote_moves_every_hosts_tags() -> None:
    engine = promoting(fail_at=0)
    promote(engine)
    for h in ("lb", "web1"):
        assert engine.registry[f"reg.example/app/{h}:c3"] == f"c3-{h}"
        assert engine.registry[f"reg.example/app/{h}:{PRODUCTION}"] == f"c3-{h}"
        assert engine.registry[f"reg.example/app/{h}:{PREVIOUS}"] == f"c2-{h}"
    # Every commit tag is pushed before any production tag moves.
    assert engine.pushes[:2] == list(TARGETS.values())
    assert engine.pushes[-2:] == [f"reg.example/app/{h}:{PRODUCTION}" for h in ("lb", "web1")]


@pytest.mark.parametrize("error", [RegistryError("connection reset"), KeyboardInterrupt()])
@pytest.mark.parametrize("fail_at", range(1, 7))
def test_promote_that_stops_part_way_puts_every_tag_back(
    fail_at: int, error: BaseException
) -> None:
    # A registry error, or SIGINT/SIGTERM (tdi's CLI raises KeyboardInterrupt for both).
    engine = promoting(fail_at, error=error)
    before = {ref: engine.registry[ref] for ref in MOVED}
    local_before = {ref: engine.local.get(ref) for ref in MOVED}
    with pytest.raises(type(error)):
        promote(engine)
    assert {ref: engine.registry[ref] for ref in MOVED} == before
    # Here too: production as fetched before, production-previous as it was.
    assert {ref: engine.local.get(ref) for ref in MOVED} == {
        **local_before,
        **{f"reg.example/app/{h}:{PRODUCTION}": f"c2-{h}" for h in ("lb", "web1")},
    }


def test_promote_puts_tags_back_with_sigint_and_sigterm_held() -> None:
    engine = promoting(fail_at=6, error=KeyboardInterrupt())  # web1's production push
    with pytest.raises(KeyboardInterrupt):
        promote(engine)
    # 2 production-previous and lb's and web1's production moved unblocked; 4 put back held.
    assert engine.blocked == [False] * 4 + [True] * 4


def test_promote_of_a_first_release_untags_what_did_not_exist() -> None:
    images = [image("c1-lb", "c1"), image("c1-web1", "c1")]
    local = {t.replace("c3", "c1"): f"c1-{h}" for h, t in TARGETS.items()}
    targets = {h: t.replace("c3", "c1") for h, t in TARGETS.items()}
    # Pushes: lb:c1, web1:c1, lb:production, then web1:production fails.
    engine = FakeEngine(images, local, {}, fail_at=4)
    with pytest.raises(RegistryError):
        promote(engine, targets)
    assert "reg.example/app/lb:production" not in engine.local
    assert "reg.example/app/web1:production" not in engine.local
    assert not any(PREVIOUS in ref for ref in engine.local)


def test_promote_puts_back_a_previous_tag_this_daemon_never_pulled() -> None:
    # Pushes: 2 commit tags, 2 production-previous, lb's production, web1's fails.
    engine = promoting(fail_at=6, previous_here=False)
    with pytest.raises(RegistryError):
        promote(engine)
    assert engine.registry["reg.example/app/lb:production-previous"] == "c1-lb"


def test_promote_refuses_other_content_under_a_pushed_commit_tag() -> None:
    engine = promoting(fail_at=0)
    engine.by_id["c3-web1-retry"] = image("c3-web1-retry", "c3")
    engine.registry[TARGETS["web1"]] = "c3-web1"  # an earlier, interrupted promotion
    engine.local[TARGETS["web1"]] = "c3-web1-retry"  # this retry made it again
    before = dict(engine.registry)
    with pytest.raises(TdiError) as info:
        promote(engine)
    assert str(info.value).startswith(
        "reg.example/app/web1:c3 is immutable: the registry holds sha256:manifest-of-c3-web1 "
        "(image c3-web1) under it, this snapshot is image c3-web1-retry"
    )
    assert engine.pushes == [] and engine.registry == before
    # The tag here is the registry's again; the refused image is gone.
    assert engine.local[TARGETS["web1"]] == "c3-web1" and engine.removed == ["c3-web1-retry"]


def test_promote_pushes_the_same_image_again() -> None:
    engine = promoting(fail_at=0)
    engine.registry[TARGETS["lb"]] = "c3-lb"  # a retry of an interrupted promotion
    promote(engine)
    assert engine.registry[f"reg.example/app/lb:{PRODUCTION}"] == "c3-lb"


def rolled(tmp_path: Path) -> tuple[config.Config, FakeEngine]:
    cfg = load(tmp_path, TWO_HOSTS)
    engine = promoting(0)
    for h in ("lb", "web1"):
        engine.local[f"reg.example/app/{h}:{PRODUCTION}"] = f"c2-{h}"
    return cfg, engine


def test_rollback_moves_production_back_to_previous_once(tmp_path: Path) -> None:
    cfg, engine = rolled(tmp_path)
    promotion.rollback(engine, cfg, "reg.example/app", push=True)
    for h in ("lb", "web1"):
        assert engine.registry[f"reg.example/app/{h}:{PRODUCTION}"] == f"c1-{h}"
        assert engine.local[f"reg.example/app/{h}:{PRODUCTION}"] == f"c1-{h}"
    pushes = len(engine.pushes)
    with pytest.raises(TdiError) as info:
        promotion.rollback(engine, cfg, "reg.example/app", push=True)
    assert str(info.value) == (
        "reg.example/app:production already is :production-previous (c1) for lb, Web1: "
        "rolled back already, nothing to roll back to"
    )
    assert len(engine.pushes) == pushes


def test_rollback_here_only_is_put_back_when_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg, engine = rolled(tmp_path)
    for h in ("lb", "web1"):
        engine.local[f"reg.example/app/{h}:{PREVIOUS}"] = f"c1-{h}"
    calls = []

    def tag(image_id: str, ref: str) -> None:
        calls.append(ref)
        if len(calls) == 2:
            raise KeyboardInterrupt
        engine.local[ref] = image_id

    monkeypatch.setattr(engine, "tag", tag)
    with pytest.raises(KeyboardInterrupt):
        promotion.rollback(engine, cfg, "reg.example/app", push=False)
    assert engine.local["reg.example/app/lb:production"] == "c2-lb"
    assert engine.pushes == []


def test_rollback_without_previous_names_the_hosts(tmp_path: Path) -> None:
    cfg = load(tmp_path, TWO_HOSTS)
    engine = FakeEngine(
        [image("c1-lb", "c1")], registry={f"reg.example/app/lb:{PREVIOUS}": "c1-lb"}
    )
    with pytest.raises(TdiError, match=r"reg\.example/app has no :production-previous for Web1"):
        promotion.rollback(engine, cfg, "reg.example/app", push=True)
    assert engine.pushes == []


def test_repository_of(tmp_path: Path) -> None:
    assert production.repository_of(load(tmp_path), "reg.example/app:production") == (
        "reg.example/app"
    )
    configured = load(tmp_path, production_image="127.0.0.1:5000/app")
    assert production.repository_of(configured, None) == "127.0.0.1:5000/app"
    with pytest.raises(TdiError, match="no image repository"):
        production.repository_of(load(tmp_path), None)


@pytest.mark.parametrize(
    ("pushed", "production_at", "resumed"),
    [
        (("lb", "web1"), "c2", True),  # stopped after the commit tags: finish it
        (("lb",), "c2", False),  # part of the set: nothing to finish with
        ((), "c2", False),  # nothing pushed: make it
        (("lb", "web1"), "c3", False),  # promoted already
    ],
)
def test_an_unfinished_promotion_of_head_is_found(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    pushed: tuple[str, ...],
    production_at: str,
    resumed: bool,
) -> None:
    cfg = load(tmp_path, "hosts:\n  lb: {}\n  web1: {}\n")
    engine = promoting(fail_at=0)
    engine.local.clear()  # another machine made c3: this daemon has none of it
    for h in ("lb", "web1"):
        engine.registry[f"reg.example/app/{h}:{PRODUCTION}"] = f"{production_at}-{h}"
        if h in pushed:
            engine.registry[TARGETS[h]] = f"c3-{h}"
    monkeypatch.setattr(promotion, "git", lambda root, *args: "c3")
    found = promotion.unfinished(engine, cfg, "reg.example/app")
    assert found == (TARGETS if resumed else None)
    if resumed:  # fetched, so that promote pushes and moves what the registry holds
        assert {t: engine.local[t] for t in TARGETS.values()} == {
            t: f"c3-{h}" for h, t in TARGETS.items()
        }


def test_a_snapshot_needs_the_phases_its_run_requires(tmp_path: Path) -> None:
    run = Run("abc", tmp_path, {})
    once = StateReport("img", "passed", verify="passed", required=("converge", "verify"))
    production._check(Report({"production": once}), run)  # idempotence: false skips it
    twice = StateReport("img", "passed", verify="passed")
    with pytest.raises(SnapshotError, match="production: idempotence skipped"):
        production._check(Report({"production": twice}), run)
