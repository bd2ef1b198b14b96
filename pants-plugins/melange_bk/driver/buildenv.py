"""The build environment for a plan: a base (nothing, a local rootfs directory or tarball, or an image by digest)
with the plan's APKs resolved from its repositories and installed on top (the environment layer does the work)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Tuple

from melange_bk.environment.base import parse_base
from melange_bk.environment.prepare import PreparedEnvironment, prepare_environment
from melange_bk.plan.model import BuildPlan


@dataclass(frozen=True)
class EnvironmentOptions:
    """`base`: "" or "none" (packages only, as with Wolfi), a directory, a .tar, `dir:…`, `tar:…`, or
    `image:REF@sha256:…`. The `*_append` fields are melange's --repository-append/--keyring-append/--package-append.
    """

    base: str = ""
    repositories_append: Tuple[str, ...] = ()
    keyring_append: Tuple[str, ...] = ()
    packages_append: Tuple[str, ...] = ()
    cache_dir: str = ""
    allow_untrusted: bool = False


def environment_for(plan: BuildPlan, opts: EnvironmentOptions) -> PreparedEnvironment:
    """The environment's LLB state, the local directories its session must offer and its stored trees."""
    env = plan.environment
    if opts.packages_append:
        env = replace(env, packages=tuple(sorted(set(env.packages) | set(opts.packages_append))))
    prepared = prepare_environment(
        env,
        base=parse_base(opts.base or "none"),
        arch=plan.arch,
        extra_repositories=opts.repositories_append,
        extra_keyring=opts.keyring_append,
        cache=opts.cache_dir or None,
        allow_untrusted=opts.allow_untrusted,
    )
    return prepared
