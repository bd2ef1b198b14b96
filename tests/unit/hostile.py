"""Hostile .apk files for the extraction and installer tests, built with tarfile (never with our writer)."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path
from typing import List, Optional, Tuple

Member = Tuple[tarfile.TarInfo, Optional[bytes]]


def apk_with_data_gz(path: Path, data_gz: bytes, name: str = "evil") -> Path:
    """An unsigned .apk: a control segment (.PKGINFO naming `data_gz`'s sha256) followed by `data_gz` as given."""
    pkginfo = (
        f"pkgname = {name}\npkgver = 1-r0\narch = x86_64\ndatahash = {hashlib.sha256(data_gz).hexdigest()}\n"
    )
    control_buf = io.BytesIO()
    t = tarfile.open(fileobj=control_buf, mode="w", format=tarfile.PAX_FORMAT)
    ti = tarfile.TarInfo(".PKGINFO")
    ti.size = len(pkginfo)
    t.addfile(ti, io.BytesIO(pkginfo.encode()))
    control = control_buf.getvalue()  # before close(): no end-of-archive blocks
    path.write_bytes(gzip.compress(control, mtime=0) + data_gz)
    return path


def raw_apk(path: Path, data_tar: bytes, name: str = "evil") -> Path:
    """An unsigned .apk whose data segment is exactly `data_tar` (hand-made bytes, not necessarily tarfile's)."""
    return apk_with_data_gz(path, gzip.compress(data_tar, mtime=0), name)


def hostile_apk(path: Path, members: List[Member], name: str = "evil") -> Path:
    """An unsigned .apk whose data tar holds `members` as given."""
    data_buf = io.BytesIO()
    with tarfile.open(fileobj=data_buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for info, content in members:
            t.addfile(info, io.BytesIO(content) if content is not None else None)
    return raw_apk(path, data_buf.getvalue(), name)


def entry(
    name: str, kind: bytes = tarfile.REGTYPE, link: str = "", content: Optional[bytes] = None
) -> Member:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.linkname = link
    ti.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    if content is not None:
        ti.size = len(content)
    return ti, content
