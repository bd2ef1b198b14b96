"""The build graph through real Pants on a temporary clone: one-line errors (cycle, ambiguous provider, YAML
syntax) and `--changed-since` selecting exactly the changed packages and their transitive dependents.

No package is built here (the errors stop Pants before any build; `list` builds nothing); each test undoes its
changes (`git checkout`, `git clean`) so they share one clone.
"""

from __future__ import annotations

import os
from typing import Iterator, Sequence, Set

import pytest

from tests.pants_it.clone import PantsRun, PantsRunner, git

_BUILD = 'melange_package(name="apk")\n'


@pytest.fixture
def repo(pants: PantsRunner) -> Iterator[str]:
    yield pants.repo
    git(pants.repo, "checkout", "--", ".")
    git(pants.repo, "clean", "-fdq", "--", "packages")


def _package(repo: str, name: str, yaml: str) -> str:
    os.makedirs(os.path.join(repo, "packages", name))
    with open(os.path.join(repo, "packages", name, "melange.yaml"), "w") as f:
        f.write(yaml)
    with open(os.path.join(repo, "packages", name, "BUILD"), "w") as f:
        f.write(_BUILD)
    return f"packages/{name}/melange.yaml"


def _yaml(name: str, needs: Sequence[str] = (), subpackages: Sequence[str] = ()) -> str:
    out = f'package:\n  name: {name}\n  version: "1.0.0"\n  epoch: 0\n'
    if needs:
        out += "environment:\n  contents:\n    packages:\n" + "".join(f"      - {n}\n" for n in needs)
    out += 'pipeline:\n  - runs: "true"\n'
    if subpackages:
        out += "subpackages:\n" + "".join(
            f'  - name: {s}\n    pipeline:\n      - runs: "true"\n' for s in subpackages
        )
    return out


def _one_line_error(run: PantsRun) -> str:
    """The failure's message: one `MelangeInferenceError: …` line, no Python traceback, nothing built."""
    assert run.returncode != 0, run.tail()
    errors = [line for line in run.out.splitlines() if "MelangeInferenceError" in line]
    assert len(errors) == 1, run.tail()
    assert "Traceback (most recent call last)" not in run.out, run.tail()
    assert run.spawned() == [], run.tail()
    return errors[0].split("MelangeInferenceError: ", 1)[1]


def test_cycle_is_one_line_naming_the_files(pants: PantsRunner, repo: str, buildkit_addr: str) -> None:
    # cycb needs a subpackage of cyca: the cycle goes through provided names, not only package names.
    a = _package(repo, "cyca", _yaml("cyca", needs=["cycb"], subpackages=["cyca-dev"]))
    b = _package(repo, "cycb", _yaml("cycb", needs=["cyca-dev"]))
    message = _one_line_error(pants.run("package", "::", buildkit_host=buildkit_addr))
    assert "cycle" in message and "cyca -> cycb -> cyca" in message, message
    assert a in message and b in message, message


def test_ambiguous_provider_is_one_line_naming_the_files(
    pants: PantsRunner, repo: str, buildkit_addr: str
) -> None:
    alt = _package(repo, "altgreet", _yaml("altgreet", subpackages=["libgreet-dev"]))
    message = _one_line_error(pants.run("package", "::", buildkit_host=buildkit_addr))
    assert '"libgreet-dev" is provided by several packages' in message, message
    # Who needs it, and both providers.
    assert "packages/greet/melange.yaml" in message, message
    assert alt in message and "packages/libgreet/melange.yaml" in message, message


def test_yaml_syntax_error_is_one_line_naming_the_file(
    pants: PantsRunner, repo: str, buildkit_addr: str
) -> None:
    with open(os.path.join(repo, "packages/hello/melange.yaml"), "a") as f:
        f.write("vars:\n  broken: [unclosed\n")
    message = _one_line_error(pants.run("package", "::", buildkit_host=buildkit_addr))
    assert message.startswith("packages/hello/melange.yaml:"), message
    assert "YAML" in message, message


def _changed(pants: PantsRunner, buildkit_addr: str, since: str) -> Set[str]:
    run = pants.run(
        f"--changed-since={since}",
        "--changed-dependents=transitive",
        "list",
        buildkit_host=buildkit_addr,
        debug=False,
    )
    assert run.returncode == 0, run.tail()
    return {line for line in run.out.splitlines() if line.startswith("packages")}


def test_changed_since_selects_changed_and_transitive_dependents(
    pants: PantsRunner, repo: str, buildkit_addr: str
) -> None:
    # Unchanged: nothing.
    assert _changed(pants, buildkit_addr, "HEAD") == set()
    # A source file beside libgreet's YAML (owned by the target's workspace): libgreet, greet (needs libgreet-dev)
    # and the repository that lists greet; not hello.
    with open(os.path.join(repo, "packages/libgreet/greet.c"), "a") as f:
        f.write("/* changed */\n")
    assert _changed(pants, buildkit_addr, "HEAD") == {
        "packages/libgreet:apk",
        "packages/greet:apk",
        "packages:repo",
    }
    git(repo, "checkout", "--", ".")
    # A committed change to a leaf's YAML, against the commit before it: the leaf and the repository.
    with open(os.path.join(repo, "packages/hello/melange.yaml"), "a") as f:
        f.write("# changed\n")
    git(repo, "commit", "-qam", "change hello")
    try:
        assert _changed(pants, buildkit_addr, "HEAD~1") == {"packages/hello:apk", "packages:repo"}
        assert _changed(pants, buildkit_addr, "HEAD") == set()
    finally:
        git(repo, "reset", "-q", "--hard", "HEAD~1")
