"""apk version ordering and dependency syntax."""

from __future__ import annotations

import pytest

from melange_bk.environment.versions import (
    Dependency,
    VersionError,
    compare_versions,
    parse_dependency,
    parse_provide,
    version_matches,
)

ASCENDING = [
    "0.9",
    "1.0_alpha",
    "1.0_alpha2",
    "1.0_beta",
    "1.0_pre1",
    "1.0_rc1",
    "1.0_rc2",
    "1.0",
    "1.0-r1",
    "1.0-r10",
    "1.0_p1",
    "1.0a",
    "1.0b",
    "1.0.1",
    "1.01.0",
    "1.1",
    "1.2_rc1",
    "1.2",
    "1.2_git20240101",
    "1.2_p1",
    "1.10",
    "2",
    "10.0",
]


@pytest.mark.parametrize("i", range(len(ASCENDING) - 1))
def test_ordering(i: int) -> None:
    a, b = ASCENDING[i], ASCENDING[i + 1]
    assert compare_versions(a, b) == -1, (a, b)
    assert compare_versions(b, a) == 1, (b, a)


def test_sorted_matches_the_list() -> None:
    import functools

    shuffled = list(reversed(ASCENDING))
    assert sorted(shuffled, key=functools.cmp_to_key(compare_versions)) == ASCENDING


@pytest.mark.parametrize(
    "a,b",
    [("1.0", "1.0"), ("1.0-r0", "1.0"), ("1.2.3-r4", "1.2.3-r4"), ("1.0_rc", "1.0_rc0")],
)
def test_equal(a: str, b: str) -> None:
    assert compare_versions(a, b) == 0


def test_numeric_not_lexical() -> None:
    assert compare_versions("1.9", "1.10") == -1
    assert compare_versions("1.0-r9", "1.0-r10") == -1


def test_leading_zero_is_a_fraction() -> None:
    assert compare_versions("1.01", "1.1") == -1
    assert compare_versions("1.001", "1.01") == -1
    assert compare_versions("2024.01.05", "2024.01.10") == -1


def test_invalid_versions_sort_below_valid() -> None:
    assert compare_versions("not-a-version", "0.1") == -1
    assert compare_versions("0.1", "@@") == 1


@pytest.mark.parametrize(
    "version,op,wanted,ok",
    [
        ("1.2", ">=", "1.2", True),
        ("1.1", ">=", "1.2", False),
        ("1.2", ">", "1.2", False),
        ("1.3", ">", "1.2", True),
        ("1.2", "<", "1.2", False),
        ("1.1", "<", "1.2", True),
        ("1.2", "<=", "1.2", True),
        ("1.2-r0", "=", "1.2-r0", True),
        ("1.2-r1", "=", "1.2-r0", False),
        ("1.2.3-r4", "~", "1.2", True),
        ("1.2-r4", "~", "1.2", True),
        ("1.2a", "~", "1.2", True),
        ("1.20", "~", "1.2", False),
        ("1.3", "~", "1.2", False),
        ("1.2.3-r4", "~", "1.2.3-r4", True),
        ("1.2.3-r5", "~", "1.2.3-r4", False),
    ],
)
def test_version_matches(version: str, op: str, wanted: str, ok: bool) -> None:
    assert version_matches(version, op, wanted) is ok


@pytest.mark.parametrize(
    "text,expected",
    [
        ("busybox", Dependency("busybox")),
        ("so:libc.so.6", Dependency("so:libc.so.6")),
        ("foo>=1.2", Dependency("foo", ">=", "1.2")),
        ("foo<2", Dependency("foo", "<", "2")),
        ("foo<=2", Dependency("foo", "<=", "2")),
        ("foo>2", Dependency("foo", ">", "2")),
        ("foo=1.0-r3", Dependency("foo", "=", "1.0-r3")),
        ("foo==1.0", Dependency("foo", "=", "1.0")),
        ("foo~1.2", Dependency("foo", "~", "1.2")),
        ("foo=~1.2", Dependency("foo", "~", "1.2")),
        ("!bar", Dependency("bar", conflict=True)),
        ("!bar<2", Dependency("bar", "<", "2", conflict=True)),
    ],
)
def test_parse_dependency(text: str, expected: Dependency) -> None:
    assert parse_dependency(text) == expected


def test_dependency_round_trip() -> None:
    for text in ("foo>=1.2", "!bar", "so:libz.so.1", "x~3"):
        assert str(parse_dependency(text)) == text


@pytest.mark.parametrize("text", ["", "foo>=", "foo>=abc", "!", "foo bar"])
def test_invalid_dependency(text: str) -> None:
    with pytest.raises(VersionError):
        parse_dependency(text, where="test")


def test_parse_provide() -> None:
    assert parse_provide("so:libc.so.6=6") == ("so:libc.so.6", "6")
    assert parse_provide("cmd:sh") == ("cmd:sh", None)


def test_versionless_provide_only_satisfies_unversioned() -> None:
    assert Dependency("cmd:sh").matches_version(None)
    assert not Dependency("cmd:sh", ">=", "1").matches_version(None)
