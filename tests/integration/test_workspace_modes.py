"""The workspace reaches the daemon with git's modes only: a checkout made under umask 002 (group-writable files)
at another path builds from the same cache as one made under umask 022, and the build sees 644/755 files."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Dict, List

import pytest

from .local import apk_files, build

YAML = """
package:
  name: modes
  version: "1.0.0"
  epoch: 0
  description: lists the workspace's modes
pipeline:
  - name: list modes
    runs: |
      mkdir -p ${{targets.destdir}}/usr/share/modes
      for p in configure src src/main.c src/data; do stat -c '%n %a' "$p"; done > ${{targets.destdir}}/usr/share/modes/list
"""


def checkout(root: Path, umask: int, nonce: str) -> Path:
    old = os.umask(umask)
    try:
        (root / "src").mkdir(parents=True)
        (root / "melange.yaml").write_text(YAML)
        (root / "src" / "main.c").write_text(f"/* {nonce} */\n")
        (root / "src" / "data").write_text("data\n")
        (root / "configure").write_text("#!/bin/sh\n")
        os.chmod(root / "configure", 0o777 & ~umask)
    finally:
        os.umask(old)
    return root


def _build(ws: Path, out: Path, root: str, addr: str) -> int:
    return build(ws / "melange.yaml", out, root, addr, "--progress", "rawjson")


def _step_cached(capsys: pytest.CaptureFixture) -> Dict[str, bool]:
    done: Dict[str, bool] = {}
    statuses: List[dict] = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    for s in statuses:
        for v in s.get("vertexes", []):
            if v.get("completed") and "] step " in v.get("name", ""):
                done[v["name"]] = bool(v.get("cached"))
    return done


def _listing(out: Path) -> str:
    return apk_files(out / "x86_64" / "modes-1.0.0-r0.apk")["usr/share/modes/list"].decode()


def test_umask_and_path_do_not_reach_the_daemon(
    tmp_path: Path, busybox_root: str, buildkit_addr: str, capsys: pytest.CaptureFixture
) -> None:
    nonce = uuid.uuid4().hex  # a fresh tree: the daemon's cache outlives this test
    a = checkout(tmp_path / "one" / "modes", 0o022, nonce)
    b = checkout(tmp_path / "other-place" / "x", 0o002, nonce)
    assert os.stat(b / "src" / "data").st_mode & 0o777 == 0o664
    assert _build(a, tmp_path / "oa", busybox_root, buildkit_addr) == 0
    assert list(_step_cached(capsys).values()) == [False]
    want = "configure 755\nsrc 755\nsrc/main.c 644\nsrc/data 644\n"
    assert _listing(tmp_path / "oa") == want
    assert _build(b, tmp_path / "ob", busybox_root, buildkit_addr) == 0
    assert list(_step_cached(capsys).values()) == [True]
    assert _listing(tmp_path / "ob") == want
    assert (tmp_path / "oa" / "x86_64" / "modes-1.0.0-r0.apk").read_bytes() == (
        tmp_path / "ob" / "x86_64" / "modes-1.0.0-r0.apk"
    ).read_bytes()
