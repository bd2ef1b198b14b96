"""`melange-bk build` end to end on the real daemon: APK contents, signatures, caching, failures."""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import uuid
from pathlib import Path
from typing import Dict, List

import pytest

from melange_bk.apk import load_keyring, read_apk, verify_apk, write_keypair
from melange_bk.cli.main import main

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "demo"


@pytest.fixture()
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "demo"
    shutil.copytree(FIXTURE, ws)
    return ws


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("keys")
    write_keypair(str(d / "test.rsa"), bits=2048)
    (d / "ring").mkdir()
    shutil.copy(d / "test.rsa.pub", d / "ring" / "test.rsa.pub")
    return d


def _build(ws: Path, out: Path, root: str, addr: str, keys: Path, *extra: str) -> int:
    return main(
        [
            "build",
            str(ws / "melange.yaml"),
            "--rootfs",
            root,
            "--out-dir",
            str(out),
            "--signing-key",
            str(keys / "test.rsa"),
            "--buildkit-addr",
            addr,
            "--progress",
            "rawjson",
            "--source-date-epoch",
            "1700000000",
            *extra,
        ]
    )


def _members(apk: Path) -> Dict[str, tarfile.TarInfo]:
    # The whole .apk reads as one gzip'd tar (signature, control and data segments concatenated).
    with tarfile.open(apk, "r:gz") as tf:
        return {m.name: m for m in tf.getmembers()}


def _statuses(capsys: pytest.CaptureFixture) -> List[dict]:
    import json

    out = []
    for line in capsys.readouterr().err.splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def _vertices(statuses: List[dict]) -> Dict[str, bool]:
    """vertex name → cached, for completed vertices."""
    done: Dict[str, bool] = {}
    for s in statuses:
        for v in s.get("vertexes", []):
            if v.get("completed"):
                done[v.get("name", "")] = bool(v.get("cached"))
    return done


def test_build_writes_signed_apks(
    workspace: Path, tmp_path: Path, busybox_root: str, buildkit_addr: str, keys: Path, capsys
) -> None:
    out = tmp_path / "out"
    assert _build(workspace, out, busybox_root, buildkit_addr, keys, "--generate-index") == 0
    arch = out / "x86_64"
    assert sorted(os.listdir(arch)) == ["APKINDEX.tar.gz", "demo-1.2.3-r4.apk", "demo-doc-1.2.3-r4.apk"]
    ring = load_keyring(str(keys / "ring"))
    for name in ("demo-1.2.3-r4.apk", "demo-doc-1.2.3-r4.apk"):
        verify_apk(str(arch / name), ring)
    main_pkg = _members(arch / "demo-1.2.3-r4.apk")
    assert main_pkg["usr/bin/demo"].mode & 0o7777 == 0o755
    assert main_pkg["usr/bin/demo-link"].issym() and main_pkg["usr/bin/demo-link"].linkname == "demo"
    assert main_pkg["usr/share/demo/data.txt"].mode & 0o777 == 0o600
    hard = main_pkg["usr/share/demo/data-hardlink.txt"]
    assert hard.islnk() or main_pkg["usr/share/demo/data.txt"].islnk()
    assert main_pkg["usr/bin/demo"].uid == 0 and main_pkg["usr/bin/demo"].mtime == 1700000000
    assert "etc/demo/step2" in main_pkg
    assert not any(n.startswith("usr/share/doc/demo") for n in main_pkg), "the subpackage took the docs"
    doc_pkg = _members(arch / "demo-doc-1.2.3-r4.apk")
    assert "usr/share/doc/demo/README" in doc_pkg
    contents = read_apk(str(arch / "demo-1.2.3-r4.apk"))
    info = contents.info
    assert (info.name, info.version, info.epoch, info.origin) == ("demo", "1.2.3", 4, "demo")
    assert "cmd:demo=1.2.3-r4" in info.provides
    with tarfile.open(arch / "demo-1.2.3-r4.apk", "r:gz") as tf:
        script = tf.extractfile("usr/bin/demo").read().decode()  # type: ignore[union-attr]
    assert "hello from demo" in script


def test_rebuild_is_cached_and_byte_identical(
    workspace: Path, tmp_path: Path, busybox_root: str, buildkit_addr: str, keys: Path, capsys
) -> None:
    out1, out2, out3 = tmp_path / "o1", tmp_path / "o2", tmp_path / "o3"
    assert _build(workspace, out1, busybox_root, buildkit_addr, keys) == 0
    capsys.readouterr()
    assert _build(workspace, out2, busybox_root, buildkit_addr, keys) == 0
    second = _vertices(_statuses(capsys))
    steps = {n: c for n, c in second.items() if "] step " in n}
    assert steps and all(steps.values()), second
    for name in ("demo-1.2.3-r4.apk", "demo-doc-1.2.3-r4.apk"):
        assert (out1 / "x86_64" / name).read_bytes() == (out2 / "x86_64" / name).read_bytes()
    # Change the second step: the first stays cached, the second and the subpackage's step run again.
    # (A fresh text each run: the daemon's cache outlives this test.)
    y = workspace / "melange.yaml"
    y.write_text(y.read_text().replace('echo "step two ran"', f'echo "step two changed {uuid.uuid4().hex}"'))
    assert _build(workspace, out3, busybox_root, buildkit_addr, keys) == 0
    third = _vertices(_statuses(capsys))
    by_step = {n.split("] ", 1)[1]: c for n, c in third.items() if "] step " in n}
    assert by_step["step 1: make files"] is True
    assert by_step["step 2: second step"] is False
    assert [c for n, c in third.items() if n.startswith("[demo-doc] step")] == [False]


def test_failing_step_writes_nothing(
    workspace: Path, tmp_path: Path, busybox_root: str, buildkit_addr: str, keys: Path, capsys
) -> None:
    y = workspace / "melange.yaml"
    y.write_text(y.read_text().replace('echo "step two ran"', 'echo "about to fail"; exit 7'))
    out = tmp_path / "out"
    rc = _build(workspace, out, busybox_root, buildkit_addr, keys)
    err = capsys.readouterr().err
    assert rc == 1
    assert 'step "[demo] step 2: second step" failed' in err
    assert "about to fail" in err
    leftovers = [p for p in (out / "x86_64").rglob("*")] if (out / "x86_64").exists() else []
    assert leftovers == [], leftovers


def test_unreachable_daemon_names_the_address(workspace: Path, tmp_path: Path, keys: Path, capsys) -> None:
    rc = _build(workspace, tmp_path / "out", str(workspace), f"unix://{tmp_path}/nope.sock", keys)
    err = capsys.readouterr().err
    assert rc == 1
    assert f"cannot reach BuildKit at unix://{tmp_path}/nope.sock" in err


def test_emit_llb_needs_no_daemon_and_is_deterministic(
    workspace: Path, tmp_path: Path, busybox_root: str
) -> None:
    a, b = tmp_path / "a.pb", tmp_path / "b.pb"
    for p in (a, b):
        assert (
            main(["build", str(workspace / "melange.yaml"), "--rootfs", busybox_root, "--emit-llb", str(p)])
            == 0
        )
    assert a.read_bytes() == b.read_bytes() and a.stat().st_size > 0
    assert stat.S_ISREG(a.stat().st_mode)


def test_concurrent_builds_keep_their_own_workspaces(
    tmp_path: Path, busybox_root: str, buildkit_addr: str, keys: Path
) -> None:
    # BuildKit merges identical ops of concurrent solves: two workspaces with the same layout but different
    # contents must not share a local source op (regression: one package got the other's sources).
    import threading

    results: Dict[str, int] = {}
    nonce = uuid.uuid4().hex
    spaces = {}
    for name in ("left", "right"):
        ws = tmp_path / name
        shutil.copytree(FIXTURE, ws)
        (ws / "data.txt").write_text(f"{name} {nonce}\n")
        spaces[name] = ws

    def run(name: str) -> None:
        results[name] = _build(spaces[name], tmp_path / f"out-{name}", busybox_root, buildkit_addr, keys)

    threads = [threading.Thread(target=run, args=(n,)) for n in spaces]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {"left": 0, "right": 0}
    for name in spaces:
        with tarfile.open(tmp_path / f"out-{name}" / "x86_64" / "demo-1.2.3-r4.apk", "r:gz") as tf:
            data = tf.extractfile("usr/share/demo/data.txt").read().decode()  # type: ignore[union-attr]
        assert data == f"{name} {nonce}\n"
