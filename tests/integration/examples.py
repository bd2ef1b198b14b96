"""Shared by the example-package integration tests: the Debian build rootfs, a bootstrap repository and a signing
key (session fixture `examples_env`), and `build_example`/`test_example`, which run the CLI on a package of
packages/ (in Pants' sandbox, from `//packages:examples`).

The rootfs is `$MELANGE_BK_DEBIAN_ROOTFS` (pants.toml's [test] sets it), else `.cache/rootfs/debian-build.tar` of
the checkout (`bin/example-env` makes it); the test FAILS when it is missing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NamedTuple

import pytest

from melange_bk.apk import write_keypair
from melange_bk.cli.main import main
from melange_bk.environment.bootstrap import build_bootstrap_repo

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "packages"
ARCH = "x86_64"
SDE = "1700000000"


class Env(NamedTuple):
    rootfs: str
    bootstrap: str  # repository root
    bootstrap_key: str  # its public key
    key: str  # signs the examples
    ring: Path  # a keyring directory holding key's .pub


def debian_rootfs() -> str:
    path = os.environ.get("MELANGE_BK_DEBIAN_ROOTFS") or str(ROOT / ".cache" / "rootfs" / "debian-build.tar")
    if not os.path.exists(path):
        pytest.fail(
            f"the Debian build rootfs {path} does not exist: run bin/example-env (or set MELANGE_BK_DEBIAN_ROOTFS)",
            pytrace=False,
        )
    return path


def make_examples_env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    """What a test module's `examples_env` fixture returns."""
    rootfs = debian_rootfs()
    d = tmp_path_factory.mktemp("examples-env")
    repo = build_bootstrap_repo(str(d / "bootstrap"), arch=ARCH)
    write_keypair(str(d / "examples.rsa"), bits=2048)
    (d / "ring").mkdir()
    shutil.copy(d / "examples.rsa.pub", d / "ring" / "examples.rsa.pub")
    return Env(rootfs, repo.path, repo.keyring[0], str(d / "examples.rsa"), d / "ring")


def example_yaml(name: str) -> Path:
    path = EXAMPLES / name / "melange.yaml"
    assert path.is_file(), f"{path} missing (in Pants, a dependency on //packages:examples)"
    return path


def build_example(env: Env, name: str, out: Path, addr: str, *extra: str) -> int:
    """`melange-bk build` of packages/<name> (or of a YAML path) into OUT-DIR `out`, signed with env.key."""
    yaml_path = Path(name) if name.endswith(".yaml") else example_yaml(name)
    return main(
        [
            "build",
            str(yaml_path),
            "--rootfs",
            env.rootfs,
            "--repository-append",
            env.bootstrap,
            "--keyring-append",
            env.bootstrap_key,
            "--signing-key",
            env.key,
            "--out-dir",
            str(out),
            "--buildkit-addr",
            addr,
            "--progress",
            "quiet",
            "--source-date-epoch",
            SDE,
            *extra,
        ]
    )


def run_test_command(env: Env, yaml_path: Path, addr: str, *extra: str) -> int:
    """`melange-bk test` of a YAML against what `extra` names (--out-dir or --apk), trusting env.key."""
    return main(
        [
            "test",
            str(yaml_path),
            "--rootfs",
            env.rootfs,
            "--repository-append",
            env.bootstrap,
            "--keyring-append",
            env.bootstrap_key,
            "--keyring-append",
            str(env.ring / "examples.rsa.pub"),
            "--buildkit-addr",
            addr,
            "--progress",
            "quiet",
            *extra,
        ]
    )
