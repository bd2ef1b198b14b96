"""A hostile YAML among good ones (issue 19), through real Pants on a temporary clone: `melange-graph ::` reads
every YAML (the scan behind dependency inference) and must answer with the hostile file's one-line error, exit
non-zero, no traceback, in about the time the good tree takes -- not hang or exhaust memory on the alias bomb.

What happens to the rest of the graph is the graph goal's business: only those four facts are asserted here.
"""

from __future__ import annotations

import os
import time

from tests.pants_it.clone import PantsRunner, git

# 8 levels of 10 aliases in the pipeline: 10^8 steps once expanded (4 header lines, the bomb from line 6).
BOMB = "package:\n  name: bomb\n  version: '1'\n  epoch: 0\npipeline:\n  - &p0 {runs: echo}\n" + "".join(
    f"  - &p{i} {{pipeline: [{', '.join([f'*p{i - 1}'] * 10)}]}}\n" for i in range(1, 9)
)


def test_alias_bomb_among_good_yamls(pants: PantsRunner, buildkit_addr: str) -> None:
    repo = pants.repo
    start = time.monotonic()
    good = pants.run("melange-graph", "::", buildkit_host=buildkit_addr, debug=False)
    baseline = time.monotonic() - start
    assert good.returncode == 0, good.tail()
    os.makedirs(os.path.join(repo, "packages", "bomb"))
    with open(os.path.join(repo, "packages", "bomb", "melange.yaml"), "w") as f:
        f.write(BOMB)
    with open(os.path.join(repo, "packages", "bomb", "BUILD"), "w") as f:
        f.write('melange_package(name="apk")\n')
    try:
        # before the bounds this ran for minutes, growing past a gigabyte, then failed with a traceback
        run = pants.run(
            "melange-graph", "::", buildkit_host=buildkit_addr, debug=False, timeout=2 * baseline + 120
        )
    finally:
        git(repo, "clean", "-fdq", "--", "packages")
    assert run.returncode != 0, run.tail()
    message = "packages/bomb/melange.yaml:11: YAML aliases expand the document to more than 100,000 nodes"
    assert message in run.out, run.tail()
    assert "Traceback (most recent call last)" not in run.out, run.tail()
