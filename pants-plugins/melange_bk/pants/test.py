"""`pants test` for `melange_package`: the package is built (or taken from the cache), then its `test:` sections
run on BuildKit by `melange-bk test` in a Process, cached like any test result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pants.core.goals.test import TestFieldSet, TestRequest, TestResult, TestSubsystem
from pants.engine.fs import AddPrefix, Digest, MergeDigests, PathGlobs
from pants.engine.process import FallibleProcessResult
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import Target, WrappedTarget, WrappedTargetRequest
from pants.util.logging import LogLevel

from melange_bk.pants.host import MelangeInputs
from melange_bk.pants.package import (
    BuiltApks,
    DependencyRepositories,
    MelangePackageFieldSet,
    MelangeProcess,
    arches,
    trust_argv,
    workspace_globs,
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
    inputs: MelangeInputs,
) -> TestResult:
    field_set = batch.single_element
    wrapped = await Get(
        WrappedTarget, WrappedTargetRequest(field_set.address, description_of_origin="<melange test>")
    )
    package_fs = MelangePackageFieldSet.create(wrapped.target)
    built, repos = await MultiGet(
        Get(BuiltApks, MelangePackageFieldSet, package_fs),
        Get(DependencyRepositories, MelangePackageFieldSet, package_fs),
    )
    yaml_path = field_set.source.file_path
    workspace = await Get(Digest, PathGlobs, workspace_globs(yaml_path))
    # No path of this machine in argv, env or inputs (the cache key, local and remote): see host.py.
    argv = ["test", yaml_path, "--out-dir", "__apks", "--progress", melange.progress]
    for a in arches(package_fs):
        argv += ["--arch", a]
    argv += melange.permission_argv()
    argv += inputs.environment_argv
    argv += trust_argv(inputs.signing_pub)  # the packages under test are signed with our key
    # Its build-time dependencies, too (what it needs at run time often comes from them: greet → libgreet).
    argv += repos.repository_argv()
    argv += inputs.host_argv
    apk_dir = await Get(Digest, AddPrefix(built.digest, "__apks"))
    input_digest = await Get(Digest, MergeDigests([workspace, inputs.digest, apk_dir, repos.digest]))
    result = await Get(
        FallibleProcessResult,
        MelangeProcess(
            tuple(argv),
            description=f"melange-bk test {yaml_path}",
            input_digest=input_digest,
            append_only_caches=inputs.append_only_caches,
        ),
    )
    return TestResult.from_fallible_process_result(result, field_set.address, test_subsystem.output)


def rules():
    return [*collect_rules(), *MelangeTestRequest.rules()]
