"""Acceptance of the backend on the real Wolfi tree (issue 16): a DEST from bin/wolfi-monorepo (3,288 YAMLs of
../shared/wolfi-os, its pipelines/, the recommended [melange] configuration), driven by real Pants with pantsd.

The graph and its provider choices (apk's rules: versions, provider_priority, constraints in the need), the cycle
error with its suggested bootstrap set when `bootstrap_packages` is empty, one broken YAML failing alone, and
`--changed-since` against the library's own transitive-dependents query. Nothing is built (no daemon is used, but
the suite's fixture still requires BUILDKIT_HOST, like every pants_it test).
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Iterator, List, Tuple

import pytest

from tests.pants_it.clone import PantsRunner, checkout, git
from tests.pants_it.wolfi import PACKAGES, bootstrap_of, library_graph, make_monorepo

W = PACKAGES + "/"


@pytest.fixture(scope="module")
def wolfi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PantsRunner]:
    base = tmp_path_factory.mktemp("pants-it-wolfi")
    runner = PantsRunner(make_monorepo(checkout(), str(base / "wolfi")), str(base / "home"))
    yield runner
    runner.kill_pantsd()
    runner.cleanup()


@pytest.fixture
def dest(wolfi: PantsRunner) -> Iterator[str]:
    yield wolfi.repo
    git(wolfi.repo, "checkout", "--", ".")
    git(wolfi.repo, "clean", "-fdq", "--", "packages")


def _pants(runner: PantsRunner, *args: str, buildkit_addr: str) -> Tuple[int, str, str]:
    """(exit code, stdout, stderr) of `./pants --pantsd ARGS` in the monorepo."""
    proc = subprocess.run(
        runner.argv(args, debug=False, pantsd=True),
        cwd=runner.repo,
        env=runner.env(buildkit_addr),
        capture_output=True,
        timeout=1500,
    )
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def _graph(runner: PantsRunner, buildkit_addr: str, *opts: str) -> Tuple[int, dict, str]:
    code, out, err = _pants(
        runner, *opts, "melange-graph", "--format=json", "::", buildkit_addr=buildkit_addr
    )
    return code, (json.loads(out) if out.strip() else {}), err


def _in_tree(doc: dict, yaml: str, need: str) -> str:
    return doc["packages"][W + yaml]["in_tree"][need]


def _write(dest: str, name: str, text: str) -> None:
    with open(os.path.join(dest, PACKAGES, name), "w") as f:
        f.write(text)


def _pkg(name: str, extra: str = "") -> str:
    return f'package:\n  name: {name}\n  version: "1.0.0"\n  epoch: 0\n{extra}pipeline:\n  - runs: "true"\n'


def test_graph_and_provider_choices(wolfi: PantsRunner, dest: str, buildkit_addr: str) -> None:
    assert len(bootstrap_of(dest)) <= 40
    # provider_priority settles unversioned provides (no need in the real tree hinges on it: two added YAMLs).
    for name, prio in (("zz-virt-low", 5), ("zz-virt-high", 10)):
        provides = f"  dependencies:\n    provider-priority: {prio}\n    provides:\n      - zz-virt\n"
        _write(dest, f"{name}.yaml", _pkg(name, provides))
    _write(
        dest, "zz-user.yaml", _pkg("zz-user", "environment:\n  contents:\n    packages:\n      - zz-virt\n")
    )
    code, doc, err = _graph(wolfi, buildkit_addr)
    assert code == 0, err[-3000:]
    assert "[WARN]" not in err, err[-3000:]  # e.g. a root BUILD naming files the monorepo does not have
    assert len(doc["packages"]) >= 3200 and doc["broken"] == {}
    # versions: python-3.13's `python3=3.13.15` beats python-3.14's `python3=0`; geos-dev from the newest geos
    assert _in_tree(doc, "R-sf.yaml", "geos-dev") == W + "geos-3.14.yaml"
    users = [p for p, v in doc["packages"].items() if "python3" in v["in_tree"]]
    assert len(users) > 100 and {doc["packages"][p]["in_tree"]["python3"] for p in users} == {
        W + "python-3.13.yaml"
    }
    # constraints in the need
    assert _in_tree(doc, "binaryen.yaml", "gcc") == W + "gcc-13.yaml"  # gcc~13
    assert _in_tree(doc, "imath.yaml", "py3-supported-numpy") == W + "py3-numpy-1.26.yaml"  # ~1.26
    # provider_priority
    assert _in_tree(doc, "zz-user.yaml", "zz-virt") == W + "zz-virt-high.yaml"
    # in-tree vs from the repositories, per package
    assert "zlib-dev" in doc["packages"][W + "curl.yaml"]["from_repositories"]  # zlib is not in the tree


def test_cycle_error_suggests_a_bootstrap_set(wolfi: PantsRunner, dest: str, buildkit_addr: str) -> None:
    code, _doc, err = _graph(wolfi, buildkit_addr, "--melange-bootstrap-packages=[]")
    assert code != 0
    lines = [line for line in err.splitlines() if "MelangeInferenceError: " in line]
    assert len(lines) == 1, err[-3000:]
    message = lines[0].split("MelangeInferenceError: ", 1)[1]
    assert message.startswith("build dependency cycle: "), message
    suggestion = message.split("breaks every cycle: ", 1)[1].split(" (set [melange].bootstrap_packages")[0]
    names = suggestion.split(", ")
    assert 0 < len(names) <= 40, message
    # the suggestion does break every cycle (the library's graph with it as the bootstrap set)
    assert library_graph(dest, bootstrap=names).build_order()


def test_one_broken_yaml_fails_alone(wolfi: PantsRunner, dest: str, buildkit_addr: str) -> None:
    with open(os.path.join(dest, PACKAGES, "brotli.yaml"), "a") as f:
        f.write("test: [\n")
    code, out, err = _pants(wolfi, "dependencies", W + "brotli.yaml", buildkit_addr=buildkit_addr)
    assert code != 0 and f"{W}brotli.yaml:" in err and "invalid YAML" in err, err[-2000:]
    # curl needs brotli-dev (a subpackage of the broken YAML): it fails, naming brotli.yaml
    code, out, err = _pants(wolfi, "dependencies", W + "curl.yaml", buildkit_addr=buildkit_addr)
    assert code != 0 and f"needs {W}brotli.yaml, which cannot be read" in err, err[-2000:]
    # jq does not: it works
    code, out, err = _pants(wolfi, "dependencies", W + "jq.yaml", buildkit_addr=buildkit_addr)
    assert code == 0 and W + "oniguruma.yaml" in out.splitlines(), err[-2000:]
    # the graph: the broken YAML listed, the graph of the rest, exit != 0
    code, doc, err = _graph(wolfi, buildkit_addr)
    assert code != 0 and list(doc["broken"]) == [W + "brotli.yaml"], err[-2000:]
    assert len(doc["packages"]) >= 3200 and W + "jq.yaml" in doc["packages"]
    assert f"{W}brotli.yaml:" in err


def test_changed_since_is_the_library_dependents(wolfi: PantsRunner, dest: str, buildkit_addr: str) -> None:
    openssl = W + "openssl.yaml"
    with open(os.path.join(dest, openssl), "a") as f:
        f.write("# touched\n")
    code, out, err = _pants(
        wolfi, "--changed-since=HEAD", "--changed-dependents=transitive", "list", buildkit_addr=buildkit_addr
    )
    assert code == 0, err[-2000:]
    selected: List[str] = sorted(line for line in out.splitlines() if line.startswith(W))
    expected = sorted([openssl, *library_graph(dest).dependents(openssl, test=True)])
    assert len(expected) > 100
    assert selected == expected
