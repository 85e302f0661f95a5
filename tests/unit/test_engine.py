"""Pure helpers of tdi.engine: image references and which registry they name."""

from __future__ import annotations

import pytest

from tdi.engine import registry_of, split_ref


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("tdi-base:abc", ("tdi-base", "abc")),
        ("tdi-base", ("tdi-base", "latest")),
        ("127.0.0.1:5000/app:production", ("127.0.0.1:5000/app", "production")),
        ("127.0.0.1:5000/app", ("127.0.0.1:5000/app", "latest")),
        ("registry.example/team/app:1.2", ("registry.example/team/app", "1.2")),
    ],
)
def test_split_ref_keeps_a_registry_port_out_of_the_tag(
    ref: str, expected: tuple[str, str]
) -> None:
    assert split_ref(ref) == expected


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("127.0.0.1:5000/app:production", "127.0.0.1:5000"),
        ("localhost/app", "localhost"),
        ("registry.example/team/app", "registry.example"),
        ("team/app:1", None),
        ("tdi-base:abc", None),
    ],
)
def test_registry_of(ref: str, expected: str | None) -> None:
    assert registry_of(ref) == expected
