"""Benchmark (not a test): export a 1 GiB file from BuildKit through the local exporter (our FileSend receiver) and
report the client's peak RSS. Target: < 200 MB.

    eval "$(bin/buildkit env)"
    PYTHONPATH=pants-plugins .cache/devvenv/bin/python bench/export_memory.py [--mib 1024] [--tar]

A step writes the file (random data, fresh each run, so the step really runs) under /home/build/melange-out;
only that directory is exported. The measurement runs in this process: peak RSS is VmHWM from
/proc/self/status, reported before the solve (Python + grpc loaded) and after it; `--tar` uses the tar
exporter instead (one stream written to a file).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "pants-plugins"))

from melange_bk import llb  # noqa: E402
from melange_bk.buildkit.client import Client  # noqa: E402
from melange_bk.buildkit.session import ExportTarget  # noqa: E402
from melange_bk.buildkit.solve import solve  # noqa: E402
from melange_bk.environment.rootfs import busybox_rootfs  # noqa: E402

OUT = "/home/build/melange-out"


def vm(field: str) -> int:
    """A /proc/self/status field in bytes (VmHWM: peak resident set; VmRSS: current)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--tar", action="store_true", help="tar exporter instead of local")
    args = ap.parse_args()
    addr = os.environ.get("BUILDKIT_HOST") or sys.exit('BUILDKIT_HOST is not set: eval "$(bin/buildkit env)"')
    work = tempfile.mkdtemp(prefix="mbk-exportmem-")
    try:
        root = busybox_rootfs(os.path.join(work, "root"))
        base = llb.file(llb.scratch(), llb.copy(llb.local("rootfs"), "/", "/", copy_dir_contents=True))
        # Fresh content each run: seeded by a nonce, so the daemon cannot reuse an earlier result.
        script = (
            f"mkdir -p {OUT} && echo {uuid.uuid4().hex} > {OUT}/nonce && "
            f"head -c {args.mib << 20} /dev/urandom > {OUT}/big"
        )
        built = llb.run(base, ["/bin/sh", "-c", script], env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}).root
        state = llb.file(llb.scratch(), llb.copy(built, OUT, "/", copy_dir_contents=True))
        dest = os.path.join(work, "out.tar" if args.tar else "out")
        export = ExportTarget("tar" if args.tar else "local", dest)
        with Client.connect(addr) as bk:
            bk.ping()
            before = vm("VmHWM")
            t0 = time.monotonic()
            result = solve(bk, llb.marshal(state), local_dirs={"rootfs": root}, export=export)
            took = time.monotonic() - t0
        peak = vm("VmHWM")
        size = os.path.getsize(dest if args.tar else os.path.join(dest, "big"))
        assert size >= args.mib << 20, size
        print(
            f"{export.kind} export of a {args.mib} MiB file: {took:.1f}s "
            f"(step + transfer; {result.bytes / took / 1e6:.0f} MB/s overall)"
            if not args.tar
            else f"{export.kind} export of a {args.mib} MiB file: {took:.1f}s"
        )
        print(
            f"client peak RSS: {peak / 2**20:.0f} MiB (before the solve: {before / 2**20:.0f} MiB; target < 200 MB)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
