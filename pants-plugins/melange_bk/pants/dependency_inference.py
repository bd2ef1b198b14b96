"""Dependency inference between melange packages, from the repository-wide build graph (networkx)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Tuple

from pants.engine.addresses import Address
from pants.engine.fs import DigestContents, PathGlobs
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import (
    AllTargets,
    DependenciesRequest,
    ExplicitlyProvidedDependencies,
    FieldSet,
    InferDependenciesRequest,
    InferredDependencies,
)
from pants.engine.unions import UnionRule
from pants.util.frozendict import FrozenDict

from melange_bk.errors import MelangeError
from melange_bk.graph import PackageNode, RepoGraph
from melange_bk.graph.repo import CycleError
from melange_bk.graph.scan import guess_names, scan_yaml
from melange_bk.pants.subsystem import MelangeSubsystem
from melange_bk.pants.target_types import MelangeDependenciesField, MelangeSourceField


class MelangeInferenceError(Exception):
    """Raised with the one-line message of a graph error (cycle, ambiguity, YAML syntax)."""


@dataclass(frozen=True)
class MelangeRepo:
    """Every melange_package target of the repository and what its YAML provides and needs."""

    nodes: Tuple[PackageNode, ...]
    addresses: FrozenDict[str, Address]  # YAML path -> target address
    explicit: FrozenDict[str, Tuple[str, ...]]  # YAML path -> YAML paths of explicit melange dependencies
    broken: FrozenDict[str, str] = FrozenDict()  # YAML path -> why it cannot be read (`file:line: message`)
    broken_names: FrozenDict[str, Tuple[str, ...]] = FrozenDict()  # YAML path -> names it seems to provide


@dataclass(frozen=True)
class MelangeGraph:
    """The build graph over `repo` (computed once per repo state; compared and hashed by `repo` only)."""

    repo: MelangeRepo
    graph: RepoGraph = field(compare=False, hash=False)

    def address_of(self, path: str) -> Address:
        return self.repo.addresses[path]

    def problem(self, path: str) -> Optional[str]:
        """Why `path`'s dependencies cannot be inferred (its YAML, a tie, a broken YAML it needs), or None."""
        graph = self.graph
        if path in graph.broken:
            return graph.broken[path]
        if path in graph.errors:
            return graph.errors[path]
        blocked = graph.blocked_by(path)
        if blocked:
            return f"{path}: needs {blocked[0]}, which cannot be read: {graph.broken[blocked[0]]}"
        return None


@rule(desc="Read every melange YAML")
async def melange_repo(all_targets: AllTargets, melange: MelangeSubsystem) -> MelangeRepo:
    """One read of every melange YAML per repository state (memoised by the engine, kept by pantsd)."""
    tgts = sorted(
        (t for t in all_targets if t.has_field(MelangeSourceField)),
        key=lambda t: t[MelangeSourceField].file_path,
    )
    paths = [t[MelangeSourceField].file_path for t in tgts]
    with_explicit = [t for t in tgts if t[MelangeDependenciesField].value]
    contents = await Get(DigestContents, PathGlobs(paths))
    explicit_deps = await MultiGet(
        Get(ExplicitlyProvidedDependencies, DependenciesRequest(t[MelangeDependenciesField]))
        for t in with_explicit
    )
    texts = {c.path: c.content for c in contents}
    nodes = []
    broken = {}
    broken_names = {}
    for tgt, path in zip(tgts, paths):
        content = texts.get(path)
        if content is None:
            broken[path] = f"{path}: file not found (source of {tgt.address})"
            continue
        try:
            nodes.append(scan_yaml(path, content.decode("utf-8"), melange.graph_arch))
        except MelangeError as e:
            broken[path] = str(e)
            broken_names[path] = guess_names(path, content.decode("utf-8"))
        except UnicodeDecodeError:
            broken[path] = f"{path}: not UTF-8 text"
    addresses = {t[MelangeSourceField].file_path: t.address for t in tgts}
    path_by_address = {a: p for p, a in addresses.items()}
    explicit = {
        tgt[MelangeSourceField].file_path: tuple(
            sorted(path_by_address[a] for a in deps.includes if a in path_by_address)
        )
        for tgt, deps in zip(with_explicit, explicit_deps)
    }
    return MelangeRepo(
        tuple(nodes),
        FrozenDict(addresses),
        FrozenDict(explicit),
        FrozenDict(broken),
        FrozenDict(broken_names),
    )


@rule(desc="Build the melange package graph")
async def melange_graph(repo: MelangeRepo, melange: MelangeSubsystem) -> MelangeGraph:
    try:
        graph = RepoGraph.from_nodes(
            repo.nodes,
            explicit=dict(repo.explicit),
            bootstrap=melange.bootstrap_packages,
            broken=dict(repo.broken),
            broken_names=dict(repo.broken_names),
        )
    except CycleError as e:
        raise MelangeInferenceError(
            f"{e} (set [melange].bootstrap_packages, e.g. in pants.toml: bootstrap_packages = "
            f"{list(e.breakers)!r})"
        ) from None
    except MelangeError as e:
        raise MelangeInferenceError(str(e)) from None
    return MelangeGraph(repo, graph)


@dataclass(frozen=True)
class MelangeInferenceFieldSet(FieldSet):
    required_fields = (MelangeSourceField,)
    source: MelangeSourceField


class InferMelangeDependencies(InferDependenciesRequest):
    infer_from = MelangeInferenceFieldSet


@rule(desc="Infer melange package dependencies")
async def infer_melange_dependencies(
    request: InferMelangeDependencies, melange: MelangeGraph
) -> InferredDependencies:
    path = request.field_set.source.file_path
    problem = melange.problem(path)
    if problem is not None:
        raise MelangeInferenceError(problem)
    deps = set(melange.graph.dependencies(path, "build")) | set(melange.graph.dependencies(path, "test"))
    return InferredDependencies(sorted(melange.address_of(d) for d in deps))


def rules():
    return [*collect_rules(), UnionRule(InferDependenciesRequest, InferMelangeDependencies)]
