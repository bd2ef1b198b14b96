"""A Wolfi-sized monorepo (bin/wolfi-monorepo) and the library's own graph of it: shared by
tests/pants_it/test_wolfi.py and bench/wolfi_graph.py."""

from __future__ import annotations

import glob
import os
import re
import subprocess
from typing import Dict, List, Optional, Sequence

from melange_bk.graph import RepoGraph
from melange_bk.graph.scan import scan_yaml

PACKAGES = "packages/wolfi"
_BOOTSTRAP = re.compile(r"^bootstrap_packages = \[(.*)\]$", re.M)
_OVERRIDE = re.compile(r'"([^"]+\.yaml)": \{"dependencies": \["\./([^"]+\.yaml)"\]\}')


def wolfi_tree(repo: str) -> str:
    """../shared/wolfi-os beside the checkout (MELANGE_BK_WOLFI_OS overrides); a clear error when missing."""
    tree = os.environ.get("MELANGE_BK_WOLFI_OS") or os.path.join(os.path.dirname(repo), "shared", "wolfi-os")
    if not os.path.isdir(os.path.join(tree, "pipelines")):
        raise RuntimeError(f"the Wolfi tree is missing: {tree} (set MELANGE_BK_WOLFI_OS)")
    return tree


def make_monorepo(repo: str, dest: str) -> str:
    """`bin/wolfi-monorepo DEST` from checkout `repo` (a clone of its HEAD)."""
    subprocess.run(
        [os.path.join(repo, "bin", "wolfi-monorepo"), dest, wolfi_tree(repo)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return dest


def bootstrap_of(dest: str) -> List[str]:
    """The `[melange].bootstrap_packages` bin/wolfi-monorepo wrote into DEST's pants.toml."""
    with open(os.path.join(dest, "pants.toml"), encoding="utf-8") as f:
        m = _BOOTSTRAP.search(f.read())
    return [n.strip().strip('"') for n in m.group(1).split(",")] if m else []


def library_graph(dest: str, bootstrap: Optional[Sequence[str]] = None, check: bool = True) -> RepoGraph:
    """The graph the library computes for DEST's packages/wolfi (same paths as Pants' targets), with DEST's
    bootstrap set (or `bootstrap`) and its BUILD file's explicit dependencies."""
    nodes = []
    for path in sorted(glob.glob(os.path.join(dest, PACKAGES, "*.yaml"))):
        with open(path, encoding="utf-8") as f:
            nodes.append(scan_yaml(os.path.relpath(path, dest), f.read()))
    with open(os.path.join(dest, PACKAGES, "BUILD"), encoding="utf-8") as f:
        explicit: Dict[str, List[str]] = {}
        for user, dep in _OVERRIDE.findall(f.read()):
            explicit.setdefault(f"{PACKAGES}/{user}", []).append(f"{PACKAGES}/{dep}")
    return RepoGraph.from_nodes(
        nodes,
        explicit=explicit,
        bootstrap=bootstrap_of(dest) if bootstrap is None else bootstrap,
        check=check,
    )
