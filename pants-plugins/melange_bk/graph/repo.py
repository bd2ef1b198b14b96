"""The repository-wide graph: providers, inferred edges, cycles, build waves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import networkx as nx

from melange_bk.environment.versions import Dependency, VersionError, parse_dependency, provider_rank
from melange_bk.errors import ConfigError
from melange_bk.graph.model import PackageNode, strip_constraint


class CycleError(ConfigError):
    """Build dependency cycles remain: `cycle` is one of them (YAML paths), `breakers` the package names of a set
    that, taken from the repositories (bootstrap packages), breaks every cycle."""

    def __init__(self, message: str, cycle: Tuple[str, ...], breakers: Tuple[str, ...]) -> None:
        super().__init__(message)
        self.cycle = cycle
        self.breakers = breakers


@dataclass(frozen=True)
class Need:
    """An inferred edge: `node` needs `name`, which `provider` provides."""

    node: str  # YAML path
    name: str
    provider: str  # YAML path
    when: str  # "build" or "test"


class RepoGraph:
    """Build with `RepoGraph.from_nodes(nodes)`; every query is deterministic (sorted).

    `broken` maps YAML paths that could not be read to their error, `errors` maps readable YAMLs whose needs
    cannot be settled (a real tie between providers) to theirs; `external` holds, per YAML, the names it needs
    that come from the repositories (nobody in the tree provides them, or only bootstrap packages do)."""

    def __init__(
        self,
        nodes: Mapping[str, PackageNode],
        needs: Tuple[Need, ...],
        broken: Optional[Mapping[str, str]] = None,
        errors: Optional[Mapping[str, str]] = None,
        external: Optional[Mapping[str, Tuple[Tuple[str, str], ...]]] = None,
    ) -> None:
        self.nodes = dict(sorted(nodes.items()))
        self.needs = needs
        self.broken = dict(sorted((broken or {}).items()))
        self.errors = dict(sorted((errors or {}).items()))
        self.external = dict(sorted((external or {}).items()))
        g = nx.DiGraph()
        g.add_nodes_from(self.nodes)
        g.add_nodes_from(self.broken)
        self._direct: Dict[Tuple[str, str], List[str]] = {}
        self._needs_of: Dict[str, List[Need]] = {}
        for need in needs:
            self._direct.setdefault((need.node, need.when), []).append(need.provider)
            self._needs_of.setdefault(need.node, []).append(need)
            if need.when == "build":
                g.add_edge(need.node, need.provider)
        self.build_graph = g

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_nodes(
        cls,
        nodes: Iterable[PackageNode],
        explicit: Optional[Mapping[str, Sequence[str]]] = None,
        bootstrap: Iterable[str] = (),
        broken: Optional[Mapping[str, str]] = None,
        check: bool = True,
        broken_names: Optional[Mapping[str, Sequence[str]]] = None,
    ) -> RepoGraph:
        """Infer edges with apk's provider rules (`environment.versions.provider_rank`).

        `explicit` maps a YAML path to YAML paths it depends on explicitly: an explicit dependency on one of
        several providers settles a choice. `bootstrap` names packages (package names or YAML paths) whose
        YAML satisfies no other package's need: those needs come from the configured repositories, which is how
        a distribution breaks its build cycles. `broken` maps unreadable YAMLs to their error: each stands for
        the names `broken_names` guesses for it (`graph.scan.guess_names`; default: its file name), so that
        whoever needs it is known to need a broken YAML.
        With `check`, a remaining cycle raises `CycleError`."""
        by_path: Dict[str, PackageNode] = {}
        for node in nodes:
            if node.path in by_path:
                raise ConfigError("the same YAML appears twice in the graph", path=node.path)
            by_path[node.path] = node
        broken = dict(broken or {})
        bootstrap = tuple(bootstrap)
        boot = set(bootstrap)
        offers = _offers(n for n in by_path.values() if n.name not in boot and n.path not in boot)
        for path in sorted(broken):
            for name in sorted(set((broken_names or {}).get(path, ())) | {_stem(path)}):
                offers.setdefault(name, []).append(_Offer(path, None, True, 0, ""))
        explicit = {k: set(v) for k, v in (explicit or {}).items()}
        needs: List[Need] = []
        errors: Dict[str, str] = {}
        external: Dict[str, List[Tuple[str, str]]] = {}
        for path in sorted(by_path):
            node = by_path[path]
            for when, names in (("build", node.build_needs), ("test", node.test_needs)):
                seen = set()
                for raw in names:
                    dep = _dependency(raw)
                    if dep is None or (dep.name, dep.constraint) in seen:
                        continue
                    seen.add((dep.name, dep.constraint))
                    try:
                        provider = _choose(node, dep, offers.get(dep.name, ()), explicit.get(path, set()))
                    except ConfigError as e:
                        errors.setdefault(path, str(e))
                        continue
                    if provider is not None:
                        needs.append(Need(node=path, name=dep.name, provider=provider, when=when))
                    else:
                        external.setdefault(path, []).append((str(dep), when))
        graph = cls(
            by_path,
            tuple(needs),
            broken,
            errors,
            {k: tuple(sorted(set(v))) for k, v in external.items()},
        )
        if check and not nx.is_directed_acyclic_graph(graph.build_graph):
            # Taking a package from the repositories re-routes its names to other providers (python3 to
            # python-3.12 once python-3.13 is a bootstrap package), which can close new cycles: grow the set on
            # the re-resolved graph until none is left.
            chosen = list(dict.fromkeys(bootstrap))
            current = graph
            while not nx.is_directed_acyclic_graph(current.build_graph):
                chosen += [current._name(p) for p in current.feedback_vertex_set()]
                current = cls.from_nodes(by_path.values(), explicit, chosen, broken, False, broken_names)
            graph.check_acyclic(chosen)
        return graph

    # ------------------------------------------------------------------ queries
    def check_acyclic(self, breakers: Optional[Sequence[str]] = None) -> None:
        """Raise `CycleError` if a cycle is left; it suggests `breakers` (package names), by default a feedback
        vertex set of this graph (which re-routed needs may not keep acyclic: `from_nodes` checks that)."""
        if nx.is_directed_acyclic_graph(self.build_graph):  # fast; find_cycle's edge walk is not, at 3,000
            return
        groups = self.cycles_sccs()
        # The graph's insertion order follows the scan's: walk a sorted copy from the smallest path, and start
        # the reported cycle at its smallest path, so the message is the same on every run.
        group = self.build_graph.subgraph(groups[0])
        ordered: nx.DiGraph = nx.DiGraph()
        ordered.add_nodes_from(sorted(group.nodes))
        ordered.add_edges_from(sorted(group.edges))
        ring = [edge[0] for edge in nx.find_cycle(ordered, source=groups[0][0])]
        start = ring.index(min(ring))
        paths = ring[start:] + ring[:start] + [min(ring)]
        names = " -> ".join(self._name(p) for p in paths)
        if breakers is None:
            breakers = [self._name(p) for p in self.feedback_vertex_set()]
        breakers = tuple(breakers)
        raise CycleError(
            f"build dependency cycle: {names} ({', '.join(sorted(set(paths)))}; "
            f"{len(groups)} cyclic group(s)); taking these {len(breakers)} packages from the "
            f"repositories (bootstrap packages) breaks every cycle: {', '.join(breakers)}",
            cycle=tuple(paths),
            breakers=breakers,
        )

    def cycles_sccs(self) -> List[List[str]]:
        """The strongly connected groups of more than one package (self-edges never occur)."""
        return sorted(sorted(c) for c in nx.strongly_connected_components(self.build_graph) if len(c) > 1)

    def feedback_vertex_set(self) -> Tuple[str, ...]:
        """A small set of YAMLs whose removal leaves the build graph acyclic (greedy: repeatedly the package with
        the most in-group dependencies x dependents, ties by path), in the order chosen."""
        g = self.build_graph.copy()
        chosen: List[str] = []
        while True:
            groups = [c for c in nx.strongly_connected_components(g) if len(c) > 1]
            if not groups:
                return tuple(chosen)
            best = None
            for group in groups:
                sub = g.subgraph(group)
                for p in group:
                    key = (-(sub.in_degree(p) * sub.out_degree(p)), p)
                    if best is None or key < best:
                        best = key
            assert best is not None
            chosen.append(best[1])
            g.remove_node(best[1])

    def _name(self, path: str) -> str:
        node = self.nodes.get(path)
        return node.name if node is not None else _stem(path)

    def blocked_by(self, path: str) -> Tuple[str, ...]:
        """The broken YAMLs `path` needs (directly or through other packages, build or test)."""
        seen = {path}
        todo = [path]
        while todo:
            p = todo.pop()
            for when in ("build", "test"):
                for d in self._direct.get((p, when), ()):
                    if d not in seen:
                        seen.add(d)
                        todo.append(d)
        return tuple(sorted(p for p in seen if p in self.broken and p != path))

    def dependencies(self, path: str, when: str = "build") -> Tuple[str, ...]:
        """Direct dependencies (YAML paths) of one package."""
        return tuple(sorted(set(self._direct.get((path, when), ()))))

    def transitive_dependencies(self, path: str) -> Tuple[str, ...]:
        return tuple(sorted(nx.descendants(self.build_graph, path)))

    def dependents(self, path: str, test: bool = False) -> Tuple[str, ...]:
        """Every package that needs `path` transitively, at build time (and with `test`, at test time too: what
        Pants' `--changed-dependents=transitive` selects, since both kinds are target dependencies)."""
        if not test:
            return tuple(sorted(nx.ancestors(self.build_graph, path)))
        users: Dict[str, List[str]] = {}
        for need in self.needs:
            users.setdefault(need.provider, []).append(need.node)
        seen = {path}
        todo = [path]
        while todo:
            for user in users.get(todo.pop(), ()):
                if user not in seen:
                    seen.add(user)
                    todo.append(user)
        return tuple(sorted(seen - {path}))

    def build_order(self) -> Tuple[str, ...]:
        """Dependencies first; ties broken by path, so the order is stable."""
        return tuple(p for wave in self.waves() for p in wave)

    def waves(self, only: Optional[Iterable[str]] = None) -> Tuple[Tuple[str, ...], ...]:
        """Build waves: every package in a wave depends only on packages in earlier waves."""
        g = self.build_graph
        if only is not None:
            keep = set(only)
            todo = list(keep)
            while todo:  # everything the selected packages need, in one walk
                for d in g.successors(todo.pop()):
                    if d not in keep:
                        keep.add(d)
                        todo.append(d)
            g = g.subgraph(keep)
        g = g.subgraph(p for p in g if p in self.nodes)
        # edges point at dependencies: reverse so dependencies come first
        return tuple(tuple(sorted(gen)) for gen in nx.topological_generations(g.reverse(copy=False)))

    def to_json(self, only: Optional[Iterable[str]] = None) -> dict:
        waves = self.waves(only)
        members = {p for wave in waves for p in wave}
        return {
            "packages": {
                p: {
                    "name": self.nodes[p].name,
                    "provides": list(self.nodes[p].provides),
                    "build_dependencies": [d for d in self.dependencies(p, "build")],
                    "test_dependencies": [d for d in self.dependencies(p, "test")],
                    "in_tree": {
                        n.name: n.provider
                        for n in sorted(self._needs_of.get(p, ()), key=lambda n: (n.name, n.when != "build"))
                    },
                    "from_repositories": [dep for dep, _when in self.external.get(p, ())],
                    **({"error": self.errors[p]} if p in self.errors else {}),
                }
                for p in sorted(members)
            },
            "waves": [list(w) for w in waves],
            "broken": dict(self.broken),
        }

    def to_dot(self, only: Optional[Iterable[str]] = None) -> str:
        waves = self.waves(only)
        members = sorted({p for wave in waves for p in wave})
        lines = ["digraph melange {", "  rankdir=LR;"]
        for p in members:
            lines.append(f'  "{self.nodes[p].name}";')
        for p in members:
            for d in self.dependencies(p, "build"):
                lines.append(f'  "{self.nodes[p].name}" -> "{self.nodes[d].name}";')
        lines.append("}")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class _Offer:
    path: str  # the YAML offering the name
    version: Optional[str]
    exact: bool
    priority: int
    package_version: str

    def rank(self) -> Tuple[object, ...]:
        return provider_rank(self.exact, self.version, self.priority, self.package_version)


def _offers(nodes: Iterable[PackageNode]) -> Dict[str, List[_Offer]]:
    out: Dict[str, List[_Offer]] = {}
    for node in nodes:
        for name, version, exact, priority in node.offered():
            out.setdefault(name, []).append(_Offer(node.path, version, exact, priority, node.version))
    return out


def _stem(path: str) -> str:
    base = path.rsplit("/", 1)[-1]
    return base[: -len(".yaml")] if base.endswith(".yaml") else base


def _dependency(raw: str) -> Optional[Dependency]:
    """A need as apk reads it; None for a conflict. A need apk would reject keeps only its name."""
    try:
        dep = parse_dependency(raw)
    except VersionError:
        name = strip_constraint(raw)
        return Dependency(name) if name else None
    return None if dep.conflict else dep


def _choose(node: PackageNode, dep: Dependency, offers: Sequence[_Offer], explicit: set) -> Optional[str]:
    """The YAML that provides `dep` for `node` as apk would choose it, or None when nobody in the tree does.

    A package never satisfies its own build dependency (that comes from a repository); an explicit dependency
    on one of the candidates settles the choice; otherwise the best `provider_rank` wins and equal best ranks
    from different YAMLs are a tie (an error naming the need's line and the candidates)."""
    usable = [o for o in offers if o.path != node.path and dep.matches_version(o.version)]
    if not usable:
        return None
    paths = sorted({o.path for o in usable})
    if len(paths) == 1:
        return paths[0]
    chosen = [p for p in paths if p in explicit]
    if len(chosen) == 1:
        return chosen[0]
    usable.sort(key=lambda o: (o.rank(), o.path))
    best = usable[0].rank()
    top = sorted({o.path for o in usable if o.rank() == best})
    if len(top) == 1:
        return top[0]
    raise ConfigError(
        f'"{dep}" is provided by several packages: {", ".join(top)}; set provider-priority in one of them '
        "or add an explicit dependency",
        path=node.path,
        line=node.line_of(dep.name),
    )
