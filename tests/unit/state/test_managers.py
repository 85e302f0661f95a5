"""Each package manager's commands and version order. rpm's order is tdi's own code, so
it is checked here case by case; it also gave rpm 4.18's rpm.vercmp answer on each of
40,000 random pairs (README, "Beyond Debian")."""

from __future__ import annotations

import pytest

from tdi.state import managers
from tdi.state.managers import rpm_compare


@pytest.mark.parametrize(
    ("a", "b", "order"),
    [
        ("1.0-1", "1.0-1", 0),
        ("1.0-2", "1.0-10", -1),  # numbers as numbers, not text
        ("1.0.0-1", "1.0.rc1-1", 1),  # a number beats letters: dpkg says the opposite
        ("1.0~rc1-1", "1.0-1", -1),  # tilde: before the release it precedes
        ("1.0-1", "1.0^git1-1", -1),  # caret: after the end, before 1.0.1
        ("1.0^git1-1", "1.0.1-1", -1),
        ("1:1.0-1", "2.0-1", 1),  # the epoch first
        ("0:2.0-1", "2.0-1", 0),  # a missing epoch is 0
        ("2.0", "2.0-1", -1),  # a missing release is older than any
        ("1.0-1.el9", "1.0-1.el9_2", -1),
        ("1.0_1", "1.0.1", 0),  # any other character only separates
        ("010", "10", 0),  # leading zeros do not count
        ("123456789012345678901", "9", 1),  # longer than any integer type
        ("a", "B", 1),  # letters as ASCII
        ("1.0é", "1.0", 0),  # a non-ASCII letter separates, as in rpm
    ],
)
def test_rpm_orders_versions_as_rpm_does(a: str, b: str, order: int) -> None:
    assert rpm_compare(a, b) == order
    assert rpm_compare(b, a) == -order


def test_a_record_without_a_manager_is_dpkg_s() -> None:
    assert managers.manager_of({"version": "1.0", "status": "ii"}) == "dpkg"
    assert managers.manager_of(None) == "dpkg"
    assert managers.manager_of({"manager": "rpm"}) == "rpm"


def test_each_manager_lists_a_package_s_files_by_its_own_name() -> None:
    assert managers.files_argv("cron", "dpkg") == ["dpkg-query", "-L", "cron"]
    assert managers.files_argv("tdi-demo@rpm", "rpm") == ["rpm", "-ql", "tdi-demo"]
    assert managers.files_argv("busybox", "apk") == ["apk", "info", "-qL", "busybox"]


def test_the_files_a_manager_lists_are_absolute_paths() -> None:
    assert managers.files_in("/.\n/etc/cron\n/usr/sbin/cron\n", "dpkg") == {
        "/.",
        "/etc/cron",
        "/usr/sbin/cron",
    }
    assert managers.files_in("(contains no files)\n", "rpm") == frozenset()
    assert managers.files_in("/etc/tdi-demo.conf\n", "rpm") == {"/etc/tdi-demo.conf"}
    listed = "busybox-1.36.1-r29 contains:\nbin/busybox\netc/securetty\n\n"
    assert managers.files_in(listed, "apk") == {"/bin/busybox", "/etc/securetty"}


class Host:
    """Answers a version comparison as a host's dpkg or apk would, and records it."""

    def __init__(self, code: int, out: bytes = b"") -> None:
        self.answer = code, out
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str]) -> tuple[int, bytes]:
        self.calls.append(argv)
        return self.answer


def test_dpkg_and_apk_compare_on_the_host_and_rpm_here() -> None:
    dpkg = Host(0)
    assert managers.newer({"status": "ii"}, "1.24", "1.22", dpkg)
    assert dpkg.calls == [["dpkg", "--compare-versions", "1.24", "gt", "1.22"]]
    apk = Host(0, b">\n")
    assert managers.newer({"manager": "apk"}, "1.2-r1", "1.2-r0", apk)
    assert apk.calls == [["apk", "version", "-t", "1.2-r1", "1.2-r0"]]
    assert not managers.newer({"manager": "apk"}, "1.2-r0", "1.2-r1", Host(0, b"<\n"))
    rpm = Host(1)
    assert managers.newer({"manager": "rpm"}, "1.0.0-1", "1.0.rc1-1", rpm)
    assert not managers.newer({"manager": "rpm"}, "1.0.rc1-1", "1.0.0-1", rpm)
    assert rpm.calls == []
