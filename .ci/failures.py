#!/usr/bin/env python3
"""Print the failing tests of a `./pants test` run from its JUnit reports (PANTS_TEST_REPORT=true writes them),
each with the end of its failure: the assertion and the lines pytest printed around it. CI shows the tail of its log,
and Pants prints a failing test's output far above that tail; this puts the cause at the end.

Usage: .ci/failures.py REPORT_DIR [LINES]   (LINES of each failure's text, default 30)
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import List


def failures(report_dir: Path, lines: int) -> List[str]:
    out: List[str] = []
    for xml in sorted(report_dir.rglob("*.xml")):
        try:
            root = ET.parse(xml).getroot()
        except ET.ParseError as e:
            out.append(f"{xml}: unreadable report ({e})")
            continue
        for case in root.iter("testcase"):
            for kind in ("failure", "error"):
                for node in case.findall(kind):
                    name = f"{case.get('classname', '')}::{case.get('name', '')}"
                    text = (node.text or node.get("message") or "").rstrip().splitlines()
                    out.append(f"--- {kind}: {name}  ({xml.name})")
                    out.extend("    " + ln for ln in text[-lines:])
    return out


def main(argv: List[str]) -> int:
    if not argv or len(argv) > 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    report_dir = Path(argv[0])
    lines = int(argv[1]) if len(argv) > 1 else 30
    if not report_dir.is_dir():
        print(f"no test reports under {report_dir}")
        return 0
    found = failures(report_dir, lines)
    print(f"\n=== failing tests, from the reports under {report_dir}")
    print("\n".join(found) if found else "(none recorded: the failure came before or outside the tests)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
