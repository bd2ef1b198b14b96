"""`pants test` for `melange_package`: the package is built (or taken from the cache), then its `test:` sections
run on BuildKit by `melange-bk test` in a Process, cached like any test result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pants.backend.python.util_rules.pex import PexProcess
from pants.core.goals.package import BuiltPackage, PackageFieldSet
from pants.core.goals.test import TestFieldSet, TestRequest, TestResult, TestSubsystem
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import AddPrefix, Digest, MergeDigests, PathGlobs, RemovePrefix, Snapshot
from pants.engine.process import FallibleProcessResult
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import Target, WrappedTarget, WrappedTargetRequest
from pants.util.logging import LogLevel

from melange_bk.pants.package import (
    DependencyRepositories,
    MelangeBuilderPex,
    MelangePackageFieldSet,
    _arches,
)
from melange_bk.pants.subsystem import MelangeSubsystem
from melange_bk.pants.target_types import MelangeSkipTestField, MelangeSourceField


@dataclass(frozen=True)
class MelangeTestFieldSet(TestFieldSet):
    required_fields = (MelangeSourceField,)

    source: MelangeSourceField
    skip_test: MelangeSkipTestField

    @classmethod
    def opt_out(cls, tgt: Target) -> bool:
        return bool(tgt[MelangeSkipTestField].value)


class MelangeTestRequest(TestRequest):
    tool_subsystem = MelangeSubsystem
    field_set_type = MelangeTestFieldSet


@rule(desc="Testing a melange package on BuildKit", level=LogLevel.DEBUG)
async def run_melange_test(
    batch: MelangeTestRequest.Batch[MelangeTestFieldSet, Any],
    test_subsystem: TestSubsystem,
    melange: MelangeSubsystem,
    builder: MelangeBuilderPex,
) -> TestResult:
    field_set = batch.single_element
    wrapped = await Get(
        WrappedTarget, WrappedTargetRequest(field_set.address, description_of_origin="<melange test>")
    )
    package_fs = MelangePackageFieldSet.create(wrapped.target)
    built, repos = await MultiGet(
        Get(BuiltPackage, PackageFieldSet, package_fs),
        Get(DependencyRepositories, MelangePackageFieldSet, package_fs),
    )
    apks = await Get(
        Digest, RemovePrefix(built.digest, package_fs.output_path.value_or_default(file_ending=None))
    )
    yaml_path = field_set.source.file_path
    folder = yaml_path.rsplit("/", 1)[0] if "/" in yaml_path else ""
    globs = [f"{folder}/**/*" if folder else "**/*", f"!{folder}/BUILD" if folder else "!BUILD"]
    workspace = await Get(Digest, PathGlobs(globs))
    key_path = melange.signing_key or ""
    key = await Get(Snapshot, PathGlobs([key_path] if key_path and not key_path.startswith("/") else []))
    env = await Get(EnvironmentVars, EnvironmentVarsRequest(["BUILDKIT_HOST"]))
    argv = ["test", yaml_path, "--out-dir", "__apks", "--progress", melange.progress]
    for a in _arches(package_fs):
        argv += ["--arch", a]
    addr = melange.buildkit_addr or env.get("BUILDKIT_HOST") or ""
    if addr:
        argv += ["--buildkit-addr", addr]
    if melange.environment_base:
        argv += ["--rootfs", melange.environment_base]
    for d in melange.pipeline_dirs:
        argv += ["--pipeline-dir", d]
    for r in melange.repositories:
        argv += ["--repository-append", r]
    for k in melange.keyring:
        argv += ["--keyring-append", k]
    if key_path:
        argv += ["--keyring-append", key_path + ".pub"]  # the packages under test are signed with it
    else:
        argv += ["--allow-untrusted"]
    # Its build-time dependencies, too (what it needs at run time often comes from them: greet → libgreet).
    for i in range(repos.count):
        argv += ["--repository-append", f"__deps/{i}"]
    apk_dir = await Get(Digest, AddPrefix(apks, "__apks"))
    inputs = await Get(Digest, MergeDigests([workspace, key.digest, apk_dir, repos.digest]))
    result = await Get(
        FallibleProcessResult,
        PexProcess(
            builder.pex,
            argv=argv,
            input_digest=inputs,
            description=f"melange-bk test {yaml_path}",
            level=LogLevel.DEBUG,
        ),
    )
    return TestResult.from_fallible_process_result(result, field_set.address, test_subsystem.output)


def rules():
    return [*collect_rules(), *MelangeTestRequest.rules()]
