"""Architectures: melange's `build.arch`, `build.goarch` and the GNU/Rust triplets."""

from __future__ import annotations

import platform
from typing import Dict

from melange_bk.errors import ConfigError

# apk arch -> (go arch, gnu triplet format, rust triplet format)
_ARCHES = {
    "x86_64": ("amd64", "x86_64-pc-linux-{}", "x86_64-unknown-linux-{}"),
    "aarch64": ("arm64", "aarch64-unknown-linux-{}", "aarch64-unknown-linux-{}"),
    "x86": ("386", "i486-pc-linux-{}", "i686-unknown-linux-{}"),
    "armv7": ("arm/v7", "armv7-unknown-linux-{}eabihf", "armv7-unknown-linux-{}eabihf"),
    "armhf": ("arm/v6", "arm-unknown-linux-{}eabihf", "arm-unknown-linux-{}eabihf"),
    "ppc64le": ("ppc64le", "powerpc64le-unknown-linux-{}", "powerpc64le-unknown-linux-{}"),
    "s390x": ("s390x", "s390x-ibm-linux-{}", "s390x-unknown-linux-{}"),
    "riscv64": ("riscv64", "riscv64-unknown-linux-{}", "riscv64gc-unknown-linux-{}"),
}
_ALIASES = {"amd64": "x86_64", "arm64": "aarch64", "386": "x86", "i686": "x86"}


def normalize(arch: str) -> str:
    """The apk name of an architecture given in apk or Go spelling."""
    apk = _ALIASES.get(arch, arch)
    if apk not in _ARCHES:
        raise ConfigError(f"unknown architecture {arch!r} (known: {', '.join(sorted(_ARCHES))})")
    return apk


def host_arch() -> str:
    """The apk name of this machine's architecture (`platform.machine()` in apk or Go spelling; an unknown one
    as it is)."""
    machine = platform.machine().lower()
    return _ALIASES.get(machine, machine)


def substitutions(arch: str, flavor: str = "gnu") -> Dict[str, str]:
    apk = normalize(arch)
    goarch, gnu, rust = _ARCHES[apk]
    return {
        "build.arch": apk,
        "build.goarch": goarch,
        "host.triplet.gnu": gnu.format(flavor),
        "host.triplet.rust": rust.format(flavor),
        "cross.triplet.gnu.glibc": gnu.format("gnu"),
        "cross.triplet.gnu.musl": gnu.format("musl"),
        "cross.triplet.rust.glibc": rust.format("gnu"),
        "cross.triplet.rust.musl": rust.format("musl"),
    }
