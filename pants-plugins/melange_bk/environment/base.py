"""What a build environment starts from, before its packages are installed on top.

    none                       nothing: the packages are the whole environment (as with Wolfi)
    dir:/path/to/rootfs        a local root filesystem directory (e.g. from `bin/rootfs busybox DIR`)
    tar:/path/to/rootfs.tar    a local rootfs tarball (e.g. `bin/rootfs debian-build --tarball`); unpacked once into
                               the user cache, keyed by the tarball's SHA-256
    image:REF@sha256:<digest>  an OCI image from a registry, pinned by digest (an LLB image source)

A bare path is read as `dir:` (or `tar:` when it names a file).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tarfile
from dataclasses import dataclass
from typing import Optional, Tuple

from melange_bk import llb
from melange_bk.environment.repository import cache_dir
from melange_bk.errors import MelangeError
from melange_bk.filehash import sha256_file_remembered, walk_sorted

KINDS = ("none", "dir", "tar", "image")
SYNTAX = "none, dir:PATH, tar:PATH or image:REF@sha256:DIGEST"


class BaseError(MelangeError):
    """An unusable base choice."""


@dataclass(frozen=True)
class Base:
    kind: str  # one of KINDS
    location: str = ""  # path (dir, tar) or image reference

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise BaseError(f"unknown base kind {self.kind!r}: use {SYNTAX}")
        if self.kind == "none" and self.location:
            raise BaseError("base `none` takes no location")
        if self.kind != "none" and not self.location:
            raise BaseError(f"base `{self.kind}:` needs a location: use {SYNTAX}")

    def __str__(self) -> str:
        return self.kind if self.kind == "none" else f"{self.kind}:{self.location}"

    @property
    def is_local(self) -> bool:
        return self.kind in ("dir", "tar")


NONE = Base("none")


def parse_base(text: str) -> Base:
    """`none`, `dir:PATH`, `tar:PATH`, `image:REF@sha256:…`, or a bare path."""
    text = text.strip()
    if not text:
        raise BaseError(f"empty base: use {SYNTAX}")
    if text == "none":
        return NONE
    kind, sep, rest = text.partition(":")
    if sep and kind in ("dir", "tar"):
        return Base(kind, rest)
    if sep and kind == "image":
        try:
            llb.normalize_image_ref(rest)
        except llb.LLBError as e:
            raise BaseError(f"base {text!r}: {e.message}") from None
        return Base("image", rest)
    if sep and kind == "none":
        raise BaseError("base `none` takes no location")
    if os.path.isdir(text):
        return Base("dir", text)
    if os.path.isfile(text):
        return Base("tar", text)
    raise BaseError(f"base {text!r} is neither an existing path nor one of {SYNTAX}")


def _sha256_file(path: str, cache: Optional[str]) -> str:
    return sha256_file_remembered(path, os.path.join(cache_dir(cache), "sha256"))


def tree_identity(root: str) -> str:
    """A digest of a directory's listing (paths, types, modes, sizes, mtimes, link targets): cheap, and different
    whenever the tree is (for the `local.unique` of a local source, see `local_identity`)."""
    h = hashlib.sha256()
    for rel, full in walk_sorted(root):
        st = os.lstat(full)
        link = os.readlink(full) if os.path.islink(full) else ""
        h.update(
            f"{rel}\0{st.st_mode}\0{st.st_size}\0{st.st_mtime_ns}\0{link}\n".encode(
                "utf-8", "surrogateescape"
            )
        )
    return h.hexdigest()


def local_identity(base: Base, cache: Optional[str] = None) -> str:
    """What distinguishes this local base from any other: BuildKit merges identical ops of concurrent solves, so
    two different bases must not marshal to the same local source op. "" for non-local bases."""
    if base.kind == "tar":
        return "tar-" + _sha256_file(base.location, cache)
    if base.kind == "dir":
        return "tree-" + tree_identity(base.location)
    return ""


def _safe_members(tar: tarfile.TarFile, path: str) -> Tuple[tarfile.TarInfo, ...]:
    members = []
    links = set()
    for m in tar.getmembers():
        name = m.name.rstrip("/")
        while name.startswith("./"):
            name = name[2:]
        if name in ("", "."):
            continue
        parts = name.split("/")
        if name.startswith("/") or ".." in parts:
            raise BaseError(f"rootfs tarball entry {m.name!r} climbs out of the root", path=path)
        if any("/".join(parts[:i]) in links for i in range(1, len(parts))):
            raise BaseError(f"rootfs tarball entry {m.name!r} lies under a symlink", path=path)
        if m.issym():
            links.add(name)
        if m.ischr() or m.isblk() or m.isfifo():
            continue  # /dev is the container runtime's
        if m.islnk() and (m.linkname.startswith("/") or ".." in m.linkname.split("/")):
            raise BaseError(f"rootfs tarball hardlink {m.name!r} points outside the root", path=path)
        members.append(m)
    return tuple(members)


def local_rootfs(base: Base, cache: Optional[str] = None) -> Optional[str]:
    """The directory to send for a local base (a tarball is unpacked once into the cache); None otherwise."""
    if base.kind == "dir":
        if not os.path.isdir(base.location):
            raise BaseError("base rootfs directory does not exist", path=base.location)
        return base.location
    if base.kind != "tar":
        return None
    if not os.path.isfile(base.location):
        raise BaseError("base rootfs tarball does not exist", path=base.location)
    dest = os.path.join(cache_dir(cache), "rootfs", _sha256_file(base.location, cache))
    if os.path.isdir(dest):
        return dest
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    # Builds run in parallel (Pants): one process unpacks, the others wait for it and reuse its result.
    with open(dest + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.isdir(dest):
            return dest
        work = dest + f".tmp-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        try:
            with tarfile.open(base.location) as tar:
                members = _safe_members(tar, base.location)
                kwargs = {"filter": "fully_trusted"} if hasattr(tarfile, "data_filter") else {}
                tar.extractall(
                    work, members=members, numeric_owner=True, **kwargs
                )  # noqa: S202 (checked above)
            os.replace(work, dest)
        except (OSError, tarfile.TarError) as e:
            raise BaseError(f"cannot unpack the base rootfs tarball: {e}", path=base.location) from None
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return dest


def read_base_file(base: Base, rel: str, cache: Optional[str] = None) -> Optional[str]:
    """A text file of a local base (e.g. etc/passwd), or None."""
    root = local_rootfs(base, cache)
    if root is None:
        return None
    path = os.path.join(root, rel)
    if os.path.islink(path) or not os.path.isfile(path):
        return None
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")
