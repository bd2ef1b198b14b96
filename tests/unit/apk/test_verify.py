"""Our verifier accepts our packages and rejects tampered, unsigned and wrongly signed ones."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest

from melange_bk.apk.pkginfo import PkgInfo
from melange_bk.apk.reader import read_apk, verify_apk
from melange_bk.apk.sign import load_keyring
from melange_bk.apk.writer import WriteOptions, write_apk
from melange_bk.errors import ApkError

INFO = PkgInfo(name="hello", version="1.0", epoch=0, arch="x86_64")


def _build(tree: Path, out: Path, key=None) -> bytes:  # type: ignore[no-untyped-def]
    write_apk(str(tree), str(out), INFO, signing_key=key, options=WriteOptions(source_date_epoch=1))
    return out.read_bytes()


def _member_bounds(data: bytes):  # type: ignore[no-untyped-def]
    bounds, pos = [], 0
    while pos < len(data):
        d = zlib.decompressobj(31)
        d.decompress(data[pos:])
        end = len(data) - len(d.unused_data)
        bounds.append((pos, end))
        pos = end
    return bounds


def test_accepts_ours(tmp_path: Path, tree, keypair) -> None:  # type: ignore[no-untyped-def]
    _build(tree, tmp_path / "p.apk", keypair.signing_key())
    contents = verify_apk(str(tmp_path / "p.apk"), load_keyring(str(keypair.keyring)))
    assert contents.info.name == "hello"
    assert [s.entry_name for s in contents.signatures] == [".SIGN.RSA.melange.rsa.pub"]


def test_accepts_sha256_signature(tmp_path: Path, tree, keypair) -> None:  # type: ignore[no-untyped-def]
    _build(tree, tmp_path / "p.apk", keypair.signing_key("sha256"))
    contents = verify_apk(str(tmp_path / "p.apk"), load_keyring(str(keypair.keyring)))
    assert contents.signatures[0].entry_name == ".SIGN.RSA256.melange.rsa.pub"


@pytest.mark.parametrize("where", ["header", "middle", "trailer"])
def test_rejects_flipped_byte_in_data(tmp_path: Path, tree, keypair, where: str) -> None:  # type: ignore[no-untyped-def]
    data = bytearray(_build(tree, tmp_path / "p.apk", keypair.signing_key()))
    start, end = _member_bounds(bytes(data))[2]
    pos = {"header": start + 4, "middle": (start + end) // 2, "trailer": end - 2}[where]
    data[pos] ^= 0x01
    bad = tmp_path / "bad.apk"
    bad.write_bytes(bytes(data))
    with pytest.raises(ApkError) as e:
        verify_apk(str(bad), load_keyring(str(keypair.keyring)))
    assert e.value.path == str(bad)


@pytest.mark.parametrize("where", ["header", "middle", "trailer"])
def test_rejects_flipped_byte_in_control(tmp_path: Path, tree, keypair, where: str) -> None:  # type: ignore[no-untyped-def]
    data = bytearray(_build(tree, tmp_path / "p.apk", keypair.signing_key()))
    start, end = _member_bounds(bytes(data))[1]
    pos = {"header": start + 4, "middle": (start + end) // 2, "trailer": end - 2}[where]
    data[pos] ^= 0x80
    bad = tmp_path / "bad.apk"
    bad.write_bytes(bytes(data))
    with pytest.raises(ApkError):
        verify_apk(str(bad), load_keyring(str(keypair.keyring)))


def test_rejects_wrong_key(tmp_path: Path, tree, keypair, other_keypair) -> None:  # type: ignore[no-untyped-def]
    _build(tree, tmp_path / "p.apk", other_keypair.signing_key())
    with pytest.raises(ApkError, match="does not verify"):
        verify_apk(str(tmp_path / "p.apk"), load_keyring(str(keypair.keyring)))
    # and a key the keyring does not have at all
    empty = tmp_path / "empty-keys"
    empty.mkdir()
    with pytest.raises(ApkError, match="no key"):
        verify_apk(str(tmp_path / "p.apk"), load_keyring(str(empty)))


def test_rejects_missing_signature(tmp_path: Path, tree, keypair) -> None:  # type: ignore[no-untyped-def]
    data = _build(tree, tmp_path / "p.apk", keypair.signing_key())
    start, end = _member_bounds(data)[0]
    stripped = tmp_path / "stripped.apk"
    stripped.write_bytes(data[end:])
    with pytest.raises(ApkError, match="not signed"):
        verify_apk(str(stripped), load_keyring(str(keypair.keyring)))
    _build(tree, tmp_path / "unsigned.apk")
    with pytest.raises(ApkError, match="not signed"):
        verify_apk(str(tmp_path / "unsigned.apk"), load_keyring(str(keypair.keyring)))
    # explicitly allowed: datahash is still checked
    assert verify_apk(
        str(tmp_path / "unsigned.apk"), load_keyring(str(keypair.keyring)), require_signature=False
    )


def test_rejects_swapped_data_segment(tmp_path: Path, tree, keypair) -> None:  # type: ignore[no-untyped-def]
    """A valid gzip data member from another package: the signature still verifies, the datahash does not."""
    a = _build(tree, tmp_path / "a.apk", keypair.signing_key())
    (tree / "etc" / "hello.conf").write_text("changed\n")
    b = _build(tree, tmp_path / "b.apk", keypair.signing_key())
    mixed = a[: _member_bounds(a)[2][0]] + b[_member_bounds(b)[2][0] :]
    (tmp_path / "mixed.apk").write_bytes(mixed)
    with pytest.raises(ApkError, match="datahash"):
        verify_apk(str(tmp_path / "mixed.apk"), load_keyring(str(keypair.keyring)))


def test_rejects_truncation_and_trailing_bytes(tmp_path: Path, tree, keypair) -> None:  # type: ignore[no-untyped-def]
    data = _build(tree, tmp_path / "p.apk", keypair.signing_key())
    (tmp_path / "t.apk").write_bytes(data[:-10])
    with pytest.raises(ApkError, match="truncated"):
        read_apk(str(tmp_path / "t.apk"))
    (tmp_path / "x.apk").write_bytes(data + b"junk")
    with pytest.raises(ApkError, match="unexpected bytes"):
        read_apk(str(tmp_path / "x.apk"))
    (tmp_path / "n.apk").write_bytes(b"not a package")
    with pytest.raises(ApkError, match="corrupt gzip"):
        read_apk(str(tmp_path / "n.apk"))
    with pytest.raises(ApkError, match="cannot open"):
        read_apk(str(tmp_path / "missing.apk"))
