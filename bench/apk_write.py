"""Benchmark (not a test): write a signed .apk from a ~200 MB tree vs `tar --sort=name -c | gzip -6` of the same
tree. Target: our time <= 1.2x the pipeline's; peak memory (max RSS of the writing process) is reported.

    PYTHONPATH=pants-plugins .cache/devvenv/bin/python bench/apk_write.py [--mb 200] [--runs 3] [--keep DIR]

The tree is a copy of regular files from this machine's /usr (real binaries, libraries and text, so the
compression ratio is realistic), in a temporary directory. Each measurement runs in a fresh child process.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import List, Tuple

SOURCES = ("/usr/share", "/usr/bin", "/usr/lib/x86_64-linux-gnu", "/usr/lib")
MAX_FILE = 4 << 20  # many files of realistic sizes rather than a few huge ones


def build_tree(dest: str, limit: int) -> Tuple[int, int]:
    total = files = 0
    for source in SOURCES:
        for dirpath, dirnames, filenames in os.walk(source):
            dirnames.sort()
            for name in sorted(filenames):
                src = os.path.join(dirpath, name)
                if os.path.islink(src) or not os.path.isfile(src) or os.path.getsize(src) > MAX_FILE:
                    continue
                rel = os.path.relpath(src, "/")
                dst = os.path.join(dest, rel)
                if os.path.exists(dst):
                    continue
                try:
                    os.makedirs(os.path.dirname(dst), exist_ok=True)
                    shutil.copyfile(src, dst)
                except OSError:
                    continue
                os.chmod(dst, 0o644)
                total += os.path.getsize(dst)
                files += 1
                if total >= limit:
                    return total, files
    return total, files


def timed(argv: List[str], env: dict) -> Tuple[float, int]:
    """(wall seconds, max RSS in KiB of the process tree) of one child."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed with {proc.returncode}")
    return elapsed, usage.ru_maxrss


def child(tree: str, out: str, key: str) -> None:
    from melange_bk.apk import PkgInfo, WriteOptions, load_signing_key, write_apk

    info = PkgInfo(name="bench", version="1.0", epoch=0, arch="x86_64")
    write_apk(tree, out, info, signing_key=load_signing_key(key), options=WriteOptions(source_date_epoch=1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", help="build (or reuse) the tree in this directory")
    parser.add_argument("--child", nargs=3, metavar=("TREE", "OUT", "KEY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    work = tempfile.mkdtemp(prefix="apk-bench-")
    try:
        tree = args.keep or os.path.join(work, "tree")
        if not os.path.isdir(tree) or not os.listdir(tree):
            os.makedirs(tree, exist_ok=True)
            size, files = build_tree(tree, args.mb << 20)
        else:
            size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(tree) for f in fs)
            files = sum(len(fs) for _, _, fs in os.walk(tree))
        print(f"tree: {files} files, {size / (1 << 20):.0f} MiB")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pants-plugins")]
            + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        )
        from melange_bk.apk.sign import write_keypair

        key, _ = write_keypair(os.path.join(work, "bench.rsa"), bits=2048)
        ours: List[Tuple[float, int]] = []
        theirs: List[Tuple[float, int]] = []
        out_apk = os.path.join(work, "bench.apk")
        out_tgz = os.path.join(work, "bench.tar.gz")
        pipeline = f"tar --sort=name -cf - -C '{tree}' . | gzip -6 > '{out_tgz}'"
        for _ in range(args.runs):
            theirs.append(timed(["bash", "-o", "pipefail", "-c", pipeline], env))
            ours.append(
                timed([sys.executable, os.path.abspath(__file__), "--child", tree, out_apk, key], env)
            )
        t_ours = min(t for t, _ in ours)
        t_theirs = min(t for t, _ in theirs)
        ratio = t_ours / t_theirs
        print(f"tar | gzip -6 : {t_theirs:6.2f} s  ({os.path.getsize(out_tgz) / (1 << 20):.1f} MiB)")
        print(
            f"melange-bk apk: {t_ours:6.2f} s  ({os.path.getsize(out_apk) / (1 << 20):.1f} MiB, "
            f"peak RSS {max(m for _, m in ours) / 1024:.0f} MiB)"
        )
        print(f"ratio: {ratio:.2f}x (target <= 1.20x): {'OK' if ratio <= 1.2 else 'OVER TARGET'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
