"""The base rootfs and the installed layer are stored in the daemon once, as images named by their content
identity (buildkit/store.py): a build on an unchanged base sends and walks neither; a changed rootfs is a new
image, loaded and used; an image the daemon lost is loaded again. On buildkitd (no image store) each build sends
the trees as before, with the same results."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import List

import pytest

from .conftest import daemon_kind
from .local import apk_files, build

YAML = """
package:
  name: stored
  version: "1.0.0"
  epoch: 0
  description: reads a marker of the base rootfs
pipeline:
  - name: read the marker
    runs: |
      mkdir -p ${{targets.destdir}}/usr/share/stored
      cat /etc/stored-marker > ${{targets.destdir}}/usr/share/stored/marker
"""


def _build(ws: Path, out: Path, root: Path, addr: str, cache: Path) -> None:
    extra = ("--progress", "rawjson", "--cache-dir", str(cache))
    assert build(ws / "melange.yaml", out, str(root), addr, *extra) == 0


def _names(capsys: pytest.CaptureFixture) -> List[str]:
    names = []
    for line in capsys.readouterr().err.splitlines():
        if line.startswith("{"):
            for v in json.loads(line).get("vertexes", []):
                if v.get("completed"):
                    names.append(v.get("name", ""))
    return names


def _marker(out: Path) -> str:
    return apk_files(out / "x86_64" / "stored-1.0.0-r0.apk")["usr/share/stored/marker"].decode()


def _workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "melange.yaml").write_text(YAML)
    return ws


def _rootfs(busybox_root: str, dest: Path, marker: str) -> Path:
    shutil.copytree(busybox_root, dest, symlinks=True)
    (dest / "etc" / "stored-marker").write_text(marker)
    return dest


def test_unchanged_base_is_not_sent_and_a_changed_one_is_used(
    tmp_path: Path, busybox_root: str, buildkit_addr: str, capsys: pytest.CaptureFixture
) -> None:
    ws = _workspace(tmp_path)
    cache = tmp_path / "cache"
    one = _rootfs(busybox_root, tmp_path / "one", f"one {uuid.uuid4().hex}\n")
    _build(ws, tmp_path / "o1", one, buildkit_addr, cache)
    first = _names(capsys)
    assert any(n.startswith("send base ") for n in first), first
    assert _marker(tmp_path / "o1") == (one / "etc" / "stored-marker").read_text()
    _build(ws, tmp_path / "o2", one, buildkit_addr, cache)
    second = _names(capsys)
    if daemon_kind(buildkit_addr) == "dockerd":
        assert not [n for n in second if n.startswith("send ") or "melange-bk-base" in n], second
        assert any(n.startswith("stored melange-bk.invalid/base:tree-") for n in second), second
    else:  # no image store: sent again, and every step cached
        assert any(n.startswith("send base ") for n in second), second
    assert _marker(tmp_path / "o2") == (one / "etc" / "stored-marker").read_text()
    # A changed rootfs (one file) is another image: loaded, and the build sees it.
    (one / "etc" / "stored-marker").write_text(f"changed {uuid.uuid4().hex}\n")
    _build(ws, tmp_path / "o3", one, buildkit_addr, cache)
    third = _names(capsys)
    assert any(n.startswith("send base ") for n in third), third
    assert _marker(tmp_path / "o3") == (one / "etc" / "stored-marker").read_text()


def test_an_image_the_daemon_lacks_is_loaded_even_when_remembered(
    tmp_path: Path, busybox_root: str, buildkit_addr: str, capsys: pytest.CaptureFixture
) -> None:
    if daemon_kind(buildkit_addr) != "dockerd":
        pytest.skip("buildkitd has no image store: the trees are sent every time, nothing is remembered")
    ws = _workspace(tmp_path)
    cache = tmp_path / "cache"
    root = _rootfs(busybox_root, tmp_path / "root", f"fresh {uuid.uuid4().hex}\n")
    _build(ws, tmp_path / "o1", root, buildkit_addr, cache)
    capsys.readouterr()
    # Pretend the daemon lost the base: a new rootfs whose memo says "loaded" although it never was.
    memo_dirs = [d for d, _, files in os.walk(cache / "stored") if any(f.startswith("base-") for f in files)]
    (memo_dir,) = memo_dirs
    (root / "etc" / "stored-marker").write_text(f"lost {uuid.uuid4().hex}\n")
    from melange_bk.environment.base import Base, local_identity

    Path(memo_dir, "base-" + local_identity(Base("dir", str(root)))).touch()
    _build(ws, tmp_path / "o2", root, buildkit_addr, cache)
    assert any(n.startswith("send base ") for n in _names(capsys))
    assert _marker(tmp_path / "o2") == (root / "etc" / "stored-marker").read_text()
