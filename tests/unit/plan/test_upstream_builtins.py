"""The built-in pipelines upstream melange ships beyond the issue-1 set: same names, inputs and defaults; and a
calling step's `if:` applies to `uses:` steps (it used to be dropped in favour of the definition's)."""

from __future__ import annotations

import textwrap
from typing import Dict

import pytest

from melange_bk.config.pipelines import load_builtin
from melange_bk.errors import ConfigError
from melange_bk.plan.compile import compile_text

# name -> {input: (default, required)}, as upstream melange declares them (pkg/build/pipelines).
UPSTREAM: Dict[str, Dict[str, tuple]] = {
    "xcover/profile": {
        "package": ("xcover", False),
        "executable-path": ("", True),
        "exclude-functions": ("", False),
        "include-functions": ("", False),
        "scope": ("project", False),
        "log-level": ("info", False),
        "verbose": ("false", False),
        "wait-timeout": ("60", False),
    },
    "xcover/status": {"package": ("xcover", False)},
    "xcover/stop": {"package": ("xcover", False)},
    "xcover/wait": {"package": ("xcover", False), "wait-timeout": ("60", False)},
    "xcover/ensure": {"package": ("xcover", False), "min-coverage": ("", False)},
    "R/build": {"package": ("", True), "path": (".", False), "version": ("", True)},
    "pecl/phpize": {"php-config": ("php-config", False), "prefix": ("/usr", False)},
    "pecl/install": {"extension": ("", True)},
    "git-am": {"patches": ("", True)},
    "go/bump": {
        "deps": ("", True),
        "modroot": (".", False),
        "go-version": ("", False),
        "replaces": ("", False),
        "tidy": ("true", False),
        "show-diff": ("false", False),
        "tidy-compat": ("", False),
        "work": ("false", False),
    },
    "go/covdata": {"package": ("go", False), "cover-dir": ("/home/build", False)},
    "llvm/covreport": {
        "package": ("llvm-19", False),
        "object": ("", False),
        "ignore-filename-regex": ("", False),
    },
    "maven/pombump": {
        "patch-file": ("./pombump-deps.yaml", False),
        "properties-file": ("./pombump-properties.yaml", False),
        "dependencies": ("", False),
        "properties": ("", False),
        "pom": ("pom.xml", False),
        "debug": ("false", False),
        "show-dependency-tree": ("false", False),
    },
}


@pytest.mark.parametrize("name", sorted(UPSTREAM))
def test_inputs_and_defaults_match_upstream(name: str) -> None:
    defn = load_builtin(name)
    assert defn is not None and defn.builtin and defn.step.pipeline
    got = {i.name: (i.default, i.required) for i in defn.step.inputs}
    assert got == UPSTREAM[name]


def _compile(body: str, arch: str = "x86_64"):
    head = "package: {name: demo, version: 1.0.0, epoch: 0, description: d}\n"
    return compile_text("melange.yaml", head + textwrap.dedent(body), arch=arch)


def test_pecl_pair_compiles_and_enables_the_extension() -> None:
    plan = _compile(
        """
        pipeline:
          - uses: pecl/phpize
          - uses: pecl/install
            with:
              extension: http
        """
    )
    assert "--with-php-config=php-config" in plan.steps[0].runs and "--prefix=/usr" in plan.steps[0].runs
    assert (
        'echo "extension=http.so" > "/home/build/melange-out/demo/etc/php/conf.d/http.ini"'
        in plan.steps[1].runs
    )
    assert {"autoconf", "automake", "busybox"} <= set(plan.environment.packages)


def test_required_inputs_are_required() -> None:
    with pytest.raises(ConfigError, match='pipeline "R/build" requires input "package"'):
        _compile("pipeline:\n  - uses: R/build\n    with: {version: '1'}\n")


def test_xcover_package_input_names_the_test_need() -> None:
    plan = _compile(
        """
        pipeline:
          - runs: "true"
        test:
          pipeline:
            - uses: xcover/profile
              with:
                executable-path: /usr/bin/demo
                package: xcover-nightly
            - runs: demo --version
            - uses: xcover/stop
            - uses: xcover/ensure
              with:
                min-coverage: "40"
        """
    )
    assert plan.test is not None
    assert "xcover-nightly" in plan.test.environment.packages and "jq" in plan.test.environment.packages
    assert "--path /usr/bin/demo" in plan.test.steps[0].runs
    assert 'minimum="40"' in plan.test.steps[3].runs


@pytest.mark.parametrize("arch,expected", [("x86_64", ["echo x86"]), ("aarch64", ["arm", "echo x86"])])
def test_if_of_a_uses_step_is_honoured(arch: str, expected: list) -> None:
    plan = _compile(
        """
        pipeline:
          - if: ${{build.arch}} == 'aarch64'
            uses: pecl/install
            with:
              extension: arm
          - runs: echo x86
        """,
        arch=arch,
    )
    got = ["arm" if s.uses == "pecl/install" else s.runs for s in plan.steps]
    assert got == expected


def test_required_steps_counts_uses_steps_whose_if_holds() -> None:
    """bun-bootstrap's shape: one fetch per architecture under `required-steps: 1`."""
    plan = _compile(
        """
        pipeline:
          - assertions:
              required-steps: 1
            pipeline:
              - if: ${{build.arch}} == 'aarch64'
                uses: git-am
                with: {patches: arm.patch}
              - if: ${{build.arch}} == 'x86_64'
                uses: git-am
                with: {patches: x86.patch}
        """
    )
    assert len(plan.steps) == 1 and "x86.patch" in plan.steps[0].runs
