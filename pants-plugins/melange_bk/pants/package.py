"""`pants package` for `melange_package`: build-time dependencies first, then one cached Process per package.

The Process runs the core library's `melange-bk build` from a PEX against the BuildKit daemon. Its inputs are the
package's folder (YAML + workspace files), the .apk files of the melange packages it depends on (each as its own
local repository, with its index) and the signing key when configured: when none of them changed, Pants' process
cache (local or remote) answers and BuildKit is not asked at all.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from typing import List, Tuple

from pants.backend.python.target_types import EntryPoint
from pants.backend.python.util_rules.pex import Pex, PexProcess
from pants.backend.python.util_rules.pex_from_targets import PexFromTargetsRequest
from pants.core.goals.package import BuiltPackage, BuiltPackageArtifact, OutputPathField, PackageFieldSet
from pants.engine.addresses import Address
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import AddPrefix, Digest, MergeDigests, PathGlobs, RemovePrefix, Snapshot
from pants.engine.process import ProcessResult
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import DependenciesRequest, Targets
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel

from melange_bk.pants.subsystem import MelangeSubsystem
from melange_bk.pants.target_types import MelangeArchField, MelangeDependenciesField, MelangeSourceField

LIBRARY = Address("pants-plugins/melange_bk", target_name="lib")
_HOST_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}


@dataclass(frozen=True)
class MelangePackageFieldSet(PackageFieldSet):
    required_fields = (MelangeSourceField,)

    source: MelangeSourceField
    dependencies: MelangeDependenciesField
    arch: MelangeArchField
    output_path: OutputPathField


@dataclass(frozen=True)
class MelangeBuilderPex:
    pex: Pex


@rule(desc="Building the melange-bk builder PEX", level=LogLevel.DEBUG)
async def builder_pex() -> MelangeBuilderPex:
    pex = await Get(
        Pex,
        PexFromTargetsRequest(
            [LIBRARY],
            output_filename="melange-bk.pex",
            internal_only=True,
            main=EntryPoint("melange_bk.cli.main", "main"),
        ),
    )
    return MelangeBuilderPex(pex)


def _arches(field_set: MelangePackageFieldSet) -> Tuple[str, ...]:
    if field_set.arch.value:
        return tuple(field_set.arch.value)
    return (_HOST_ARCH.get(platform.machine(), platform.machine()),)


@dataclass(frozen=True)
class DependencyRepositories:
    """The melange packages a package depends on, built, each as a local repository `__deps/<i>/ARCH/`."""

    digest: Digest
    count: int

    def argv(self, key_path: str) -> List[str]:
        out: List[str] = []
        for i in range(self.count):
            out += ["--repository-append", f"__deps/{i}"]
        if self.count and key_path:
            out += ["--keyring-append", key_path + ".pub"]  # their indexes are signed with our own key
        elif self.count:
            out += ["--allow-untrusted"]
        return out


@rule(desc="Building the melange packages a package depends on", level=LogLevel.DEBUG)
async def dependency_repositories(field_set: MelangePackageFieldSet) -> DependencyRepositories:
    deps = await Get(Targets, DependenciesRequest(field_set.dependencies))
    dep_sets = [MelangePackageFieldSet.create(t) for t in deps if MelangePackageFieldSet.is_applicable(t)]
    built = await MultiGet(Get(BuiltPackage, PackageFieldSet, fs) for fs in dep_sets)
    unprefixed = await MultiGet(
        Get(Digest, RemovePrefix(b.digest, fs.output_path.value_or_default(file_ending=None)))
        for b, fs in zip(built, dep_sets)
    )
    prefixed = await MultiGet(Get(Digest, AddPrefix(d, f"__deps/{i}")) for i, d in enumerate(unprefixed))
    merged = await Get(Digest, MergeDigests(prefixed))
    return DependencyRepositories(merged, len(prefixed))


@rule(desc="Building a melange package on BuildKit", level=LogLevel.DEBUG)
async def package_melange(
    field_set: MelangePackageFieldSet, melange: MelangeSubsystem, builder: MelangeBuilderPex
) -> BuiltPackage:
    yaml_path = field_set.source.file_path
    folder = os.path.dirname(yaml_path)
    repos = await Get(DependencyRepositories, MelangePackageFieldSet, field_set)
    globs = [f"{folder}/**/*" if folder else "**/*", f"!{folder}/BUILD" if folder else "!BUILD"]
    # A key inside the repository is an input (its content is part of the cache key); an absolute path (e.g. a
    # git-ignored key under .cache/) is read by the builder at run time: change its path to rebuild with another.
    key_path = melange.signing_key or ""
    key_globs = [key_path] if key_path and not os.path.isabs(key_path) else []
    workspace, key = await MultiGet(
        Get(Digest, PathGlobs(globs)),
        Get(Snapshot, PathGlobs(key_globs)),
    )
    if key_globs and not key.files:
        raise ValueError(f"[melange].signing_key = {key_path!r} does not exist (relative to the build root)")
    env = await Get(EnvironmentVars, EnvironmentVarsRequest(["BUILDKIT_HOST", "SOURCE_DATE_EPOCH"]))
    addr = melange.buildkit_addr or env.get("BUILDKIT_HOST") or ""
    argv: List[str] = [
        "build",
        yaml_path,
        "--out-dir",
        "__out",
        "--progress",
        melange.progress,
        "--generate-index",
    ]
    for a in _arches(field_set):
        argv += ["--arch", a]
    if addr:
        argv += ["--buildkit-addr", addr]
    if melange.signing_key:
        argv += ["--signing-key", melange.signing_key]
    if melange.environment_base:
        argv += ["--rootfs", melange.environment_base]
    if not melange.cache_mounts:
        argv += ["--no-cache-mounts"]
    for d in melange.pipeline_dirs:
        argv += ["--pipeline-dir", d]
    for r in melange.repositories:
        argv += ["--repository-append", r]
    for k in melange.keyring:
        argv += ["--keyring-append", k]
    argv += repos.argv(key_path)
    if env.get("SOURCE_DATE_EPOCH"):
        argv += ["--source-date-epoch", env["SOURCE_DATE_EPOCH"]]
    input_digest = await Get(Digest, MergeDigests([workspace, key.digest, repos.digest]))
    result = await Get(
        ProcessResult,
        PexProcess(
            builder.pex,
            argv=argv,
            input_digest=input_digest,
            output_directories=("__out",),
            description=f"melange-bk build {yaml_path}",
            level=LogLevel.INFO,
        ),
    )
    out = await Get(Digest, RemovePrefix(result.output_digest, "__out"))
    prefix = field_set.output_path.value_or_default(file_ending=None)
    out = await Get(Digest, AddPrefix(out, prefix))
    snapshot = await Get(Snapshot, Digest, out)
    return BuiltPackage(out, tuple(BuiltPackageArtifact(f) for f in snapshot.files))


def rules():
    return [*collect_rules(), UnionRule(PackageFieldSet, MelangePackageFieldSet)]
