"""The Debian build rootfs as data: debian-build.yaml parses, bin/rootfs installs what it names, and the bootstrap
repository has one meta package per Wolfi name with the mapping's provides."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from melange_bk.environment import debmap
from melange_bk.environment.bootstrap import build_bootstrap_repo
from melange_bk.environment.repository import load_index
from melange_bk.environment.resolver import resolve

ROOT = Path(__file__).resolve().parents[3]

# What C/C++, autotools, cmake, meson, python and perl builds of Wolfi ask for most (the list).
MUST_RESOLVE = """wolfi-base wolfi-baselayout build-base zlib-dev pkgconf-dev samurai linux-headers openssl-dev perl-dev
bison libxml2-dev ncurses-dev gettext-dev py3-supported-pip py3-supported-build-base cmake meson autoconf automake
libtool so:libc.so.6 so:libz.so.1 cmd:ninja pc:zlib python-3.11 perl>=5.30""".split()


def test_mapping_parses_and_names_real_packages() -> None:
    mapping = debmap.load()
    assert mapping.suite == "bookworm"
    names = [e.name for e in mapping.entries]
    assert names == sorted(set(names))
    assert {"build-essential", "zlib1g-dev", "ninja-build", "libssl-dev"} <= set(mapping.debian_packages())


def test_bin_rootfs_reads_the_same_list() -> None:
    """bin/rootfs runs debmap.py as a script with the machine's python3: same answer as the import."""
    out = subprocess.run(
        [sys.executable, os.path.join(os.path.dirname(debmap.__file__), "debmap.py"), "--debian-packages"],
        check=True,
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", "")},
    ).stdout.split()
    assert tuple(out) == debmap.load().debian_packages()
    assert "debmap.py" in (ROOT / "bin" / "rootfs").read_text()


@pytest.mark.parametrize(
    "text,message",
    [
        ("suite: bookworm\ncore: []\npackages:\n  x: [Bad_Name]\n", "packages.x.debian"),
        (
            "suite: bookworm\ncore: []\npackages:\n  x: {debian: [a1], provides: [so:libx.so.1=one]}\n",
            "packages.x.provides",
        ),
        ("suite: bookworm\ncore: []\npackages:\n  x: {debian: [a1], extra: 1}\n", "unknown keys"),
        ("suite: bookworm\ncore: [y]\npackages:\n  x: [a1]\n", "core names packages the mapping lacks: y"),
        ("packages: {}\n", "expected the keys suite, core"),
    ],
)
def test_bad_mapping_is_refused(text: str, message: str) -> None:
    with pytest.raises(debmap.MappingError, match=message):
        debmap.parse(text, "m.yaml")


def test_profiles_core_is_a_part_of_full() -> None:
    full, core = debmap.load(profile="full"), debmap.load(profile="core")
    assert {e.name for e in core.entries} == set(core.core) < {e.name for e in full.entries}
    assert set(core.debian_packages()) < set(full.debian_packages())
    with pytest.raises(
        debmap.MappingError, match="MELANGE_BK_DEBIAN_PROFILE='big': expected one of core, full"
    ):
        debmap.load(profile="big")


def test_bootstrap_repo_metas_resolve_what_builds_ask_for(tmp_path: Path) -> None:
    repo = build_bootstrap_repo(str(tmp_path / "repo"), arch="x86_64")
    index = load_index(repo.path, "x86_64", None, allow_untrusted=True)
    by_name = {p.name: p for p in index.packages}
    assert set(by_name) == {e.name for e in debmap.load().entries} | {"busybox"}
    assert "so:ld-linux-x86-64.so.2=2" in by_name["glibc"].entry.provides
    assert "pc:zlib=1.2.13" in by_name["zlib-dev"].entry.provides
    assert by_name["python3"].version == "3.11.2-r0"
    for need in MUST_RESOLVE:
        assert resolve([need], [index]).names, need
