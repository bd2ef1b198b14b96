"""The resolved build plan (frozen dataclasses) that the LLB layer consumes."""

from melange_bk.plan.model import (
    Accounts,
    BuildPlan,
    Environment,
    GitSource,
    Group,
    HttpSource,
    PackageInfo,
    Step,
    Subpackage,
    Test,
    User,
)

__all__ = [
    "Accounts",
    "BuildPlan",
    "Environment",
    "GitSource",
    "Group",
    "HttpSource",
    "PackageInfo",
    "Step",
    "Subpackage",
    "Test",
    "User",
]
