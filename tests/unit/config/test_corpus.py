"""Acceptance: every YAML of the Wolfi corpus compiles with the corpus' own pipeline directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from melange_bk.config import Resolver
from melange_bk.config.pipelines import builtin_names, load_builtin
from melange_bk.plan.compile import compile_file

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / "tests" / "fixtures" / "wolfi"
YAMLS = sorted(CORPUS.glob("*.yaml"))
RESOLVER = Resolver([str(CORPUS / "pipelines")])


def test_corpus_is_there() -> None:
    assert len(YAMLS) >= 32


@pytest.mark.parametrize("path", YAMLS, ids=[p.name for p in YAMLS])
def test_corpus_compiles(path: Path) -> None:
    plan = compile_file(str(path), resolver=RESOLVER)
    assert plan.package.name == path.stem or plan.file == path.name
    text = plan.to_json()
    assert str(ROOT) not in text and "${{" not in json.dumps([s.runs for s in plan.steps])
    assert plan.steps, "a package without build steps"
    for step in plan.steps:
        assert step.workdir.startswith("/")
        assert list(step.env) == sorted(step.env)


ISSUE_BUILTINS = """
fetch git-checkout patch strip make autoconf/configure autoconf/make autoconf/make-install cmake/configure
cmake/build cmake/install meson/configure meson/compile meson/install split/dev split/static split/debug
split/manpages split/locales split/infodir split/alldocs split/bin split/lib go/build go/install go/build/v2
cargo/build python/build python/install python/build-wheel python/import python/test ruby/build ruby/install
ruby/clean perl/make perl/cleanup npm/install
""".split()


@pytest.mark.parametrize("name", ISSUE_BUILTINS)
def test_builtin_pipeline_loads(name: str) -> None:
    defn = load_builtin(name)
    assert defn is not None and defn.builtin
    assert defn.step.runs or defn.step.pipeline


def test_builtin_names_cover_the_issue() -> None:
    assert set(ISSUE_BUILTINS) <= set(builtin_names())


def test_security_inputs() -> None:
    fetch = load_builtin("fetch")
    git = load_builtin("git-checkout")
    assert fetch is not None and git is not None
    assert {i.name for i in fetch.step.inputs} >= {"uri", "expected-sha256", "expected-sha512", "extract"}
    assert {i.name for i in git.step.inputs} >= {
        "repository",
        "expected-commit",
        "tag",
        "branch",
        "destination",
    }
