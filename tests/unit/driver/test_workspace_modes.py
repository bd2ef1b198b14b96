"""The workspace keeps only what git keeps (type and executable bit): the same checkout gives the same LLB and the
same upload under umask 002 and 022 and at two paths; an executable bit or a content change still tells it apart."""

from __future__ import annotations

import os
import stat
from typing import Dict, Tuple

from melange_bk import llb
from melange_bk.buildkit.fsmode import unix_perm
from melange_bk.buildkit.fssend import SourceTree, walk
from melange_bk.driver.builder import workspace_digest
from melange_bk.driver.llbgen import GraphOptions, build_graph
from melange_bk.filehash import git_mode
from melange_bk.plan.compile import compile_text

YAML = """
package:
  name: demo
  version: "1.0.0"
  epoch: 0
pipeline:
  - runs: ./configure && make
"""


def checkout(root: str, umask: int) -> str:
    """A small source tree as `git checkout` makes it under `umask`."""
    old = os.umask(umask)
    try:
        os.makedirs(os.path.join(root, "src", "sub"))
        with open(os.path.join(root, "src", "main.c"), "w") as f:
            f.write("int main(void) { return 0; }\n")
        with open(os.path.join(root, "configure"), "w") as f:
            f.write("#!/bin/sh\n")
        os.chmod(os.path.join(root, "configure"), 0o777 & ~umask)
        with open(os.path.join(root, "src", "sub", "data"), "w") as f:
            f.write("x\n")
        os.symlink("src/main.c", os.path.join(root, "link"))
    finally:
        os.umask(old)
    return root


def definition(root: str) -> bytes:
    plan = compile_text("melange.yaml", YAML)
    graph = build_graph(plan, llb.scratch(), GraphOptions(workspace_unique=workspace_digest(root)))
    return llb.to_bytes(graph.marshal())


def upload(root: str) -> Dict[str, Tuple[int, int, int, str, int]]:
    return {
        e.path: (e.stat.mode, e.stat.uid, e.stat.gid, e.stat.linkname, e.stat.size)
        for e in walk(SourceTree(root))
    }


def test_git_mode_keeps_type_and_executable_bit_only() -> None:
    assert git_mode(stat.S_IFREG | 0o664) == stat.S_IFREG | 0o644
    assert git_mode(stat.S_IFREG | 0o600) == stat.S_IFREG | 0o644
    assert git_mode(stat.S_IFREG | 0o775) == stat.S_IFREG | 0o755
    assert git_mode(stat.S_IFREG | 0o4744) == stat.S_IFREG | 0o755
    assert git_mode(stat.S_IFDIR | 0o2775) == stat.S_IFDIR | 0o755
    assert git_mode(stat.S_IFLNK | 0o777) == stat.S_IFLNK | 0o777
    assert git_mode(stat.S_IFIFO | 0o644) is None


def test_same_checkout_under_two_umasks_and_paths_gives_the_same_llb_and_upload(tmp_path) -> None:  # type: ignore[no-untyped-def]
    a = checkout(str(tmp_path / "one" / "checkout"), 0o022)
    b = checkout(str(tmp_path / "elsewhere" / "b"), 0o002)
    assert stat.S_IMODE(os.stat(os.path.join(b, "src", "main.c")).st_mode) == 0o664  # (the umasks did differ)
    assert stat.S_IMODE(os.stat(os.path.join(a, "src", "main.c")).st_mode) == 0o644
    assert workspace_digest(a) == workspace_digest(b)
    assert definition(a) == definition(b)
    up = upload(a)
    assert up == upload(b)
    assert {p: unix_perm(m[0]) for p, m in up.items()} == {
        "configure": 0o755,
        "link": 0o777,
        "src": 0o755,
        "src/main.c": 0o644,
        "src/sub": 0o755,
        "src/sub/data": 0o644,
    }
    assert all(uid == 0 and gid == 0 for _, uid, gid, _, _ in up.values())
    assert up["link"][3] == "src/main.c"


def test_executable_bit_content_and_fifo(tmp_path) -> None:  # type: ignore[no-untyped-def]
    a = checkout(str(tmp_path / "a"), 0o022)
    before = workspace_digest(a)
    os.mkfifo(os.path.join(a, "fifo"))  # not something git keeps: neither identified nor sent
    assert workspace_digest(a) == before
    assert "fifo" not in upload(a)
    os.chmod(os.path.join(a, "src", "main.c"), 0o744)
    assert workspace_digest(a) != before
    os.chmod(os.path.join(a, "src", "main.c"), 0o644)
    assert workspace_digest(a) == before
    with open(os.path.join(a, "src", "sub", "data"), "w") as f:
        f.write("y\n")
    assert workspace_digest(a) != before
