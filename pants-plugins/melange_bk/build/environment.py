"""The build environment as LLB: a base (nothing, a local rootfs directory or tarball, or an image by digest)
with the plan's APKs installed on top by the environment layer."""

from __future__ import annotations

import hashlib
import os
import tarfile
from dataclasses import dataclass
from typing import Dict, Tuple

from melange_bk import llb
from melange_bk.errors import ConfigError, MelangeError

ROOTFS = "rootfs"


@dataclass(frozen=True)
class EnvironmentOptions:
    """`base`: "" or "none" (packages only, as with Wolfi), a directory, a .tar file, or `image:REF@sha256:…`."""

    base: str = ""
    repositories_append: Tuple[str, ...] = ()
    keyring_append: Tuple[str, ...] = ()
    packages_append: Tuple[str, ...] = ()
    cache_dir: str = ""


def user_cache_dir() -> str:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "melange-bk")


def _tar_rootfs(path: str, cache_dir: str) -> str:
    """A tarball base is unpacked once into the cache (keyed by its sha256) and sent like a directory."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    dest = os.path.join(cache_dir or user_cache_dir(), "rootfs", h.hexdigest()[:32])
    if os.path.isfile(os.path.join(dest, ".complete")):
        return os.path.join(dest, "root")
    tmp = dest + ".tmp"
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        with tarfile.open(path) as tf:
            for member in tf.getmembers():
                name = member.name.lstrip("./")
                if member.name.startswith("/") or ".." in member.name.split("/"):
                    raise MelangeError(f"{path}: unsafe member {member.name!r} in the rootfs tarball")
                if (member.islnk()) and (
                    member.linkname.startswith("/") or ".." in member.linkname.split("/")
                ):
                    raise MelangeError(f"{path}: unsafe hardlink {name!r} in the rootfs tarball")
            tf.extractall(os.path.join(tmp, "root"), numeric_owner=True)
    except (OSError, tarfile.TarError) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise MelangeError(f"{path}: cannot unpack the rootfs tarball: {e}") from None
    open(os.path.join(tmp, ".complete"), "w").close()
    if os.path.exists(dest):
        shutil.rmtree(dest)
    os.rename(tmp, dest)
    return os.path.join(dest, "root")


def base_state(opts: EnvironmentOptions) -> Tuple[llb.State, Dict[str, str]]:
    """(state, local dirs to offer) for the base alone."""
    base = opts.base.strip()
    if base in ("", "none"):
        return llb.scratch(), {}
    if base.startswith("image:"):
        return llb.image(base[len("image:") :], custom_name="base image"), {}
    path = (
        base[len("dir:") :]
        if base.startswith("dir:")
        else base[len("tar:") :] if base.startswith("tar:") else base
    )
    if not os.path.exists(path):
        raise ConfigError(
            f"environment base {path!r} does not exist (a rootfs directory, a .tar, or image:REF@sha256:…)"
        )
    if os.path.isfile(path):
        path = _tar_rootfs(path, opts.cache_dir)
    state = llb.file(
        llb.scratch(),
        llb.copy(llb.local(ROOTFS, custom_name="base rootfs"), "/", "/", copy_dir_contents=True),
        custom_name="base rootfs",
    )
    return state, {ROOTFS: os.path.abspath(path)}
