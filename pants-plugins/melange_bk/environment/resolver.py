"""Choose the packages of an environment: names and constraints in, one version per package name out.

- A dependency `name[op version]` is satisfied by a package of that name, or by one that provides the name
  (`provides = so:libc.so.6=6`, `cmd:sh`, `pc:zlib=1.3`); a provide without a version (a virtual) only satisfies
  a dependency without a version constraint.
- `!name[op version]` (in the world or in a package's depends) forbids any package that is or provides `name`.
- Runtime `depend`s are followed transitively; at most one version of each package name is chosen.
- Choice is deterministic: a package of the exact name before providers of it, then the highest (provided)
  version, then the highest `provider_priority`, then the lowest package name, then the earliest repository.
  When a choice leads to a dead end, the next candidate is tried (bounded backtracking).
- A failure names the dependency that could not be satisfied and who asked for it ("world" for the requested
  packages).

The dependency graph is a networkx DiGraph; the install order is its topological order (dependencies first,
cycles kept together, ties broken by name).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import networkx as nx

from melange_bk.environment.repository import Package, RepositoryIndex
from melange_bk.environment.versions import (
    Dependency,
    VersionError,
    parse_dependency,
    parse_provide,
    provider_rank,
)
from melange_bk.errors import MelangeError

WORLD = "world"
MAX_STEPS = 200_000


class ResolveError(MelangeError):
    """The requested packages cannot be satisfied by the repositories."""


@dataclass(frozen=True)
class Provider:
    package: Package
    name: str  # the name provided
    version: Optional[str]  # the provided version; None for a versionless provide
    exact: bool  # the package's own name

    def __str__(self) -> str:
        if self.exact:
            return str(self.package)
        return f"{self.package} (provides {self.name}{'=' + self.version if self.version else ''})"


@dataclass(frozen=True)
class Resolution:
    world: Tuple[str, ...]  # the requested dependencies, sorted
    packages: Tuple[Package, ...]  # install order: dependencies first
    edges: Tuple[Tuple[str, str], ...]  # (package, the package it depends on), sorted

    @property
    def names(self) -> Tuple[str, ...]:
        return tuple(sorted(p.name for p in self.packages))

    def identity(self) -> Tuple[Tuple[str, str, str], ...]:
        """(name, version, checksum) of every package, sorted: equal for equal package sets."""
        return tuple(sorted((p.name, p.version, p.checksum) for p in self.packages))


class Universe:
    """Every package of the repositories, and who provides which name."""

    def __init__(self, packages: Iterable[Package]) -> None:
        self.packages: List[Package] = []
        self.providers: Dict[str, List[Provider]] = {}
        self.depends: Dict[Tuple[str, str, str], Tuple[Dependency, ...]] = {}
        seen = set()
        for pkg in packages:
            key = (pkg.name, pkg.version, pkg.entry.arch)
            if key in seen:  # the first repository wins, as in apk
                continue
            seen.add(key)
            self.packages.append(pkg)
            self.providers.setdefault(pkg.name, []).append(Provider(pkg, pkg.name, pkg.version, True))
            for text in pkg.entry.provides:
                name, version = parse_provide(text)
                if name == pkg.name:
                    continue
                self.providers.setdefault(name, []).append(Provider(pkg, name, version, False))
        self.position = {id(p): i for i, p in enumerate(self.packages)}

    def depends_of(self, pkg: Package) -> Tuple[Dependency, ...]:
        key = (pkg.name, pkg.version, pkg.checksum)
        deps = self.depends.get(key)
        if deps is None:
            deps = tuple(parse_dependency(d, where=str(pkg)) for d in pkg.entry.depends)
            self.depends[key] = deps
        return deps

    def candidates(self, dep: Dependency) -> List[Provider]:
        """Providers whose version satisfies `dep`, best first."""
        found = [p for p in self.providers.get(dep.name, []) if dep.matches_version(p.version)]
        return sort_providers(found, self.position)


def sort_providers(providers: List[Provider], position: Dict[int, int]) -> List[Provider]:
    def key(p: Provider) -> Tuple[object, ...]:
        return (
            *provider_rank(p.exact, p.version, p.package.entry.provider_priority, p.package.version),
            p.package.name,
            position.get(id(p.package), 0),
        )

    return sorted(providers, key=key)


@dataclass
class _Failure:
    depth: int
    message: str


def _provides_name(pkg: Package, dep: Dependency) -> bool:
    """Does `pkg` match `dep`'s name and version (itself or through a provide)?"""
    if pkg.name == dep.name and dep.matches_version(pkg.version):
        return True
    for text in pkg.entry.provides:
        name, version = parse_provide(text)
        if name == dep.name and (not dep.op or dep.matches_version(version)):
            return True
    return False


def parse_world(world: Sequence[str]) -> Tuple[Dependency, ...]:
    out = []
    for text in world:
        try:
            out.append(parse_dependency(text, where="environment.contents.packages"))
        except VersionError as e:
            raise ResolveError(e.message) from None
    return tuple(out)


def resolve(
    world: Sequence[str],
    indexes: Sequence[RepositoryIndex] = (),
    packages: Sequence[Package] = (),
) -> Resolution:
    """Resolves `world` (e.g. `("busybox", "so:libc.so.6", "!bash")`) against the packages of `indexes` (in
    repository order) plus `packages`."""
    universe = Universe([p for idx in indexes for p in idx.packages] + list(packages))
    deps = parse_world(world)
    try:
        selected = _search(universe, deps)
    except VersionError as e:
        raise ResolveError(e.message) from None
    return _ordered(universe, deps, selected)


def _search(universe: Universe, world: Tuple[Dependency, ...]) -> Dict[str, Package]:
    selected: Dict[str, Package] = {}
    chosen_for: Dict[str, str] = {}
    conflicts: List[Tuple[Dependency, str]] = []
    queue: List[Tuple[Dependency, str]] = [(d, WORLD) for d in world]
    pos = 0
    # choice points: (selected, chosen_for, len(conflicts), len(queue), pos, remaining alternatives)
    stack: List[Tuple[Dict[str, Package], Dict[str, str], int, int, int, List[Provider]]] = []
    best: Optional[_Failure] = None
    steps = 0

    def fail(message: str) -> bool:
        """Record a dead end; restore the next alternative, or return False when none is left."""
        nonlocal best, selected, chosen_for, pos
        if best is None or pos > best.depth:
            best = _Failure(pos, message)
        while stack:
            sel, cf, nconf, nqueue, p, alternatives = stack.pop()
            selected, chosen_for = dict(sel), dict(cf)
            del conflicts[nconf:]
            del queue[nqueue:]
            pos = p
            choice = alternatives[0]
            if len(alternatives) > 1:
                stack.append((sel, cf, nconf, nqueue, p, alternatives[1:]))
            if _allowed(choice.package) is None:
                _take(choice.package, queue[pos][1])
                pos += 1
                return True
        return False

    def _allowed(pkg: Package) -> Optional[str]:
        """None when `pkg` may be added, else why not."""
        other = selected.get(pkg.name)
        if other is not None and other is not pkg:
            return f"{other} was already chosen (for {chosen_for.get(pkg.name, WORLD)})"
        for c, who in conflicts:
            if _provides_name(pkg, c):
                return f"{pkg} conflicts with {c} (from {who})"
        return None

    def _take(pkg: Package, requester: str) -> None:
        selected[pkg.name] = pkg
        chosen_for[pkg.name] = requester
        for d in universe.depends_of(pkg):
            queue.append((d, str(pkg)))

    while pos < len(queue):
        steps += 1
        if steps > MAX_STEPS:
            raise ResolveError(f"dependency resolution gave up after {MAX_STEPS} steps")
        dep, requester = queue[pos]
        if dep.conflict:
            violators = sorted(
                str(p)
                for p in selected.values()
                if _provides_name(p, Dependency(dep.name, dep.op, dep.version))
            )
            if violators:
                if not fail(f'"{dep}" (required by {requester}) conflicts with {", ".join(violators)}'):
                    break
                continue
            conflicts.append((Dependency(dep.name, dep.op, dep.version), requester))
            pos += 1
            continue
        if any(_provides_name(p, dep) for p in selected.values()):
            pos += 1
            continue
        all_providers = universe.providers.get(dep.name, [])
        candidates = universe.candidates(dep)
        usable = [c for c in candidates if _allowed(c.package) is None]
        if not usable:
            if not all_providers:
                msg = f'no package provides "{dep.name}" (required by {requester})'
            elif not candidates:
                avail = sorted({str(p) for p in all_providers})
                msg = f'"{dep}" (required by {requester}) cannot be satisfied: available: {", ".join(avail[:8])}'
            else:
                why = _allowed(candidates[0].package)
                msg = f'"{dep}" (required by {requester}) cannot be satisfied: {why}'
            if not fail(msg):
                break
            continue
        if len(usable) > 1:
            stack.append((dict(selected), dict(chosen_for), len(conflicts), len(queue), pos, usable[1:]))
        _take(usable[0].package, requester)
        pos += 1
    else:
        return selected
    assert best is not None
    raise ResolveError(best.message)


def _ordered(universe: Universe, world: Tuple[Dependency, ...], selected: Dict[str, Package]) -> Resolution:
    graph = nx.DiGraph()
    graph.add_nodes_from(sorted(selected))
    edges = set()
    for name in sorted(selected):
        pkg = selected[name]
        for dep in universe.depends_of(pkg):
            if dep.conflict:
                continue
            providers = sorted(n for n, p in selected.items() if _provides_name(p, dep))
            if providers and name not in providers:
                edges.add((name, providers[0]))
    # edge dependency -> dependant, so that a topological order installs dependencies first
    graph.add_edges_from((b, a) for a, b in sorted(edges))
    condensed = nx.condensation(graph)
    members = condensed.graph["mapping"]
    groups: Dict[int, List[str]] = {}
    for node, comp in members.items():
        groups.setdefault(comp, []).append(node)
    order: List[str] = []
    for comp in nx.lexicographical_topological_sort(condensed, key=lambda c: min(groups[c])):
        order.extend(sorted(groups[comp]))
    return Resolution(
        world=tuple(sorted(str(d) for d in world)),
        packages=tuple(selected[n] for n in order),
        edges=tuple(sorted(edges)),
    )
