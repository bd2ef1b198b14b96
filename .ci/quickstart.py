"""Print the README's Quick-start commands, so that CI runs exactly what a new user is told to run.

    python3 .ci/quickstart.py N             the N-th command (1 or 2) of README.md's `## Quick start` shell block
    python3 .ci/quickstart.py               both, one per line
    python3 .ci/quickstart.py --check FILE  fail unless each command is a line of FILE, verbatim (.ci/run)

A command is a non-empty line of the first ```sh block after `## Quick start` that is not a comment. Exits 2 (with a
message naming README.md) when the section, the block or exactly two commands are not there: README and CI cannot
drift apart silently.
"""

from __future__ import annotations

import os
import sys
from typing import List, NoReturn

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
EXPECTED = 2


def fail(message: str) -> NoReturn:
    print(message, file=sys.stderr)
    raise SystemExit(2)


def commands(text: str) -> List[str]:
    lines = text.splitlines()
    try:
        start = lines.index("## Quick start")
    except ValueError:
        fail("README.md: no '## Quick start' section")
    in_block, found = False, []
    for line in lines[start + 1 :]:
        if not in_block and line.startswith("## "):
            break
        if line.strip() == "```sh" and not in_block:
            in_block = True
            continue
        if in_block and line.strip() == "```":
            break
        if in_block and line.strip() and not line.lstrip().startswith("#"):
            found.append(line.strip())
    if len(found) != EXPECTED:
        fail(f"README.md: the Quick start block has {len(found)} commands, CI expects {EXPECTED}: {found}")
    return found


def main(argv: List[str]) -> int:
    with open(README, encoding="utf-8") as f:
        cmds = commands(f.read())
    if len(argv) > 1 and argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    if len(argv) > 1 and argv[1] == "--check":
        if len(argv) != 3:
            fail("quickstart.py: --check needs one FILE")
        with open(argv[2], encoding="utf-8") as f:
            lines = {line.strip() for line in f}
        missing = [c for c in cmds if c not in lines]
        if missing:
            fail(f"{argv[2]}: does not run README.md's Quick-start command(s) verbatim: {missing}")
        return 0
    if len(argv) > 1:
        n = int(argv[1]) if argv[1].isdigit() else 0
        if not 1 <= n <= len(cmds):
            fail(f"quickstart.py: no command {argv[1]!r} (1 to {len(cmds)})")
        print(cmds[n - 1])
    else:
        print("\n".join(cmds))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
