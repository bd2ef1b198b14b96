"""The repository-wide graph: providers, inferred edges, cycles, build waves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import networkx as nx

from melange_bk.errors import ConfigError
from melange_bk.graph.model import PackageNode, strip_constraint


@dataclass(frozen=True)
class Need:
    """An inferred edge: `node` needs `name`, which `provider` provides."""

    node: str  # YAML path
    name: str
    provider: str  # YAML path
    when: str  # "build" or "test"


class RepoGraph:
    """Build with `RepoGraph.from_nodes(nodes)`; every query is deterministic (sorted)."""

    def __init__(self, nodes: Mapping[str, PackageNode], needs: Tuple[Need, ...]) -> None:
        self.nodes = dict(sorted(nodes.items()))
        self.needs = needs
        g = nx.DiGraph()
        g.add_nodes_from(self.nodes)
        for need in needs:
            if need.when == "build":
                g.add_edge(need.node, need.provider)
        self.build_graph = g

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_nodes(
        cls,
        nodes: Iterable[PackageNode],
        explicit: Optional[Mapping[str, Sequence[str]]] = None,
    ) -> RepoGraph:
        """Infer edges. `explicit` maps a YAML path to YAML paths it depends on explicitly: an explicit dependency
        on one of several providers settles an ambiguity."""
        by_path: Dict[str, PackageNode] = {}
        for node in nodes:
            if node.path in by_path:
                raise ConfigError("the same YAML appears twice in the graph", path=node.path)
            by_path[node.path] = node
        providers = _providers(by_path.values())
        explicit = {k: set(v) for k, v in (explicit or {}).items()}
        needs: List[Need] = []
        for path in sorted(by_path):
            node = by_path[path]
            for when, names in (("build", node.build_needs), ("test", node.test_needs)):
                seen = set()
                for raw in names:
                    name = strip_constraint(raw)
                    if name is None or name in seen:
                        continue
                    seen.add(name)
                    provider = _choose(
                        node, name, providers.get(name, ()), by_path, explicit.get(path, set())
                    )
                    if provider is not None:
                        needs.append(Need(node=path, name=name, provider=provider, when=when))
        graph = cls(by_path, tuple(needs))
        graph.check_acyclic()
        return graph

    # ------------------------------------------------------------------ queries
    def check_acyclic(self) -> None:
        try:
            cycle = nx.find_cycle(self.build_graph)
        except nx.NetworkXNoCycle:
            return
        paths = [edge[0] for edge in cycle] + [cycle[0][0]]
        names = " -> ".join(self.nodes[p].name for p in paths)
        files = ", ".join(sorted(set(paths)))
        raise ConfigError(f"build dependency cycle: {names} ({files})")

    def dependencies(self, path: str, when: str = "build") -> Tuple[str, ...]:
        """Direct dependencies (YAML paths) of one package."""
        return tuple(sorted({n.provider for n in self.needs if n.node == path and n.when == when}))

    def transitive_dependencies(self, path: str) -> Tuple[str, ...]:
        return tuple(sorted(nx.descendants(self.build_graph, path)))

    def dependents(self, path: str) -> Tuple[str, ...]:
        return tuple(sorted(nx.ancestors(self.build_graph, path)))

    def build_order(self) -> Tuple[str, ...]:
        """Dependencies first; ties broken by path, so the order is stable."""
        return tuple(p for wave in self.waves() for p in wave)

    def waves(self, only: Optional[Iterable[str]] = None) -> Tuple[Tuple[str, ...], ...]:
        """Build waves: every package in a wave depends only on packages in earlier waves."""
        g = self.build_graph
        if only is not None:
            keep = set()
            for p in only:
                keep.add(p)
                keep.update(nx.descendants(g, p))
            g = g.subgraph(keep)
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
                }
                for p in sorted(members)
            },
            "waves": [list(w) for w in waves],
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


def _providers(nodes: Iterable[PackageNode]) -> Dict[str, Tuple[str, ...]]:
    out: Dict[str, List[str]] = {}
    for node in nodes:
        for name in node.provides:
            out.setdefault(name, []).append(node.path)
    return {k: tuple(sorted(set(v))) for k, v in out.items()}


def _choose(
    node: PackageNode,
    name: str,
    candidates: Tuple[str, ...],
    by_path: Mapping[str, PackageNode],
    explicit: set,
) -> Optional[str]:
    """The YAML that provides `name` for `node`, or None when nobody in the repository does."""
    # A package never satisfies its own build dependency (it must come from a repository).
    candidates = tuple(c for c in candidates if c != node.path)
    if not candidates:
        return None
    if len(candidates) == 1:
        return candidates[0]
    chosen = [c for c in candidates if c in explicit]
    if len(chosen) == 1:
        return chosen[0]
    # The package whose own name it is wins over packages that merely `provide` it.
    own = [c for c in candidates if by_path[c].name == name]
    if len(own) == 1:
        return own[0]
    best = max(by_path[c].provider_priority for c in candidates)
    top = [c for c in candidates if by_path[c].provider_priority == best]
    if len(top) == 1:
        return top[0]
    line = node.line_of(name)
    raise ConfigError(
        f'"{name}" is provided by several packages: {", ".join(top)}; set provider-priority in one of them '
        "or add an explicit dependency",
        path=node.path,
        line=line,
    )
