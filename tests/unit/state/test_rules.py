"""The parity allowlist: known differences that do not fail a run, until they expire."""

from __future__ import annotations

import datetime as dt

from tdi.state.diff import Difference
from tdi.state.rules import Rule, apply_allow

TODAY = dt.date(2026, 6, 15)


def file_diff(path: str) -> Difference:
    return Difference("file", path, None, {"type": "file"}, kind="stale")


def test_glob_key_allows_matching_differences() -> None:
    entry = Rule("file", "/etc/cron.d/*", "cleanup job goes in 2.0", None, "parity.allow[0]")
    differences = [file_diff("/etc/cron.d/tidy"), file_diff("/etc/crontab")]
    out, expired = apply_allow(differences, [entry], TODAY)
    assert expired == []
    assert [d.allowed for d in out] == ["cleanup job goes in 2.0", ""]
    assert [d.fails for d in out] == [False, True]
    assert out[0].kind == "stale"  # everything else is kept
    assert differences[0].allowed == ""  # the input is left alone


def test_category_must_match() -> None:
    entry = Rule("package", "cron", "keep cron", None, "parity.allow[0]")
    service = Difference("service", "cron", None, {"enabled": True})
    package = Difference("package", "cron", None, {"version": "3.0"})
    out, _ = apply_allow([service, package], [entry], TODAY)
    assert [d.allowed for d in out] == ["", "keep cron"]


def test_first_matching_entry_gives_the_reason() -> None:
    entries = [
        Rule("file", "/srv/*", "first", None, "parity.allow[0]"),
        Rule("file", "*", "second", None, "parity.allow[1]"),
    ]
    out, _ = apply_allow([file_diff("/srv/a"), file_diff("/etc/a")], entries, TODAY)
    assert [d.allowed for d in out] == ["first", "second"]


def test_expired_entry_allows_nothing_and_is_reported() -> None:
    entry = Rule("file", "/etc/cron.d/*", "cleanup job", dt.date(2026, 6, 14), "parity.allow[3]")
    out, expired = apply_allow([file_diff("/etc/cron.d/tidy")], [entry], TODAY)
    assert out[0].allowed == ""
    assert out[0].fails
    (message,) = expired
    assert message.startswith("parity.allow[3] (file:/etc/cron.d/*) expired on 2026-06-14")
    assert "cleanup job" in message


def test_expired_entry_is_reported_even_when_nothing_matches_it() -> None:
    entry = Rule("user", "old", "gone", dt.date(2020, 1, 1), "parity.allow[0]")
    out, expired = apply_allow([], [entry], TODAY)
    assert out == []
    assert len(expired) == 1


def test_entry_is_live_on_its_until_day_and_without_one() -> None:
    entries = [
        Rule("file", "/a", "until today", TODAY, "parity.allow[0]"),
        Rule("file", "/b", "no end", None, "parity.allow[1]"),
    ]
    out, expired = apply_allow([file_diff("/a"), file_diff("/b")], entries, TODAY)
    assert expired == []
    assert [d.allowed for d in out] == ["until today", "no end"]
    assert entries[0].expired(TODAY + dt.timedelta(days=1))
    assert not entries[1].expired(dt.date.max)


def test_an_expired_entry_does_not_hide_a_live_one() -> None:
    entries = [
        Rule("file", "/a", "old", dt.date(2020, 1, 1), "parity.allow[0]"),
        Rule("file", "/a", "renewed", dt.date(2030, 1, 1), "parity.allow[1]"),
    ]
    out, expired = apply_allow([file_diff("/a")], entries, TODAY)
    assert out[0].allowed == "renewed"
    assert [m.split(" ")[0] for m in expired] == ["parity.allow[0]"]


def test_a_rule_with_a_host_matches_on_that_host_only() -> None:
    rule = Rule("file", "/etc/lb.state", "random", host="lb")
    d = file_diff("/etc/lb.state")
    assert rule.matches(d, "lb")
    assert not rule.matches(d, "web1")
    assert not rule.matches(d)
    assert Rule("file", "/etc/*", "any host").matches(d, "web1")
    assert rule.name() == "(file:/etc/lb.state on lb)"


def test_unmanaged_and_nondeterministic_differences_do_not_fail() -> None:
    kinds = ("unmanaged", "nondeterministic", "stale", "not-applied", "diverged")
    quiet = [k for k in kinds if not Difference("file", "/a", None, {}, kind=k).fails]
    assert quiet == ["unmanaged", "nondeterministic"]
