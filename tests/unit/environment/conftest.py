"""Fixtures for the environment tests: a signing key and a builder of signed local repositories of our own APKs."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import pytest

from melange_bk.apk import PkgInfo, WriteOptions, load_signing_key, write_apk, write_keypair
from melange_bk.apk.index import Index, entry_from_apk, write_index
from melange_bk.apk.sign import SigningKey

ARCH = "x86_64"


@dataclass(frozen=True)
class Key:
    private: str
    public: str

    def signing_key(self) -> SigningKey:
        return load_signing_key(self.private)


@pytest.fixture(scope="session")
def key(tmp_path_factory: pytest.TempPathFactory) -> Key:
    base = tmp_path_factory.mktemp("key")
    private, public = write_keypair(str(base / "test.rsa"), bits=2048)
    return Key(private, public)


@pytest.fixture(scope="session")
def other_key(tmp_path_factory: pytest.TempPathFactory) -> Key:
    """A different key with the same file name as `key`."""
    base = tmp_path_factory.mktemp("otherkey")
    private, public = write_keypair(str(base / "test.rsa"), bits=2048)
    return Key(private, public)


@dataclass
class Pkg:
    name: str
    version: str = "1.0-r0"
    depends: Sequence[str] = ()
    provides: Sequence[str] = ()
    provider_priority: Optional[int] = None
    replaces: Sequence[str] = ()
    files: Dict[str, bytes] = field(default_factory=dict)  # path -> content
    symlinks: Dict[str, str] = field(default_factory=dict)
    scriptlets: Sequence[Tuple[str, bytes]] = ()


def build_package(pkg: Pkg, out_dir: Path, signing_key: Optional[SigningKey], tmp: Path) -> Path:
    tree = tmp / f"tree-{pkg.name}-{pkg.version}"
    tree.mkdir(parents=True)
    for rel, data in pkg.files.items():
        p = tree / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        os.chmod(p, 0o755 if rel.startswith(("bin/", "usr/bin/")) else 0o644)
    for rel, target in pkg.symlinks.items():
        p = tree / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, p)
    version, _, epoch = pkg.version.rpartition("-r")
    info = PkgInfo(
        name=pkg.name,
        version=version,
        epoch=int(epoch),
        arch=ARCH,
        description=f"test package {pkg.name}",
        depends=tuple(pkg.depends),
        provides=tuple(pkg.provides),
        provider_priority=pkg.provider_priority,
        replaces=tuple(pkg.replaces),
    )
    out = out_dir / f"{pkg.name}-{pkg.version}.apk"
    write_apk(
        str(tree),
        str(out),
        info,
        signing_key=signing_key,
        scriptlets=tuple(pkg.scriptlets),
        options=WriteOptions(sbom=None),
    )
    return out


def build_repo(
    root: Path, packages: Sequence[Pkg], key: Optional[Key], index_key: Optional[Key] = None
) -> Path:
    """`root/<arch>/*.apk` + a signed APKINDEX.tar.gz; returns `root`."""
    arch_dir = root / ARCH
    arch_dir.mkdir(parents=True, exist_ok=True)
    sk = key.signing_key() if key else None
    paths: List[Path] = [build_package(p, arch_dir, sk, root.parent / f".work-{root.name}") for p in packages]
    entries = tuple(entry_from_apk(str(p)) for p in paths)
    isk = (index_key or key).signing_key() if (index_key or key) else None
    write_index(str(arch_dir / "APKINDEX.tar.gz"), Index("test repo", entries), isk)
    return root


RepoFactory = Callable[..., Path]


@pytest.fixture
def make_repo(tmp_path: Path, key: Key) -> RepoFactory:
    counter = [0]

    def make(
        packages: Sequence[Pkg], signer: Optional[Key] = key, index_signer: Optional[Key] = None
    ) -> Path:
        counter[0] += 1
        return build_repo(tmp_path / f"repo{counter[0]}", packages, signer, index_signer)

    return make


@pytest.fixture
def cache(tmp_path: Path) -> str:
    return str(tmp_path / "cache")
