"""apk versions and dependency strings.

Versions (apk-tools' grammar): `<digits>(.<digits>)*[<letter>](_<suffix>[<digits>])*[~<hash>][-r<digits>]`, with
suffixes ordered `_alpha < _beta < _pre < _rc < (none) < _cvs < _svn < _git < _hg < _p`. Numeric components
compare as integers, except that a later component with a leading zero compares as a decimal fraction
(`1.01 < 1.1`); a longer version with an equal prefix is newer (`1.2 < 1.2.1`), a letter is newer than none
(`1.2 < 1.2a`), and the revision `-rN` is compared last.

Dependency strings: `name`, `name<op>version` with op one of `= == < <= > >= ~ =~`, and `!name[<op>version]`
for conflicts. Provides: `name` (no version: a virtual) or `name=version`.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Optional, Tuple

from melange_bk.errors import MelangeError

SUFFIXES = ("alpha", "beta", "pre", "rc", "", "cvs", "svn", "git", "hg", "p")
_NO_SUFFIX = SUFFIXES.index("")
_VERSION_RE = re.compile(
    r"^(?P<nums>[0-9]+(?:\.[0-9]+)*)"
    r"(?P<letter>[a-z]?)"
    r"(?P<suffixes>(?:_(?:alpha|beta|pre|rc|cvs|svn|git|hg|p)[0-9]*)*)"
    r"(?:~(?P<hash>[0-9a-f]+))?"
    r"(?:-r(?P<rev>[0-9]+))?$"
)
_SUFFIX_RE = re.compile(r"_(alpha|beta|pre|rc|cvs|svn|git|hg|p)([0-9]*)")
_DEP_RE = re.compile(
    r"^(?P<neg>!?)(?P<name>[^=<>~!\s]+)(?:(?P<op>==|=~|<=|>=|=|<|>|~)(?P<version>[^=<>~!\s]\S*))?$"
)
OPS = ("=", "<", "<=", ">", ">=", "~")


class VersionError(MelangeError):
    """A version or dependency string apk would not accept."""


@dataclass(frozen=True)
class Version:
    text: str
    nums: Tuple[str, ...]
    letter: str
    suffixes: Tuple[Tuple[int, int], ...]  # (index in SUFFIXES, number)
    hash: str
    revision: Optional[int]  # None when the text has no -rN


@functools.lru_cache(maxsize=65536)
def parse_version(text: str) -> Version:
    m = _VERSION_RE.match(text)
    if not m:
        raise VersionError(f"invalid apk version {text!r}")
    suffixes = tuple(
        (SUFFIXES.index(kind), int(num) if num else 0)
        for kind, num in _SUFFIX_RE.findall(m.group("suffixes"))
    )
    rev = m.group("rev")
    return Version(
        text=text,
        nums=tuple(m.group("nums").split(".")),
        letter=m.group("letter"),
        suffixes=suffixes,
        hash=m.group("hash") or "",
        revision=int(rev) if rev is not None else None,
    )


def is_valid_version(text: str) -> bool:
    try:
        parse_version(text)
    except VersionError:
        return False
    return True


def _cmp(a: object, b: object) -> int:
    return (a > b) - (a < b)  # type: ignore[operator]


def _cmp_num(a: str, b: str, first: bool) -> int:
    if not first and (a.startswith("0") or b.startswith("0")):
        # a decimal fraction: 01 < 1, 05 < 1, 001 < 01
        return _cmp(a.rstrip("0"), b.rstrip("0"))
    return _cmp(int(a), int(b))


def _compare_parsed(a: Version, b: Version, fuzzy: bool = False) -> int:
    """With `fuzzy`, `b` is a prefix pattern: parts it does not have compare equal."""
    for i in range(min(len(a.nums), len(b.nums))):
        c = _cmp_num(a.nums[i], b.nums[i], i == 0)
        if c:
            return c
    if len(a.nums) != len(b.nums):
        if fuzzy and len(b.nums) < len(a.nums):
            return 0 if not (b.letter or b.suffixes or b.revision is not None) else 1
        return _cmp(len(a.nums), len(b.nums))
    if fuzzy and not b.letter and not b.suffixes and b.revision is None:
        return 0
    c = _cmp(a.letter, b.letter)
    if c:
        return c
    for i in range(max(len(a.suffixes), len(b.suffixes))):
        sa = a.suffixes[i] if i < len(a.suffixes) else None
        sb = b.suffixes[i] if i < len(b.suffixes) else None
        if sb is None and fuzzy:
            return 0
        ka = sa if sa is not None else (_NO_SUFFIX, 0)
        kb = sb if sb is not None else (_NO_SUFFIX, 0)
        c = _cmp(ka, kb)
        if c:
            return c
    if fuzzy and b.revision is None:
        return 0
    c = _cmp(a.hash, b.hash)
    if c:
        return c
    return _cmp(a.revision or 0, b.revision or 0)


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as apk orders `a` and `b`; invalid versions sort below valid ones, then as strings."""
    try:
        pa = parse_version(a)
    except VersionError:
        pa = None
    try:
        pb = parse_version(b)
    except VersionError:
        pb = None
    if pa is None or pb is None:
        if pa is None and pb is None:
            return _cmp(a, b)
        return -1 if pa is None else 1
    return _compare_parsed(pa, pb)


version_key = functools.cmp_to_key(compare_versions)


class _Desc:
    """Reverses the order of a comparable value inside a sort key."""

    __slots__ = ("v",)

    def __init__(self, v: object) -> None:
        self.v = v

    def __lt__(self, other: _Desc) -> bool:
        return other.v < self.v  # type: ignore[operator,no-any-return]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.v == other.v


def provider_rank(
    exact: bool, version: Optional[str], provider_priority: int, package_version: str
) -> Tuple[object, ...]:
    """apk's preference among providers of one name, best (lowest) first: the package of that exact name, then
    a versioned provide before a virtual one, then the highest provided version, then the highest
    provider_priority, then the newest package. The environment resolver and the repository graph
    (`melange_bk.graph`) both rank by it; providers with equal ranks are a tie that only arbitrary order
    (package name, repository) would break."""
    return (
        0 if exact else 1,
        0 if version is not None else 1,
        _Desc(version_key(version or "")),
        -provider_priority,
        _Desc(version_key(package_version)),
    )


def version_matches(version: str, op: str, wanted: str) -> bool:
    """Does `version` satisfy `<op> wanted`? (op one of OPS)."""
    if op == "~":
        try:
            return _compare_parsed(parse_version(version), parse_version(wanted), fuzzy=True) == 0
        except VersionError:
            return version == wanted
    c = compare_versions(version, wanted)
    if op == "=":
        return c == 0
    if op == "<":
        return c < 0
    if op == "<=":
        return c <= 0
    if op == ">":
        return c > 0
    if op == ">=":
        return c >= 0
    raise VersionError(f"unknown version operator {op!r}")


@dataclass(frozen=True)
class Dependency:
    """One dependency (`name>=1.2`) or conflict (`!name`)."""

    name: str
    op: str = ""  # "" (any version) or one of OPS
    version: str = ""
    conflict: bool = False

    def __str__(self) -> str:
        return ("!" if self.conflict else "") + self.name + (f"{self.op}{self.version}" if self.op else "")

    @property
    def constraint(self) -> str:
        return f"{self.op}{self.version}" if self.op else ""

    def matches_version(self, version: Optional[str]) -> bool:
        """A provider with `version` (None: a versionless provide) satisfies the version part."""
        if not self.op:
            return True
        if version is None:
            return False
        return version_matches(version, self.op, self.version)


def parse_dependency(text: str, where: str = "") -> Dependency:
    """`name`, `name>=1.2`, `!name`, `name=~1.2` (as `~`); `where` names the source in errors."""
    m = _DEP_RE.match(text.strip())
    if not m:
        raise VersionError(f"invalid dependency {text!r}" + (f" (in {where})" if where else ""))
    op = m.group("op") or ""
    op = {"==": "=", "=~": "~"}.get(op, op)
    version = m.group("version") or ""
    if op and not is_valid_version(version):
        raise VersionError(
            f"invalid version {version!r} in dependency {text!r}" + (f" (in {where})" if where else "")
        )
    return Dependency(name=m.group("name"), op=op, version=version, conflict=bool(m.group("neg")))


def parse_provide(text: str) -> Tuple[str, Optional[str]]:
    """`so:libc.so.6=6` -> ("so:libc.so.6", "6"); `cmd:sh` -> ("cmd:sh", None)."""
    name, sep, version = text.partition("=")
    return name, (version if sep and version else None)
