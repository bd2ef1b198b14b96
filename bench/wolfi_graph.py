"""The Pants backend on the real Wolfi tree (../shared/wolfi-os, 3,288 YAMLs) in a DEST from bin/wolfi-monorepo.

    PYTHONPATH=pants-plugins:. .cache/devvenv/bin/python bench/wolfi_graph.py [--runs 3] [--keep DIR]

Wall clock, side by side (interleaved, medians of --runs), against `./pants list ::` in the same run:
- cold, without pantsd: `melange-graph --format=json ::` (target ≤ 2× list) and `dependencies <one target>`
  (≤ 1.5× list);
- warm, with pantsd (after one untimed run of each): the same three (target ≤ 1.2× warm list);
- `--changed-since=HEAD --changed-dependents=transitive list` after a comment is appended to openssl.yaml:
  compared with the library's `RepoGraph.dependents(openssl, test=True)` (they must be equal).
Prints the numbers; asserts only that the runs succeed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from typing import Dict, List

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.pants_it.clone import PantsRunner, checkout  # noqa: E402
from tests.pants_it.wolfi import PACKAGES, library_graph, make_monorepo  # noqa: E402

ONE = f"{PACKAGES}/curl.yaml"
GOALS = {
    "list ::": ("list", "::"),
    "melange-graph ::": ("melange-graph", "--format=json", "::"),
    f"dependencies {ONE}": ("dependencies", ONE),
}


def _timed(runner: PantsRunner, args, pantsd: bool) -> float:
    start = time.monotonic()
    run = runner.run(*args, buildkit_host="", debug=False, pantsd=pantsd)
    elapsed = time.monotonic() - start
    if run.returncode != 0:
        raise SystemExit(run.tail())
    return elapsed


def _series(runner: PantsRunner, runs: int, pantsd: bool) -> Dict[str, float]:
    times: Dict[str, List[float]] = {k: [] for k in GOALS}
    for _ in range(runs):
        for name, args in GOALS.items():
            times[name].append(_timed(runner, args, pantsd))
    return {k: statistics.median(v) for k, v in times.items()}


def _report(title: str, medians: Dict[str, float]) -> None:
    base = medians["list ::"]
    print(title)
    for name, t in medians.items():
        print(f"  {name:<45} {t:7.2f} s  {t / base:5.2f}× list")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", help="make the monorepo here and keep it")
    opts = ap.parse_args()
    repo = checkout()
    work = opts.keep or tempfile.mkdtemp(prefix="wolfi-bench-")
    dest = os.path.join(work, "wolfi")
    runner = PantsRunner(make_monorepo(repo, dest), os.path.join(work, "home"))
    try:
        _report(f"cold, no pantsd (median of {opts.runs}):", _series(runner, opts.runs, pantsd=False))
        for args in GOALS.values():  # start pantsd and fill its memo
            _timed(runner, args, pantsd=True)
        _report(f"warm, pantsd (median of {opts.runs}):", _series(runner, opts.runs, pantsd=True))

        with open(os.path.join(dest, PACKAGES, "openssl.yaml"), "a") as f:
            f.write("# touched by bench/wolfi_graph.py\n")
        start = time.monotonic()
        run = runner.run(
            "--changed-since=HEAD", "--changed-dependents=transitive", "list",
            buildkit_host="", debug=False, pantsd=True,
        )  # fmt: skip
        took = time.monotonic() - start
        pants = sorted(line for line in run.out.splitlines() if line.startswith(PACKAGES + "/"))
        openssl = f"{PACKAGES}/openssl.yaml"
        library = sorted([openssl, *library_graph(dest).dependents(openssl, test=True)])
        print(
            f"--changed-since=HEAD --changed-dependents=transitive list after touching openssl.yaml: "
            f"{len(pants)} targets in {took:.2f} s (pantsd); library: openssl + {len(library) - 1} transitive "
            f"dependents; equal: {pants == library}"
        )
        if pants != library:
            print("  only Pants:", sorted(set(pants) - set(library))[:20])
            print("  only library:", sorted(set(library) - set(pants))[:20])
    finally:
        runner.kill_pantsd()
        if not opts.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
