from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tdi import secrets
from tdi.state.content import mask


@pytest.fixture(autouse=True)
def _forget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts knowing no secret."""
    monkeypatch.setattr(secrets, "_known", secrets._Known())


def test_a_known_value_is_masked_raw_in_json_and_in_html() -> None:
    secrets.remember(['pa"ss<word>42'])
    assert secrets.scrub('dsn=x:pa"ss<word>42@db') == "dsn=x:****@db"
    assert secrets.scrub(json.dumps({"v": 'pa"ss<word>42'})) == '{"v": "****"}'
    assert secrets.scrub("<td>pa&quot;ss&lt;word&gt;42</td>") == "<td>****</td>"


def test_short_values_are_not_masked_and_multi_line_values_are_masked_line_by_line() -> None:
    secrets.remember(["db", "line-one-secret\nline-two-secret"])
    assert secrets.scrub("db host") == "db host"
    assert secrets.scrub("a line-two-secret b") == "a **** b"


def test_diffs_mask_known_values_that_no_heuristic_would_find() -> None:
    secrets.remember(["hunter2hunter2"])
    text, count = mask("motd: hunter2hunter2 is in the banner\nplain\n")
    assert (text, count) == ("motd: **** is in the banner\nplain\n", 1)


def test_named_and_leaves_find_what_a_vars_file_holds() -> None:
    data = {"db": {"password": "p4ss", "user": "app"}, "apps": [{"api_key": 12345}], "n": True}
    assert list(secrets.named(data)) == ["p4ss", "12345"]
    assert list(secrets.leaves(data)) == ["p4ss", "app", "12345"]


def test_a_childs_output_reaches_the_file_masked(tmp_path: Path) -> None:
    secrets.remember(["S3CR3T-value"])
    log = tmp_path / "out.log"
    with secrets.MaskedOutput(log) as fd:
        subprocess.run(
            [sys.executable, "-c", "print('token S3CR3T-value'); print('done')"],
            stdout=fd,
            check=True,
            timeout=30,
        )
    assert log.read_text() == "token ****\ndone\n"


def test_children_learn_the_secrets_through_their_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secrets.remember(["S3CR3T-value"])
    env = secrets.for_children({})
    monkeypatch.setattr(secrets, "_known", secrets._Known())
    monkeypatch.setenv(secrets.ENV, env[secrets.ENV])
    secrets.from_environment()
    assert secrets.scrub("x S3CR3T-value") == "x ****"
