"""SHA-256 of files (optionally remembered on disk under what `stat` says of them), and the one deterministic walk
of a folder that every tree digest uses.

Standard library only: the host-config probe imports it (see `melange_bk.pants.host.PROBE_SOURCES`).
"""

from __future__ import annotations

import hashlib
import os
import stat as st
from typing import Collection, Iterator, Optional, Tuple

from melange_bk.atomicfile import atomic_write

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
            atomic_write(memo, (digest + "\n").encode("ascii"))
        except OSError:
            pass  # a read-only cache only costs time
    return digest


def git_mode(unix_mode: int) -> Optional[int]:
    """What git keeps of a file's mode, as a Unix st_mode: a folder 0o40755, a symlink 0o120777, a regular file
    0o100755 when its owner may execute it else 0o100644; None for anything git does not store (sockets, FIFOs,
    devices). Source trees are identified and uploaded with these modes, so the umask of the checkout (002 or 022),
    group bits, setuid bits or the owner never change a build."""
    fmt = st.S_IFMT(unix_mode)
    if fmt == st.S_IFDIR:
        return st.S_IFDIR | 0o755
    if fmt == st.S_IFLNK:
        return st.S_IFLNK | 0o777
    if fmt == st.S_IFREG:
        return st.S_IFREG | (0o755 if unix_mode & st.S_IXUSR else 0o644)
    return None


def walk_sorted(root: str, skip: Collection[str] = ()) -> Iterator[Tuple[str, str]]:
    """(path relative to `root` with `/`, full path) of every entry under `root`: names sorted within each folder,
    a folder's entries before those of its sub-folders (os.walk's top-down order), symlinks to folders listed but
    not entered. `skip`: relative paths left out, with everything under them."""
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        prefix = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
        if skip:
            dirnames[:] = [d for d in dirnames if prefix + d not in skip]
            filenames = [f for f in filenames if prefix + f not in skip]
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            yield prefix + name, os.path.join(dirpath, name)
