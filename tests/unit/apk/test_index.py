from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import stat
import subprocess
import tarfile
import zlib
from pathlib import Path
from typing import List

import pytest

from melange_bk.apk.index import (
    Index,
    IndexEntry,
    build_index,
    entry_from_apk,
    merge,
    parse_apkindex,
    read_index,
    render_apkindex,
    write_index,
)
from melange_bk.apk.pkginfo import PkgInfo
from melange_bk.apk.sign import load_keyring
from melange_bk.apk.writer import WriteOptions, write_apk
from melange_bk.cli.main import main
from melange_bk.errors import ApkError


def members(data: bytes) -> List[bytes]:
    out = []
    while data:
        d = zlib.decompressobj(31)
        d.decompress(data)
        used = len(data) - len(d.unused_data)
        out.append(data[:used])
        data = data[used:]
    return out


def make_apk(tree: Path, out: Path, key, name: str = "hello", version: str = "1.0", **info) -> Path:  # type: ignore[no-untyped-def]
    pkg = PkgInfo(name=name, version=version, epoch=0, arch="x86_64", description="d", url="https://x",
                  licenses=("MIT",), depends=("so:libc.so.6",), provides=("cmd:hello=1.0-r0",), **info)  # fmt: skip
    write_apk(str(tree), str(out), pkg, signing_key=key, options=WriteOptions(source_date_epoch=100))
    return out


def test_index_record_and_reproducibility(tmp_path: Path, tree_factory, keypair) -> None:  # type: ignore[no-untyped-def]
    key = keypair.signing_key()
    outputs = []
    for run in ("a", "b"):
        t = tree_factory(tmp_path / run / "tree")
        apk = make_apk(t, tmp_path / run / "hello-1.0-r0.apk", key, provider_priority=5)
        outputs.append(write_index(str(tmp_path / run / "APKINDEX.tar.gz"), Index("repo", (entry_from_apk(str(apk)),)),
                                   key))  # fmt: skip
    assert outputs[0] == outputs[1]
    apk_bytes = (tmp_path / "a" / "hello-1.0-r0.apk").read_bytes()
    control = members(apk_bytes)[1]
    sig, body = members(outputs[0])
    with tarfile.open(fileobj=io.BytesIO(zlib.decompress(body, 31))) as t:
        assert t.getnames() == ["DESCRIPTION", "APKINDEX"]
        text = t.extractfile("APKINDEX").read().decode()  # type: ignore[union-attr]
        assert t.extractfile("DESCRIPTION").read() == b"repo"  # type: ignore[union-attr]
    expected_c = "C:Q1" + base64.b64encode(hashlib.sha1(control).digest()).decode()
    assert text.split("\n")[0] == expected_c
    keys = [line[0] for line in text.splitlines() if line]
    assert keys == list("CPVASITULotDpk")
    assert f"S:{len(apk_bytes)}\n" in text and "t:100\n" in text and "k:5\n" in text
    assert text.endswith("\n\n")
    with tarfile.open(fileobj=io.BytesIO(zlib.decompress(sig, 31))) as t:
        assert t.getnames() == [".SIGN.RSA.melange.rsa.pub"]


def test_openssl_verifies_index_signature(tmp_path: Path, tree, keypair) -> None:  # type: ignore[no-untyped-def]
    apk = make_apk(tree, tmp_path / "p.apk", None)
    data = build_index(Index("", (entry_from_apk(str(apk)),)), keypair.signing_key())
    sig, body = members(data)
    with tarfile.open(fileobj=io.BytesIO(zlib.decompress(sig, 31)), mode="r:") as t:
        (tmp_path / "sig").write_bytes(t.extractfile(t.getmembers()[0]).read())  # type: ignore[union-attr]
    (tmp_path / "body").write_bytes(body)
    r = subprocess.run(
        [shutil.which("openssl") or "openssl", "dgst", "-sha1", "-verify", str(keypair.public), "-signature",
         str(tmp_path / "sig"), str(tmp_path / "body")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 0 and "Verified OK" in r.stdout


def test_read_index_verifies(tmp_path: Path, tree, keypair, other_keypair) -> None:  # type: ignore[no-untyped-def]
    apk = make_apk(tree, tmp_path / "p.apk", None)
    index = Index("d", (entry_from_apk(str(apk)),))
    path = tmp_path / "APKINDEX.tar.gz"
    write_index(str(path), index, keypair.signing_key())
    keyring = load_keyring(str(keypair.keyring))
    assert read_index(str(path), keyring).entries == index.entries
    data = bytearray(path.read_bytes())
    data[-5] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(ApkError):
        read_index(str(path), keyring)
    write_index(str(path), index, other_keypair.signing_key())
    with pytest.raises(ApkError, match="does not verify"):
        read_index(str(path), keyring)
    write_index(str(path), index)
    with pytest.raises(ApkError, match="not signed"):
        read_index(str(path), keyring)
    assert read_index(str(path)).entries == index.entries


def test_merge_and_parse() -> None:
    a1 = IndexEntry("Q1a", "a", "1-r0", "x86_64")
    a1b = IndexEntry("Q1b", "a", "1-r0", "x86_64")
    a2 = IndexEntry("Q1c", "a", "2-r0", "x86_64")
    b = IndexEntry("Q1d", "b", "1-r0", "x86_64", depends=("a", "so:libz.so.1"), install_if=("a", "b"))
    assert merge([b, a1], [a1b, a2]) == (a1b, a2, b)
    text = render_apkindex([b, a1])
    assert parse_apkindex(text) == (a1, b)
    with pytest.raises(ApkError, match="^APKINDEX:2: "):
        parse_apkindex(b"P:a\ngarbage\n", path="APKINDEX")
    with pytest.raises(ApkError, match="without P"):
        parse_apkindex(b"C:Q1x\n\n")


def test_cli_keygen_and_index(tmp_path: Path, tree, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    assert main(["keygen", "repo", "--key-size", "2048"]) == 0
    assert stat.S_IMODE(os.stat("repo.rsa").st_mode) == 0o600
    assert Path("repo.rsa").read_text().startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert Path("repo.rsa.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert main(["keygen", "repo"]) == 1  # refuses to overwrite
    assert "refusing to overwrite" in capsys.readouterr().err

    one = make_apk(tree, tmp_path / "hello-1.0-r0.apk", None)
    two = make_apk(tree, tmp_path / "other-2.0-r0.apk", None, name="other", version="2.0")
    assert main(["index", "-o", "APKINDEX.tar.gz", "--signing-key", "repo.rsa", str(one)]) == 0
    keys = tmp_path / "keys"
    keys.mkdir()
    shutil.copy("repo.rsa.pub", keys)
    assert [e.name for e in read_index("APKINDEX.tar.gz", load_keyring(str(keys))).entries] == ["hello"]
    assert main(["index", "-o", "APKINDEX.tar.gz", "--merge", "--signing-key", "repo.rsa", str(two)]) == 0
    merged = read_index("APKINDEX.tar.gz", load_keyring(str(keys)))
    assert [e.name for e in merged.entries] == ["hello", "other"]
    assert main(["index", "-o", "x.tar.gz", "--arch", "aarch64", str(one)]) == 0
    assert read_index("x.tar.gz").entries == ()
    assert main(["index", "-o", "y.tar.gz", "not-there.apk"]) == 1
    assert "not-there.apk" in capsys.readouterr().err
