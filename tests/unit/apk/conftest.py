"""Fixtures for the apk tests: one RSA key pair per session (2048 bits keeps key generation fast)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from melange_bk.apk.sign import SigningKey, load_signing_key, write_keypair


@dataclass(frozen=True)
class KeyPair:
    private: Path  # .../melange.rsa
    public: Path  # .../melange.rsa.pub
    keyring: Path  # a directory holding only melange.rsa.pub

    def signing_key(self, algorithm: str = "sha1") -> SigningKey:
        return load_signing_key(str(self.private), algorithm)


def _make_pair(base: Path, name: str = "melange.rsa") -> KeyPair:
    base.mkdir(parents=True, exist_ok=True)
    private, public = write_keypair(str(base / name), bits=2048)
    keyring = base / "keys"
    keyring.mkdir()
    (keyring / os.path.basename(public)).write_bytes(Path(public).read_bytes())
    return KeyPair(Path(private), Path(public), keyring)


@pytest.fixture(scope="session")
def keypair(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return _make_pair(tmp_path_factory.mktemp("key"))


@pytest.fixture(scope="session")
def other_keypair(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    """A different key with the same file name: a signature by it names a key the keyring has, but fails."""
    return _make_pair(tmp_path_factory.mktemp("otherkey"))


def make_tree(root: Path) -> Path:
    """A small package tree: dirs, an executable, a long name, a symlink, a hardlink across directories."""
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "share" / "doc" / "hello").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "usr" / "bin" / "hello").write_bytes(b"#!/bin/sh\necho hello\n")
    os.chmod(root / "usr" / "bin" / "hello", 0o755)
    (root / "etc" / "hello.conf").write_text("greeting = hello\n")
    long_dir = root / "usr" / "share" / "doc" / "hello" / ("d" * 60)
    long_dir.mkdir()
    (long_dir / ("f" * 80 + ".txt")).write_bytes(b"long name\n" * 100)
    os.symlink("hello", root / "usr" / "bin" / "hi")
    # hardlink: 'etc/hello.conf' comes first in archive order, 'usr/share/...' links to it
    os.link(root / "etc" / "hello.conf", root / "usr" / "share" / "doc" / "hello" / "hello.conf")
    (root / "empty").mkdir()
    return root


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "tree")


@pytest.fixture
def tree_factory():  # type: ignore[no-untyped-def]
    """`tree_factory(path)` builds the standard test tree at `path`."""
    return make_tree
