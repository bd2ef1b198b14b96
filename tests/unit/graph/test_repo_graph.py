from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from melange_bk.errors import ConfigError
from melange_bk.graph import PackageNode, RepoGraph, strip_constraint
from melange_bk.graph.repo import CycleError


def node(path: str, name: str, provides=(), build=(), test=(), prio: int = 0, version="") -> PackageNode:
    return PackageNode(
        version=version,
        path=path,
        name=name,
        provides=(name, *provides),
        build_needs=tuple(build),
        test_needs=tuple(test),
        provider_priority=prio,
        need_lines=tuple((n, 7) for n in (*build, *test)),
    )


LIBGREET = node(
    "libgreet/melange.yaml",
    "libgreet",
    provides=("libgreet-dev", "so:libgreet.so.1"),
    build=("build-base",),
    version="1.0-r0",
)
GREET = node("greet/melange.yaml", "greet", build=("build-base", "libgreet-dev>=1.0"), test=("libgreet",))
HELLO = node("hello/melange.yaml", "hello", build=("build-base", "busybox"))


def test_strip_constraint() -> None:
    assert strip_constraint("libgreet-dev>=1.0") == "libgreet-dev"
    assert strip_constraint("foo=1.2-r0") == "foo"
    assert strip_constraint("so:libc.so.6") == "so:libc.so.6"
    assert strip_constraint("!conflict") is None
    assert strip_constraint("  ") is None


def test_inferred_edges_and_waves() -> None:
    g = RepoGraph.from_nodes([GREET, HELLO, LIBGREET])
    assert g.dependencies("greet/melange.yaml") == ("libgreet/melange.yaml",)
    assert g.dependencies("greet/melange.yaml", "test") == ("libgreet/melange.yaml",)
    assert g.dependencies("hello/melange.yaml") == ()
    assert g.waves() == (("hello/melange.yaml", "libgreet/melange.yaml"), ("greet/melange.yaml",))
    assert g.build_order().index("libgreet/melange.yaml") < g.build_order().index("greet/melange.yaml")
    assert g.dependents("libgreet/melange.yaml") == ("greet/melange.yaml",)
    assert g.waves(only=["greet/melange.yaml"]) == (("libgreet/melange.yaml",), ("greet/melange.yaml",))


def test_virtual_so_name_is_an_edge() -> None:
    app = node("app.yaml", "app", build=("so:libgreet.so.1",))
    g = RepoGraph.from_nodes([app, LIBGREET])
    assert g.dependencies("app.yaml") == ("libgreet/melange.yaml",)


def test_package_never_satisfies_its_own_build_dependency() -> None:
    # go needs go to build (bootstrap from the repository): not a self-edge
    go = node("go.yaml", "go", build=("go",))
    assert RepoGraph.from_nodes([go]).dependencies("go.yaml") == ()


def test_conflicts_are_not_edges() -> None:
    a = node("a.yaml", "a", build=("!b",))
    b = node("b.yaml", "b")
    assert RepoGraph.from_nodes([a, b]).dependencies("a.yaml") == ()


def test_cycle_names_the_packages() -> None:
    a = node("a/melange.yaml", "a", build=("b",))
    b = node("b/melange.yaml", "b", build=("a-dev",), provides=())
    a2 = PackageNode(path=a.path, name="a", provides=("a", "a-dev"), build_needs=("b",))
    messages = set()
    for order in ([a2, b], [b, a2]):  # the scan's order must not change the message
        with pytest.raises(ConfigError) as e:
            RepoGraph.from_nodes(order)
        messages.add(str(e.value))
        assert e.value.cycle == ("a/melange.yaml", "b/melange.yaml", "a/melange.yaml")
        assert e.value.breakers in (("a",), ("b",))
    (msg,) = messages
    assert msg.startswith(
        "build dependency cycle: a -> b -> a (a/melange.yaml, b/melange.yaml; 1 cyclic group(s))"
    )
    assert "breaks every cycle: " in msg


def test_ambiguous_provider_is_an_error_listing_them() -> None:
    p1 = node("p1.yaml", "p1", provides=("virt",))
    p2 = node("p2.yaml", "p2", provides=("virt",))
    user = node("user.yaml", "user", build=("virt",))
    g = RepoGraph.from_nodes([p1, p2, user])
    assert g.dependencies("user.yaml") == ()
    assert g.errors["user.yaml"] == (
        'user.yaml:7: "virt" is provided by several packages: p1.yaml, p2.yaml; '
        "set provider-priority in one of them or add an explicit dependency"
    )


def test_ambiguity_settled_by_priority_or_explicit_dependency() -> None:
    p1 = node("p1.yaml", "p1", provides=("virt",), prio=10)
    p2 = node("p2.yaml", "p2", provides=("virt",))
    user = node("user.yaml", "user", build=("virt",))
    assert RepoGraph.from_nodes([p1, p2, user]).dependencies("user.yaml") == ("p1.yaml",)
    p1 = node("p1.yaml", "p1", provides=("virt",))
    g = RepoGraph.from_nodes([p1, p2, user], explicit={"user.yaml": ["p2.yaml"]})
    assert g.dependencies("user.yaml") == ("p2.yaml",)


def test_real_package_name_beats_virtual_provides() -> None:
    real = node("virt.yaml", "virt")
    other = node("p.yaml", "p", provides=("virt",))
    user = node("user.yaml", "user", build=("virt",))
    assert RepoGraph.from_nodes([real, other, user]).dependencies("user.yaml") == ("virt.yaml",)


def test_json_and_dot_are_stable() -> None:
    g = RepoGraph.from_nodes([GREET, HELLO, LIBGREET])
    doc = g.to_json()
    assert doc["waves"] == [["hello/melange.yaml", "libgreet/melange.yaml"], ["greet/melange.yaml"]]
    assert json.dumps(doc, sort_keys=True) == json.dumps(
        RepoGraph.from_nodes([LIBGREET, HELLO, GREET]).to_json(), sort_keys=True
    )
    assert '"greet" -> "libgreet";' in g.to_dot()


def test_order_does_not_depend_on_hash_seed(tmp_path) -> None:
    code = (
        "from melange_bk.graph import PackageNode, RepoGraph\n"
        "ns=[PackageNode(path=f'p{i}.yaml', name=f'p{i}', provides=(f'p{i}',), build_needs=(f'p{i//3}',) if i else ())"
        " for i in range(30)]\n"
        "print(RepoGraph.from_nodes(ns).build_order())\n"
        # a ring of 6 among those 30 (r5 needs r0): the cycle reported must not follow set order either
        "ring=[PackageNode(path=f'r{i}.yaml', name=f'r{i}', provides=(f'r{i}',), build_needs=(f'r{(i+1)%6}',))"
        " for i in range(6)]\n"
        "try:\n    RepoGraph.from_nodes(ns + ring)\nexcept Exception as e:\n    print(e)\n"
    )
    outs = set()
    for seed in ("0", "1", "2", "3", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        outs.add(
            subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            ).stdout
        )
    assert len(outs) == 1, outs
    assert "build dependency cycle: r0 -> r1 -> r2" in outs.pop()


def offering(path: str, name: str, offers, version: str = "1-r0", build=()) -> PackageNode:
    """A node with explicit apk offers: (name, provided version or None, exact, provider_priority)."""
    return PackageNode(
        path=path,
        name=name,
        provides=tuple(sorted({o[0] for o in offers} | {name})),
        build_needs=tuple(build),
        need_lines=tuple((n, 3) for n in build),
        offers=((name, version, True, 0), *offers),
        version=version,
    )


PY313 = offering("python-3.13.yaml", "python-3.13", [("python3", "3.13.15", False, 0)], "3.13.15-r1")
PY314 = offering("python-3.14.yaml", "python-3.14", [("python3", "0", False, 0)], "3.14.7-r1")
PY312 = offering("python-3.12.yaml", "python-3.12", [("python3", "3.12.9", False, 0)], "3.12.9-r0")


def test_versioned_provides_highest_version_wins() -> None:
    user = node("user.yaml", "user", build=("python3",))
    g = RepoGraph.from_nodes([PY312, PY313, PY314, user])
    assert g.dependencies("user.yaml") == ("python-3.13.yaml",)


def test_constraint_in_the_need_filters_providers() -> None:
    users = [
        node("a.yaml", "a", build=("python3~3.12",)),
        node("b.yaml", "b", build=("python3<3.13",)),
        node("c.yaml", "c", build=("python-3.13=3.13.15-r1",)),
        node("d.yaml", "d", build=("python3>=4",)),  # nobody in the tree: from the repositories
    ]
    g = RepoGraph.from_nodes([PY312, PY313, PY314, *users])
    assert g.dependencies("a.yaml") == ("python-3.12.yaml",)
    assert g.dependencies("b.yaml") == ("python-3.12.yaml",)
    assert g.dependencies("c.yaml") == ("python-3.13.yaml",)
    assert g.dependencies("d.yaml") == ()
    assert g.external["d.yaml"] == (("python3>=4", "build"),)


def test_unversioned_provides_by_priority_of_the_subpackage() -> None:
    low = offering("grpc-1.80.yaml", "grpc-1.80", [("py3-grpcio", None, False, 310)], "1.80.0-r0")
    high = offering("grpc-1.81.yaml", "grpc-1.81", [("py3-grpcio", None, False, 313)], "1.81.0-r0")
    user = node("user.yaml", "user", build=("py3-grpcio",))
    assert RepoGraph.from_nodes([low, high, user]).dependencies("user.yaml") == ("grpc-1.81.yaml",)


def test_bootstrap_packages_satisfy_nobody_and_break_cycles() -> None:
    a = node("a.yaml", "a", build=("b",))
    b = node("b.yaml", "b", build=("a",))
    c = node("c.yaml", "c", build=("a",))
    with pytest.raises(CycleError) as e:
        RepoGraph.from_nodes([a, b, c])
    assert "breaks every cycle: a" in str(e.value)
    g = RepoGraph.from_nodes([a, b, c], bootstrap=["a"])
    assert g.dependencies("b.yaml") == () and g.dependencies("c.yaml") == ()
    assert g.dependencies("a.yaml") == ("b.yaml",)
    assert g.external["c.yaml"] == (("a", "build"),)
    assert g.to_json()["packages"]["a.yaml"]["in_tree"] == {"b": "b.yaml"}


def test_feedback_vertex_set_breaks_every_cycle() -> None:
    ns = [node(f"p{i}.yaml", f"p{i}", build=(f"p{(i + 1) % 6}", f"p{(i + 3) % 6}")) for i in range(6)]
    g = RepoGraph.from_nodes(ns, check=False)
    fvs = g.feedback_vertex_set()
    rest = g.build_graph.copy()
    rest.remove_nodes_from(fvs)
    import networkx as nx

    assert nx.is_directed_acyclic_graph(rest) and 0 < len(fvs) < 6
    assert RepoGraph.from_nodes(ns, bootstrap=[g.nodes[p].name for p in fvs]).build_order()


def test_broken_yaml_blocks_only_who_needs_it() -> None:
    user = node("user.yaml", "user", build=("mid",))
    mid = node("mid.yaml", "mid", build=("broken",))
    other = node("other.yaml", "other", build=("mid2",))
    g = RepoGraph.from_nodes([user, mid, other], broken={"broken.yaml": "broken.yaml:3: bad"})
    assert g.blocked_by("user.yaml") == ("broken.yaml",)
    assert g.blocked_by("mid.yaml") == ("broken.yaml",)
    assert g.blocked_by("other.yaml") == ()
    assert "broken.yaml" not in {p for w in g.waves() for p in w}
    assert g.to_json()["broken"] == {"broken.yaml": "broken.yaml:3: bad"}


def test_dependents_with_test_needs() -> None:
    g = RepoGraph.from_nodes([GREET, HELLO, LIBGREET, node("t.yaml", "t", test=("greet",))])
    assert g.dependents("libgreet/melange.yaml") == ("greet/melange.yaml",)
    assert g.dependents("libgreet/melange.yaml", test=True) == ("greet/melange.yaml", "t.yaml")


def test_suggestion_holds_after_needs_are_re_routed() -> None:
    # z needs v; p1 (v=2) wins over p2 (v=1). The graph's own feedback vertex set is p1 (tie with z, by path),
    # but with p1 from the repositories v re-routes to p2, which closes z -> p2 -> b -> z: the suggestion grows.
    z = node("z.yaml", "z", build=("v",))
    p1 = offering("p1.yaml", "p1", [("v", "2", False, 0)], build=("z",))
    p2 = offering("p2.yaml", "p2", [("v", "1", False, 0)], build=("b",))
    b = node("b.yaml", "b", build=("z",))
    assert RepoGraph.from_nodes([z, p1, p2, b], check=False).feedback_vertex_set() == ("p1.yaml",)
    with pytest.raises(CycleError) as e:
        RepoGraph.from_nodes([z, p1, p2, b])
    assert len(e.value.breakers) == 2 and e.value.breakers[0] == "p1"
    assert RepoGraph.from_nodes([z, p1, p2, b], bootstrap=e.value.breakers).build_order()
