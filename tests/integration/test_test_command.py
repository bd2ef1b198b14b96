"""`melange-bk test` on the real daemon: the examples' test: sections pass against their built packages, and a
broken test fails naming its step, with its log, and exit code ≠ 0."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from melange_bk.cli.main import main
from tests.integration.examples import (
    ARCH,
    Env,
    build_example,
    example_yaml,
    make_examples_env,
    run_test_command,
)


@pytest.fixture(scope="module")
def examples_env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    return make_examples_env(tmp_path_factory)


@pytest.fixture(scope="module")
def outs(examples_env: Env, buildkit_addr: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """hello and ranged, built into OUT-DIR/<name>/ARCH."""
    base = tmp_path_factory.mktemp("test-command-out")
    for name in ("hello", "ranged"):
        assert build_example(examples_env, name, base / name, buildkit_addr) == 0, name
    return base


def test_hello_passes(outs: Path, examples_env: Env, buildkit_addr: str, capsys) -> None:
    rc = run_test_command(
        examples_env, example_yaml("hello"), buildkit_addr, "--out-dir", str(outs / "hello")
    )
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert out.out.splitlines() == ["ok hello (1 step)"]


def test_apk_flag_and_subpackage_tests(outs: Path, examples_env: Env, buildkit_addr: str, capsys) -> None:
    arch_dir = outs / "ranged" / ARCH
    apk_args = []
    for apk in sorted(arch_dir.glob("*.apk")):
        apk_args += ["--apk", str(apk)]
    rc = run_test_command(examples_env, example_yaml("ranged"), buildkit_addr, *apk_args)
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert out.out.splitlines() == [
        "ok ranged (1 step)",
        "ok ranged-chili (1 step)",
        "ok ranged-lemon (1 step)",
        "ok ranged-vanilla (1 step)",
    ]


def _broken_hello(tmp_path: Path) -> Path:
    ws = tmp_path / "hello"
    shutil.copytree(example_yaml("hello").parent, ws)
    yaml_path = ws / "melange.yaml"
    text = yaml_path.read_text()
    good = """    - name: says hello
      runs: |
        hello | grep -qx "Hello, world!"
"""
    assert good in text
    yaml_path.write_text(
        text.replace(
            good,
            """    - name: says goodbye
      runs: |
        echo "hello printed: $(hello)"
        hello | grep -qx "Goodbye, world!"
""",
        )
    )
    return yaml_path


def test_broken_test_fails_naming_the_step(
    outs: Path, examples_env: Env, buildkit_addr: str, tmp_path: Path, capsys
) -> None:
    yaml_path = _broken_hello(tmp_path)
    rc = run_test_command(examples_env, yaml_path, buildkit_addr, "--out-dir", str(outs / "hello"))
    err = capsys.readouterr().err
    assert rc != 0
    # The step's name and exit status first (its command and log follow on lines of their own).
    assert '"[hello] test 1: says goodbye" failed: exit code: 1\n' in err
    assert "hello printed: Hello, world!" in err  # the step's log tail


def test_untrusted_package_is_refused(outs: Path, examples_env: Env, buildkit_addr: str, capsys) -> None:
    rc = main(
        [
            "test",
            str(example_yaml("hello")),
            "--out-dir",
            str(outs / "hello"),
            "--rootfs",
            examples_env.rootfs,
            "--repository-append",
            examples_env.bootstrap,
            "--keyring-append",
            examples_env.bootstrap_key,
            "--buildkit-addr",
            buildkit_addr,
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2
    assert "hello-1.0.0-r0.apk" in err and "--keyring-append" in err


def test_missing_package_is_named(examples_env: Env, buildkit_addr: str, tmp_path: Path, capsys) -> None:
    (tmp_path / ARCH).mkdir()
    rc = run_test_command(examples_env, example_yaml("hello"), buildkit_addr, "--out-dir", str(tmp_path))
    err = capsys.readouterr().err
    assert rc == 2
    assert "no package hello-1.0.0-r0 to test" in err
