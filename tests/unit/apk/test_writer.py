from __future__ import annotations

import gzip
import io
import os
import shutil
import tarfile
import zlib
from pathlib import Path
from typing import List, Tuple

import pytest

from melange_bk.apk import pkginfo
from melange_bk.apk.pkginfo import PkgInfo
from melange_bk.apk.reader import list_files, read_apk
from melange_bk.apk.writer import ExtraFile, WriteOptions, scan_tree, write_apk
from melange_bk.errors import ApkError

SDE = 1700000000
INFO = PkgInfo(name="hello", version="2.12", epoch=1, arch="x86_64", description="greets", licenses=("MIT",))


def segments(data: bytes) -> List[Tuple[bytes, bytes]]:
    """(gzip bytes, tar bytes) of each member, split with zlib only."""
    out = []
    while data:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        tar = d.decompress(data)
        assert d.eof
        used = len(data) - len(d.unused_data)
        out.append((data[:used], tar))
        data = data[used:]
    return out


def build(tree: Path, out: Path, keypair=None, **kw) -> Path:  # type: ignore[no-untyped-def]
    opts = kw.pop("options", WriteOptions(source_date_epoch=SDE))
    write_apk(
        str(tree), str(out), INFO, signing_key=keypair.signing_key() if keypair else None, options=opts, **kw
    )
    return out


def test_two_builds_are_byte_identical(tmp_path: Path, tree_factory, keypair) -> None:  # type: ignore[no-untyped-def]
    a = tree_factory(tmp_path / "a" / "tree")
    b = tree_factory(tmp_path / "elsewhere" / "other-tree")
    # different mtimes and locations must not matter
    for p in (b / "etc" / "hello.conf", b / "usr" / "bin" / "hello", b / "usr"):
        os.utime(p, (1, 1))
    pa = build(a, tmp_path / "a.apk", keypair, melange_yaml=b"package: {}\n")
    pb = build(b, tmp_path / "out" / "b.apk", keypair, melange_yaml=b"package: {}\n")
    assert pa.read_bytes() == pb.read_bytes()


def test_different_epoch_changes_bytes(tmp_path: Path, tree, keypair) -> None:  # type: ignore[no-untyped-def]
    one = build(tree, tmp_path / "1.apk", keypair)
    two = build(tree, tmp_path / "2.apk", keypair, options=WriteOptions(source_date_epoch=SDE + 1))
    assert one.read_bytes() != two.read_bytes()


def test_segment_layout(tmp_path: Path, tree, keypair) -> None:  # type: ignore[no-untyped-def]
    apk = build(
        tree,
        tmp_path / "p.apk",
        keypair,
        scriptlets=((".post-install", b"#!/bin/sh\ntrue\n"), (".pre-install", b"#!/bin/sh\n")),
        melange_yaml=b"package:\n  name: hello\n",
    )
    segs = segments(apk.read_bytes())
    assert len(segs) == 3
    for gz, _ in segs:
        # deterministic gzip header: deflate, no flags, MTIME 0, XFL 0, OS 255
        assert gz[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
        assert gzip.decompress(gz)  # each member is a complete gzip file
    sig_tar, control_tar, data_tar = (t for _, t in segs)
    assert not sig_tar.endswith(b"\0" * 1024) or len(sig_tar) == 1024  # one header + one data block, no EOA
    assert len(sig_tar) == 512 + 512
    assert not control_tar.endswith(b"\0" * 1024)
    assert data_tar.endswith(b"\0" * 1024)
    with tarfile.open(fileobj=io.BytesIO(control_tar)) as t:
        members = t.getmembers()
        names = [m.name for m in members]
        assert names == [".PKGINFO", ".melange.yaml", ".post-install", ".pre-install"]
        assert all(m.uid == 0 and m.gid == 0 and m.mtime == SDE for m in members)
        assert t.getmember(".pre-install").mode == 0o755
        text = t.extractfile(".PKGINFO").read().decode()  # type: ignore[union-attr]
    keys = [line.split(" = ")[0] for line in text.splitlines() if not line.startswith("#")]
    assert keys == [
        "pkgname", "pkgver", "arch", "size", "origin", "pkgdesc", "url", "commit", "builddate", "license",
        "datahash",
    ]  # fmt: skip
    assert "pkgver = 2.12-r1\n" in text and f"builddate = {SDE}\n" in text


def test_data_entries(tmp_path: Path, tree, keypair) -> None:  # type: ignore[no-untyped-def]
    apk = build(tree, tmp_path / "p.apk", keypair)
    data_tar = segments(apk.read_bytes())[2][1]
    with tarfile.open(fileobj=io.BytesIO(data_tar)) as t:
        members = {m.name: m for m in t.getmembers()}
        order = [m.name for m in t.getmembers()]
        long_name = "usr/share/doc/hello/" + "d" * 60 + "/" + "f" * 80 + ".txt"
        assert long_name in members
        assert t.extractfile(long_name).read() == b"long name\n" * 100  # type: ignore[union-attr]
    # depth-first, siblings sorted, parents before children
    assert order[:3] == ["empty", "etc", "etc/hello.conf"]
    assert order.index("usr") < order.index("usr/bin") < order.index("usr/bin/hello")
    assert all(m.mtime == SDE for m in members.values())
    hi = members["usr/bin/hi"]
    assert hi.issym() and hi.linkname == "hello"
    link = members["usr/share/doc/hello/hello.conf"]
    assert link.islnk() and link.linkname == "etc/hello.conf"
    assert members["usr/bin/hello"].mode == 0o755
    import hashlib

    assert (
        members["usr/bin/hello"].pax_headers["APK-TOOLS.checksum.SHA1"]
        == hashlib.sha1(b"#!/bin/sh\necho hello\n").hexdigest()
    )
    assert hi.pax_headers["APK-TOOLS.checksum.SHA1"] == hashlib.sha1(b"hello").hexdigest()
    assert "APK-TOOLS.checksum.SHA1" not in members["usr"].pax_headers
    sbom = "var/lib/db/sbom/hello-2.12-r1.spdx.json"
    assert sbom in members


def test_installed_size_and_datahash(tmp_path: Path, tree, keypair) -> None:  # type: ignore[no-untyped-def]
    apk = build(tree, tmp_path / "p.apk", keypair)
    contents = read_apk(str(apk))
    segs = segments(apk.read_bytes())
    import hashlib

    assert contents.info.datahash == hashlib.sha256(segs[2][0]).hexdigest()
    files = [m for m in list_files(str(apk))]
    expected = sum(os.lstat(p).st_size for p in tree.rglob("*") if p.is_file() and not p.is_symlink())
    expected += len("hello")  # symlink target
    sbom = [m for m in files if m.name.endswith(".spdx.json")][0]
    assert contents.info.installed_size == expected + sbom.size


def test_uid_remap(tmp_path: Path, tree) -> None:  # type: ignore[no-untyped-def]
    opts = WriteOptions(source_date_epoch=SDE, uid_map=((os.getuid(), 4242),), gid_map=((os.getgid(), 4343),))
    apk = build(tree, tmp_path / "p.apk", options=opts)
    with tarfile.open(fileobj=io.BytesIO(segments(apk.read_bytes())[1][1])) as t:
        m = t.getmember("usr/bin/hello")
        assert (m.uid, m.gid, m.uname) == (4242, 4343, "")
        sbom = [x for x in t.getmembers() if x.name.endswith(".json")][0]
        assert (sbom.uid, sbom.gid, sbom.uname) == (0, 0, "root")  # generated files are root's


def test_xattrs_become_pax_records(tmp_path: Path, tree) -> None:  # type: ignore[no-untyped-def]
    target = tree / "usr" / "bin" / "hello"
    try:
        os.setxattr(target, "user.melange", b"yes")
    except OSError:
        pytest.skip("file system without user xattrs")
    apk = build(tree, tmp_path / "p.apk")
    with tarfile.open(fileobj=io.BytesIO(segments(apk.read_bytes())[1][1])) as t:
        assert t.getmember("usr/bin/hello").pax_headers["SCHILY.xattr.user.melange"] == "yes"
    member = [m for m in list_files(str(apk)) if m.name == "usr/bin/hello"][0]
    assert member.xattrs == (("user.melange", b"yes"),)


def test_fifo_and_device_refused(tmp_path: Path, tree) -> None:  # type: ignore[no-untyped-def]
    os.mkfifo(tree / "etc" / "pipe")
    with pytest.raises(ApkError) as e:
        build(tree, tmp_path / "p.apk")
    assert e.value.path == str(tree / "etc" / "pipe") and "FIFO" in str(e.value)
    os.unlink(tree / "etc" / "pipe")
    try:
        os.mknod(tree / "etc" / "null", 0o600 | 0o020000, os.makedev(1, 3))
    except PermissionError:
        return
    with pytest.raises(ApkError, match="character device") as e:
        build(tree, tmp_path / "p.apk")
    assert e.value.path and e.value.path.endswith("etc/null")
    assert not (tmp_path / "p.apk").exists()


def test_non_utf8_name_refused(tmp_path: Path, tree) -> None:  # type: ignore[no-untyped-def]
    try:
        (tree / "etc" / os.fsdecode(b"bad\xff")).write_text("x")
    except (OSError, UnicodeEncodeError):
        pytest.skip("file system refuses the name")
    with pytest.raises(ApkError, match="UTF-8"):
        build(tree, tmp_path / "p.apk")


def test_extra_files_and_conflicts(tmp_path: Path, tree) -> None:  # type: ignore[no-untyped-def]
    extra = (ExtraFile("usr/lib/apk/extra.txt", b"extra"),)
    apk = build(tree, tmp_path / "p.apk", extra_files=extra)
    names = [m.name for m in list_files(str(apk))]
    assert "usr/lib" in names and "usr/lib/apk/extra.txt" in names
    with pytest.raises(ApkError, match="already has"):
        build(tree, tmp_path / "q.apk", extra_files=(ExtraFile("etc/hello.conf", b""),))
    with pytest.raises(ApkError, match="invalid path"):
        build(tree, tmp_path / "q.apk", extra_files=(ExtraFile("../x", b""),))


def test_no_sbom_option(tmp_path: Path, tree) -> None:  # type: ignore[no-untyped-def]
    apk = build(tree, tmp_path / "p.apk", options=WriteOptions(source_date_epoch=SDE, sbom=None))
    assert not any(m.name.startswith("var/") for m in list_files(str(apk)))


def test_unsigned_has_two_segments(tmp_path: Path, tree) -> None:  # type: ignore[no-untyped-def]
    apk = build(tree, tmp_path / "p.apk")
    assert len(segments(apk.read_bytes())) == 2
    assert read_apk(str(apk)).signatures == ()


def test_unknown_scriptlet_refused(tmp_path: Path, tree) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ApkError, match="unknown scriptlet"):
        build(tree, tmp_path / "p.apk", scriptlets=((".install", b""),))


def test_scan_is_sorted_and_tree_must_exist(tmp_path: Path, tree) -> None:  # type: ignore[no-untyped-def]
    paths = [e.path for e in scan_tree(str(tree))]
    assert paths == sorted(paths, key=lambda p: p.split("/"))
    with pytest.raises(ApkError):
        scan_tree(str(tmp_path / "missing"))


def test_pkginfo_roundtrip_and_validation() -> None:
    info = PkgInfo(
        name="a", version="1", epoch=0, arch="aarch64", origin="a", depends=("so:libc.so.6", "b>=2"), provides=("cmd:a=1-r0",),
        replaces=("c",), provider_priority=10, triggers=("/usr/lib/*",), datahash="00" * 32, builddate=5,
    )  # fmt: skip
    text = pkginfo.render(info)
    assert text.startswith(b"# Generated by melange-bk\npkgname = a\npkgver = 1-r0\n")
    assert pkginfo.parse(text) == info
    assert pkginfo.parse(b"pkgname = x\npkgver = 1.0\n").epoch == 0
    with pytest.raises(ApkError, match="line break"):
        pkginfo.render(
            PkgInfo(name="a", version="1", epoch=0, arch="x", description="two\nlines", datahash="0")
        )
    with pytest.raises(ApkError, match="datahash"):
        pkginfo.render(PkgInfo(name="a", version="1", epoch=0, arch="x"))
    with pytest.raises(ApkError, match="lacks pkgname"):
        pkginfo.parse(b"arch = x\n")


def test_output_dir_created_and_no_temp_left(tmp_path: Path, tree) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "deep" / "er" / "p.apk"
    build(tree, out)
    assert sorted(os.listdir(out.parent)) == ["p.apk"]
    shutil.rmtree(out.parent)
