"""Every example package under packages/ built with `melange-bk build` on the Debian build rootfs: APK contents
(files, modes, symlinks), .PKGINFO (SCA dependencies), signatures, and subpackages that took their files along.

Setup (rootfs, bootstrap repository, key) in tests/integration/examples.py.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path
from typing import Dict, List, Set

import pytest

from melange_bk.apk import load_keyring, read_apk, verify_apk
from tests.integration.examples import ARCH, SDE, Env, build_example, make_examples_env


@pytest.fixture(scope="module")
def examples_env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    return make_examples_env(tmp_path_factory)


@pytest.fixture(scope="module")
def built(examples_env: Env, buildkit_addr: str, tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    """Every example built once: package name → its OUT-DIR/ARCH. greet builds against libgreet's output."""
    base = tmp_path_factory.mktemp("examples-out")
    out: Dict[str, Path] = {}
    for name in ("hello", "libgreet", "templated", "ranged"):
        assert build_example(examples_env, name, base / name, buildkit_addr, "--generate-index") == 0, name
        out[name] = base / name / ARCH
    assert (
        build_example(
            examples_env,
            "greet",
            base / "greet",
            buildkit_addr,
            "--repository-append",
            str(base / "libgreet"),
            "--keyring-append",
            str(examples_env.ring / "examples.rsa.pub"),
        )
        == 0
    )
    out["greet"] = base / "greet" / ARCH
    return out


def members(apk: Path) -> Dict[str, tarfile.TarInfo]:
    # The whole .apk reads as one gzip'd tar (signature, control and data segments concatenated).
    with tarfile.open(apk, "r:gz") as tf:
        return {m.name: m for m in tf.getmembers()}


def payload(apk: Path) -> Set[str]:
    """The package's files and links (no directories, no control files, no SBOM)."""
    return {
        n
        for n, m in members(apk).items()
        if not m.isdir() and not n.startswith(".") and not n.startswith("var/lib/db/sbom/")
    }


def read_member(apk: Path, name: str) -> bytes:
    with tarfile.open(apk, "r:gz") as tf:
        f = tf.extractfile(name)
        assert f is not None
        return f.read()


def apks(arch_dir: Path) -> List[str]:
    return sorted(p for p in os.listdir(arch_dir) if p.endswith(".apk"))


def mode(m: tarfile.TarInfo) -> int:
    return m.mode & 0o7777


def check_signed_and_split(arch_dir: Path, ring: Path, main_apk: str) -> None:
    """Every APK verifies with our verifier; the main package holds none of its subpackages' files."""
    keyring = load_keyring(str(ring))
    for name in apks(arch_dir):
        verify_apk(str(arch_dir / name), keyring)
    main_files = payload(arch_dir / main_apk)
    for name in apks(arch_dir):
        if name == main_apk:
            continue
        sub_files = payload(arch_dir / name)
        assert sub_files, f"{name} is empty"
        assert not (
            main_files & sub_files
        ), f"{main_apk} kept files of {name}: {sorted(main_files & sub_files)}"
        assert read_apk(str(arch_dir / name)).info.origin == read_apk(str(arch_dir / main_apk)).info.origin


def test_hello(built: Dict[str, Path], examples_env: Env) -> None:
    d = built["hello"]
    assert apks(d) == ["hello-1.0.0-r0.apk"]
    assert (d / "APKINDEX.tar.gz").is_file()
    check_signed_and_split(d, examples_env.ring, "hello-1.0.0-r0.apk")
    m = members(d / "hello-1.0.0-r0.apk")
    assert payload(d / "hello-1.0.0-r0.apk") == {"usr/bin/hello", "usr/share/doc/hello/README"}
    assert mode(m["usr/bin/hello"]) == 0o755 and m["usr/bin/hello"].isfile()
    assert mode(m["usr/share/doc/hello/README"]) == 0o644
    assert m["usr/bin/hello"].uid == 0 and m["usr/bin/hello"].mtime == int(SDE)
    assert read_member(d / "hello-1.0.0-r0.apk", "usr/bin/hello")[:4] == b"\x7fELF"
    info = read_apk(str(d / "hello-1.0.0-r0.apk")).info
    assert (info.name, info.version, info.epoch, info.arch) == ("hello", "1.0.0", 0, ARCH)
    assert "so:libc.so.6" in info.depends
    assert "cmd:hello=1.0.0-r0" in info.provides


def test_libgreet_and_its_dev_subpackage(built: Dict[str, Path], examples_env: Env) -> None:
    d = built["libgreet"]
    assert apks(d) == ["libgreet-1.0.0-r0.apk", "libgreet-dev-1.0.0-r0.apk"]
    check_signed_and_split(d, examples_env.ring, "libgreet-1.0.0-r0.apk")
    lib = members(d / "libgreet-1.0.0-r0.apk")
    assert payload(d / "libgreet-1.0.0-r0.apk") == {"usr/lib/libgreet.so.1", "usr/lib/libgreet.so.1.0.0"}
    assert (
        lib["usr/lib/libgreet.so.1"].issym() and lib["usr/lib/libgreet.so.1"].linkname == "libgreet.so.1.0.0"
    )
    assert mode(lib["usr/lib/libgreet.so.1.0.0"]) == 0o755
    dev = members(d / "libgreet-dev-1.0.0-r0.apk")
    assert payload(d / "libgreet-dev-1.0.0-r0.apk") == {"usr/include/greet.h", "usr/lib/libgreet.so"}
    assert dev["usr/lib/libgreet.so"].issym() and dev["usr/lib/libgreet.so"].linkname == "libgreet.so.1"
    assert mode(dev["usr/include/greet.h"]) == 0o644
    info = read_apk(str(d / "libgreet-1.0.0-r0.apk")).info
    assert "so:libgreet.so.1=1" in info.provides
    dev_info = read_apk(str(d / "libgreet-dev-1.0.0-r0.apk")).info
    assert "so:libgreet.so.1" in dev_info.depends  # SCA: the .so link points into the main package


def test_greet_links_libgreet(built: Dict[str, Path], examples_env: Env) -> None:
    d = built["greet"]
    assert apks(d) == ["greet-1.0.0-r0.apk"]
    check_signed_and_split(d, examples_env.ring, "greet-1.0.0-r0.apk")
    m = members(d / "greet-1.0.0-r0.apk")
    assert payload(d / "greet-1.0.0-r0.apk") == {"usr/bin/greet"}
    assert mode(m["usr/bin/greet"]) == 0o755
    info = read_apk(str(d / "greet-1.0.0-r0.apk")).info
    assert "so:libgreet.so.1" in info.depends  # found by SCA in the ELF's DT_NEEDED
    assert "so:libc.so.6" in info.depends
    assert "cmd:greet=1.0.0-r0" in info.provides


def test_templated_substitutions(built: Dict[str, Path], examples_env: Env) -> None:
    d = built["templated"]
    main_apk, doc_apk = "templated-2.4.1-r3.apk", "templated-doc-2.4.1-r3.apk"
    assert apks(d) == [main_apk, doc_apk]
    check_signed_and_split(d, examples_env.ring, main_apk)
    m = members(d / main_apk)
    assert payload(d / main_apk) == {"etc/templated/version", "usr/bin/templated", "usr/bin/templated-2.4"}
    assert mode(m["usr/bin/templated"]) == 0o755
    assert mode(m["etc/templated/version"]) == 0o640
    link = m["usr/bin/templated-2.4"]  # named with the var-transform's ${{vars.series}}
    assert link.issym() and link.linkname == "templated"
    script = read_member(d / main_apk, "usr/bin/templated").decode()
    assert 'echo "Hello from templated 2.4.1-r3 (series 2.4, x86_64)"' in script
    assert read_member(d / main_apk, "etc/templated/version") == b"templated 2_4_1\n"
    assert payload(d / doc_apk) == {"usr/share/doc/templated/README"}
    info = read_apk(str(d / doc_apk)).info
    assert (info.name, info.version, info.epoch) == ("templated-doc", "2.4.1", 3)
    assert info.description == "templated documentation"


def test_ranged_subpackages(built: Dict[str, Path], examples_env: Env) -> None:
    d = built["ranged"]
    flavours = {"chili": b"hot\n", "lemon": b"sour\n", "vanilla": b"sweet\n"}
    assert apks(d) == ["ranged-0.3.0-r0.apk"] + [f"ranged-{f}-0.3.0-r0.apk" for f in sorted(flavours)]
    check_signed_and_split(d, examples_env.ring, "ranged-0.3.0-r0.apk")
    assert payload(d / "ranged-0.3.0-r0.apk") == {"usr/bin/ranged"}
    for flavour, taste in flavours.items():
        apk = d / f"ranged-{flavour}-0.3.0-r0.apk"
        path = f"usr/share/ranged/{flavour}.txt"
        assert payload(apk) == {path}
        assert mode(members(apk)[path]) == 0o644
        assert read_member(apk, path) == taste
        info = read_apk(str(apk)).info
        assert info.depends == ("ranged",)
        assert info.description == f"the {flavour} flavour ({taste.decode().strip()})"
