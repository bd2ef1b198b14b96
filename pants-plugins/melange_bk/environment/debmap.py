"""The Debian build rootfs as Wolfi package names: `debian-build.yaml` (next to this file) read and checked.

Standalone on purpose (only PyYAML): `bin/rootfs` runs this file with the machine's python3 to learn which Debian
packages to install (`python3 debmap.py --debian-packages`), and `environment.bootstrap` imports it to write the
meta packages; both read the same data, for the same profile:

- `core` (the default): the names listed under `core:` — what C/C++, autotools, cmake, meson, python and perl
  builds ask for most, a rootfs of about the size it always had (the example monorepo and CI build on it);
- `full`: every name in the file (a rootfs of several GB, for trying a Wolfi-sized tree).

The profile is `MELANGE_BK_DEBIAN_PROFILE` (read here, so that `bin/rootfs` and `melange-bk bootstrap-repo` cannot
disagree); each profile's tarball has its own name under .cache/rootfs/.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import yaml

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "debian-build.yaml")
PROFILE_ENV = "MELANGE_BK_DEBIAN_PROFILE"
PROFILES = ("core", "full")
_NAME = re.compile(r"^[A-Za-z0-9][a-zA-Z0-9_.+-]*$")
_DEBIAN = re.compile(r"^[a-z0-9][a-z0-9.+-]+$")
_PROVIDE = re.compile(r"^(so|cmd|pc):[^\s=]+(=[0-9][^\s]*)?$")


class MappingError(Exception):
    pass


@dataclass(frozen=True)
class Entry:
    name: str  # the Wolfi package name the meta package has
    debian: Tuple[str, ...]  # the Debian packages that stand in for it
    provides: Tuple[str, ...] = ()
    version: str = "0"


@dataclass(frozen=True)
class DebianMap:
    suite: str
    entries: Tuple[Entry, ...]  # sorted by name
    core: Tuple[str, ...] = ()  # the names of the `core` profile, sorted

    def profile(self, name: str) -> DebianMap:
        """The map reduced to a profile's names (`full`: all of them)."""
        if name not in PROFILES:
            raise MappingError(f"{PROFILE_ENV}={name!r}: expected one of {', '.join(PROFILES)}")
        if name == "full":
            return self
        keep = set(self.core)
        return DebianMap(self.suite, tuple(e for e in self.entries if e.name in keep), self.core)

    def debian_packages(self) -> Tuple[str, ...]:
        """Every Debian package the rootfs needs, sorted."""
        return tuple(sorted({d for e in self.entries for d in e.debian}))


def _strings(value: Any, where: str, pattern: re.Pattern[str]) -> Tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and pattern.match(v) for v in value):
        raise MappingError(f"{where}: expected a list of names matching {pattern.pattern}, not {value!r}")
    return tuple(value)


def parse(text: str, where: str = DATA) -> DebianMap:
    data = yaml.safe_load(text)
    if (
        not isinstance(data, dict)
        or set(data) != {"suite", "core", "packages"}
        or not isinstance(data["packages"], dict)
    ):
        raise MappingError(f"{where}: expected the keys suite, core (a list) and packages (a mapping)")
    entries = []
    for name, value in data["packages"].items():
        at = f"{where}: packages.{name}"
        if not isinstance(name, str) or not _NAME.match(name):
            raise MappingError(f"{at}: not a package name")
        fields: Dict[str, Any] = value if isinstance(value, dict) else {"debian": value}
        unknown = set(fields) - {"debian", "provides", "version"}
        if unknown:
            raise MappingError(f"{at}: unknown keys {sorted(unknown)}")
        version = str(fields.get("version", "0"))
        if not re.match(r"^[0-9][0-9a-z._]*$", version):
            raise MappingError(f"{at}: version {version!r} is not an apk version")
        entries.append(
            Entry(
                name=name,
                debian=_strings(fields.get("debian"), f"{at}.debian", _DEBIAN),
                provides=tuple(sorted(_strings(fields.get("provides", []), f"{at}.provides", _PROVIDE))),
                version=version,
            )
        )
    core = _strings(data["core"], f"{where}: core", _NAME)
    unknown = sorted(set(core) - set(data["packages"]))
    if unknown:
        raise MappingError(f"{where}: core names packages the mapping lacks: {', '.join(unknown)}")
    return DebianMap(
        suite=str(data["suite"]),
        entries=tuple(sorted(entries, key=lambda e: e.name)),
        core=tuple(sorted(core)),
    )


def load(path: Optional[str] = None, profile: Optional[str] = None) -> DebianMap:
    """The mapping reduced to `profile` (default: $MELANGE_BK_DEBIAN_PROFILE, else `core`)."""
    path = path or DATA
    with open(path, encoding="utf-8") as f:
        mapping = parse(f.read(), path)
    return mapping.profile(profile or os.environ.get(PROFILE_ENV) or "core")


if __name__ == "__main__":
    try:
        if sys.argv[1:] == ["--debian-packages"]:
            print(" ".join(load().debian_packages()))
        elif sys.argv[1:] == ["--suite"]:
            print(load().suite)
        elif sys.argv[1:] == ["--profile"]:
            print(os.environ.get(PROFILE_ENV) or "core")
        else:
            sys.exit("usage: debmap.py --debian-packages | --suite | --profile")
    except MappingError as e:
        sys.exit(f"debmap.py: {e}")
