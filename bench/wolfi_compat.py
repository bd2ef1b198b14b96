"""Measure (not a test): how much of a Wolfi tree we take unchanged.

    PYTHONPATH=pants-plugins .cache/devvenv/bin/python bench/wolfi_compat.py [--tree ../shared/wolfi-os] [--top 40]

1. Compile every `<tree>/*.yaml` (with `<tree>/pipelines` as the pipeline directory) and count the failures by
   reason (the message with quoted names, numbers and the step position blanked out).
2. Build the bootstrap repository (`melange-bk bootstrap-repo`: busybox and the Debian build rootfs' meta
   packages) in a temporary directory and check every need site against it. A *site* is one package name in one
   compiled environment: the build environment of each YAML (environment.contents.packages plus every step's
   `needs`), and each test environment (main package's and subpackages'); the "declared" figures count only the
   YAML's own environment.contents.packages. A site *resolves* when a package of the bootstrap repository is, or
   provides, that name at a version that satisfies its constraint.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Counter, Dict, List, Tuple

from melange_bk.config import Resolver, parse_config
from melange_bk.driver.permissions import check as check_permissions
from melange_bk.environment.bootstrap import build_bootstrap_repo
from melange_bk.environment.repository import load_index
from melange_bk.environment.resolver import Universe
from melange_bk.environment.versions import VersionError, parse_dependency
from melange_bk.errors import MelangeError
from melange_bk.plan.compile import compile_config

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TREE = ROOT.parent / "shared" / "wolfi-os"


def reason_of(message: str) -> str:
    text = re.sub(r'"[^"]*"|\'[^\']*\'', "…", message)
    text = re.sub(r"\bstep [0-9.]+", "step N", text)
    text = re.sub(r"\d+", "N", text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tree", default=str(DEFAULT_TREE))
    parser.add_argument("--arch", default="x86_64")
    parser.add_argument("--top", type=int, default=40, help="how many unresolved names to list")
    args = parser.parse_args()
    tree = Path(args.tree)
    files = sorted(tree.glob("*.yaml"))
    resolver = Resolver([str(tree / "pipelines")] if (tree / "pipelines").is_dir() else [])
    start = time.perf_counter()
    plans = []
    configs = []
    reasons: Counter[str] = collections.Counter()
    example: Dict[str, str] = {}
    permission: Counter[str] = collections.Counter()
    for f in files:
        try:
            cfg = parse_config(f.name, f.read_text(encoding="utf-8"), arch=args.arch)
            plan = compile_config(cfg, arch=args.arch, resolver=resolver)
        except MelangeError as e:
            key = reason_of(e.message)
            reasons[key] += 1
            example.setdefault(key, str(e))
            continue
        plans.append(plan)
        configs.append(cfg)
        try:  # what `build` refuses unless the user allows it (driver.permissions)
            check_permissions(plan, f.name)
        except MelangeError as e:
            key = reason_of(e.message)
            permission[key] += 1
            example.setdefault(key, str(e))
    print(f"compile: {len(plans)} of {len(files)} YAMLs compile ({time.perf_counter() - start:.1f} s)")
    for key, n in reasons.most_common():
        print(f"  {n:5d}  {key}\n         e.g. {example[key]}")
    print(f"of those, {sum(permission.values())} build only with the user's permission:")
    for key, n in permission.most_common():
        print(f"  {n:5d}  {key}\n         e.g. {example[key]}")

    with tempfile.TemporaryDirectory(prefix="wolfi-compat-") as tmp:
        repo = build_bootstrap_repo(os.path.join(tmp, "repo"), arch=args.arch)
        index = load_index(repo.path, args.arch, None, allow_untrusted=True)
    universe = Universe(index.packages)
    print(f"\nbootstrap repository: {len(index.packages)} packages")

    def count(sites: List[str]) -> Tuple[int, Counter[str]]:
        ok = 0
        missing: Counter[str] = collections.Counter()
        for text in sites:
            try:
                dep = parse_dependency(text, where="need")
            except VersionError:
                missing[text] += 1
                continue
            if dep.conflict or universe.candidates(dep):
                ok += 1
            else:
                missing[text] += 1
        return ok, missing

    build_sites = [n for p in plans for n in p.environment.packages]
    test_sites = [
        n
        for p in plans
        for t in [p.test] + [s.test for s in p.subpackages]
        if t is not None and t.steps
        for n in t.environment.packages
    ]
    declared_build = [n for c in configs for n in c.environment.packages]
    declared_test = [
        n
        for c in configs
        for t in [c.test] + [s.test for s in c.subpackages]
        if t is not None
        for n in t.environment.packages
    ]
    for label, sites in (
        ("build", build_sites),
        ("test", test_sites),
        ("declared build (environment.contents.packages only)", declared_build),
        ("declared test", declared_test),
    ):
        ok, missing = count(sites)
        share = 100.0 * ok / len(sites) if sites else 0.0
        print(
            f"\n{label}-need sites: {len(sites)} naming {len(set(sites))} packages; {ok} resolve on the Debian "
            f"build rootfs ({share:.1f} %); {len(missing)} names do not"
        )
        print(
            "  most frequent unresolved: " + ", ".join(f"{n} ({c})" for n, c in missing.most_common(args.top))
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
