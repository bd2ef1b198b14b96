"""Incremental builds through Pants: 50 generated packages in a dependency tree, in a temporary clone.

    eval "$(bin/buildkit env)" && PYTHONPATH=pants-plugins:. .cache/devvenv/bin/python bench/pants_incremental.py

The clone (tests/pants_it/clone.py: own Pants local store and named caches, shared virtualenv/wheels/rootfs) holds
only the backend and `packages/bench/pNN/` (p00 … p49): shell-only packages on the Debian build rootfs, where
pN needs p((N-1)//2) (a binary tree, 6 waves; 25 leaves). Timings, wall clock of `./pants … package ::`:

- cold: an empty Pants cache (the builder PEX is built too); every package is built (BuildKit's own cache is the
  daemon's and may be warm from earlier runs: this measures Pants + our builder, not compilers);
- warm, nothing changed, with pantsd: the median of --runs, against `./pants list ::` with pantsd (target ≤ 1.2×);
  also without pantsd, for reference;
- one leaf changed (its YAML edited), with pantsd: exactly one build runs (checked from `--stats-log`).

Prints the numbers; asserts nothing except that the runs succeed and build what they should.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from typing import List, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.pants_it.clone import PantsRun, PantsRunner, checkout, clone, git, tiny  # noqa: E402

N = 50


def _yaml(i: int) -> str:
    needs = "" if i == 0 else f"environment:\n  contents:\n    packages:\n      - p{(i - 1) // 2:02d}\n"
    return (
        f'package:\n  name: p{i:02d}\n  version: "1.0.0"\n  epoch: 0\n  description: bench package {i}\n'
        f"  copyright:\n    - license: MIT\n{needs}"
        "pipeline:\n"
        "  - runs: |\n"
        f"      mkdir -p ${{{{targets.destdir}}}}/usr/share/p{i:02d}\n"
        f"      echo {i} > ${{{{targets.destdir}}}}/usr/share/p{i:02d}/id\n"
    )


def _generate(repo: str) -> List[int]:
    for i in range(N):
        d = os.path.join(repo, "packages", "bench", f"p{i:02d}")
        os.makedirs(d)
        with open(os.path.join(d, "melange.yaml"), "w") as f:
            f.write(_yaml(i))
        with open(os.path.join(d, "BUILD"), "w") as f:
            f.write('melange_package(name="apk")\n')
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "bench packages")
    return [i for i in range(N) if 2 * i + 1 >= N]  # leaves


def _timed(pants: PantsRunner, *args: str, addr: str, pantsd: bool) -> Tuple[float, PantsRun]:
    t = time.monotonic()
    run = pants.run(*args, buildkit_host=addr, debug=False, pantsd=pantsd)
    elapsed = time.monotonic() - t
    if run.returncode != 0:
        sys.exit(run.tail())
    return elapsed, run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="warm repetitions (median)")
    ap.add_argument("--keep", help="keep the clone in this folder")
    args = ap.parse_args()
    addr = os.environ.get("BUILDKIT_HOST")
    if not addr:
        sys.exit('BUILDKIT_HOST is not set: eval "$(bin/buildkit env)"')
    base = args.keep or tempfile.mkdtemp(prefix="pants-incremental-")
    repo = clone(checkout(), os.path.join(base, "repo"))
    tiny(repo, keep=(), build="")
    leaves = _generate(repo)
    pants = PantsRunner(repo, os.path.join(base, "home"))
    stats = lambda run: run.stats  # noqa: E731
    try:
        cold, run = _timed(pants, "--stats-log", "package", "::", addr=addr, pantsd=False)
        print(
            f"cold (no pantsd, empty Pants cache): {cold:.1f} s, "
            f"{stats(run).get('local_execution_requests')} local processes"
        )
        warm_nd, run = _timed(pants, "--stats-log", "package", "::", addr=addr, pantsd=False)
        print(
            f"warm no-change without pantsd: {warm_nd:.1f} s, "
            f"{stats(run).get('local_execution_requests')} local processes "
            f"({stats(run).get('local_cache_requests_cached')} cache hits)"
        )
        # pantsd: start it, then interleave the two commands.
        _timed(pants, "list", "::", addr=addr, pantsd=True)
        _timed(pants, "package", "::", addr=addr, pantsd=True)
        lists, packages = [], []
        for _ in range(args.runs):
            lists.append(_timed(pants, "list", "::", addr=addr, pantsd=True)[0])
            packages.append(_timed(pants, "package", "::", addr=addr, pantsd=True)[0])
        lst, pkg = statistics.median(lists), statistics.median(packages)
        print(
            f"warm no-change with pantsd: package :: {pkg:.2f} s vs list :: {lst:.2f} s -> {pkg / lst:.2f}x "
            f"(medians of {args.runs}; package {', '.join(f'{t:.2f}' for t in packages)}; "
            f"list {', '.join(f'{t:.2f}' for t in lists)})"
        )
        leaf = os.path.join(repo, "packages", "bench", f"p{leaves[-1]:02d}", "melange.yaml")
        with open(leaf, "a") as f:
            f.write("# changed\n")
        one, run = _timed(pants, "--stats-log", "package", "::", addr=addr, pantsd=True)
        print(
            f"one leaf changed (p{leaves[-1]:02d}), with pantsd: {one:.1f} s, "
            f"{stats(run).get('local_execution_requests')} local processes "
            "(the build; with pantsd, the host-config probe runs only when a machine-local input was touched)"
        )
    finally:
        pants.kill_pantsd()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
