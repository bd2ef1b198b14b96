"""Pants backend `melange_bk.pants`: melange packages built on BuildKit."""

from melange_bk.pants import (
    builder,
    dependency_inference,
    graph_goal,
    host,
    package,
    repository,
    tailor,
    test,
)
from melange_bk.pants.subsystem import MelangeSubsystem
from melange_bk.pants.target_types import (
    MelangePackagesGenerator,
    MelangePackageTarget,
    MelangeRepositoryTarget,
)


def target_types():
    return [MelangePackageTarget, MelangePackagesGenerator, MelangeRepositoryTarget]


def rules():
    return [
        *builder.rules(),
        *host.rules(),
        *dependency_inference.rules(),
        *graph_goal.rules(),
        *package.rules(),
        *repository.rules(),
        *test.rules(),
        *tailor.rules(),
        *MelangeSubsystem.rules(),
    ]
