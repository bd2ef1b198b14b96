"""`pants tailor`: a `melange_package` target for every `melange.yaml` not owned by a target yet."""

from __future__ import annotations

import os
from dataclasses import dataclass

from pants.core.goals.tailor import AllOwnedSources, PutativeTarget, PutativeTargets, PutativeTargetsRequest
from pants.engine.fs import PathGlobs, Paths
from pants.engine.internals.selectors import Get
from pants.engine.rules import collect_rules, rule
from pants.engine.unions import UnionRule

from melange_bk.pants.target_types import MelangePackageTarget


@dataclass(frozen=True)
class PutativeMelangeTargetsRequest(PutativeTargetsRequest):
    pass


@rule(desc="Find melange YAMLs without targets")
async def find_putative_melange_targets(
    request: PutativeMelangeTargetsRequest, all_owned_sources: AllOwnedSources
) -> PutativeTargets:
    paths = await Get(Paths, PathGlobs, request.path_globs("melange.yaml"))
    unowned = sorted(set(paths.files) - set(all_owned_sources))
    return PutativeTargets(
        PutativeTarget.for_target_type(
            MelangePackageTarget,
            path=os.path.dirname(path),
            name="apk",
            triggering_sources=[os.path.basename(path)],
        )
        for path in unowned
    )


def rules():
    return [*collect_rules(), UnionRule(PutativeTargetsRequest, PutativeMelangeTargetsRequest)]
