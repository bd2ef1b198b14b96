from __future__ import annotations

from pathlib import Path

import pytest

from melange_bk.errors import ConfigError
from melange_bk.graph import RepoGraph
from melange_bk.graph.scan import guess_names, scan_yaml

CORPUS = Path(__file__).resolve().parents[2] / "fixtures" / "wolfi"

RANGED = """\
package:
  name: multi
  version: "1.0"
  dependencies:
    provides:
      - multi-compat=1.0
    provider-priority: 5
vars:
  flavour: big
data:
  - name: sizes
    items:
      small: s
      large: l
environment:
  contents:
    packages:
      - build-base
      - libfoo-dev>=2
      - "!badpkg"
pipeline:
  - uses: autoconf/make
    needs:
      packages:
        - make-helper
  - pipeline:
      - runs: "true"
        needs:
          packages: [nested-helper]
subpackages:
  - range: sizes
    name: ${{package.name}}-${{range.key}}
    dependencies:
      provides:
        - multi-${{range.value}}
  - name: ${{package.name}}-${{vars.flavour}}
    pipeline:
      - runs: "true"
        needs:
          packages: [sub-helper]
    test:
      environment:
        contents:
          packages: [sub-test-dep]
test:
  environment:
    contents:
      packages: [test-dep]
"""


def test_scan_collects_provides_and_needs() -> None:
    node = scan_yaml("multi.yaml", RANGED)
    assert node.name == "multi"
    assert node.provides == (
        "multi",
        "multi-big",
        "multi-compat",
        "multi-l",
        "multi-large",
        "multi-s",
        "multi-small",
    )
    assert node.build_needs == (
        "build-base",
        "libfoo-dev>=2",
        "!badpkg",
        "make-helper",
        "nested-helper",
        "sub-helper",
    )
    assert node.test_needs == ("test-dep", "sub-test-dep")
    assert node.provider_priority == 5
    assert node.line_of("libfoo-dev") == 19


def test_yaml_syntax_error_names_file_line_col() -> None:
    with pytest.raises(ConfigError) as e:
        scan_yaml("bad.yaml", "package:\n  name: [oops\n")
    assert str(e.value).startswith("bad.yaml:3:1: invalid YAML")


def test_missing_name() -> None:
    with pytest.raises(ConfigError, match=r"^x.yaml:2: package.name is missing"):
        scan_yaml("x.yaml", "package:\n  version: '1'\n")


def test_wolfi_corpus_graph() -> None:
    nodes = [scan_yaml(p.name, p.read_text()) for p in sorted(CORPUS.glob("*.yaml"))]
    assert len(nodes) == 32
    graph = RepoGraph.from_nodes(nodes)
    # crun builds with m4 from the corpus
    assert "m4.yaml" in graph.dependencies("crun.yaml")


def test_scan_substitutes_like_the_compiler() -> None:
    text = """\
package:
  name: ruby-thing
  version: 1.2.3
  epoch: 4
  dependencies:
    provider-priority: ${{vars.prio}}
    provides:
      - thing=${{package.full-version}}
vars:
  rubyMM: "3.4"
  prio: "7"
var-transforms:
  - from: ${{package.version}}
    match: ^(\\d+)\\.(\\d+)\\..*
    replace: $1$2
    to: short
environment:
  contents:
    packages:
      - ruby-${{vars.rubyMM}}-dev
      - thing-${{vars.short}}
data:
  - name: pys
    items:
      "3.12": "312"
      "3.13": ""
subpackages:
  - range: pys
    name: py${{range.key}}-thing
    dependencies:
      provider-priority: ${{range.value}}
      provides:
        - py3-thing
"""
    node = scan_yaml("ruby-thing.yaml", text)
    assert node.build_needs == ("ruby-3.4-dev", "thing-12")
    assert node.provider_priority == 7 and node.version == "1.2.3-r4"
    assert ("thing", "1.2.3-r4", False, 7) in node.offers
    assert ("py3-thing", None, False, 312) in node.offers and ("py3-thing", None, False, 0) in node.offers
    assert ("py3.13-thing", "1.2.3-r4", True, 0) in node.offers


def test_guess_names_of_a_broken_yaml() -> None:
    text = (
        "package:\n  name: brotli\n  version: 1\npipeline:\n  - name: Configure\n"
        "subpackages:\n  - name: ${{package.name}}-dev\n    pipeline:\n      - name: x\n  - name: brotli-static\n"
        "test: [\n"
    )
    with pytest.raises(ConfigError):
        scan_yaml("brotli.yaml", text)
    assert guess_names("brotli.yaml", text) == ("brotli", "brotli-dev", "brotli-static")
