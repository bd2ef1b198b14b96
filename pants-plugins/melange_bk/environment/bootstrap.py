"""A local, signed APK repository of bootstrap packages made from this machine's tools, for offline builds.

- `busybox`: Debian's static busybox at /bin/busybox plus one symlink per applet; provides `cmd:<applet>` for
  every applet (so `cmd:sh`, `cmd:wget`, …). With base `none` it is a complete small environment.
- Meta packages without files, one per Wolfi name of `debian-build.yaml` (the reviewable mapping from Wolfi
  names to the Debian packages `bin/rootfs debian-build` installs, with their `so:`/`cmd:`/`pc:` provides), so
  that a melange YAML written for Wolfi resolves when its environment starts from the Debian build rootfs
  (`tar:$(bin/rootfs debian-build --tarball)`). They provide nothing by themselves: on another base the tools are
  simply missing.

Layout: `<dest>/<arch>/*.apk`, `<dest>/<arch>/APKINDEX.tar.gz` (signed), `<dest>/<key>.rsa.pub` (the keyring
entry); the private key stays in `<dest>/.signing/` unless another is given. The packages and index are
reproducible (SOURCE_DATE_EPOCH 0): rebuilding gives the same bytes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from typing import List, Optional, Tuple

from melange_bk.apk import PkgInfo, WriteOptions, load_signing_key, write_apk, write_keypair
from melange_bk.apk.index import Index, entry_from_apk, write_index
from melange_bk.environment.debmap import Entry, load
from melange_bk.environment.repository import INDEX_NAME
from melange_bk.errors import MelangeError

KEY_NAME = "melange-bk-bootstrap.rsa"
BUSYBOX = "/bin/busybox"
# The dynamic loader glibc's meta package provides besides the mapping's so: names (it differs per architecture).
_LOADER = {"x86_64": "ld-linux-x86-64.so.2", "aarch64": "ld-linux-aarch64.so.1"}


def _meta_provides(entry: Entry, arch: str) -> Tuple[str, ...]:
    provides = set(entry.provides)
    if entry.name == "glibc" and arch in _LOADER:
        provides.add(f"so:{_LOADER[arch]}=2")
    return tuple(sorted(provides))


@dataclass(frozen=True)
class BootstrapRepo:
    path: str  # the repository (for environment.contents.repositories)
    keyring: Tuple[str, ...]  # public key paths (for environment.contents.keyring)
    packages: Tuple[str, ...]  # "<name>-<version>"


def busybox_version(busybox: str = BUSYBOX) -> str:
    try:
        banner = subprocess.run([busybox], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise MelangeError(f"cannot run {busybox}: {e}") from None
    m = re.search(r"BusyBox v([0-9][0-9.]*)", banner)
    if not m:
        raise MelangeError(f"{busybox} does not print a BusyBox version")
    return m.group(1).rstrip(".")


def _applets(busybox: str) -> List[str]:
    try:
        out = subprocess.run(
            [busybox, "--list-full"], check=True, capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise MelangeError(f"{busybox} --list-full failed: {e}") from None
    return sorted({a for a in out.split() if a and not a.startswith("/") and ".." not in a.split("/")})


def busybox_tree(dest: str, busybox: str = BUSYBOX) -> Tuple[str, ...]:
    """bin/busybox and its applet links under `dest`; returns the `cmd:` provides."""
    if not os.path.isfile(busybox):
        raise MelangeError(
            f"{busybox} not found: install Debian's busybox-static (apt-get install busybox-static)"
        )
    os.makedirs(os.path.join(dest, "bin"), exist_ok=True)
    shutil.copyfile(busybox, os.path.join(dest, "bin/busybox"))
    os.chmod(os.path.join(dest, "bin/busybox"), 0o755)
    cmds = {"busybox"}
    for applet in _applets(busybox):
        if applet == "bin/busybox":
            continue
        link = os.path.join(dest, applet)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(os.path.relpath(os.path.join(dest, "bin/busybox"), os.path.dirname(link)), link)
        cmds.add(os.path.basename(applet))
    return tuple(f"cmd:{c}" for c in sorted(cmds))


def _signing_key_path(dest: str, signing_key: Optional[str]) -> str:
    if signing_key:
        return signing_key
    path = os.path.join(dest, ".signing", KEY_NAME)
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        write_keypair(path, bits=2048)
    return path


def build_bootstrap_repo(
    dest: str,
    *,
    arch: str,
    signing_key: Optional[str] = None,
    busybox: str = BUSYBOX,
    debian_metas: bool = True,
) -> BootstrapRepo:
    """Writes (or rewrites) the bootstrap repository at `dest`."""
    os.makedirs(dest, exist_ok=True)
    key_path = _signing_key_path(dest, signing_key)
    key = load_signing_key(key_path)
    public = os.path.join(dest, key.key_name)
    with open(public, "wb") as f:
        f.write(key.public_pem())
    arch_dir = os.path.join(dest, arch)
    os.makedirs(arch_dir, exist_ok=True)
    options = WriteOptions(source_date_epoch=0, sbom=None)
    written = []
    with tempfile.TemporaryDirectory(prefix="bootstrap-") as work:
        tree = os.path.join(work, "busybox")
        provides = busybox_tree(tree, busybox)
        version = busybox_version(busybox)
        info = PkgInfo(
            name="busybox",
            version=version,
            epoch=0,
            arch=arch,
            description="Debian's static busybox and its applet links (melange-bk bootstrap)",
            url="https://busybox.net",
            licenses=("GPL-2.0-only",),
            provides=provides,
        )
        written.append(write_apk(tree, os.path.join(arch_dir, f"busybox-{info.pkgver}.apk"), info,
                                 signing_key=key, options=options))  # fmt: skip
        if debian_metas:
            empty = os.path.join(work, "empty")
            os.makedirs(empty)
            mapping = load()
            for entry in mapping.entries:
                if entry.name == "busybox":  # the real one above
                    continue
                meta = PkgInfo(
                    name=entry.name,
                    version=entry.version,
                    epoch=0,
                    arch=arch,
                    description=f"Debian {mapping.suite} {' '.join(entry.debian)} on the build rootfs (bin/rootfs "
                    "debian-build); no files",
                    provides=_meta_provides(entry, arch),
                )
                written.append(
                    write_apk(empty, os.path.join(arch_dir, f"{meta.identity}.apk"), meta,
                              signing_key=key, options=options)  # fmt: skip
                )
    names = {os.path.basename(w.path) for w in written}
    for stale in os.listdir(arch_dir):
        if stale.endswith(".apk") and stale not in names:
            os.unlink(os.path.join(arch_dir, stale))
    entries = tuple(entry_from_apk(w.path) for w in written)
    write_index(os.path.join(arch_dir, INDEX_NAME), Index("melange-bk bootstrap", entries), key)
    return BootstrapRepo(
        path=dest,
        keyring=(public,),
        packages=tuple(sorted(w.info.identity for w in written)),
    )
