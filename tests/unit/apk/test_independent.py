"""Checks of our packages that share no code with our writer or reader: zlib/gzip/tarfile split and read the
segments, hashlib recomputes the datahash, the openssl CLI verifies the signature, GNU tar lists the package."""

from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import subprocess
import tarfile
import zlib
from pathlib import Path
from typing import List

import pytest

from melange_bk.apk.pkginfo import PkgInfo
from melange_bk.apk.writer import WriteOptions, write_apk

INFO = PkgInfo(name="hello", version="1.0", epoch=3, arch="x86_64")


def split_members(data: bytes) -> List[bytes]:
    members = []
    while data:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        d.decompress(data)
        used = len(data) - len(d.unused_data)
        members.append(data[:used])
        data = data[used:]
    return members


def tar_names(member: bytes) -> List[str]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(member)), mode="r:") as t:
        return t.getnames()


@pytest.mark.parametrize("algorithm,dgst", [("sha1", "-sha1"), ("sha256", "-sha256")])
def test_openssl_verifies_signature(tmp_path: Path, tree, keypair, algorithm: str, dgst: str) -> None:  # type: ignore[no-untyped-def]
    openssl = shutil.which("openssl")
    assert openssl, "the openssl CLI is part of this project's toolchain"
    apk = tmp_path / "p.apk"
    write_apk(str(tree), str(apk), INFO, signing_key=keypair.signing_key(algorithm),
              options=WriteOptions(source_date_epoch=7))  # fmt: skip
    sig_gz, control_gz, data_gz = split_members(apk.read_bytes())
    prefix = ".SIGN.RSA." if algorithm == "sha1" else ".SIGN.RSA256."
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(sig_gz)), mode="r:") as t:
        (member,) = t.getmembers()
        assert member.name == prefix + "melange.rsa.pub"
        signature = t.extractfile(member).read()  # type: ignore[union-attr]
    (tmp_path / "sig").write_bytes(signature)
    (tmp_path / "control.tar.gz").write_bytes(control_gz)
    ok = subprocess.run(
        [openssl, "dgst", dgst, "-verify", str(keypair.public), "-signature", str(tmp_path / "sig"),
         str(tmp_path / "control.tar.gz")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert ok.returncode == 0 and "Verified OK" in ok.stdout, ok.stdout + ok.stderr
    # the same signature must fail over a modified control segment
    (tmp_path / "control.tar.gz").write_bytes(control_gz[:-1] + bytes([control_gz[-1] ^ 1]))
    bad = subprocess.run(
        [openssl, "dgst", dgst, "-verify", str(keypair.public), "-signature", str(tmp_path / "sig"),
         str(tmp_path / "control.tar.gz")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert bad.returncode != 0

    # control: .PKGINFO first, datahash = sha256 of the data member's bytes
    assert tar_names(control_gz)[0] == ".PKGINFO"
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(control_gz)), mode="r:") as t:
        pkginfo = t.extractfile(".PKGINFO").read().decode()  # type: ignore[union-attr]
    assert f"datahash = {hashlib.sha256(data_gz).hexdigest()}\n" in pkginfo
    assert "pkgver = 1.0-r3\n" in pkginfo
    # data: every regular file's APK-TOOLS.checksum.SHA1 is the hex SHA-1 of its content
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data_gz)), mode="r:") as t:
        checked = 0
        for m in t.getmembers():
            if m.isreg():
                content = t.extractfile(m).read()  # type: ignore[union-attr]
                assert m.pax_headers["APK-TOOLS.checksum.SHA1"] == hashlib.sha1(content).hexdigest()
                checked += 1
        assert checked >= 3


def test_gnu_tar_lists_the_whole_package(tmp_path: Path, tree, keypair) -> None:  # type: ignore[no-untyped-def]
    """apk's concatenation trick: without end-of-archive blocks in the first two segments, the whole .apk reads
    as one tar.gz (signature, control and data entries in sequence)."""
    tar = shutil.which("tar")
    assert tar
    apk = tmp_path / "p.apk"
    write_apk(
        str(tree),
        str(apk),
        INFO,
        signing_key=keypair.signing_key(),
        options=WriteOptions(source_date_epoch=7),
    )
    listing = subprocess.run(
        [tar, "-tzf", str(apk)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert listing[:2] == [".SIGN.RSA.melange.rsa.pub", ".PKGINFO"]
    assert "usr/bin/hello" in listing and "usr/bin/hi" in listing
    # and Python's gzip reads all members as one stream, tarfile parses it as one archive
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(apk.read_bytes())), mode="r:") as t:
        assert t.getnames() == listing
