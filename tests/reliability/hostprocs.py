"""What runs on this host: the daemon's build steps are host processes (runc), visible in /proc."""

from __future__ import annotations

import os
from typing import List


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
