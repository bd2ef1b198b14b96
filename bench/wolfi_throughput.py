"""Wolfi-shaped throughput through Pants: a generated monorepo whose packages, subpackages, provides and build
needs are a connected part of the shared Wolfi tree's graph (../shared/wolfi-os), with trivial pipelines.

    eval "$(bin/buildkit env)"
    PYTHONPATH=pants-plugins:. .cache/devvenv/bin/python bench/wolfi_throughput.py [--packages 300]
        [--wolfi ../shared/wolfi-os] [--two-daemons A,B] [--keep DIR] [--runs 3]

The Wolfi YAMLs are scanned with our graph layer (graph/scan.py); a need is an edge when exactly one other YAML
provides the name (the whole Wolfi tree has cycles and ambiguities that graph/repo.py rightly refuses); starting from the package with
the most dependents, a breadth-first walk over build edges (both directions) takes --packages of them; edges that
close a cycle inside that set are dropped (later in the walk's order needs earlier only). Each generated package
keeps its Wolfi name, its subpackages' names, its `provides:` and its build needs inside the set (as written,
e.g. a subpackage name or a virtual), nothing else. Its pipeline writes `/usr/share/wolfi-bench/NAME/id`: its
name followed by the ids of everything installed in its environment, so a changed package changes every package
that (transitively) depends on it, and nothing else — early cutoff stops the rest. Subpackages copy their
origin's id.

Runs, in a temporary clone (tests/pants_it/clone.py: own Pants store and caches), wall clock:
- cold `./pants package ::` (no pantsd; BuildKit's cache may be warm: this is Pants + our builder per package):
  packages/minute;
- warm no-change `package ::` vs `list ::`, both with pantsd (medians of --runs);
- one root changed (a package needing nothing in the sample, the one with the fewest dependents or --root; its
  pipeline edited): the builds that ran (Pants' "Completed: melange-bk build" lines) must be
  exactly it and its transitive dependents;
- with --two-daemons A,B: the cold build again in a fresh clone, BUILDKIT_HOST=A,B.
Prints the numbers; exits non-zero only when a run fails or the root change rebuilds the wrong set.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Dict, List, Set, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "pants-plugins"))

from melange_bk.graph.model import PackageNode, strip_constraint  # noqa: E402
from melange_bk.graph.scan import scan_yaml  # noqa: E402
from tests.pants_it.clone import PantsRunner, checkout, clone, git, tiny  # noqa: E402

WOLFI = os.path.join(os.path.dirname(REPO), "shared", "wolfi-os")
ID_DIR = "/usr/share/wolfi-bench"


def scan_wolfi(folder: str) -> Dict[str, PackageNode]:
    nodes = {}
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".yaml"):
            continue
        path = os.path.join(folder, name)
        try:
            with open(path, encoding="utf-8") as f:
                node = scan_yaml(name, f.read())
        except Exception:  # noqa: BLE001 - a YAML our scanner refuses is simply not part of the sample
            continue
        nodes[node.path] = node
    return nodes


@dataclass(frozen=True)
class Edge:
    node: str  # YAML path
    name: str  # the need as written (constraint stripped)
    provider: str


def bootstrap_names() -> Set[str]:
    """Names the example environment's bootstrap repository already has (busybox, build-base, gcc…): a
    generated package by one of those names would compete with it in the build environment, so it is left out.
    """
    folder = os.path.join(REPO, ".cache", "bootstrap-repo", "x86_64")
    return {f.rsplit("-", 2)[0] for f in os.listdir(folder) if f.endswith(".apk")}


def edges_of(nodes: Dict[str, PackageNode]) -> List[Edge]:
    providers: Dict[str, Set[str]] = collections.defaultdict(set)
    for path, node in nodes.items():
        for name in node.provides:
            providers[strip_constraint(name) or name].add(path)
    out = []
    for path, node in sorted(nodes.items()):
        for raw in node.build_needs:
            name = strip_constraint(raw)
            found = providers.get(name or "", set()) - {path}
            if name and len(found) == 1:
                out.append(Edge(path, name, next(iter(found))))
    return out


def pick(edges: List[Edge], nodes: Dict[str, PackageNode], n: int) -> Tuple[List[str], Dict[str, List[Edge]]]:
    """A connected set of `n` YAMLs (walk order) and, for each, the edges kept: those whose provider is in the
    set and earlier in the walk (so the kept graph is acyclic)."""
    deps: Dict[str, Set[str]] = collections.defaultdict(set)
    users: Dict[str, Set[str]] = collections.defaultdict(set)
    for e in edges:
        deps[e.node].add(e.provider)
        users[e.provider].add(e.node)
    start = max(sorted(nodes), key=lambda p: len(users[p]))
    order, seen = [start], {start}
    queue = collections.deque([start])
    while queue and len(order) < n:
        here = queue.popleft()
        for other in sorted(deps[here] | users[here]):
            if other not in seen and len(order) < n:
                seen.add(other)
                order.append(other)
                queue.append(other)
    rank = {p: i for i, p in enumerate(order)}
    kept: Dict[str, List[Edge]] = {p: [] for p in order}
    for e in edges:
        if e.node in rank and e.provider in rank and rank[e.provider] < rank[e.node]:
            if e.name not in [k.name for k in kept[e.node]]:
                kept[e.node].append(e)
    return order, kept


def _yaml(node: PackageNode, needs: List[str], subpackages: List[str], version_tag: str = "") -> str:
    own = {node.name, *subpackages}
    provides = sorted(p for p in node.provides if p not in own and strip_constraint(p) == p)
    lines = [
        "package:",
        f"  name: {node.name}",
        '  version: "1.0.0"',
        "  epoch: 0",
        f"  description: Wolfi-shaped benchmark package {node.name}",
        "  copyright:",
        "    - license: MIT",
    ]
    if provides:
        lines += ["  dependencies:", "    provides:"]
        lines += [f"      - {p}=${{{{package.full-version}}}}" for p in provides]
    if needs:
        lines += ["environment:", "  contents:", "    packages:"] + [f"      - {n}" for n in needs]
    lines += [
        "pipeline:",
        "  - runs: |",
        f"      mkdir -p ${{{{targets.destdir}}}}{ID_DIR}/{node.name}",
        f"      {{ echo {node.name}{version_tag}; cat {ID_DIR}/*/id 2>/dev/null || true; }} "
        f"> ${{{{targets.destdir}}}}{ID_DIR}/{node.name}/id",
    ]
    if subpackages:
        lines.append("subpackages:")
        for sub in subpackages:
            lines += [
                f"  - name: {sub}",
                "    pipeline:",
                "      - runs: |",
                f"          mkdir -p ${{{{targets.contextdir}}}}{ID_DIR}/{sub}",
                f"          cp ${{{{targets.destdir}}}}{ID_DIR}/{node.name}/id "
                f"${{{{targets.contextdir}}}}{ID_DIR}/{sub}/id",
            ]
    return "\n".join(lines) + "\n"


def generate(repo: str, nodes: Dict[str, PackageNode], order: List[str], needs: Dict[str, List[str]]) -> None:
    for path in order:
        node = nodes[path]
        subs = [p for p in node.provides if p != node.name and p not in _declared_provides(node)]
        d = os.path.join(repo, "packages", "wolfi", node.name)
        os.makedirs(d)
        with open(os.path.join(d, "melange.yaml"), "w") as f:
            f.write(_yaml(node, sorted(e.name for e in needs[path]), sorted(subs)))
        with open(os.path.join(d, "BUILD"), "w") as f:
            f.write('melange_package(name="apk")\n')
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "wolfi-shaped bench packages")


def _declared_provides(node: PackageNode) -> Set[str]:
    """What `provides:` added (not subpackages): read back from the Wolfi YAML."""
    import yaml

    with open(os.path.join(ARGS_WOLFI[0], node.path), encoding="utf-8") as f:
        doc = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    out = set()
    for p in ((doc.get("package") or {}).get("dependencies") or {}).get("provides") or ():
        name = strip_constraint(str(p))
        if name:
            out.add(name)
    return out


ARGS_WOLFI: List[str] = [WOLFI]


def _timed(pants: PantsRunner, *args: str, addr: str, pantsd: bool, debug: bool = False):  # type: ignore[no-untyped-def]
    t = time.monotonic()
    run = pants.run(*args, buildkit_host=addr, debug=debug, pantsd=pantsd, timeout=7200)
    elapsed = time.monotonic() - t
    if run.returncode != 0:
        sys.exit(run.tail())
    return elapsed, run


def _clone(base: str, name: str, nodes, order, needs) -> Tuple[str, PantsRunner]:  # type: ignore[no-untyped-def]
    repo = clone(checkout(), os.path.join(base, name))
    tiny(repo, keep=(), build="")
    generate(repo, nodes, order, needs)
    return repo, PantsRunner(repo, os.path.join(base, name + "-home"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packages", type=int, default=300)
    ap.add_argument("--wolfi", default=WOLFI)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--two-daemons", default="", help="A,B: also the cold build with BUILDKIT_HOST=A,B")
    ap.add_argument("--keep", help="keep the clones in this folder")
    ap.add_argument(
        "--root",
        default="",
        help="the root to change (a package name; default: the root with the fewest dependents)",
    )
    args = ap.parse_args()
    ARGS_WOLFI[0] = args.wolfi
    addr = os.environ.get("BUILDKIT_HOST")
    if not addr:
        sys.exit('BUILDKIT_HOST is not set: eval "$(bin/buildkit env)"')
    t = time.monotonic()
    taken = bootstrap_names()
    nodes = {
        p: n
        for p, n in scan_wolfi(args.wolfi).items()
        # (names the scanner could not expand, e.g. from var-transforms, are not names)
        if not taken & set(n.provides) and not any("${{" in x for x in n.provides + n.build_needs)
    }
    order, needs = pick(edges_of(nodes), nodes, args.packages)
    edges = sum(len(v) for v in needs.values())
    subs = sum(len(nodes[p].provides) - 1 for p in order)
    print(
        f"sample: {len(order)} of {len(nodes)} Wolfi YAMLs (those not named like a bootstrap package) from {nodes[order[0]].name}, {edges} build edges "
        f"kept, up to {subs} subpackage/provides names (scanned in {time.monotonic() - t:.1f} s)"
    )
    base = args.keep or tempfile.mkdtemp(prefix="wolfi-throughput-")
    repo, pants = _clone(base, "repo", nodes, order, needs)
    try:
        cold, run = _timed(pants, "package", "::", addr=addr, pantsd=False)
        print(
            f"cold package :: ({len(order)} packages, {addr}): {cold:.0f} s -> {len(order) / cold * 60:.1f} packages/min"
        )
        _timed(pants, "list", "::", addr=addr, pantsd=True)
        _timed(pants, "package", "::", addr=addr, pantsd=True)
        lists, packages = [], []
        for _ in range(args.runs):
            lists.append(_timed(pants, "list", "::", addr=addr, pantsd=True)[0])
            packages.append(_timed(pants, "package", "::", addr=addr, pantsd=True)[0])
        lst, pkg = statistics.median(lists), statistics.median(packages)
        print(
            f"warm no-change: package :: {pkg:.2f} s vs list :: {lst:.2f} s -> {pkg / lst:.2f}x (medians of {args.runs})"
        )
        rev: Dict[str, Set[str]] = collections.defaultdict(set)
        for p, kept in needs.items():
            for e in kept:
                rev[e.provider].add(p)

        def dependents(p: str) -> Set[str]:
            want, todo = {p}, [p]
            while todo:
                for u in rev[todo.pop()]:
                    if u not in want:
                        want.add(u)
                        todo.append(u)
            return want

        # A root (needs nothing in the sample) that others depend on: the one with the fewest dependents.
        roots = [p for p in order if not needs[p] and rev[p]]
        if args.root:
            roots = [p for p in roots if nodes[p].name == args.root]
            if not roots:
                sys.exit(
                    f"--root {args.root}: not a package of the sample that others need and that needs none"
                )
        root = min(roots, key=lambda p: (len(dependents(p)), p))
        want = dependents(root)
        root_yaml = os.path.join(repo, "packages", "wolfi", nodes[root].name, "melange.yaml")
        with open(root_yaml) as f:
            text = f.read()
        with open(root_yaml, "w") as f:
            f.write(text.replace(f"echo {nodes[root].name};", f"echo {nodes[root].name}-changed;", 1))
        one, run = _timed(pants, "package", "::", addr=addr, pantsd=True, debug=True)
        built = sorted(os.path.basename(os.path.dirname(p)) for p in run.completed("build"))
        want_names = sorted(nodes[p].name for p in want)
        print(
            f"one root changed ({nodes[root].name}): {one:.1f} s, {len(built)} builds; expected it and its "
            f"{len(want) - 1} transitive dependents: {'exactly those' if built == want_names else 'MISMATCH'}"
        )
        if built != want_names:
            print(f"  built {built}\n  want  {want_names}")
        pants.kill_pantsd()
        if args.two_daemons:
            repo2, pants2 = _clone(base, "repo2", nodes, order, needs)
            cold2, _ = _timed(pants2, "package", "::", addr=args.two_daemons, pantsd=False)
            print(
                f"cold package :: over two daemons ({args.two_daemons}): {cold2:.0f} s -> "
                f"{len(order) / cold2 * 60:.1f} packages/min"
            )
        return 0 if built == want_names else 1
    finally:
        pants.kill_pantsd()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
