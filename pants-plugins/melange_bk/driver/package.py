"""melange-out/<name> trees → signed .apk files, as melange packages them (SCA, SBOM, .PKGINFO)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Optional, Tuple

from melange_bk.apk import PkgInfo, SigningKey, WriteOptions, WrittenApk, write_apk
from melange_bk.apk.sbom import SbomOptions
from melange_bk.apk.sca import ScaOptions, analyze, merge_dependencies
from melange_bk.config.model import Dependencies, PackageOptions, Scriptlets
from melange_bk.errors import ConfigError
from melange_bk.plan.model import BuildPlan, GitSource

_SCRIPTLET_FILES = (
    ("pre_install", ".pre-install"),
    ("post_install", ".post-install"),
    ("pre_deinstall", ".pre-deinstall"),
    ("post_deinstall", ".post-deinstall"),
    ("pre_upgrade", ".pre-upgrade"),
    ("post_upgrade", ".post-upgrade"),
    ("trigger_script", ".trigger"),
)


@dataclass(frozen=True)
class PackageSpec:
    name: str
    description: str
    url: str
    commit: str
    dependencies: Dependencies
    options: PackageOptions
    scriptlets: Scriptlets


def checkout_commit(plan: BuildPlan) -> str:
    """The commit of the build's source checkout when there is exactly one (git-checkout's expected-commit)."""
    commits = {s.source.commit for s in plan.steps if isinstance(s.source, GitSource)}
    return commits.pop() if len(commits) == 1 else ""


def specs(plan: BuildPlan) -> Tuple[PackageSpec, ...]:
    """Each package's metadata; `commit` is package.commit, else the source checkout's commit (when known)."""
    p = plan.package
    commit = p.commit or checkout_commit(plan)
    main = PackageSpec(p.name, p.description, p.url, commit, p.dependencies, p.options, p.scriptlets)
    subs = tuple(
        PackageSpec(
            s.name,
            s.description,
            s.url or p.url,
            s.commit or commit,
            s.dependencies,
            s.options,
            s.scriptlets,
        )
        for s in plan.subpackages
    )
    return (main,) + subs


def _scriptlets(s: Scriptlets) -> Tuple[Tuple[str, bytes], ...]:
    out = []
    for attr, name in _SCRIPTLET_FILES:
        text = getattr(s, attr)
        if text:
            out.append((name, text.encode()))
    return tuple(out)


def _priority(value: str, what: str, plan: BuildPlan) -> Optional[int]:
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{what} must be an integer, got {value!r}", path=plan.file) from None


def apk_name(spec_name: str, plan: BuildPlan) -> str:
    return f"{spec_name}-{plan.package.version}-r{plan.package.epoch}.apk"


def write_packages(
    plan: BuildPlan,
    melange_out: str,
    out_dir: str,
    *,
    signing_key: Optional[SigningKey],
    source_date_epoch: int,
    melange_yaml: Optional[bytes] = None,
) -> List[WrittenApk]:
    """Write one .apk per package of the plan from `melange_out/<name>` into `out_dir` (atomically each)."""
    all_specs = specs(plan)
    trees = {s.name: os.path.join(melange_out, s.name) for s in all_specs}
    for s in all_specs:
        os.makedirs(trees[s.name], exist_ok=True)  # an empty subpackage is still a package, as in melange
    licenses = tuple(c.license for c in plan.package.copyright if c.license)
    full_version = f"{plan.package.version}-r{plan.package.epoch}"
    written = []
    for s in all_specs:
        others = tuple(t for n, t in sorted(trees.items()) if n != s.name)
        sca = analyze(
            trees[s.name],
            full_version,
            ScaOptions(s.options.no_provides, s.options.no_depends, s.options.no_commands),
            related_roots=others,
        )
        depends, provides = merge_dependencies(s.dependencies.runtime, s.dependencies.provides, sca)
        info = PkgInfo(
            name=s.name,
            version=plan.package.version,
            epoch=plan.package.epoch,
            arch=plan.arch,
            origin=plan.package.name,
            description=s.description,
            url=s.url,
            commit=s.commit,
            builddate=source_date_epoch,  # as melange: SOURCE_DATE_EPOCH (left out when 0)
            licenses=licenses,
            depends=depends,
            provides=provides,
            replaces=tuple(sorted(s.dependencies.replaces)),
            provider_priority=_priority(
                s.dependencies.provider_priority, f"{s.name}: provider-priority", plan
            ),
            replaces_priority=_priority(
                s.dependencies.replaces_priority, f"{s.name}: replaces-priority", plan
            ),
            triggers=tuple(s.scriptlets.trigger_paths) if s.scriptlets.trigger_script else (),
        )
        written.append(
            write_apk(
                trees[s.name],
                os.path.join(out_dir, apk_name(s.name, plan)),
                info,
                signing_key=signing_key,
                scriptlets=_scriptlets(s.scriptlets),
                melange_yaml=melange_yaml,
                options=WriteOptions(
                    source_date_epoch=source_date_epoch, sbom=SbomOptions(cpe=plan.package.cpe)
                ),
            )
        )
    return written
