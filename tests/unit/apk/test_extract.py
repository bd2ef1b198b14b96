"""Safe extraction: hostile data segments are built with tarfile (not our writer) and must be refused."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path
from typing import List, Optional, Tuple

import pytest

from melange_bk.apk.pkginfo import PkgInfo
from melange_bk.apk.reader import extract, list_files, secure_join
from melange_bk.apk.writer import WriteOptions, write_apk
from melange_bk.errors import ApkError


def hostile_apk(path: Path, members: List[Tuple[tarfile.TarInfo, Optional[bytes]]]) -> Path:
    data_buf = io.BytesIO()
    with tarfile.open(fileobj=data_buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for info, content in members:
            t.addfile(info, io.BytesIO(content) if content is not None else None)
    data_gz = gzip.compress(data_buf.getvalue(), mtime=0)
    pkginfo = (
        f"pkgname = evil\npkgver = 1-r0\narch = x86_64\ndatahash = {hashlib.sha256(data_gz).hexdigest()}\n"
    )
    control_buf = io.BytesIO()
    t = tarfile.open(fileobj=control_buf, mode="w", format=tarfile.PAX_FORMAT)
    ti = tarfile.TarInfo(".PKGINFO")
    ti.size = len(pkginfo)
    t.addfile(ti, io.BytesIO(pkginfo.encode()))
    control = control_buf.getvalue()  # before close(): no end-of-archive blocks
    path.write_bytes(gzip.compress(control, mtime=0) + data_gz)
    return path


def entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", content: Optional[bytes] = None):  # type: ignore[no-untyped-def]
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.linkname = link
    ti.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    if content is not None:
        ti.size = len(content)
    return ti, content


def test_roundtrip_of_our_package(tmp_path: Path, tree) -> None:  # type: ignore[no-untyped-def]
    apk = tmp_path / "p.apk"
    write_apk(str(tree), str(apk), PkgInfo(name="a", version="1", epoch=0, arch="x86_64"),
              options=WriteOptions(source_date_epoch=1000))  # fmt: skip
    out = tmp_path / "out"
    names = extract(str(apk), str(out))
    assert "usr/bin/hello" in names
    assert (out / "usr/bin/hello").read_bytes() == (tree / "usr/bin/hello").read_bytes()
    assert os.stat(out / "usr/bin/hello").st_mode & 0o777 == 0o755
    assert os.readlink(out / "usr/bin/hi") == "hello"
    assert os.path.samefile(out / "etc/hello.conf", out / "usr/share/doc/hello/hello.conf")
    assert os.stat(out / "etc").st_mtime == 1000
    assert {m.name for m in list_files(str(apk))} == set(names)


@pytest.mark.parametrize(
    "members,message",
    [
        ([entry("/etc/passwd", content=b"x")], "absolute"),
        ([entry("../escape", content=b"x")], "climbs out"),
        ([entry("a/../../escape", content=b"x")], "climbs out"),
        ([entry("usr", tarfile.DIRTYPE), entry("usr/link", tarfile.SYMTYPE, "../../../etc")], "outside"),
        ([entry("passwd", tarfile.LNKTYPE, "/etc/passwd")], "absolute"),
        ([entry("h", tarfile.LNKTYPE, "../../etc/passwd")], "climbs out"),
        ([entry("h", tarfile.LNKTYPE, "not-there")], "earlier file"),
        ([entry("null", tarfile.CHRTYPE)], "device node"),
        ([entry("disk", tarfile.BLKTYPE)], "device node"),
        ([entry("fifo", tarfile.FIFOTYPE)], "device node"),
    ],
)
def test_hostile_entries_refused(tmp_path: Path, members, message: str) -> None:  # type: ignore[no-untyped-def]
    apk = hostile_apk(tmp_path / "evil.apk", members)
    out = tmp_path / "root"
    with pytest.raises(ApkError, match=message) as e:
        extract(str(apk), str(out))
    assert e.value.path == str(apk)
    assert not (tmp_path / "escape").exists()


def test_writes_through_symlinks_stay_inside(tmp_path: Path) -> None:
    """An absolute symlink is legitimate (e.g. merged /usr) but resolves inside the extraction root."""
    outside = tmp_path / "outside"
    outside.mkdir()
    apk = hostile_apk(
        tmp_path / "evil.apk",
        [entry("etc", tarfile.SYMTYPE, str(outside)), entry("etc/owned", content=b"pwned")],
    )
    root = tmp_path / "root"
    extract(str(apk), str(root))
    assert not (outside / "owned").exists()
    assert (root / str(outside).lstrip("/") / "owned").read_bytes() == b"pwned"


def test_checksum_mismatch_refused(tmp_path: Path) -> None:
    ti, content = entry("f", content=b"real")
    ti.pax_headers = {"APK-TOOLS.checksum.SHA1": hashlib.sha1(b"fake").hexdigest()}
    apk = hostile_apk(tmp_path / "evil.apk", [(ti, content)])
    with pytest.raises(ApkError, match="checksum"):
        extract(str(apk), str(tmp_path / "root"))


def test_secure_join(tmp_path: Path) -> None:
    root = tmp_path / "r"
    (root / "usr/lib").mkdir(parents=True)
    os.symlink("usr/lib", root / "lib")
    os.symlink("/usr", root / "u")
    os.symlink("../../../../..", root / "up")
    assert secure_join(str(root), "lib/x.so") == str(root / "usr/lib/x.so")
    assert secure_join(str(root), "u/lib") == str(root / "usr/lib")
    assert secure_join(str(root), "up/etc/passwd") == str(root / "etc/passwd")
    assert secure_join(str(root), "lib") == str(root / "lib")  # the last component is not followed
    os.symlink("loop", root / "loop")
    with pytest.raises(ApkError, match="too many"):
        secure_join(str(root), "loop/x")
