"""Measure (not a test): the most each bound of `melange_bk.config.limits` is used by a tree of real YAMLs, next
to the bound; the numbers in limits.py's comments come from this run over ../shared/wolfi-os.

    PYTHONPATH=pants-plugins .cache/devvenv/bin/python bench/limits_usage.py ../shared/wolfi-os

TREE/*.yaml are compiled (x86_64 and aarch64) with TREE/pipelines as the pipeline dir; every YAML under the tree
counts for the YAML bounds. A file that does not compile for another reason is counted and skipped.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import time
from pathlib import Path
from typing import Any, Dict, Tuple

import yaml

from melange_bk.config import Resolver, goregexp, limits
from melange_bk.errors import MelangeError
from melange_bk.plan.compile import compile_text

MOST: Dict[str, Tuple[int, str]] = {}
# what the errors of limits.py say
BOUND_MESSAGE = re.compile(
    r"more than [\d,]+|nested deeper than|nests groups deeper than|longer than [\d,]+|larger than [\d,]+ characters|uses: cycle"
)


def note(bound: str, value: int, where: str) -> None:
    if value > MOST.get(bound, (-1, ""))[0]:
        MOST[bound] = (value, where)


def yaml_shape(node: yaml.Node) -> Tuple[int, int]:
    """(nodes, collection nesting) of a composed document."""
    nodes, depth = 0, 0
    stack = [(node, 1)]
    while stack:
        n, d = stack.pop()
        nodes += 1
        if isinstance(n.value, list):
            depth = max(depth, d)
            for item in n.value:
                stack.extend((x, d + 1) for x in (item if isinstance(item, tuple) else (item,)))
    return nodes, depth


def longest_string(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if dataclasses.is_dataclass(value):
        return max((longest_string(getattr(value, f.name)) for f in dataclasses.fields(value)), default=0)
    if isinstance(value, (tuple, list)):
        return max((longest_string(v) for v in value), default=0)
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("tree")
    args = parser.parse_args()
    tree = Path(args.tree)
    where = [""]

    count = limits.StepCounter.count

    def counting(self: limits.StepCounter, depth: int) -> Any:
        note("MAX_STEP_DEPTH", depth, where[0])
        result = count(self, depth)
        note("MAX_STEPS", self.steps, where[0])
        return result

    check_uses = limits.check_uses

    def uses(*a: Any) -> int:
        height = check_uses(*a)
        note("MAX_USES_DEPTH", height, f"{where[0]} ({a[0]})")
        return height

    add = limits.RangeBudget.add

    def adding(self: limits.RangeBudget, line: int, items: int, node: object) -> None:
        add(self, line, items, node)
        note("MAX_SUBPACKAGES", self.subpackages, where[0])
        note("MAX_YAML_NODES", self.nodes, f"{where[0]} (range:)")

    # the per-file budgets (spend, spend_regexp, spend_regexp_program all go through limits._spend)
    budgets = {
        limits._CHARS: "MAX_SUBSTITUTED_CHARS",
        limits._REGEXP_STEPS: "MAX_REGEXP_STEPS",
        limits._REGEXP_INSTRUCTIONS: "MAX_REGEXP_INSTRUCTIONS",
    }
    spend = limits._spend

    def spending(which: Tuple[int, int], amount: int) -> bool:
        result = spend(which, amount)
        spent = limits._substituted.get()
        note(budgets[which], spent[which[0]] if spent else amount, where[0])
        return result

    limits._spend = spending  # type: ignore[assignment]
    limits.StepCounter.count = counting  # type: ignore[method-assign]
    limits.check_uses = uses  # type: ignore[assignment]
    limits.RangeBudget.add = adding  # type: ignore[method-assign]

    start = time.perf_counter()
    for path in sorted(tree.rglob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        note("MAX_YAML_CHARS", len(text), str(path))
        nodes, depth = yaml_shape(yaml.compose(text, Loader=yaml.CSafeLoader))
        note("MAX_YAML_NODES", nodes, str(path))
        note("MAX_YAML_DEPTH", depth, str(path))
    failed = compiled = 0
    for path in sorted(tree.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        for arch in ("x86_64", "aarch64"):
            where[0] = f"{path} ({arch})"
            resolver = Resolver([str(tree / "pipelines")])  # a fresh one: each file's `uses:` are checked
            try:
                plan = compile_text(str(path), text, arch=arch, resolver=resolver)
            except MelangeError as e:
                failed += 1
                if BOUND_MESSAGE.search(str(e)):  # a bound too tight for a real YAML
                    print(f"REFUSED BY A BOUND: {e}")
                continue
            compiled += 1
            note("MAX_VALUE_CHARS", longest_string(plan), where[0])
    for pattern in goregexp._cache:  # the var-transforms patterns the compiles used (all are small)
        note("MAX_REGEXP_CHARS", len(pattern), pattern)
        note("MAX_REGEXP_DEPTH", goregexp._nesting(pattern), pattern)
    print(f"{compiled} compiles, {failed} failed for other reasons, {time.perf_counter() - start:.1f} s")
    for bound in sorted(MOST):
        value, at = MOST[bound]
        at = os.path.relpath(at) if os.path.exists(at.split(" (")[0]) else repr(at)
        print(f"{bound:23} {getattr(limits, bound):>12,}  most used: {value:>9,}  {at}")


if __name__ == "__main__":
    main()
