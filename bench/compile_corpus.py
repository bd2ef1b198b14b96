"""Benchmark (not a test): compile the Wolfi corpus repeated to 1,000 files; target <= 10 s on 2 cores.

    PYTHONPATH=pants-plugins .cache/devvenv/bin/python bench/compile_corpus.py [--files N]
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

from melange_bk.config import Resolver
from melange_bk.plan.compile import compile_text

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "wolfi"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=1000)
    args = parser.parse_args()
    sources = [(p.name, p.read_text(encoding="utf-8")) for p in sorted(CORPUS.glob("*.yaml"))]
    resolver = Resolver([str(CORPUS / "pipelines")])
    start = time.perf_counter()
    steps = 0
    for name, text in itertools.islice(itertools.cycle(sources), args.files):
        plan = compile_text(name, text, resolver=resolver)
        steps += len(plan.steps)
    elapsed = time.perf_counter() - start
    print(f"compiled {args.files} files ({len(sources)} distinct, {steps} build steps) in {elapsed:.2f} s")


if __name__ == "__main__":
    main()
