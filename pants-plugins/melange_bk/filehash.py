"""SHA-256 of files, optionally remembered on disk under what `stat` says of them.

Standard library only: the host-config probe imports it (see `melange_bk.pants.host.PROBE_SOURCES`).
"""

from __future__ import annotations

import hashlib
import os

_CHUNK = 1 << 20


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _stat_key(path: str) -> str:
    st = os.stat(path)
    fields = (os.path.abspath(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
    return hashlib.sha256(repr(fields).encode("utf-8", "surrogateescape")).hexdigest()


def sha256_file_remembered(path: str, memo_dir: str) -> str:
    """`sha256_file`, read back from `memo_dir` when the file's path, size, mtime, ctime, inode and device are
    those it had when it was hashed (a 650 MB rootfs tarball is hashed once, not once per build)."""
    key = _stat_key(path)
    memo = os.path.join(memo_dir, key)
    try:
        with open(memo, encoding="ascii") as f:
            known = f.read().strip()
        if len(known) == 64 and all(c in "0123456789abcdef" for c in known):
            return known
    except (OSError, UnicodeDecodeError):
        pass
    digest = sha256_file(path)
    if _stat_key(path) == key:  # (not remembered when the file changed while it was read)
        try:
            os.makedirs(memo_dir, exist_ok=True)
            tmp = f"{memo}.{os.getpid()}.tmp"
            with open(tmp, "w", encoding="ascii") as f:
                f.write(digest + "\n")
            os.replace(tmp, memo)
        except OSError:
            pass  # a read-only cache only costs time
    return digest
