"""Benchmark (not a test): upload a ~200 MB tree of mixed files to BuildKit through our session (FileSync) vs the Go
reference, `docker buildx build` sending the same tree as its build context, on the same daemon. Target: ours
<= 1.5x the reference.

    eval "$(bin/buildkit env)"
    PYTHONPATH=pants-plugins .cache/devvenv/bin/python bench/upload.py [--mb 200] [--runs 3] [--profile]

The tree (fresh random content every run, so neither side hits the daemon's cache): 8000 small files of 1-16 KiB
in 200 directories (~66 MB) plus 7 large ones of ~19 MB, 200 MB in all, with a few symlinks. Both sides load it
as a local source and copy it into scratch; nothing is exported (buildx: `--output type=cacheonly`).
Reported: the transfer vertex's own time (local://ctx vs buildx's "[internal] load build context", from the
daemon's progress timestamps) and the whole command's wall time.
`--profile` runs ours under cProfile (all threads) and prints the top functions.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from typing import Dict, List, Optional, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "pants-plugins"))

from melange_bk import llb  # noqa: E402
from melange_bk.buildkit.address import parse_address  # noqa: E402
from melange_bk.buildkit.client import Client  # noqa: E402
from melange_bk.buildkit.progress import Progress  # noqa: E402
from melange_bk.buildkit.solve import solve  # noqa: E402

TOOLS = os.path.join(REPO, ".cache", "buildkit", "tools")


def make_tree(dest: str, total_mb: int, seed: int) -> Tuple[int, int]:
    rnd = random.Random(seed)
    total = total_mb << 20
    small_budget = total // 3
    files = size = 0
    i = 0
    while size < small_budget:
        d = os.path.join(dest, f"d{i % 200:03d}")
        os.makedirs(d, exist_ok=True)
        n = rnd.randint(1024, 16 * 1024)
        with open(os.path.join(d, f"f{i:05d}.dat"), "wb") as f:
            f.write(os.urandom(n))
        size += n
        files += 1
        i += 1
    big = os.path.join(dest, "big")
    os.makedirs(big)
    left = total - size
    for j in range(7):
        n = left // 7
        with open(os.path.join(big, f"blob{j}.bin"), "wb") as f:
            for _ in range(n // (1 << 20)):
                f.write(os.urandom(1 << 20))
            f.write(os.urandom(n % (1 << 20)))
        size += n
        files += 1
    for k in range(5):
        os.symlink(f"../big/blob{k}.bin", os.path.join(dest, "d000", f"link{k}"))
    return files, size


def _ts(s: str) -> float:
    # RFC 3339 with nanoseconds: keep microseconds for datetime
    s = s.rstrip("Z")
    if "." in s:
        head, frac = s.split(".")
        s = f"{head}.{frac[:6]}"
    return datetime.fromisoformat(s).timestamp()


def _vertex_seconds(statuses: List[dict], match) -> Optional[float]:  # type: ignore[no-untyped-def]
    """The longest started→completed span reported for a matching vertex (the daemon may report a vertex more
    than once: a short cache check, then the real work)."""
    best: Optional[float] = None
    for st in statuses:
        for v in st.get("vertexes", []):
            if match(v.get("name", "")) and v.get("started") and v.get("completed"):
                d = _ts(v["completed"]) - _ts(v["started"])
                best = d if best is None else max(best, d)
    return best


class _Collect:
    """A progress sink keeping the daemon's StatusResponses as dicts (like --progress rawjson)."""

    def __init__(self) -> None:
        self.lines: List[str] = []

    def write(self, s: str) -> int:
        self.lines.append(s)
        return len(s)

    def flush(self) -> None:
        pass

    def statuses(self) -> List[dict]:
        return [json.loads(x) for x in "".join(self.lines).splitlines() if x.startswith("{")]


def ours(addr: str, ctx: str, profile: bool = False) -> Tuple[float, Optional[float]]:
    state = llb.file(llb.scratch(), llb.copy(llb.local("ctx"), "/", "/", copy_dir_contents=True))
    sink = _Collect()
    t0 = time.monotonic()
    with Client.connect(addr) as bk:
        if profile:
            import cProfile
            import pstats
            import threading

            profs: List[cProfile.Profile] = []

            def tracer(*a):  # type: ignore[no-untyped-def]
                sys.setprofile(None)  # this thread only: cProfile takes over
                p = cProfile.Profile()
                profs.append(p)
                p.enable()

            threading.setprofile(tracer)
            main = cProfile.Profile()
            main.enable()
        solve(bk, llb.marshal(state), local_dirs={"ctx": ctx}, progress=Progress("rawjson", out=sink))
        if profile:
            main.disable()
            threading.setprofile(None)
            stats = pstats.Stats(main)
            for p in profs:
                p.disable()
                stats.add(p)
            stats.sort_stats("tottime").print_stats(30)
    wall = time.monotonic() - t0
    return wall, _vertex_seconds(sink.statuses(), lambda n: n.startswith("local://ctx"))


def buildx(addr: str, ctx: str, work: str) -> Tuple[float, Optional[float]]:
    a = parse_address(addr)
    if a.scheme not in ("docker-unix", "unix"):
        raise SystemExit(f"buildx reference needs dockerd's socket; BUILDKIT_HOST is {addr}")
    dockerfile = os.path.join(work, "Dockerfile")
    with open(dockerfile, "w") as f:
        f.write("FROM scratch\nCOPY . /\n")
    env = dict(
        os.environ,
        DOCKER_CONFIG=os.path.join(TOOLS, "docker-config"),
        DOCKER_HOST="unix://" + a.path,
        BUILDX_NO_DEFAULT_ATTESTATIONS="1",
    )
    t0 = time.monotonic()
    r = subprocess.run(
        [os.path.join(TOOLS, "bin", "docker"), "buildx", "build", "--progress=rawjson", "-f", dockerfile]
        + ["--output", "type=cacheonly", ctx],
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.monotonic() - t0
    if r.returncode != 0:
        raise SystemExit(f"docker buildx build failed:\n{r.stderr[-3000:]}")
    statuses = []  # buildx's rawjson: a sequence of (indented) JSON objects
    dec, text, i = json.JSONDecoder(), r.stderr, 0
    while True:
        i = text.find("{", i)
        if i < 0:
            break
        obj, i = dec.raw_decode(text, i)
        statuses.append(obj)
    return wall, _vertex_seconds(statuses, lambda n: n == "[internal] load build context")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="profile our upload (one run) and exit")
    args = ap.parse_args()
    addr = os.environ.get("BUILDKIT_HOST") or sys.exit('BUILDKIT_HOST is not set: eval "$(bin/buildkit env)"')
    results: Dict[str, List[Tuple[float, Optional[float]]]] = {"ours": [], "buildx": []}
    for run in range(args.runs):
        for who in ("ours", "buildx") if run % 2 == 0 else ("buildx", "ours"):
            work = tempfile.mkdtemp(prefix="mbk-upload-")
            try:
                ctx = os.path.join(work, "ctx")
                os.makedirs(ctx)
                t0 = time.monotonic()
                files, size = make_tree(ctx, args.mb, seed=run)
                subprocess.run(["sync"], check=False)
                made = time.monotonic() - t0
                if who == "ours":
                    r = ours(addr, ctx, profile=args.profile)
                    if args.profile:
                        return
                else:
                    r = buildx(addr, ctx, work)
                results[who].append(r)
                print(
                    f"run {run + 1} {who:6s}: {files} files, {size / 1e6:.0f} MB: transfer "
                    f"{r[1] if r[1] is not None else float('nan'):.2f}s, wall {r[0]:.2f}s (tree made in {made:.1f}s)",
                    flush=True,
                )
            finally:
                shutil.rmtree(work, ignore_errors=True)

    def best(who: str, i: int) -> float:
        return min(r[i] for r in results[who] if r[i] is not None)

    for label, i in (("transfer", 1), ("wall", 0)):
        o, g = best("ours", i), best("buildx", i)
        print(
            f"{label:8s} best of {args.runs}: ours {o:.2f}s, buildx {g:.2f}s, ratio {o / g:.2f}x (target <= 1.5x)"
        )


if __name__ == "__main__":
    main()
