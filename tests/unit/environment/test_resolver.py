"""Resolver: constraints, provides and virtuals, priorities, conflicts, backtracking, errors, install order."""

from __future__ import annotations

import pytest

from melange_bk.apk.index import IndexEntry
from melange_bk.environment.repository import Package
from melange_bk.environment.resolver import ResolveError, resolve


def P(
    name: str, version: str = "1.0-r0", depends=(), provides=(), priority: int = 0, repo: str = "r"
) -> Package:
    entry = IndexEntry(
        checksum="Q1" + "A" * 27 + "=",
        name=name,
        version=version,
        arch="x86_64",
        depends=tuple(depends),
        provides=tuple(provides),
        provider_priority=priority,
    )
    return Package(entry=entry, repository=repo, repository_url=f"file:///{repo}/x86_64")


def chosen(world, packages) -> dict:
    return {p.name: p.version for p in resolve(world, packages=packages).packages}


def test_highest_version_wins() -> None:
    pkgs = [P("a", "1.0-r0"), P("a", "1.10-r0"), P("a", "1.9-r3")]
    assert chosen(["a"], pkgs) == {"a": "1.10-r0"}


@pytest.mark.parametrize(
    "constraint,version",
    [
        ("a<1.9", "1.0-r0"),
        ("a>=1.9", "1.10-r0"),
        ("a=1.9-r3", "1.9-r3"),
        ("a~1.9", "1.9-r3"),
        ("a<=1.9-r3", "1.9-r3"),
    ],
)
def test_version_constraints(constraint: str, version: str) -> None:
    pkgs = [P("a", "1.0-r0"), P("a", "1.10-r0"), P("a", "1.9-r3")]
    assert chosen([constraint], pkgs) == {"a": version}


def test_transitive_depends_and_install_order() -> None:
    pkgs = [
        P("app", depends=["lib>=2", "tool"]),
        P("lib", "2.0-r0", depends=["base"]),
        P("lib", "1.0-r0"),
        P("tool", depends=["base"]),
        P("base"),
    ]
    res = resolve(["app"], packages=pkgs)
    assert [p.name for p in res.packages] == ["base", "lib", "tool", "app"]
    assert {p.name: p.version for p in res.packages}["lib"] == "2.0-r0"
    assert ("app", "lib") in res.edges and ("lib", "base") in res.edges


def test_cycles_are_kept_together_in_name_order() -> None:
    pkgs = [P("x", depends=["y"]), P("y", depends=["x"]), P("z", depends=["x"])]
    res = resolve(["z"], packages=pkgs)
    assert [p.name for p in res.packages] == ["x", "y", "z"]


def test_so_virtual_provided_by_a_package() -> None:
    pkgs = [P("app", depends=["so:libfoo.so.1"]), P("libfoo", "1.2-r0", provides=["so:libfoo.so.1=1.2"])]
    assert chosen(["app"], pkgs) == {"app": "1.0-r0", "libfoo": "1.2-r0"}


def test_cmd_and_pc_virtuals_in_the_world() -> None:
    pkgs = [P("busybox", "1.36-r0", provides=["cmd:sh", "cmd:ls"]), P("zlib-dev", provides=["pc:zlib=1.3"])]
    assert chosen(["cmd:sh", "pc:zlib>=1.2"], pkgs) == {"busybox": "1.36-r0", "zlib-dev": "1.0-r0"}


def test_versionless_provide_does_not_satisfy_a_version_constraint() -> None:
    pkgs = [P("busybox", provides=["cmd:sh"])]
    with pytest.raises(ResolveError, match=r'"cmd:sh>=1" \(required by world\) cannot be satisfied'):
        resolve(["cmd:sh>=1"], packages=pkgs)


def test_highest_provided_version_then_priority_then_name() -> None:
    # Same provided version: the higher provider_priority wins.
    pkgs = [
        P("openssl", provides=["so:libssl.so.3=3"], priority=10),
        P("libressl", provides=["so:libssl.so.3=3"], priority=20),
    ]
    assert chosen(["so:libssl.so.3"], pkgs) == {"libressl": "1.0-r0"}
    # A higher provided version beats priority.
    pkgs = [P("old", provides=["v=1"], priority=100), P("new", provides=["v=2"], priority=1)]
    assert chosen(["v"], pkgs) == {"new": "1.0-r0"}
    # Same version, same priority: the lowest name.
    pkgs = [P("zeta", provides=["v=1"]), P("alpha", provides=["v=1"])]
    assert chosen(["v"], pkgs) == {"alpha": "1.0-r0"}


def test_versionless_virtual_uses_priority() -> None:
    pkgs = [P("bash", provides=["cmd:sh"], priority=50), P("busybox", provides=["cmd:sh"], priority=100)]
    assert chosen(["cmd:sh"], pkgs) == {"busybox": "1.0-r0"}


def test_exact_name_beats_a_provider() -> None:
    pkgs = [P("sh", "1.0-r0"), P("busybox", "9.0-r0", provides=["sh=9.0"])]
    assert chosen(["sh"], pkgs) == {"sh": "1.0-r0"}


def test_already_chosen_provider_is_reused() -> None:
    pkgs = [
        P("app", depends=["busybox", "cmd:sh"]),
        P("busybox", provides=["cmd:sh"]),
        P("bash", provides=["cmd:sh"], priority=999),
    ]
    assert chosen(["app"], pkgs) == {"app": "1.0-r0", "busybox": "1.0-r0"}


def test_conflict_in_world_excludes_a_provider() -> None:
    pkgs = [P("bash", provides=["cmd:sh"], priority=100), P("busybox", provides=["cmd:sh"])]
    assert chosen(["cmd:sh", "!bash"], pkgs) == {"busybox": "1.0-r0"}


def test_conflict_with_a_required_package_names_both() -> None:
    pkgs = [P("a", depends=["!b"]), P("b")]
    with pytest.raises(ResolveError) as e:
        resolve(["b", "a"], packages=pkgs)
    assert '"!b" (required by a-1.0-r0) conflicts with b-1.0-r0' in str(e.value)


def test_backtracks_to_an_older_version() -> None:
    # a-2 needs c>=2 which does not exist; a-1 works.
    pkgs = [P("a", "2.0-r0", depends=["c>=2"]), P("a", "1.0-r0", depends=["c"]), P("c", "1.0-r0")]
    assert chosen(["a"], pkgs) == {"a": "1.0-r0", "c": "1.0-r0"}


def test_one_version_per_name() -> None:
    pkgs = [
        P("x", depends=["lib=1.0-r0"]),
        P("y", depends=["lib=2.0-r0"]),
        P("lib", "1.0-r0"),
        P("lib", "2.0-r0"),
    ]
    with pytest.raises(ResolveError) as e:
        resolve(["x", "y"], packages=pkgs)
    msg = str(e.value)
    assert '"lib=2.0-r0" (required by y-1.0-r0)' in msg
    assert "lib-1.0-r0 was already chosen (for x-1.0-r0)" in msg


def test_unknown_name_names_the_requester() -> None:
    pkgs = [P("app", depends=["libmissing"])]
    with pytest.raises(ResolveError, match=r'no package provides "libmissing" \(required by app-1.0-r0\)'):
        resolve(["app"], packages=pkgs)
    with pytest.raises(ResolveError, match=r'no package provides "nope" \(required by world\)'):
        resolve(["nope"], packages=pkgs)


def test_unsatisfiable_version_lists_what_is_available() -> None:
    pkgs = [P("app", depends=["lib>=3"]), P("lib", "1.0-r0"), P("lib", "2.0-r0")]
    with pytest.raises(ResolveError) as e:
        resolve(["app"], packages=pkgs)
    assert (
        str(e.value)
        == '"lib>=3" (required by app-1.0-r0) cannot be satisfied: available: lib-1.0-r0, lib-2.0-r0'
    )
    assert e.value.exit_code == 2


def test_invalid_world_entry_is_a_user_error() -> None:
    with pytest.raises(ResolveError, match="invalid dependency"):
        resolve(["foo>="], packages=[P("foo")])


def test_first_repository_wins_for_the_same_package() -> None:
    pkgs = [P("a", repo="first"), P("a", repo="second")]
    (pkg,) = resolve(["a"], packages=pkgs).packages
    assert pkg.repository == "first"


def test_deterministic_whatever_the_input_order() -> None:
    pkgs = [
        P("app", depends=["so:libx.so.1", "cmd:sh"]),
        P("libx", "1.0-r0", provides=["so:libx.so.1=1"]),
        P("libx2", "1.0-r0", provides=["so:libx.so.1=1"]),
        P("busybox", provides=["cmd:sh"]),
        P("dash", provides=["cmd:sh"]),
    ]
    first = resolve(["app"], packages=pkgs)
    again = resolve(["app"], packages=list(reversed(pkgs)))
    assert [str(p) for p in first.packages] == [str(p) for p in again.packages]
    assert first.identity() == again.identity()
