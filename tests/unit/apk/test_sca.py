"""SCA on real ELF files copied from this machine (Debian x86_64 binaries and libraries)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path
from typing import List

import pytest

from melange_bk.apk.sca import (
    ScaOptions,
    ScaResult,
    analyze,
    merge_dependencies,
    parse_pc_requires,
    read_elf,
    soname_libver,
)

VER = "1.2-r3"


def _one(pattern: str) -> str:
    found = sorted(p for p in glob.glob(pattern) if not os.path.islink(p))
    assert found, f"this test needs {pattern} on the machine"
    return found[0]


LIBZ = _one("/usr/lib/x86_64-linux-gnu/libz.so.1.*")
LS = "/usr/bin/ls"


def _readelf_needed(path: str) -> List[str]:
    """DT_NEEDED as binutils sees it (an independent reading), when readelf is installed."""
    readelf = shutil.which("readelf")
    if not readelf:
        return []
    out = subprocess.run([readelf, "-d", path], capture_output=True, text=True, check=True).stdout
    return [line.split("[", 1)[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "pkg"
    (r / "usr/lib").mkdir(parents=True)
    (r / "usr/bin").mkdir(parents=True)
    shutil.copy(LIBZ, r / "usr/lib")
    os.symlink(os.path.basename(LIBZ), r / "usr/lib/libz.so.1")
    shutil.copy(LS, r / "usr/bin/ls")
    os.chmod(r / "usr/bin/ls", 0o755)
    (r / "usr/bin/script").write_text("#!/bin/sh\n")
    os.chmod(r / "usr/bin/script", 0o755)
    (r / "usr/bin/not-exec").write_text("data\n")
    os.chmod(r / "usr/bin/not-exec", 0o644)
    (r / "usr/share/misc").mkdir(parents=True)
    (r / "usr/share/misc/cmd").write_text("#!/bin/sh\n")
    os.chmod(r / "usr/share/misc/cmd", 0o755)
    return r


def test_read_elf_on_real_files() -> None:
    ls = read_elf(LS)
    assert ls is not None
    assert ls.interpreter.endswith("ld-linux-x86-64.so.2")
    assert "libc.so.6" in ls.needed
    if _readelf_needed(LS):
        assert list(ls.needed) == _readelf_needed(LS)
    z = read_elf(LIBZ)
    assert z is not None and z.sonames == ("libz.so.1",) and z.interpreter == ""
    assert read_elf(__file__) is None


def test_analyze_tree(root: Path) -> None:
    result = analyze(str(root), VER)
    assert "so:libz.so.1=1" in result.provides
    assert f"so-ver:libz.so.1={VER}" in result.provides
    assert f"cmd:ls={VER}" in result.provides and f"cmd:script={VER}" in result.provides
    assert not any(p.startswith("cmd:not-exec") or p.startswith("cmd:cmd") for p in result.provides)
    assert "so:libc.so.6" in result.depends
    assert "so:ld-linux-x86-64.so.2" in result.depends
    for lib in _readelf_needed(LS):
        assert f"so:{lib}" in result.depends
    assert list(result.provides) == sorted(set(result.provides))
    # the libz.so.1 symlink is not a "*.so" dev link target... but it is named like one: depends on itself,
    # which merge_dependencies removes as self-provided
    runtime, provides = merge_dependencies(["busybox"], ["extra=1"], result)
    assert "so:libz.so.1" not in runtime and "busybox" in runtime and "extra=1" in provides
    assert runtime == tuple(sorted(runtime))


def test_self_provided_library_is_not_a_dependency(root: Path) -> None:
    users = [p for p in ("/usr/bin/png-fix-itxt", "/usr/bin/pngfix", "/usr/bin/unzstd") if os.path.exists(p)]
    user = next((p for p in users if read_elf(p) and "libz.so.1" in read_elf(p).needed), None)  # type: ignore[union-attr]
    if user is None:
        pytest.skip("no binary linking libz.so.1 on this machine")
    shutil.copy(user, root / "usr/bin/zuser")
    result = analyze(str(root), VER)
    assert "so:libz.so.1" in result.depends  # generated...
    runtime, _ = merge_dependencies([], [], result)
    assert "so:libz.so.1" not in runtime  # ...but satisfied by the package itself
    assert "so:libc.so.6" in runtime


def test_library_outside_lib_dirs_is_vendored(tmp_path: Path) -> None:
    r = tmp_path / "pkg"
    (r / "opt/app/lib").mkdir(parents=True)
    shutil.copy(LIBZ, r / "opt/app/lib/libz.so.1")
    result = analyze(str(r), VER)
    assert "so:libz.so.1=1" in result.vendored and not any(p.startswith("so:") for p in result.provides)
    # unless ld.so.conf.d adds the directory
    (r / "etc/ld.so.conf.d").mkdir(parents=True)
    (r / "etc/ld.so.conf.d/app.conf").write_text("# app\n/opt/app/lib\n")
    assert "so:libz.so.1=1" in analyze(str(r), VER).provides


def test_dev_symlink_into_related_package(tmp_path: Path) -> None:
    lib = tmp_path / "zlib"
    (lib / "usr/lib").mkdir(parents=True)
    shutil.copy(LIBZ, lib / "usr/lib/libz.so.1.2.3")
    dev = tmp_path / "zlib-dev"
    (dev / "usr/lib").mkdir(parents=True)
    os.symlink("libz.so.1.2.3", dev / "usr/lib/libz.so")
    assert analyze(str(dev), VER).depends == ()
    assert analyze(str(dev), VER, related_roots=(str(lib),)).depends == ("so:libz.so.1",)


def test_options(root: Path) -> None:
    no_cmd = analyze(str(root), VER, ScaOptions(no_commands=True))
    assert not any(p.startswith("cmd:") for p in no_cmd.provides) and no_cmd.depends
    assert analyze(str(root), VER, ScaOptions(no_depends=True)).depends == ()
    no_prov = analyze(str(root), VER, ScaOptions(no_provides=True))
    assert no_prov.provides == () and no_prov.depends


def test_pkgconfig(tmp_path: Path) -> None:
    r = tmp_path / "pkg"
    (r / "usr/lib/pkgconfig").mkdir(parents=True)
    (r / "usr/lib/pkgconfig/foo.pc").write_text(
        "prefix=/usr\nzdep=zlib\nName: foo\nVersion: 1\n"
        "Requires: glib-2.0 >= 2.50, ${zdep}\nRequires.private: libpng>=1.6 libffi\n"
    )
    (r / "opt").mkdir()
    (r / "opt/bar.pc").write_text("Name: bar\n")
    result = analyze(str(r), VER)
    assert result.provides == (f"pc:foo={VER}",)
    assert result.depends == ("pc:glib-2.0", "pc:libffi", "pc:libpng", "pc:zlib")
    assert result.vendored == (f"pc:bar={VER}",)


def test_pkgconfig_parser_on_machine_file() -> None:
    pcs = sorted(glob.glob("/usr/lib/x86_64-linux-gnu/pkgconfig/freetype2.pc"))
    if not pcs:
        pytest.skip("freetype2.pc not installed")
    text = Path(pcs[0]).read_text()
    expected = []
    for line in text.splitlines():
        if line.startswith(("Requires:", "Requires.private:")):
            expected += [t.strip().split()[0] for t in line.split(":", 1)[1].split(",") if t.strip()]
    assert list(parse_pc_requires(text)) == expected


def test_soname_libver() -> None:
    assert soname_libver("libz.so.1") == "1"
    assert soname_libver("libfoo.so.1.2.3") == "1.2.3"
    assert soname_libver("libfoo.so") == "0"
    assert soname_libver("libfoo.so.1a") == "0"


def test_empty_tree(tmp_path: Path) -> None:
    assert analyze(str(tmp_path), VER) == ScaResult()
