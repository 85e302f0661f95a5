"""Base images: the apt mirror lookup, and the cache/build decisions against a fake engine."""

from __future__ import annotations

import platform
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from fakes import NullEngine

from tdi import config, locks
from tdi.engine.protocol import ImageInfo
from tdi.errors import ImageError
from tdi.hosts import images

DEB822 = """\
Types: deb
URIs: http://mirror.invalid/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://security.invalid/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""

ONE_LINE = """\
# deb http://commented.invalid/debian bookworm main
deb-src http://source.invalid/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/debian.gpg] http://mirror.invalid/debian bookworm main
deb http://security.invalid/debian-security bookworm-security main
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_apt_mirror_deb822(tmp_path: Path) -> None:
    sources = write(tmp_path / "debian.sources", DEB822)
    assert images.apt_mirror("bookworm", (sources,)) == "http://mirror.invalid/debian"


def test_apt_mirror_deb822_security_suite_is_its_own(tmp_path: Path) -> None:
    sources = write(tmp_path / "debian.sources", DEB822)
    found = images.apt_mirror("bookworm-security", (sources,))
    assert found == "http://security.invalid/debian-security"


def test_apt_mirror_deb822_security_stanza_does_not_match(tmp_path: Path) -> None:
    # "bookworm" is a prefix of "bookworm-security": the match must be on whole suites.
    security_only = DEB822.split("\n\n")[1]
    sources = write(tmp_path / "security.sources", security_only)
    assert images.apt_mirror("bookworm", (sources,)) is None


def test_apt_mirror_one_line_with_options(tmp_path: Path) -> None:
    sources = write(tmp_path / "sources.list", ONE_LINE)
    assert images.apt_mirror("bookworm", (sources,)) == "http://mirror.invalid/debian"


def test_apt_mirror_no_match(tmp_path: Path) -> None:
    listed = write(tmp_path / "sources.list", ONE_LINE)
    deb822 = write(tmp_path / "debian.sources", DEB822)
    assert images.apt_mirror("trixie", (listed, deb822)) is None


def test_apt_mirror_missing_sources(tmp_path: Path) -> None:
    assert images.apt_mirror("bookworm", (tmp_path / "absent.list", tmp_path / "nodir")) is None


def test_apt_mirror_reads_a_directory(tmp_path: Path) -> None:
    write(tmp_path / "sources.list.d" / "debian.sources", DEB822)
    write(tmp_path / "sources.list.d" / "ignored.txt", "deb http://wrong.invalid bookworm main\n")
    found = images.apt_mirror("bookworm", (tmp_path / "empty.list", tmp_path / "sources.list.d"))
    assert found == "http://mirror.invalid/debian"


def test_apt_mirror_first_source_wins(tmp_path: Path) -> None:
    first = write(tmp_path / "sources.list", "deb http://first.invalid/debian bookworm main\n")
    second = write(tmp_path / "d" / "debian.sources", DEB822)
    assert images.apt_mirror("bookworm", (first, second.parent)) == "http://first.invalid/debian"


class FakeEngine(NullEngine):
    """The Engine methods images.py calls, over a dict of images."""

    def __init__(self, present: Mapping[str, ImageInfo] | None = None) -> None:
        self.images: dict[str, ImageInfo] = dict(present or {})
        self.built: list[tuple[Path, str, dict[str, str], dict[str, str]]] = []
        self.tags: list[tuple[str, str]] = []
        self.pulled: list[str] = []

    def image(self, ref: str) -> ImageInfo | None:
        return self.images.get(ref)

    def pull(self, ref: str) -> ImageInfo | None:
        self.pulled.append(ref)
        return None

    def build(
        self, context: Path, ref: str, buildargs: Mapping[str, str], labels: Mapping[str, str]
    ) -> str:
        self.built.append((context, ref, dict(buildargs), dict(labels)))
        self.images[ref] = info(f"sha256:{ref}", labels)
        return f"sha256:{ref}"

    def tag(self, image_id: str, ref: str) -> None:
        self.tags.append((image_id, ref))


def info(image_id: str, labels: Mapping[str, str]) -> ImageInfo:
    return ImageInfo(id=image_id, tags=(), labels=dict(labels), cmd=None, entrypoint=None)


def recipe(context: Path, mirror: str | None = None, suite: str = "bookworm") -> config.ImageRecipe:
    return config.ImageRecipe("tdi-base", context, suite=suite, mirror=mirror)


# A suite no apt source of any machine names: apt_mirror finds none.
NO_SUITE = "tdi-no-such-suite"
# A root image the fake engine holds, which the build tests' recipes pull.
ROOT = "debian:bookworm"


def pulled_root(context: Path) -> config.ImageRecipe:
    return config.ImageRecipe("tdi-base", context, root_image=ROOT)


def test_root_image_without_mirror_says_how_to_set_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TDI_MIRROR", raising=False)
    with pytest.raises(ImageError) as exc:
        images.root_image(FakeEngine(), recipe(tmp_path, suite=NO_SUITE))
    message = str(exc.value)
    assert NO_SUITE in message
    assert "images.tdi-base.mirror" in message
    assert "TDI_MIRROR" in message


def root_key(suite: str = "bookworm") -> str:
    return images._digest(suite, "minbase", "python3", platform.machine())


def test_root_image_cached_by_label_skips_debootstrap(tmp_path: Path) -> None:
    key = root_key()
    cached = info("sha256:root", {images.ROOT_LABEL: key})
    engine = FakeEngine({f"tdi-root:bookworm-{key[:8]}": cached})
    # Were it not found, debootstrap would fail at once on this mirror.
    assert images.root_image(engine, recipe(tmp_path, "http://127.0.0.1:9/debian")) == cached


def test_root_image_with_another_key_is_not_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An image built FROM the root inherits its label, but under another key it is stale.
    monkeypatch.delenv("TDI_MIRROR", raising=False)
    key = root_key(NO_SUITE)
    stale = info("sha256:old", {images.ROOT_LABEL: "0" * 16})
    engine = FakeEngine({f"tdi-root:{NO_SUITE}-{key[:8]}": stale})
    with pytest.raises(ImageError, match="no Debian mirror"):
        images.root_image(engine, recipe(tmp_path, suite=NO_SUITE))


def test_build_without_dockerfile(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="Dockerfile does not exist"):
        images.build(FakeEngine(), recipe(tmp_path / "ctx"))


def test_build_once_then_reuse(tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    write(context / "Dockerfile", "ARG BASE\nFROM $BASE\n")
    engine = FakeEngine({ROOT: info("sha256:root", {})})

    first = images.build(engine, pulled_root(context))
    assert len(engine.built) == 1
    built_context, ref, buildargs, labels = engine.built[0]
    assert built_context == context
    assert ref.startswith("tdi-base:")
    assert buildargs == {"BASE": "sha256:root"}
    assert first.labels[images.BUILD_LABEL] == labels[images.BUILD_LABEL]
    assert engine.tags[-1] == (ref, "tdi-base:latest")

    again = images.build(engine, pulled_root(context))
    assert len(engine.built) == 1  # nothing changed: a lookup, no build
    assert again == first

    write(context / "extra.conf", "changed\n")
    images.build(engine, pulled_root(context))
    assert len(engine.built) == 2  # the context's content is part of the key
    assert engine.built[1][1] != ref


def test_two_runs_building_at_once_build_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Parallel tox environments or CI jobs on one daemon: the second waits for the first's
    # build under the machine's lock, then finds the image made.
    context = tmp_path / "ctx"
    write(context / "Dockerfile", "ARG BASE\nFROM $BASE\n")
    monkeypatch.setattr(locks, "lock_dir", lambda: tmp_path)
    building, go_on = threading.Event(), threading.Event()

    class SlowEngine(FakeEngine):
        def build(self, *args: Any) -> str:
            building.set()
            assert go_on.wait(10)
            return super().build(*args)

    engine = SlowEngine({ROOT: info("sha256:root", {})})
    first = threading.Thread(target=images.build, args=(engine, pulled_root(context)))
    first.start()
    assert building.wait(10)
    second = threading.Thread(target=images.build, args=(engine, pulled_root(context)))
    second.start()
    second.join(0.5)
    assert second.is_alive()  # waiting for the lock, not building
    go_on.set()
    first.join(10)
    second.join(10)
    assert len(engine.built) == 1


def test_resolve_base_recipe_is_built(tmp_path: Path) -> None:
    write(tmp_path / "images" / "base" / "Dockerfile", "ARG BASE\nFROM $BASE\n")
    text = f"images:\n  tdi-base: {{context: images/base, root_image: '{ROOT}'}}\n"
    write(tmp_path / "tdi.yml", text)
    engine = FakeEngine({ROOT: info("sha256:root", {})})
    ref, found = images.resolve_base(engine, config.load(tmp_path))
    key = found.labels[images.BUILD_LABEL]
    assert ref == f"tdi-base:{key[:12]}"


def test_resolve_base_present_reference(tmp_path: Path) -> None:
    cfg = config.load(tmp_path, {"base_image": "debian:12"})
    engine = FakeEngine({"debian:12": info("sha256:deb", {})})
    assert images.resolve_base(engine, cfg) == ("debian:12", engine.images["debian:12"])
    assert engine.pulled == []


def test_resolve_base_absent_reference(tmp_path: Path) -> None:
    cfg = config.load(tmp_path, {"base_image": "nowhere:1"})
    engine = FakeEngine()
    with pytest.raises(ImageError, match=r"'nowhere:1' is not present, cannot be pulled"):
        images.resolve_base(engine, cfg)
    assert engine.pulled == ["nowhere:1"]


def test_root_image_pulled_instead_of_debootstrap(tmp_path: Path) -> None:
    pulled = config.ImageRecipe("tdi-base", tmp_path, root_image="debian:bookworm")
    engine = FakeEngine({"debian:bookworm": info("sha256:debian", {})})
    assert images.root_image(engine, pulled).id == "sha256:debian"


def test_root_image_that_cannot_be_pulled_names_the_key(tmp_path: Path) -> None:
    pulled = config.ImageRecipe("tdi-base", tmp_path, root_image="debian:nope")
    engine = FakeEngine()
    with pytest.raises(ImageError, match=r"images\.tdi-base\.root_image 'debian:nope'"):
        images.root_image(engine, pulled)
    assert engine.pulled == ["debian:nope"]
