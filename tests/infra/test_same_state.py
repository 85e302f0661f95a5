"""Checks across both states: they only run under tdi (`tdi test`, `tdi verify`)."""

from __future__ import annotations


def test_nginx_configuration_is_the_same(same_on_both):
    # nginx -T prints the whole configuration nginx runs with, every included file.
    same_on_both("nginx -T 2>/dev/null")


def test_same_packages(same_on_both):
    same_on_both("dpkg-query -W -f '${Package} ${Version}\\n'")
