"""tdi.refs: image references as the Docker SDK reads them, digests included."""

from __future__ import annotations

import pytest

from tdi.engine import refs
from tdi.engine.refs import Reference
from tdi.errors import ConfigError

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("tdi-base", Reference("tdi-base")),
        ("tdi-base:abc", Reference("tdi-base", "abc")),
        ("team/app:1.2", Reference("team/app", "1.2")),
        ("127.0.0.1:5000/app", Reference("127.0.0.1:5000/app")),
        ("127.0.0.1:5000/app:production", Reference("127.0.0.1:5000/app", "production")),
        ("localhost/app:1", Reference("localhost/app", "1")),
        ("registry.example/team/app:1.2", Reference("registry.example/team/app", "1.2")),
        (f"app@{DIGEST}", Reference("app", None, DIGEST)),
        (f"127.0.0.1:5000/app@{DIGEST}", Reference("127.0.0.1:5000/app", None, DIGEST)),
        (f"reg.example/app:1@{DIGEST}", Reference("reg.example/app", "1", DIGEST)),
    ],
)
def test_parse_tags_ports_and_digests(ref: str, expected: Reference) -> None:
    assert refs.parse(ref) == expected
    assert str(expected) == ref  # and back


@pytest.mark.parametrize(
    ("ref", "registry", "path"),
    [
        ("127.0.0.1:5000/app:production", "127.0.0.1:5000", "app"),
        ("localhost/app", "localhost", "app"),
        ("[::1]:5000/team/app", "[::1]:5000", "team/app"),
        ("registry.example/team/app@" + DIGEST, "registry.example", "team/app"),
        ("team/app:1", None, "team/app"),
        ("tdi-base:abc", None, "tdi-base"),
        ("docker.io/team/app", None, "team/app"),
    ],
)
def test_registry_and_path(ref: str, registry: str | None, path: str) -> None:
    assert refs.registry_of(ref) == registry
    assert refs.parse(ref).path == path


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("tdi-base", ("tdi-base", "latest")),
        ("127.0.0.1:5000/app", ("127.0.0.1:5000/app", "latest")),
        ("127.0.0.1:5000/app:production", ("127.0.0.1:5000/app", "production")),
    ],
)
def test_split_keeps_a_registry_port_out_of_the_tag(ref: str, expected: tuple[str, str]) -> None:
    assert refs.split(ref) == expected


def test_split_of_a_digest_is_refused() -> None:
    with pytest.raises(ConfigError, match="expected a tag, not a digest"):
        refs.split(f"app@{DIGEST}")


@pytest.mark.parametrize(
    ("ref", "tag", "expected"),
    [
        ("127.0.0.1:5000/app:abc", "production", "127.0.0.1:5000/app:production"),
        ("127.0.0.1:5000/app", "production", "127.0.0.1:5000/app:production"),
        (f"app:1@{DIGEST}", "production-previous", "app:production-previous"),
    ],
)
def test_with_tag(ref: str, tag: str, expected: str) -> None:
    assert refs.with_tag(ref, tag) == expected


@pytest.mark.parametrize(
    ("ref", "problem"),
    [
        ("", "no repository name"),
        ("app:", "an empty tag or digest"),
        ("app@", "an empty tag or digest"),
        ("app@abc", "names no algorithm"),
        ("Team/App:1", "a repository name is lower case"),
        ("http://reg.example/app", "cannot contain a scheme"),
        ("-reg.example:5000/app", "Cannot begin or end with a hyphen"),
    ],
)
def test_parse_refuses_what_is_no_reference(ref: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        refs.parse(ref)
    message = str(info.value)
    assert message.startswith(f"image reference {ref!r}: ") and problem in message
    assert message.endswith("expected [REGISTRY/]NAME[:TAG][@sha256:DIGEST]")
