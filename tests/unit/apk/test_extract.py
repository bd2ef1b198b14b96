"""Safe extraction: hostile data segments are built with tarfile (not our writer) and must be refused."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import time
import zlib
from pathlib import Path

import pytest

from melange_bk.apk import reader
from melange_bk.apk.pkginfo import PkgInfo
from melange_bk.apk.reader import extract, list_files, secure_join
from melange_bk.apk.writer import WriteOptions, write_apk
from melange_bk.errors import ApkError
from tests.unit.hostile import apk_with_data_gz, entry, hostile_apk, raw_apk


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


# --- limits: huge headers, long names, zip bombs (reader.MAX_*) ---------------------------------------------------


def _header(name: str, kind: bytes, size: int) -> bytes:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.size = size
    return ti.tobuf(format=tarfile.USTAR_FORMAT)


def test_pax_header_claiming_100mb_is_refused_before_it_is_read(tmp_path: Path) -> None:
    tar = _header("././@PaxHeader", tarfile.XHDTYPE, 100 << 20) + b"20 path=aaaaaaaaaaa\n".ljust(512, b"\0")
    apk = raw_apk(tmp_path / "evil.apk", tar + b"\0" * 1024)
    with pytest.raises(ApkError, match=r"tar header record of 104857600 bytes .* larger than 1048576") as e:
        list_files(str(apk))
    assert e.value.path == str(apk)
    with pytest.raises(ApkError, match="larger than"):
        extract(str(apk), str(tmp_path / "root"))
    assert not any((tmp_path / "root").iterdir())


def test_real_2mb_pax_header_refused(tmp_path: Path) -> None:
    ti, content = entry("f", content=b"x")
    ti.pax_headers = {"comment": "A" * (2 << 20)}
    apk = hostile_apk(tmp_path / "evil.apk", [(ti, content)])
    assert apk.stat().st_size < 64 << 10  # compresses well: the limit, not the file size, must stop it
    with pytest.raises(ApkError, match="larger than 1048576 bytes"):
        extract(str(apk), str(tmp_path / "root"))


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_very_long_names_refused(tmp_path: Path, fmt: int) -> None:
    name = "d/" + "n" * 8000
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        ti = tarfile.TarInfo(name)
        ti.size = 1
        t.addfile(ti, io.BytesIO(b"x"))
    apk = raw_apk(tmp_path / "evil.apk", buf.getvalue())
    with pytest.raises(ApkError, match="longer than 4096 bytes"):
        extract(str(apk), str(tmp_path / "root"))


def test_very_long_symlink_target_refused(tmp_path: Path) -> None:
    apk = hostile_apk(tmp_path / "evil.apk", [entry("l", tarfile.SYMTYPE, "a/" * 3000)])
    with pytest.raises(ApkError, match="target longer than 4096 bytes"):
        extract(str(apk), str(tmp_path / "root"))


def _bomb_apk(path: Path, unpacked: int) -> Path:
    """A package whose data segment is one file of `unpacked` zero bytes (gzip'd ~1000:1), written in chunks."""
    header = _header("zeros", tarfile.REGTYPE, unpacked)
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [comp.compress(header)]
    zeros = b"\0" * (1 << 20)
    for _ in range(unpacked >> 20):
        parts.append(comp.compress(zeros))
    parts.append(comp.compress(b"\0" * 1024))
    parts.append(comp.flush())
    return apk_with_data_gz(path, b"".join(parts), "bomb")


def test_zip_bomb_refused_early(tmp_path: Path) -> None:
    """1 GiB of zeros in ~1 MiB: refused after the first 64 MiB decompressed, nothing written, bounded time."""
    apk = _bomb_apk(tmp_path / "bomb.apk", 1 << 30)
    assert apk.stat().st_size < 2 << 20
    started = time.monotonic()
    with pytest.raises(ApkError, match="expands more than 200 times") as e:
        extract(str(apk), str(tmp_path / "root"))
    assert e.value.path == str(apk)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "root" / "zeros").exists()
    assert time.monotonic() - started < 30  # 1 GiB would take far longer to inflate and write


def test_data_segment_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past MAX_UNPACKED, even an incompressible data segment is refused (and a file being written is left
    for the caller's cleanup, not completed)."""
    monkeypatch.setattr(reader, "MAX_UNPACKED", 2 << 20)
    apk = hostile_apk(tmp_path / "big.apk", [entry("random", content=os.urandom(3 << 20))])
    with pytest.raises(ApkError, match="decompresses to more than 2 MiB"):
        list_files(str(apk))
    monkeypatch.setattr(reader, "MAX_UNPACKED", 4 << 20)
    assert [m.name for m in list_files(str(apk))] == ["random"]  # under the limit: fine


def test_ratio_floor_lets_ordinary_compressible_packages_through(tmp_path: Path) -> None:
    """Below RATIO_FLOOR any ratio is fine: 32 MiB of zeros (a sparse-ish data file) still extracts."""
    apk = _bomb_apk(tmp_path / "zeros.apk", 32 << 20)
    extract(str(apk), str(tmp_path / "root"))
    assert (tmp_path / "root" / "zeros").stat().st_size == 32 << 20
