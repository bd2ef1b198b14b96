"""Small helpers shared by the tests that talk to the daemon: a free loopback port for the servers they start, and
the files of a built .apk."""

from __future__ import annotations

import socket
import tarfile
from pathlib import Path
from typing import Dict


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def apk_files(apk: Path) -> Dict[str, bytes]:
    """Path → content of every regular file in an .apk (its gzip streams read as one tar)."""
    out = {}
    with tarfile.open(apk, "r:gz") as tf:
        for m in tf.getmembers():
            if m.isfile():
                f = tf.extractfile(m)
                assert f is not None
                out[m.name] = f.read()
    return out
