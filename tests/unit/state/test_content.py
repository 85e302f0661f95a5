"""Content diffs: unified, cut, and never showing a secret-looking value."""

from __future__ import annotations

import pytest

from tdi.state.content import MASK, MAX_LINES, as_text, mask, unified


@pytest.mark.parametrize(
    "line",
    [
        "password = hunter2",
        "db_password: hunter2",
        '"api_key": "hunter2",',
        "export DB_PASSWD=hunter2",
        "requirepass hunter2",
        "  auth_token=hunter2",
        "SECRET_KEY = 'hunter2'",
    ],
)
def test_a_secret_looking_value_is_masked(line: str) -> None:
    text, count = mask(f"{line}\nplain = visible\n")
    assert "hunter2" not in text
    assert MASK in text and "plain = visible" in text
    assert count == 1


def test_a_private_key_block_is_masked_but_its_markers_stay() -> None:
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\nxyz\n-----END RSA PRIVATE KEY-----\nafter\n"
    text, count = mask(pem)
    assert "MIIEabc" not in text and "xyz" not in text
    assert text.startswith("-----BEGIN RSA PRIVATE KEY-----\n") and text.endswith("after\n")
    assert count == 2


def test_unified_from_fresh_to_upgrade() -> None:
    found = unified("/etc/a", "one\ntwo\n", "one\nthree\n")
    assert found.text.splitlines() == [
        "--- fresh:/etc/a",
        "+++ upgrade:/etc/a",
        "@@ -1,2 +1,2 @@",
        " one",
        "-two",
        "+three",
    ]
    assert found.notes == ()


def test_a_long_diff_is_cut_with_a_note() -> None:
    found = unified("/etc/big", None, "".join(f"line {i}\n" for i in range(500)))
    assert len(found.text.splitlines()) == MAX_LINES
    assert found.notes == (f"cut at {MAX_LINES} of 503 lines",)


def test_when_only_masked_values_differ_the_note_says_so() -> None:
    found = unified("/etc/a", "token=old\n", "token=new\n")
    assert found.text == ""
    assert found.notes == ("values of 2 secret-looking lines masked", "only masked lines differ")


def test_binary_content_is_not_text() -> None:
    assert as_text(b"a\0b") is None
    assert as_text(b"\xff\xfe") is None
    assert as_text("ü\n".encode()) == "ü\n"


@pytest.mark.parametrize(
    ("line", "masked"),
    [
        ("dsn=postgres://app:S3CR3T@db/app", "dsn=postgres://app:****@db/app"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc", "Authorization: Bearer ****"),
        (
            "header = 'authorization: Basic YXBwOlMzQ1IzVA=='",
            "header = 'authorization: Basic ****'",
        ),
        ("API=sk_live_4eC39HqLyjWDarjtT1zdp7dcX9aBc", "API=****"),
    ],
)
def test_credentials_inside_a_line_are_masked(line: str, masked: str) -> None:
    assert mask(line + "\n") == (masked + "\n", 1)


@pytest.mark.parametrize(
    "line",
    [
        "sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "ExecStart=/opt/MyApp2/lib/SomethingLong/Version3/run.py --port 8080",
        "server_name www.example.com;",
    ],
)
def test_checksums_paths_and_words_are_not_secrets(line: str) -> None:
    assert mask(line + "\n") == (line + "\n", 0)


def test_a_diffs_header_names_its_sides_as_asked() -> None:
    # Parity's are fresh and upgrade; the plan's before and after; a rollback's baseline
    # and rollback.
    assert unified("/etc/a", "old\n", "new\n").text.startswith("--- fresh:/etc/a\n+++ upgrade:")
    found = unified("/etc/a", "old\n", "new\n", ("baseline", "rollback")).text
    assert found.startswith("--- baseline:/etc/a\n+++ rollback:/etc/a\n")
    added = unified("/etc/b", None, "new\n", ("before", "after")).text
    assert added.startswith("--- /dev/null\n+++ after:/etc/b\n")


@pytest.mark.parametrize(
    "line", ["    server_tokens on;\n", "PasswordAuthentication no\n", "token_ttl = 3600\n"]
)
def test_a_secret_named_switch_or_number_is_a_setting_not_a_secret(line: str) -> None:
    assert mask(line) == (line, 0)


def test_a_secret_named_value_is_still_masked() -> None:
    assert mask("api_token = 'x9Kq2'\n")[0] == f"api_token = {MASK}\n"
