"""One test per bad-input case of the issue: one line on stderr, exit code 2, no traceback."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from melange_bk.cli.main import main

HEAD = "package:\n  name: hello\n  version: 1.0\n  epoch: 0\n"
SHA = "a" * 64


@pytest.mark.parametrize(
    "body, expected",
    [
        pytest.param("package:\n  name: [x\n", ":3:1: invalid YAML", id="invalid-yaml"),
        pytest.param("package:\n  version: 1.0\n", ":2: package.name is missing", id="missing-name"),
        pytest.param("package:\n  name: x\n", ":2: package.version is missing", id="missing-version"),
        pytest.param(
            HEAD + "pipeline:\n  - runs: x\n  - runs: y\n  - uses: autoconf/mak\n",
            ':8: pipeline step 3 uses unknown pipeline "autoconf/mak"',
            id="unknown-pipeline",
        ),
        pytest.param(
            HEAD + "pipeline:\n  - uses: go/install\n",
            ':6: pipeline step 1: pipeline "go/install" requires input "package"',
            id="missing-required-input",
        ),
        pytest.param(
            HEAD + "pipeline:\n  - uses: autoconf/make\n    with:\n      bogus: 1\n",
            ':8: pipeline step 1: unknown input "bogus" for pipeline "autoconf/make"',
            id="unknown-input",
        ),
        pytest.param(
            HEAD + "pipeline:\n  - runs: |\n      echo ok\n      echo ${{package.nme}}\n",
            ':8: pipeline step 1: undefined variable "package.nme" in runs',
            id="unknown-variable",
        ),
        pytest.param(
            HEAD + "pipeline:\n  - if: ${{build.arch}} = 'x86_64'\n    runs: echo\n",
            ":6: pipeline step 1: bad if: condition",
            id="bad-if",
        ),
        pytest.param(
            HEAD + "subpackages:\n  - name: hello-doc\n  - name: ${{package.name}}-doc\n",
            ':7: duplicate subpackage name "hello-doc"',
            id="duplicate-subpackage",
        ),
        pytest.param(
            HEAD + "pipeline:\n  - uses: fetch\n    with:\n      uri: https://example.invalid/x.tar.gz\n",
            ":6: pipeline step 1: fetch needs expected-sha256 or expected-sha512",
            id="fetch-without-checksum",
        ),
        pytest.param(
            HEAD
            + "pipeline:\n  - uses: git-checkout\n    with:\n      repository: https://example.invalid/x\n",
            ":6: pipeline step 1: git-checkout needs expected-commit",
            id="git-checkout-without-commit",
        ),
        pytest.param(
            HEAD
            + "pipeline:\n  - uses: git-checkout\n    with:\n      repository: https://example.invalid/x\n"
            + f"      expected-commit: {'a' * 40}\n      cherry-picks: |\n        main/{'b' * 40}: fix\n",
            ":6: pipeline step 1 (git-checkout): git-checkout cherry-picks fetch commits in the build step, which "
            "needs the network: allow it with --allow-network (Pants: [melange].allow_network = true)",
            id="git-checkout-cherry-picks-without-permission",
        ),
        pytest.param(
            HEAD
            + "pipeline:\n  - uses: git-checkout\n    with:\n      repository: https://example.invalid/x\n"
            + f"      expected-commit: {'a' * 40}\n      cherry-picks: |\n        # why\n\n        main/{'b' * 40}\n",
            ":6: pipeline step 1: cherry-picks line 3: expected '[branch/]commit: comment' in 'main/bbbb",
            id="git-checkout-cherry-pick-without-comment",
        ),
        pytest.param(
            HEAD
            + "pipeline:\n  - uses: git-checkout\n    with:\n      repository: https://example.invalid/x\n"
            + f"      expected-commit: {'a' * 40}\n      cherry-picks: |\n        main/{'b' * 12}: fix\n",
            ":6: pipeline step 1: cherry-picks line 1: 'bbbbbbbbbbbb' is not a full 40-hex commit id",
            id="git-checkout-cherry-pick-short-commit",
        ),
        pytest.param(
            HEAD + "capabilities:\n  add:\n    - CAP_SYS_ADMIN\n",
            ": capabilities.add CAP_SYS_ADMIN: beyond BuildKit's default capabilities, which only insecure steps "
            "(all capabilities, no seccomp) grant: allow them with --allow-insecure",
            id="capabilities-without-permission",
        ),
        pytest.param(
            HEAD
            + "pipeline:\n  - uses: git-checkout\n    with:\n      repository: https://example.invalid/x\n"
            + f"      expected-commit: {'a' * 40}\n      branch: main\n      expected-commit-is-branch-tip: true\n",
            ":6: pipeline step 1: git-checkout expected-commit-is-branch-tip is not supported",
            id="git-checkout-branch-tip",
        ),
        pytest.param(
            HEAD
            + f"pipeline:\n  - uses: fetch\n    with:\n      uri: u\n      expected-sha256: {SHA[:10]}\n",
            ':6: pipeline step 1: input "expected-sha256" must be 64 hexadecimal digits',
            id="short-checksum",
        ),
        pytest.param(HEAD + "bogus: 1\n", ":5: top level: unknown field 'bogus'", id="unknown-key"),
        pytest.param(
            HEAD + "subpackages:\n  - name: a\n    range: nope\n",
            ":7: subpackages[0] uses undefined range 'nope'",
            id="undefined-range",
        ),
    ],
)
def test_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, expected: str) -> None:
    f = tmp_path / "melange.yaml"
    f.write_text(textwrap.dedent(body))
    assert main(["compile", str(f)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"melange-bk: error: {f}:")
    assert expected in lines[0]
    assert "Traceback" not in captured.err


def test_bad_var_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "melange.yaml"
    f.write_text(HEAD)
    assert main(["compile", str(f), "--var", "novalue"]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err


def test_compile_prints_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "melange.yaml"
    f.write_text(HEAD + "pipeline:\n  - runs: echo ${{vars.x}}\n")
    assert main(["compile", str(f), "--var", "x=1", "--arch", "aarch64"]) == 0
    out = capsys.readouterr().out
    assert '"runs": "echo 1"' in out and '"arch": "aarch64"' in out
    assert str(tmp_path) not in out
