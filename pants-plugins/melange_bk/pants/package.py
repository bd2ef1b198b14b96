"""`pants package` for `melange_package`: build-time dependencies first, then one cached Process per package.

The Process runs the core library's `melange-bk build` from a PEX against the BuildKit daemon. Its inputs are the
package's folder (YAML + workspace files), the .apk files of the melange packages it depends on (each as its own
local repository, with its index) and the `[melange]` options' files - by content, never by a path of this
machine (host.py): when none of them changed, Pants' process cache (local, or a remote cache shared by other
checkouts and machines) answers and BuildKit is not asked at all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Tuple

from pants.core.goals.package import BuiltPackage, BuiltPackageArtifact, OutputPathField, PackageFieldSet
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import AddPrefix, Digest, MergeDigests, PathGlobs, RemovePrefix, Snapshot
from pants.engine.process import ProcessResult
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import DependenciesRequest, Targets
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel

from melange_bk.config.arch import host_arch
from melange_bk.pants.builder import LIBRARY, MelangeBuilderPex, MelangeProcess  # noqa: F401 (re-exported)
from melange_bk.pants.host import MelangeInputs
from melange_bk.pants.subsystem import MelangeSubsystem
from melange_bk.pants.target_types import MelangeArchField, MelangeDependenciesField, MelangeSourceField


@dataclass(frozen=True)
class MelangePackageFieldSet(PackageFieldSet):
    required_fields = (MelangeSourceField,)

    source: MelangeSourceField
    dependencies: MelangeDependenciesField
    arch: MelangeArchField
    output_path: OutputPathField


def arches(field_set: MelangePackageFieldSet) -> Tuple[str, ...]:
    if field_set.arch.value:
        return tuple(field_set.arch.value)
    return (host_arch(),)


def workspace_globs(yaml_path: str) -> PathGlobs:
    """The package's folder (YAML and workspace files) but its BUILD file."""
    folder = os.path.dirname(yaml_path)
    return PathGlobs([f"{folder}/**/*" if folder else "**/*", f"!{folder}/BUILD" if folder else "!BUILD"])


def trust_argv(signing_pub: str) -> List[str]:
    """How to trust packages and indexes signed by our own signing key."""
    return ["--keyring-append", signing_pub] if signing_pub else ["--allow-untrusted"]


@dataclass(frozen=True)
class BuiltApks:
    """A melange package as built, without its output_path: `ARCH/{*.apk, APKINDEX.tar.gz}`."""

    digest: Digest


@rule(desc="Taking a built melange package's files", level=LogLevel.DEBUG)
async def built_apks(field_set: MelangePackageFieldSet) -> BuiltApks:
    built = await Get(BuiltPackage, PackageFieldSet, field_set)
    prefix = field_set.output_path.value_or_default(file_ending=None)
    return BuiltApks(await Get(Digest, RemovePrefix(built.digest, prefix)))


@dataclass(frozen=True)
class DependencyRepositories:
    """The melange packages a package depends on, built, each as a local repository `__deps/<i>/ARCH/`."""

    digest: Digest
    count: int

    def repository_argv(self) -> List[str]:
        out: List[str] = []
        for i in range(self.count):
            out += ["--repository-append", f"__deps/{i}"]
        return out

    def argv(self, signing_pub: str) -> List[str]:
        """The repositories and, when there are any, the key their indexes are signed with (our own)."""
        return self.repository_argv() + trust_argv(signing_pub) if self.count else []


@rule(desc="Building the melange packages a package depends on", level=LogLevel.DEBUG)
async def dependency_repositories(field_set: MelangePackageFieldSet) -> DependencyRepositories:
    deps = await Get(Targets, DependenciesRequest(field_set.dependencies))
    dep_sets = [MelangePackageFieldSet.create(t) for t in deps if MelangePackageFieldSet.is_applicable(t)]
    built = await MultiGet(Get(BuiltApks, MelangePackageFieldSet, fs) for fs in dep_sets)
    prefixed = await MultiGet(Get(Digest, AddPrefix(b.digest, f"__deps/{i}")) for i, b in enumerate(built))
    merged = await Get(Digest, MergeDigests(prefixed))
    return DependencyRepositories(merged, len(prefixed))


@rule(desc="Building a melange package on BuildKit", level=LogLevel.DEBUG)
async def package_melange(
    field_set: MelangePackageFieldSet,
    melange: MelangeSubsystem,
    inputs: MelangeInputs,
) -> BuiltPackage:
    yaml_path = field_set.source.file_path
    repos = await Get(DependencyRepositories, MelangePackageFieldSet, field_set)
    workspace = await Get(Digest, PathGlobs, workspace_globs(yaml_path))
    # No path of this machine in argv, env or inputs (the cache key, local and remote): see host.py.
    env = await Get(EnvironmentVars, EnvironmentVarsRequest(["SOURCE_DATE_EPOCH"]))
    argv: List[str] = [
        "build",
        yaml_path,
        "--out-dir",
        "__out",
        "--progress",
        melange.progress,
        "--generate-index",
    ]
    for a in arches(field_set):
        argv += ["--arch", a]
    if inputs.signing_key:
        argv += ["--signing-key", inputs.signing_key]
    if not melange.cache_mounts:
        argv += ["--no-cache-mounts"]
    argv += melange.permission_argv()
    argv += inputs.environment_argv
    argv += repos.argv(inputs.signing_pub)
    argv += inputs.host_argv
    if env.get("SOURCE_DATE_EPOCH"):
        argv += ["--source-date-epoch", env["SOURCE_DATE_EPOCH"]]
    input_digest = await Get(Digest, MergeDigests([workspace, inputs.digest, repos.digest]))
    result = await Get(
        ProcessResult,
        MelangeProcess(
            tuple(argv),
            description=f"melange-bk build {yaml_path}",
            input_digest=input_digest,
            append_only_caches=inputs.append_only_caches,
            output_directories=("__out",),
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
