"""Dependency inference between melange packages, from the repository-wide build graph (networkx)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Tuple

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
from melange_bk.graph.scan import scan_yaml
from melange_bk.pants.target_types import MelangeDependenciesField, MelangeSourceField


class MelangeInferenceError(Exception):
    """Raised with the one-line message of a graph error (cycle, ambiguity, YAML syntax)."""


@dataclass(frozen=True)
class MelangeRepo:
    """Every melange_package target of the repository and what its YAML provides and needs."""

    nodes: Tuple[PackageNode, ...]
    addresses: FrozenDict[str, Address]  # YAML path -> target address
    explicit: FrozenDict[str, Tuple[str, ...]]  # YAML path -> YAML paths of explicit melange dependencies


@dataclass(frozen=True)
class MelangeGraph:
    """The build graph over `repo` (computed once per repo state; compared and hashed by `repo` only)."""

    repo: MelangeRepo
    graph: RepoGraph = field(compare=False, hash=False)

    def address_of(self, path: str) -> Address:
        return self.repo.addresses[path]

    def path_of(self, address: Address) -> str:
        for path, addr in self.repo.addresses.items():
            if addr == address:
                return path
        raise KeyError(address)


@rule(desc="Read every melange YAML")
async def melange_repo(all_targets: AllTargets) -> MelangeRepo:
    tgts = sorted(
        (t for t in all_targets if t.has_field(MelangeSourceField)),
        key=lambda t: t[MelangeSourceField].file_path,
    )
    contents = await MultiGet(Get(DigestContents, PathGlobs([t[MelangeSourceField].file_path])) for t in tgts)
    explicit_deps = await MultiGet(
        Get(ExplicitlyProvidedDependencies, DependenciesRequest(t[MelangeDependenciesField])) for t in tgts
    )
    nodes = []
    for tgt, content in zip(tgts, contents):
        path = tgt[MelangeSourceField].file_path
        if not content:
            raise MelangeInferenceError(f"{path}: file not found (source of {tgt.address})")
        try:
            nodes.append(scan_yaml(path, content[0].content.decode("utf-8")))
        except MelangeError as e:
            raise MelangeInferenceError(str(e)) from None
        except UnicodeDecodeError:
            raise MelangeInferenceError(f"{path}: not UTF-8 text") from None
    addresses = {t[MelangeSourceField].file_path: t.address for t in tgts}
    path_by_address = {a: p for p, a in addresses.items()}
    explicit = {
        tgt[MelangeSourceField].file_path: tuple(
            sorted(path_by_address[a] for a in deps.includes if a in path_by_address)
        )
        for tgt, deps in zip(tgts, explicit_deps)
    }
    return MelangeRepo(tuple(nodes), FrozenDict(addresses), FrozenDict(explicit))


@rule(desc="Build the melange package graph")
async def melange_graph(repo: MelangeRepo) -> MelangeGraph:
    try:
        graph = RepoGraph.from_nodes(repo.nodes, explicit=dict(repo.explicit))
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
    deps = set(melange.graph.dependencies(path, "build")) | set(melange.graph.dependencies(path, "test"))
    return InferredDependencies(sorted(melange.address_of(d) for d in deps))


def rules():
    return [*collect_rules(), UnionRule(InferDependenciesRequest, InferMelangeDependencies)]
