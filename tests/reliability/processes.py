"""Processes of the reliability suite: the `melange-bk build` it starts, and what runs on this host (the daemon's
build steps are host processes under runc, visible in /proc)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional


def procs_with(needle: str) -> List[int]:
    """Host processes (not this one) whose command line contains `needle`."""
    pids = []
    me = str(os.getpid())
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or pid == me:
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if needle.encode() in f.read():
                    pids.append(int(pid))
        except OSError:
            pass
    return pids


def start_build(
    yaml_path: Path,
    out: Path,
    rootfs: str,
    addr: str,
    progress: str = "plain",
    env: Optional[Dict[str, str]] = None,
    stdout: int = subprocess.PIPE,
) -> subprocess.Popen:
    """`python -m melange_bk.cli build YAML` on `rootfs` into `out` against `addr`, in a child process with this
    interpreter and sys.path (stderr piped, text mode)."""
    full_env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p), **(env or {}))
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "melange_bk.cli",
            "build",
            str(yaml_path),
            "--rootfs",
            rootfs,
            "--out-dir",
            str(out),
            "--buildkit-addr",
            addr,
            "--progress",
            progress,
        ],
        stdout=stdout,
        stderr=subprocess.PIPE,
        env=full_env,
        text=True,
    )
