"""What the build graph needs to know about one melange YAML."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Tuple

# apk dependency syntax: name, optionally followed by a constraint (=, >=, <=, >, <, ~) and a version.
_CONSTRAINT = re.compile(r"^([^<>=~]+?)\s*(?:[<>=~]+.*)?$")


def strip_constraint(dep: str) -> Optional[str]:
    """`libgreet-dev>=1.0` -> `libgreet-dev`; `!conflict` -> None (a conflict is not a dependency)."""
    dep = dep.strip()
    if not dep or dep.startswith("!"):
        return None
    m = _CONSTRAINT.match(dep)
    return m.group(1).strip() if m else dep


Offer = Tuple[str, Optional[str], bool, int]


@dataclass(frozen=True)
class PackageNode:
    """One melange YAML, reduced to the names it provides and needs.

    `path` is the YAML's repository-relative path (it identifies the node); `provides` holds the package's own
    name, its subpackages' names and every `provides:` entry (constraints stripped); `build_needs`/`test_needs`
    are names as written (constraints allowed; `!conflicts` are ignored).
    """

    path: str
    name: str
    provides: Tuple[str, ...]
    build_needs: Tuple[str, ...] = ()
    test_needs: Tuple[str, ...] = ()
    provider_priority: int = 0
    # line numbers of each need, for error messages: (name, line)
    need_lines: Tuple[Tuple[str, int], ...] = ()
    # what the package offers apk, as (name, version or None, exact, provider_priority): its own and its
    # subpackages' names at the package's full version (exact), their `provides:` entries (`python3=3.13.15`, or
    # a virtual without version), with the priority of the (sub)package that provides it.
    # Empty: every name of `provides` at `version` (unversioned when that is empty), at `provider_priority`.
    offers: Tuple[Offer, ...] = ()
    version: str = ""  # the full version (`1.2.3-r4`)

    def offered(self) -> Tuple[Offer, ...]:
        return self.offers or tuple(
            (n, self.version or None, n == self.name, self.provider_priority) for n in self.provides
        )

    def line_of(self, need: str) -> Optional[int]:
        for name, line in self.need_lines:
            if name == need:
                return line
        return None
