"""Bounds on the work one YAML can make us do, so that a hostile file gets a one-line error in bounded time and
memory (in the compiler, in the graph scan behind Pants' dependency inference, and for pipeline files).

Each bound is far above what real packages use: the comment after each value is the largest use measured across
the 3,288 Wolfi YAMLs and their pipelines/ (`bench/limits_usage.py ../shared/wolfi-os` measures them again).
Every check that enforces them is here; the readers call these at the point where the work would happen.
"""

from __future__ import annotations

import functools
from contextvars import ContextVar
from typing import Any, Callable, Dict, List, Optional, Tuple, TypeVar

from melange_bk.errors import ConfigError

# Characters in one YAML file (melange YAML or pipeline definition).
MAX_YAML_CHARS = 1024 * 1024  # Wolfi: 68,385 (ceph-20.yaml)
# Nesting of collections in a YAML document, after alias expansion (the top-level mapping is 1).
MAX_YAML_DEPTH = 64  # Wolfi: 9 (python-3.14.yaml)
# Nodes (scalars and collections) of a YAML document, counting every alias as a copy of what it refers to; also
# (separately) the copies `range:` makes of its subpackages, one per item.
MAX_YAML_NODES = 100_000  # Wolfi: 2,725 (font-noto.yaml's range:; no Wolfi YAML uses an alias)
# Characters in one value after `${{...}}` substitution (a var, an input, a script, a name).
MAX_VALUE_CHARS = 1024 * 1024  # Wolfi: 29,047 (gnutar.yaml)
# Characters made by all the substitutions of one parse, compile or graph scan of a YAML (so that many values,
# each within MAX_VALUE_CHARS, cannot add up to exhaust memory).
MAX_SUBSTITUTED_CHARS = 64 * 1024 * 1024  # Wolfi: 345,538 (font-noto.yaml's range:)
# Pipeline steps compiled for one YAML, counting every step of every `uses:`d pipeline (build, subpackages, tests).
MAX_STEPS = 20_000  # Wolfi: 358 (ceph-20.yaml)
# Steps nested in steps (`pipeline:` in a step, and the steps of a `uses:`d pipeline), in one compile.
MAX_STEP_DEPTH = 64  # Wolfi: 3
# Pipelines nested through `uses:` (a pipeline that uses a pipeline that uses ...).
MAX_USES_DEPTH = 32  # Wolfi: 2 (go/build)
# Subpackages of one YAML, after `range:` expansion.
MAX_SUBPACKAGES = 1_000  # Wolfi: 110 (font-noto.yaml)
# Parentheses nested in one `if:` condition.
MAX_CONDITION_DEPTH = 32  # Wolfi: 0 (no `if:` of the tree or of the built-in pipelines uses parentheses)
# A `var-transforms` pattern (Go's regexp, run in linear time by config/goregexp.py): its length and how deep its
# groups nest.
MAX_REGEXP_CHARS = 4096  # Wolfi: 49
MAX_REGEXP_DEPTH = 32  # Wolfi: 1
# Instructions of the programs the var-transforms of one parse, compile or graph scan use, each use counted
# (counted repeats are copies: `(a{1000}){1000}`): bounds the time to compile them and the memory they hold.
MAX_REGEXP_INSTRUCTIONS = 10_000  # Wolfi: 59 (python-3.14.yaml)
# Steps of the regexp machine (one per instruction a thread visits) for all the var-transforms of one parse,
# compile or graph scan: linear time is still a large value times a large program.
MAX_REGEXP_STEPS = 1_000_000  # Wolfi: 1,638 (python-3.14.yaml)


def _n(value: int) -> str:
    return f"{value:,}"


# -- YAML documents (checked while composing: config/yamlsrc.py) -----------------------------------------------------


def check_yaml_size(path: str, text: str) -> None:
    """`text` must be no longer than MAX_YAML_CHARS; the error names the line where it goes past."""
    if len(text) > MAX_YAML_CHARS:
        line = text.count("\n", 0, MAX_YAML_CHARS) + 1
        raise ConfigError(f"YAML file is larger than {_n(MAX_YAML_CHARS)} characters", path=path, line=line)


def too_deep(path: str, line: int) -> ConfigError:
    return ConfigError(f"YAML nested deeper than {_n(MAX_YAML_DEPTH)} levels", path=path, line=line)


def too_many_nodes(path: str, line: int, aliased: bool) -> ConfigError:
    what = "YAML aliases expand the document to" if aliased else "YAML document has"
    return ConfigError(f"{what} more than {_n(MAX_YAML_NODES)} nodes", path=path, line=line)


def node_count(node: object, stop: int = MAX_YAML_NODES) -> int:
    """Nodes under `node` counting aliases as copies (stops counting above `stop`). The document was composed
    under the depth bound, so the explicit stack stays small."""
    total = 0
    stack = [node]
    while stack and total <= stop:
        n = stack.pop()
        total += 1
        value = getattr(n, "value", None)
        if isinstance(value, list):
            for item in value:
                if isinstance(item, tuple):
                    stack.extend(item)
                else:
                    stack.append(item)
    return total


# -- `range:` (config/parse.py and graph/scan.py) ----------------------------------------------------------------------


class RangeBudget:
    """What the `range:` subpackages of one YAML expand to, so far: subpackages, and nodes (items x the
    subpackage's nodes, every copy counted)."""

    __slots__ = ("path", "subpackages", "nodes")

    def __init__(self, path: str) -> None:
        self.path = path
        self.subpackages = 0
        self.nodes = 0

    def add(self, line: int, items: int, node: object) -> None:
        """A subpackage (`node`, at `line`) expanded over `items` items (1 without `range:`)."""
        self.subpackages += items
        if self.subpackages > MAX_SUBPACKAGES:
            raise ConfigError(
                f"range: makes more than {_n(MAX_SUBPACKAGES)} subpackages ({_n(items)} items here)",
                path=self.path,
                line=line,
            )
        if items > 1:
            self.nodes += items * node_count(node, (MAX_YAML_NODES - self.nodes) // items)
            if self.nodes > MAX_YAML_NODES:
                raise ConfigError(
                    f"range: expands the document to more than {_n(MAX_YAML_NODES)} nodes ({_n(items)} items here)",
                    path=self.path,
                    line=line,
                )


# -- substitution (config/subst.py) -----------------------------------------------------------------------------------

VALUE_TOO_LONG = f"substituted value is longer than {_n(MAX_VALUE_CHARS)} characters"
TOO_MUCH_SUBSTITUTED = f"substitutions in this file make more than {_n(MAX_SUBSTITUTED_CHARS)} characters"
REGEXP_TOO_LARGE = (
    f"the file's var-transforms compile to more than {_n(MAX_REGEXP_INSTRUCTIONS)} instructions"
)
REGEXP_TOO_COSTLY = (
    f"matching takes more than {_n(MAX_REGEXP_STEPS)} steps of the regexp machine "
    "(the file's var-transforms share them)"
)

# characters made by substitutions and regexp steps so far, in the outermost call decorated with
# `substitution_budget`
_substituted: ContextVar[Optional[List[int]]] = ContextVar("melange_bk_substituted", default=None)

F = TypeVar("F", bound=Callable[..., Any])


def substitution_budget(fn: F) -> F:
    """Decorates an entry point (parse, compile, graph scan): the substitutions made while it runs share one
    MAX_SUBSTITUTED_CHARS budget, and its var-transforms one MAX_REGEXP_STEPS and one MAX_REGEXP_INSTRUCTIONS
    budget (a nested decorated call shares its caller's)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if _substituted.get() is not None:
            return fn(*args, **kwargs)
        token = _substituted.set([0, 0, 0])
        try:
            return fn(*args, **kwargs)
        finally:
            _substituted.reset(token)

    return wrapper  # type: ignore[return-value]


# what the budget of a decorated entry point holds: (index in its list, bound)
_CHARS = (0, MAX_SUBSTITUTED_CHARS)
_REGEXP_STEPS = (1, MAX_REGEXP_STEPS)
_REGEXP_INSTRUCTIONS = (2, MAX_REGEXP_INSTRUCTIONS)


def _spend(which: Tuple[int, int], amount: int) -> bool:
    spent = _substituted.get()
    if spent is None:
        return True
    index, bound = which
    spent[index] += amount
    return spent[index] <= bound


def spend(chars: int) -> bool:
    """Counts `chars` made by a substitution against the budget; False once it is exceeded."""
    return _spend(_CHARS, chars)


def spend_regexp(steps: int) -> bool:
    """Counts `steps` of the regexp machine against the budget; False once it is exceeded."""
    return _spend(_REGEXP_STEPS, steps)


def spend_regexp_program(instructions: int) -> bool:
    """Counts the `instructions` of a regexp program used against the budget; False once it is exceeded."""
    return _spend(_REGEXP_INSTRUCTIONS, instructions)


# -- pipelines and `uses:` (config/pipelines.py, the compiler) --------------------------------------------------------


class StepCounter:
    """Counts the steps one compile expands and how deep they nest; `count` returns an error message or None."""

    __slots__ = ("steps",)

    def __init__(self) -> None:
        self.steps = 0

    def count(self, depth: int) -> Optional[str]:
        self.steps += 1
        if self.steps > MAX_STEPS:
            return f"the pipelines expand to more than {_n(MAX_STEPS)} steps"
        if depth > MAX_STEP_DEPTH:
            return f"steps nested deeper than {_n(MAX_STEP_DEPTH)} levels"
        return None


def check_uses(uses: str, display: str, root: Any, lookup: Callable[[str], Any]) -> int:
    """The pipelines reachable from pipeline `uses` (its definition's step `root`, from file `display`) through
    `uses:` must not form a cycle, nest deeper than MAX_USES_DEPTH nor expand to more than MAX_STEPS steps
    (counting every step, whatever its `if:`). `lookup(name)` returns a definition (with `.step` and `.display`)
    or None; names it cannot resolve are left for the compiler to report. Each pipeline is walked once (its
    height and size are remembered), without recursion. Returns how many levels `uses` nests."""
    height: Dict[str, int] = {}  # pipelines walked: how many levels of `uses:` they nest (1: none)
    size: Dict[str, int] = {}  # pipelines walked: how many steps they expand to
    chain: List[str] = [uses]
    # per pipeline on the chain: its file, the line of the step that uses it (in the previous file), the steps
    # still to visit, the height below it and the steps in it so far
    where: List[str] = [display]
    at: List[Optional[int]] = [None]
    todo: List[List[Any]] = [[root]]
    below: List[int] = [0]
    steps: List[int] = [0]
    while todo:
        if not todo[-1]:
            todo.pop()
            done = chain.pop()
            where.pop()
            line = at.pop()
            height[done] = below.pop() + 1
            size[done] = steps.pop()
            if size[done] > MAX_STEPS:
                what = f"uses: pipeline {done} expands to more than {_n(MAX_STEPS)} steps"
                raise ConfigError(what, path=where[-1] if where else None, line=line)
            if below:
                below[-1] = max(below[-1], height[done])
                steps[-1] += size[done]
            continue
        step = todo[-1].pop()
        steps[-1] += 1
        children = list(step.pipeline)
        name = step.uses
        if children or not name:
            todo[-1].extend(reversed(children))
            continue
        line = step.line
        if name in chain:
            cycle = " -> ".join(chain[chain.index(name) :] + [name])
            raise ConfigError(f"uses: cycle {cycle}", path=where[-1], line=line)
        if name in height:
            nested = height[name]
        else:
            try:
                found = lookup(name)
            except ConfigError:
                continue  # the compiler reports it where the step is compiled
            if found is None:
                continue
            nested = 1
        if len(chain) + nested > MAX_USES_DEPTH:
            raise ConfigError(
                f"uses: pipelines nested deeper than {_n(MAX_USES_DEPTH)} levels ({chain[0]} -> ... -> {name})",
                path=where[-1],
                line=line,
            )
        if name in height:
            below[-1] = max(below[-1], height[name])
            steps[-1] += size[name]
            continue
        chain.append(name)
        where.append(found.display)
        at.append(line)
        todo.append([found.step])
        below.append(0)
        steps.append(0)
    return height[uses]
