"""Benchmark (not a test): a no-op build (every step already in BuildKit's cache) through `bin/melange-bk build`
vs `bin/melange-bk compile` of the same YAML, interleaved, on the example environment (the Debian build rootfs
tarball and the bootstrap repository of `bin/example-env`). Target: build <= 3x compile.

    eval "$(bin/buildkit env)"
    .cache/devvenv/bin/python bench/noop_build.py [--yaml packages/hello/melange.yaml] [--rounds 5]
                                                  [--repo DIR]   # another checkout's bin/melange-bk, e.g. main

Both commands are whole processes (interpreter start, imports, compile; the build also prepares the environment,
solves, writes and signs the .apk). One build runs first, unmeasured, so that every step is cached.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from typing import List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _time(argv: List[str], cwd: str) -> float:
    start = time.monotonic()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--yaml", default="packages/hello/melange.yaml")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repo", default=REPO, help="the checkout whose bin/melange-bk runs (default: this one)")
    args = ap.parse_args()
    repo = os.path.abspath(args.repo)
    cache = os.path.join(REPO, ".cache")
    cli = os.path.join(repo, "bin", "melange-bk")
    with tempfile.TemporaryDirectory(prefix="noop-build-") as out:
        build = [cli, "build", args.yaml, "--rootfs", os.path.join(cache, "rootfs", "debian-build.tar")]
        build += ["--repository-append", os.path.join(cache, "bootstrap-repo")]
        build += ["--keyring-append", os.path.join(cache, "bootstrap-repo", "melange-bk-bootstrap.rsa.pub")]
        build += ["--signing-key", os.path.join(cache, "keys", "melange-bk-examples.rsa")]
        build += ["--out-dir", out, "--progress", "quiet"]
        compile_ = [cli, "compile", args.yaml]
        _time(build, repo)  # warm: every step cached from here on
        builds, compiles = [], []
        for _ in range(args.rounds):
            compiles.append(_time(compile_, repo))
            builds.append(_time(build, repo))
    b, c = statistics.median(builds), statistics.median(compiles)
    print(f"checkout: {repo}")
    print(f"compile {args.yaml}: median {c:.2f} s  ({', '.join(f'{x:.2f}' for x in compiles)})")
    print(f"no-op build:        median {b:.2f} s  ({', '.join(f'{x:.2f}' for x in builds)})")
    print(f"build / compile: {b / c:.2f}x  (target <= 3x)")
    print(f"load average: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
