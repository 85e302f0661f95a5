"""Base images: a debootstrapped root imported into Docker, then a Dockerfile FROM it.

Each image carries a content label, so a rebuild with nothing changed is a lookup.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import re
import shutil
import tempfile
from pathlib import Path

from tdi import locks, process
from tdi.config import Config, ImageRecipe
from tdi.engine.protocol import Engine, ImageInfo
from tdi.errors import ImageError, ToolError

log = logging.getLogger(__name__)

ROOT_LABEL = "tdi.root.key"
BUILD_LABEL = "tdi.build.key"
APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))


def apt_mirror(suite: str, sources: tuple[Path, ...] = APT_SOURCES) -> str | None:
    """The Debian mirror this machine's apt uses for ``suite``, or None."""
    files: list[Path] = []
    for src in sources:
        if src.is_dir():
            files += sorted(src.glob("*.sources")) + sorted(src.glob("*.list"))
        elif src.is_file():
            files.append(src)
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.M))
                if suite in fields.get("Suites", "").split() and "URIs" in fields:
                    return str(fields["URIs"].split()[0])
        else:
            for line in text.splitlines():
                parts = re.sub(r"\[[^]]*\]", "", line).split()
                if len(parts) >= 3 and parts[0] == "deb" and parts[2] == suite:
                    return parts[1]
    return None


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def _context_digest(context: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(context)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def root_image(engine: Engine, recipe: ImageRecipe) -> ImageInfo:
    """The root for ``recipe``: its pulled ``root_image``, or a debootstrapped one."""
    if recipe.root_image:
        found = engine.image(recipe.root_image) or engine.pull(recipe.root_image)
        if found is None:
            raise ImageError(
                f"images.{recipe.name}.root_image '{recipe.root_image}' is not present and "
                "cannot be pulled: drop the key to debootstrap one"
            )
        return found
    key = _digest(recipe.suite, "minbase", ",".join(sorted(recipe.include)), platform.machine())
    ref = f"tdi-root:{recipe.suite}-{key[:8]}"
    locks.once(
        _lock(ref),
        f"debootstrap {ref}",
        lambda: _cached(engine, ref, ROOT_LABEL, key) is not None,
        lambda: _debootstrap(engine, recipe, ref, key),
    )
    found = _cached(engine, ref, ROOT_LABEL, key)
    assert found is not None  # import_rootfs checked it
    return found


def _lock(ref: str) -> str:
    return f"image-{ref.replace(':', '-')}"


def _debootstrap(engine: Engine, recipe: ImageRecipe, ref: str, key: str) -> None:
    mirror = recipe.mirror or os.environ.get("TDI_MIRROR") or apt_mirror(recipe.suite)
    if not mirror:
        raise ImageError(
            f"no Debian mirror for suite '{recipe.suite}': none in /etc/apt sources; "
            f"set images.{recipe.name}.mirror in tdi.yml or TDI_MIRROR"
        )
    if shutil.which("debootstrap") is None:
        raise ImageError(
            "debootstrap not found: run scripts/setup.sh or apt-get install debootstrap"
        )
    log.info("debootstrap %s from %s (about a minute, once)", recipe.suite, mirror)
    with tempfile.TemporaryDirectory(prefix="tdi-root-") as tmp:
        rootfs, tarball = Path(tmp, "rootfs"), Path(tmp, "rootfs.tar")
        include = f"--include={','.join(recipe.include)}"
        _run(["debootstrap", "--variant=minbase", include, recipe.suite, str(rootfs), mirror])
        _run(["tar", "-C", str(rootfs), "-cf", str(tarball), "."])
        engine.import_rootfs(tarball, ref, {ROOT_LABEL: key})


def _cached(engine: Engine, ref: str, label: str, key: str) -> ImageInfo | None:
    # Look up by tag, then check the label: images built FROM this one inherit its labels.
    found = engine.image(ref)
    return found if found is not None and found.labels.get(label) == key else None


# debootstrap downloads and unpacks a Debian root: about a minute here, longer elsewhere.
BUILD_TIMEOUT = 1800.0


def _run(argv: list[str]) -> None:
    try:
        proc = process.run(argv, timeout=BUILD_TIMEOUT)
    except ToolError as exc:
        raise ImageError(f"{argv[0]} failed: {exc}") from exc
    if proc.returncode != 0:
        raise ImageError(f"{argv[0]} failed ({proc.returncode}): {proc.tail()}")


def build(engine: Engine, recipe: ImageRecipe) -> ImageInfo:
    """Build ``recipe`` FROM its root image, unless an image with the same content exists."""
    dockerfile = recipe.context / "Dockerfile"
    if not dockerfile.is_file():
        raise ImageError(f"image '{recipe.name}': {dockerfile} does not exist")
    root = root_image(engine, recipe)
    key = _digest(root.id, _context_digest(recipe.context))
    ref = f"{recipe.name}:{key[:12]}"

    def make() -> None:
        log.info("building %s from %s", ref, dockerfile)
        engine.build(recipe.context, ref, {"BASE": root.id}, {BUILD_LABEL: key})

    locks.once(
        _lock(ref), f"build {ref}", lambda: _cached(engine, ref, BUILD_LABEL, key) is not None, make
    )
    engine.tag(ref, f"{recipe.name}:latest")
    info = engine.image(ref)
    assert info is not None
    return info


def resolve_base(engine: Engine, cfg: Config, name: str | None = None) -> tuple[str, ImageInfo]:
    """A base image (``name``, else the run's) as (reference, info): a recipe is built, a
    reference found or pulled."""
    name = name or cfg.base_image
    if (recipe := cfg.images.get(name)) is not None:
        info = build(engine, recipe)
        return f"{recipe.name}:{info.labels[BUILD_LABEL][:12]}", info
    found = engine.image(name) or engine.pull(name)
    if found is None:
        raise ImageError(
            f"base image '{name}' is not present, cannot be pulled, and has no recipe "
            f"under 'images' in tdi.yml: build it or pass --base-image"
        )
    return name, found


def resolve_hosts(engine: Engine, cfg: Config) -> dict[str, tuple[str, ImageInfo]]:
    """Every host's base image, each distinct one resolved once."""
    names = {h.name: h.base_image or cfg.base_image for h in cfg.topology.hosts}
    found = {name: resolve_base(engine, cfg, name) for name in dict.fromkeys(names.values())}
    return {host: found[name] for host, name in names.items()}
