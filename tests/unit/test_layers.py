"""The import graph of melange_bk's packages follows the layer order docs/CONVENTIONS.md states.

Every module is parsed with `ast` (nothing is imported): each `import melange_bk.X…` / `from melange_bk[.X] import
…` / relative import, at module level or inside a function, is an edge from the importing module's layer to X's.
A layer may import itself and layers before it in the list; the graph of layers must have no cycle; every package
and top-level module of melange_bk must be in the list (a new one is placed there first), and README.md's
Architecture paragraph names the same layers in the same order.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Dict, List, Set, Tuple

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / "pants-plugins" / "melange_bk"
CONVENTIONS = ROOT / "docs" / "CONVENTIONS.md"
README = ROOT / "README.md"
PREFIX = "- Layers, each importing only the ones before it"


def _documented_order() -> List[str]:
    """The names of the bullet in CONVENTIONS.md that starts with PREFIX: its arrows' backticked names, with
    parenthesised remarks (which may hold arrows and names themselves) left out."""
    lines = CONVENTIONS.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(PREFIX))
    body = lines[start]
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        body += " " + line.strip()
    while re.search(r"\([^()]*\)", body):
        body = re.sub(r"\([^()]*\)", "", body)
    body = body.split(":", 1)[1]
    order = []
    for segment in body.split("→"):
        names = re.findall(r"`([a-z_]+)`", segment)
        assert len(names) == 1, f"CONVENTIONS.md: one layer between two arrows, got {segment.strip()!r}"
        order.append(names[0])
    return order


def _readme_order() -> List[str]:
    """The **bold** names of README.md's Architecture paragraph (its first paragraph), in order."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Architecture\n", 1)[1]
    paragraph = section.strip().split("\n\n", 1)[0]
    return re.findall(r"\*\*([a-z_]+)\*\*", paragraph)


def _layer_of(dotted: str) -> str:
    """`melange_bk.llb.state` -> `llb`; `melange_bk.errors` -> `errors`; `melange_bk` -> ``."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path, module: str) -> List[Tuple[str, int]]:
    """(imported melange_bk module, line) for every import in the file, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: List[Tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from melange_bk import llb` imports the package llb; `from melange_bk.llb import State`, llb.
            if target == "melange_bk":
                found += [(f"melange_bk.{alias.name}", node.lineno) for alias in node.names]
            else:
                found.append((target, node.lineno))
    return [(name, line) for name, line in found if name.split(".")[0] == "melange_bk"]


def _modules() -> Dict[str, Path]:
    """Dotted name -> file, for every .py file of melange_bk."""
    out = {}
    for path in sorted(LIB.rglob("*.py")):
        rel = path.relative_to(LIB.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _edges() -> Dict[Tuple[str, str], List[str]]:
    """(importing layer, imported layer) -> where (`file:line`), for imports across layers."""
    edges: Dict[Tuple[str, str], List[str]] = {}
    for module, path in _modules().items():
        src = _layer_of(module)
        for target, line in _imports(path, module):
            dst = _layer_of(target)
            if src and dst and src != dst:
                edges.setdefault((src, dst), []).append(f"{path.relative_to(ROOT)}:{line}")
    return edges


def _cycle(nodes: Set[str], edges: Set[Tuple[str, str]]) -> List[str]:
    """One cycle of the graph as a path that ends where it starts, or [] (depth-first search)."""
    succ: Dict[str, List[str]] = {n: sorted(b for a, b in edges if a == n) for n in nodes}
    state: Dict[str, int] = {}  # 1: on the current path, 2: done
    path: List[str] = []

    def visit(n: str) -> List[str]:
        state[n] = 1
        path.append(n)
        for m in succ[n]:
            if state.get(m) == 1:
                return path[path.index(m) :] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        path.pop()
        state[n] = 2
        return []

    for n in sorted(nodes):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return []


def test_every_package_is_a_documented_layer() -> None:
    order = _documented_order()
    assert len(set(order)) == len(order), f"a layer named twice in CONVENTIONS.md: {order}"
    present = {_layer_of(m) for m in _modules()} - {""}
    assert present == set(order), (
        f"packages and modules of melange_bk not in CONVENTIONS.md's layer list: {sorted(present - set(order))}; "
        f"listed there but absent: {sorted(set(order) - present)}"
    )


def test_readme_names_the_layers_in_the_documented_order() -> None:
    assert _readme_order() == _documented_order()


def test_no_cycle_between_layers() -> None:
    edges = _edges()
    cycle = _cycle({n for e in edges for n in e}, set(edges))
    where = [f"{a} -> {b} ({edges[(a, b)][0]})" for a, b in zip(cycle, cycle[1:])]
    assert not cycle, "the layers import each other in a cycle: " + ", ".join(where)


def test_no_layer_imports_a_later_one() -> None:
    order = _documented_order()
    rank = {name: i for i, name in enumerate(order)}
    upward = sorted(
        f"{a} imports {b}: {', '.join(where)}"
        for (a, b), where in _edges().items()
        if a in rank and b in rank and rank[b] > rank[a]
    )
    assert upward == [], "imports against the layer order (" + " → ".join(order) + "):\n" + "\n".join(upward)


def test_the_checks_see_what_they_check() -> None:
    """The parser finds the edges it must (so the tests above cannot pass on an empty or unreadable tree)."""
    edges = _edges()
    assert ("pants", "environment") in edges  # pants/host.py: from melange_bk.environment.hostinputs import …
    assert ("driver", "llb") in edges  # driver/builder.py: from melange_bk import llb
    assert {"pants", "cli", "driver", "llb", "errors"} <= {_layer_of(m) for m in _modules()}
    assert _cycle({"a", "b", "c"}, {("a", "b"), ("b", "c"), ("c", "a")}) == ["a", "b", "c", "a"]
    assert _cycle({"a", "b", "c"}, {("a", "b"), ("b", "c"), ("a", "c")}) == []
