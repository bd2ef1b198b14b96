from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Dict, Optional

import pytest

from melange_bk.config import parse_config
from melange_bk.errors import ConfigError
from melange_bk.plan import BuildPlan, GitSource, HttpSource
from melange_bk.plan.compile import compile_text

HEAD = """\
package:
  name: hello
  version: 1.2.3
  epoch: 4
  description: says hello
"""
SHA = "a" * 64
COMMIT = "b" * 40


def compile_yaml(
    body: str, tmp_path: Optional[Path] = None, pipelines: Optional[Dict[str, str]] = None, **kw
) -> BuildPlan:
    dirs = []
    if pipelines:
        assert tmp_path is not None
        for name, text in pipelines.items():
            f = tmp_path / "pipelines" / f"{name}.yaml"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(textwrap.dedent(text))
        dirs.append(str(tmp_path / "pipelines"))
    return compile_text("melange.yaml", HEAD + textwrap.dedent(body), pipeline_dirs=dirs, **kw)


def test_substitutions_in_runs_and_subpackages() -> None:
    plan = compile_yaml(
        """
        vars:
          greeting: hi-${{package.version}}
        pipeline:
          - runs: echo ${{package.name}} ${{package.full-version}} ${{vars.greeting}} ${{targets.destdir}} ${{build.arch}} ${{build.goarch}} ${{host.triplet.gnu}} ${{context.name}}
        subpackages:
          - name: ${{package.name}}-dev
            pipeline:
              - runs: echo ${{subpkg.name}} ${{targets.contextdir}} ${{targets.subpkgdir}} ${{context.name}} ${{targets.outdir}}
        """
    )
    assert plan.steps[0].runs == (
        "echo hello 1.2.3-r4 hi-1.2.3 /home/build/melange-out/hello x86_64 amd64 x86_64-pc-linux-gnu hello"
    )
    sub = plan.subpackages[0]
    assert sub.name == "hello-dev"
    assert sub.steps[0].runs == (
        "echo hello-dev /home/build/melange-out/hello-dev /home/build/melange-out/hello-dev hello-dev"
        " /home/build/melange-out"
    )


def test_arch_and_var_override() -> None:
    plan = compile_yaml(
        """
        vars:
          v: one
        pipeline:
          - runs: echo ${{build.arch}} ${{build.goarch}} ${{host.triplet.rust}} ${{cross.triplet.gnu.musl}} ${{vars.v}} ${{vars.w}}
        """,
        arch="arm64",
        extra_vars=[("v", "two"), ("w", "three")],
    )
    assert plan.arch == "aarch64"
    assert (
        plan.steps[0].runs
        == "echo aarch64 arm64 aarch64-unknown-linux-gnu aarch64-unknown-linux-musl two three"
    )


def test_var_transforms() -> None:
    plan = compile_yaml(
        """
        var-transforms:
          - from: ${{package.version}}
            match: ^(\\d+)\\.(\\d+)\\.\\d+$
            replace: ${1}.$2
            to: mm
        pipeline:
          - runs: echo ${{vars.mm}}
        """
    )
    assert plan.steps[0].runs == "echo 1.2"
    assert dict(plan.vars) == {"mm": "1.2"}


def test_range_subpackages_sorted_by_key() -> None:
    plan = compile_yaml(
        """
        data:
          - name: pys
            items:
              3.12: "312"
              3.10: "310"
        subpackages:
          - range: pys
            name: py${{range.key}}-${{package.name}}
            description: for ${{range.value}}
            pipeline:
              - runs: echo ${{range.key}} ${{range.value}} ${{subpkg.name}}
        """
    )
    assert [s.name for s in plan.subpackages] == ["py3.10-hello", "py3.12-hello"]
    assert plan.subpackages[0].description == "for 310"
    assert plan.subpackages[0].steps[0].runs == "echo 3.10 310 py3.10-hello"


def test_uses_inputs_defaults_and_nested_pipelines(tmp_path: Path) -> None:
    plan = compile_yaml(
        """
        pipeline:
          - uses: my/outer
            working-directory: src
            with:
              who: world
        """,
        tmp_path,
        {
            "my/outer": """
                needs:
                  packages:
                    - outer-${{inputs.who}}
                inputs:
                  who: {required: true}
                  greeting:
                    default: hello-${{package.name}}
                pipeline:
                  - runs: echo ${{inputs.greeting}} ${{inputs.who}}
                    environment:
                      A: ${{inputs.who}}
                  - uses: my/inner
                    with:
                      n: "2"
            """,
            "my/inner": """
                inputs:
                  n: {default: "1"}
                  flag: {default: "false"}
                pipeline:
                  - if: ${{inputs.flag}} == 'true'
                    runs: echo never
                  - runs: echo inner ${{inputs.n}} sees ${{inputs.who}}
                    working-directory: /abs
                    needs:
                      packages:
                        - inner-${{inputs.n}}
            """,
        },
    )
    assert [(s.id, s.runs) for s in plan.steps] == [
        ("1.1", "echo hello-hello world"),
        ("1.2.2", "echo inner 2 sees world"),
    ]
    assert plan.steps[0].workdir == "/home/build/src"
    assert dict(plan.steps[0].env)["A"] == "world"
    assert plan.steps[1].workdir == "/abs"
    assert plan.steps[1].uses == "my/inner"
    assert plan.steps[1].needs == ("inner-2", "outer-world")
    assert {"outer-world", "inner-2"} <= set(plan.environment.packages)


def test_if_false_skips_step_and_its_needs() -> None:
    plan = compile_yaml(
        """
        pipeline:
          - if: ${{build.arch}} == 'aarch64'
            runs: echo arm
            needs:
              packages: [arm-only]
          - if: ${{build.arch}} == 'x86_64' && ('a' == 'b' || 'c' == 'c')
            runs: echo x86
        """
    )
    assert [s.runs for s in plan.steps] == ["echo x86"]
    assert "arm-only" not in plan.environment.packages


@pytest.mark.parametrize("where", ["step", "subpackage"])
def test_if_errors_are_config_errors_for_steps_and_subpackages(where: str) -> None:
    # One evaluator for both: a malformed reference inside a quoted literal used to escape a subpackage's if:
    # as a bare SubstitutionError (a traceback); an undefined variable names the condition's owner and line.
    def body(cond: str) -> str:
        if where == "step":
            return f"pipeline:\n  - if: {cond}\n    runs: echo\n"
        return f"subpackages:\n  - name: hello-x\n    if: {cond}\n"

    owner = "pipeline step 1" if where == "step" else 'subpackage "hello-x"'
    cases = [
        ("${{build.arch}} == '${{'", "empty variable name in ${{...}} in if:"),
        ("${{nope}} == 'x'", 'undefined variable "nope" in if:'),
        ("${{build.arch}} = 'x'", "bad if: condition"),
    ]
    for cond, message in cases:
        with pytest.raises(ConfigError) as e:
            compile_yaml(body(cond))
        assert (e.value.line, e.value.message.split(": ", 1)[0]) == (7, owner), str(e.value)
        assert message in e.value.message, str(e.value)


def test_fetch_and_git_sources() -> None:
    plan = compile_yaml(
        f"""
        pipeline:
          - uses: fetch
            with:
              uri: https://example.invalid/hello-${{{{package.version}}}}.tar.gz
              expected-sha256: {SHA}
          - uses: git-checkout
            with:
              repository: https://example.invalid/hello.git
              tag: v${{{{package.version}}}}
              expected-commit: {COMMIT}
              destination: src
        """
    )
    fetch, git = plan.steps[0].source, plan.steps[1].source
    assert isinstance(fetch, HttpSource) and isinstance(git, GitSource)
    assert fetch.uri == "https://example.invalid/hello-1.2.3.tar.gz" and fetch.sha256 == SHA
    assert fetch.filename == "hello-1.2.3.tar.gz" and fetch.extract and fetch.strip_components == 1
    assert fetch.cache_path == f"/var/cache/melange/sha256:{SHA}"
    assert (git.commit, git.tag, git.destination) == (COMMIT, "v1.2.3", "src")
    assert {"wget", "git"} <= set(plan.environment.packages)


def test_tests_environment_and_accounts() -> None:
    plan = compile_yaml(
        """
        test:
          environment:
            contents:
              packages: [bash]
          pipeline:
            - uses: python/import
              with:
                import: json
        subpackages:
          - name: hello-extra
            test:
              pipeline:
                - runs: hello-extra --version
        """
    )
    assert plan.test is not None
    assert plan.test.environment.packages == ("bash", "hello", "wolfi-base")
    assert plan.subpackages[0].test is not None
    assert plan.subpackages[0].test.environment.packages == ("hello-extra",)
    assert [u.username for u in plan.environment.accounts.users] == ["build"]


def test_assertions_required_steps() -> None:
    body = """
        pipeline:
          - assertions:
              required-steps: {n}
            pipeline:
              - if: ${{{{build.arch}}}} == 'x86_64'
                runs: echo a
              - if: ${{{{build.arch}}}} == 'aarch64'
                runs: echo b
        """
    assert len(compile_yaml(body.format(n=1)).steps) == 1
    with pytest.raises(ConfigError, match="required-steps is 2 but 1"):
        compile_yaml(body.format(n=2))


def test_parse_strict_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    from melange_bk.config import yamlsrc

    yamlsrc._warned.discard("package.checks")
    with pytest.raises(ConfigError) as e:
        parse_config("m.yaml", HEAD + "pipeline:\n  - runs: x\n    bogus: 1\n")
    assert str(e.value) == "m.yaml:8: pipeline[0]: unknown field 'bogus'"
    cfg = parse_config("m.yaml", HEAD + "  checks:\n    disabled: [x]\n")
    assert cfg.package.name == "hello"
    assert [r.getMessage() for r in caplog.records if "package.checks" in r.getMessage()]
    parse_config("m.yaml", HEAD + "  checks:\n    disabled: [x]\n")
    assert len([r for r in caplog.records if "package.checks" in r.getMessage()]) == 1  # once


def test_user_pipeline_dir_shadows_builtin(tmp_path: Path) -> None:
    plan = compile_yaml(
        "pipeline:\n  - uses: strip\n", tmp_path, {"strip": "pipeline:\n  - runs: echo mine\n"}
    )
    assert plan.steps[0].runs == "echo mine"


def test_plan_is_deterministic_and_hashable() -> None:
    body = "pipeline:\n  - uses: autoconf/configure\n  - uses: autoconf/make\n"
    a, b = compile_yaml(body), compile_yaml(body)
    assert a == b and hash(a) == hash(b)
    assert a.to_json() == b.to_json()
