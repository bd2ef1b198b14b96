"""Hostile input that needs the daemon: the signing key must never reach BuildKit.

The private key is used by the client only, after the solve, to sign the packages it writes. Neither its content
(the PEM body) nor its path may appear in the marshalled LLB (`--emit-llb`), in what the daemon reports back
(`--progress rawjson`, every status line) or in anything else the build prints -- also when the key sits inside
the source dir, which is uploaded as the workspace.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

import pytest

from melange_bk.apk import load_keyring, verify_apk, write_keypair

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "demo"
REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    env = dict(
        os.environ, PYTHONPATH=f"{REPO / 'pants-plugins'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    )
    return subprocess.run(
        [sys.executable, "-m", "melange_bk.cli", *args],
        capture_output=True,
        env=env,
        timeout=600,
        check=False,
    )


def _needles(key: Path, name_too: bool = True) -> List[Tuple[str, bytes]]:
    """What must not appear: the PEM body (whole, each line, the DER in other encodings), the key's path (and
    its file name, unless the key is in the source dir: the LLB then excludes it from the upload by name)."""
    pem = key.read_bytes()
    lines = [ln for ln in pem.splitlines() if ln and not ln.startswith(b"-----")]
    der = base64.b64decode(b"".join(lines))
    out = [("PEM body", b"".join(lines)), ("DER", der), ("DER as hex", der.hex().encode())]
    out += [(f"PEM line {i}", ln) for i, ln in enumerate(lines) if len(ln) >= 40]
    out += [("key path", str(key).encode()), ("key folder", str(key.parent).encode())]
    if name_too:
        out.append(("key file name", key.name.encode()))
    return out


def _assert_absent(what: str, data: bytes, key: Path, name_too: bool = True) -> None:
    for name, needle in _needles(key, name_too):
        assert needle not in data, f"{name} of the signing key found in {what}"


@pytest.mark.parametrize("where", ["outside", "inside"])
def test_signing_key_never_reaches_the_daemon(
    tmp_path: Path, busybox_root: str, buildkit_addr: str, where: str
) -> None:
    ws = tmp_path / "demo"
    shutil.copytree(FIXTURE, ws)
    key_dir = tmp_path / "secret-keys-9f1c" if where == "outside" else ws / "secret-keys-9f1c"
    key_dir.mkdir()
    key = key_dir / "melange-bk-hostile-test.rsa"
    write_keypair(str(key), bits=2048)
    # a step that tries to put the key into the package: it must not find it in the workspace
    text = (
        (ws / "melange.yaml")
        .read_text()
        .replace(
            "  - name: second step\n",
            "  - name: steal the key\n    runs: |\n"
            "      cat secret-*/*.rsa > ${{targets.destdir}}/etc/demo/stolen 2>/dev/null"
            " || echo absent > ${{targets.destdir}}/etc/demo/stolen\n"
            "  - name: second step\n",
        )
    )
    assert "steal the key" in text
    (ws / "melange.yaml").write_text(text)
    common = ["--rootfs", busybox_root, "--signing-key", str(key), "--buildkit-addr", buildkit_addr]

    llb_file = tmp_path / "build.llb"
    emitted = _cli("build", str(ws / "melange.yaml"), *common, "--emit-llb", str(llb_file))
    assert emitted.returncode == 0, emitted.stderr.decode()
    _assert_absent("the marshalled LLB", llb_file.read_bytes(), key, name_too=where == "outside")

    out = tmp_path / "out"
    built = _cli("build", str(ws / "melange.yaml"), *common, "--out-dir", str(out), "--progress", "rawjson")
    assert built.returncode == 0, built.stderr.decode()[-3000:]
    assert built.stderr.count(b'"vertexes"') > 0  # the daemon's status stream was really printed
    _assert_absent("the progress output (stderr)", built.stderr, key)
    _assert_absent("stdout", built.stdout, key)

    apks = sorted((out / "x86_64").glob("*.apk"))
    assert apks
    ring = tmp_path / "ring"
    ring.mkdir()
    shutil.copy(f"{key}.pub", ring / f"{key.name}.pub")
    for apk in apks:  # signed with the key all the same
        verify_apk(str(apk), load_keyring(str(ring)))
        _assert_absent(f"{apk.name}", gzip_members(apk), key, name_too=False)
    main_apk = [a for a in apks if a.name.startswith("demo-1")][0]
    assert _file(main_apk, "etc/demo/stolen") == b"absent\n"


def gzip_members(apk: Path) -> bytes:
    """The .apk's bytes and its decompressed segments (the key would be compressed inside)."""
    import zlib

    data = apk.read_bytes()
    out = [data]
    while data:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out.append(d.decompress(data))
        data = d.unused_data
    return b"".join(out)


def _file(apk: Path, name: str) -> bytes:
    import tarfile

    with tarfile.open(apk, "r:gz") as tf:
        f = tf.extractfile(name)
        assert f is not None
        return f.read()
