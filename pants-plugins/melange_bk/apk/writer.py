"""Writes an APK v2 package from a directory tree (e.g. an exported `melange-out/<pkg>`).

Layout, as apk-tools and melange have it: three concatenated gzip members

1. signature tar: one `.SIGN.RSA[256].<key>.pub` entry, no end-of-archive blocks;
2. control tar: `.PKGINFO` first, then `.melange.yaml` and scriptlets (sorted), no end-of-archive blocks;
3. data tar: the tree, with end-of-archive blocks.

The data segment is written first, streaming to a temporary file, because `.PKGINFO`'s `datahash` is the SHA-256
of its gzip bytes; the control segment is then signed. Files are read twice (checksum, then content), as the
`APK-TOOLS.checksum.SHA1` PAX record precedes each file's content; the checksums are computed by a worker thread
ahead of the compressor. Nothing holds a whole file in memory.

Data entries: depth-first, siblings sorted by name; mtime = SOURCE_DATE_EPOCH for every entry (as melange);
uids/gids remapped (melange's build user 1000 becomes root); symlinks and hardlinks preserved; device nodes,
FIFOs and sockets refused.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import threading
from dataclasses import dataclass, replace
from typing import BinaryIO, Dict, Iterator, List, Optional, Set, Tuple

from melange_bk.apk import pkginfo as pkginfo_mod
from melange_bk.apk import sbom as sbom_mod
from melange_bk.apk.pkginfo import PkgInfo
from melange_bk.apk.sign import SigningKey
from melange_bk.apk.tarstream import (
    CHECKSUM_SHA1,
    DEFAULT_LEVEL,
    DIRTYPE,
    LNKTYPE,
    REGTYPE,
    SYMTYPE,
    XATTR_PREFIX,
    GzipWriter,
    TarHeader,
    TarWriter,
    file_header,
    gzip_tar_bytes,
)
from melange_bk.atomicfile import atomic_open
from melange_bk.errors import ApkError

CHUNK = 1 << 20
SCRIPTLETS = (
    ".pre-install",
    ".post-install",
    ".pre-deinstall",
    ".post-deinstall",
    ".pre-upgrade",
    ".post-upgrade",
    ".trigger",
)
# Machine-local labels, never part of a package.
_SKIPPED_XATTRS = ("security.selinux",)


@dataclass(frozen=True)
class WriteOptions:
    source_date_epoch: int = 0
    # (from, to) id remaps; melange records files of its build user (1000:1000) as root.
    uid_map: Tuple[Tuple[int, int], ...] = ((1000, 0),)
    gid_map: Tuple[Tuple[int, int], ...] = ((1000, 0),)
    compression_level: int = DEFAULT_LEVEL
    threads: int = 0  # compression threads; 0: up to 4 by CPU count (the output does not depend on it)
    xattrs: bool = True
    # Add an SPDX SBOM at var/lib/db/sbom/<pkg>-<ver>-r<epoch>.spdx.json; None: no SBOM.
    sbom: Optional[sbom_mod.SbomOptions] = sbom_mod.SbomOptions()


DEFAULT_OPTIONS = WriteOptions()


@dataclass(frozen=True)
class ExtraFile:
    """A file added to the data segment that is not in the tree (parents are created as root 0755 dirs)."""

    path: str
    data: bytes
    mode: int = 0o644


@dataclass(frozen=True)
class TreeEntry:
    path: str  # relative, '/'-separated, no leading or trailing slash
    kind: str  # "dir", "file", "symlink", "hardlink"
    mode: int
    uid: int = 0
    gid: int = 0
    size: int = 0
    link: str = ""  # symlink target, or the path a hardlink points to
    source: Optional[str] = None  # absolute path on disk; None for virtual entries
    data: Optional[bytes] = None  # content of virtual files
    xattrs: Tuple[Tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class WrittenApk:
    path: str
    info: PkgInfo  # as written, with installed size and datahash
    control_sha1: bytes  # identity of the package: APKINDEX `C:Q1` + base64 of this
    size: int  # bytes of the .apk file
    signature_name: Optional[str]


def sort_key(path: str) -> Tuple[str, ...]:
    """Depth-first order with siblings sorted: a directory precedes its contents (UTF-8 byte order)."""
    return tuple(path.split("/"))


def _remap(value: int, mapping: Tuple[Tuple[int, int], ...]) -> int:
    for src, dst in mapping:
        if value == src:
            return dst
    return value


def _read_xattrs(path: str) -> Tuple[Tuple[str, bytes], ...]:
    if not hasattr(os, "listxattr"):
        return ()
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return ()
    out = []
    for name in sorted(names):
        if name in _SKIPPED_XATTRS:
            continue
        try:
            out.append((name, os.getxattr(path, name, follow_symlinks=False)))
        except OSError:
            continue
    return tuple(out)


def scan_tree(root: str, options: Optional[WriteOptions] = None) -> Tuple[TreeEntry, ...]:
    """Every entry under `root` (not `root` itself) in archive order, or ApkError for what a package cannot hold."""
    options = options or DEFAULT_OPTIONS
    if not os.path.isdir(root):
        raise ApkError("package tree is not a directory", path=root)
    entries: List[TreeEntry] = []
    inode_of: Dict[str, Tuple[int, int]] = {}  # paths of multiply-linked regular files
    stack: List[Tuple[str, str]] = [(root, "")]
    while stack:
        directory, rel_dir = stack.pop()
        try:
            with os.scandir(directory) as it:
                children = sorted(it, key=lambda e: os.fsencode(e.name))
        except OSError as e:
            raise ApkError(f"cannot list directory: {e.strerror}", path=directory) from None
        for child in children:
            rel = f"{rel_dir}/{child.name}" if rel_dir else child.name
            try:
                rel.encode("utf-8")
            except UnicodeEncodeError:
                raise ApkError("file name is not valid UTF-8", path=child.path) from None
            try:
                st = child.stat(follow_symlinks=False)
            except OSError as e:
                raise ApkError(f"cannot stat: {e.strerror}", path=child.path) from None
            uid = _remap(st.st_uid, options.uid_map)
            gid = _remap(st.st_gid, options.gid_map)
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISDIR(st.st_mode):
                xattrs = _read_xattrs(child.path) if options.xattrs else ()
                entries.append(TreeEntry(rel, "dir", mode, uid, gid, source=child.path, xattrs=xattrs))
                stack.append((child.path, rel))
            elif stat.S_ISLNK(st.st_mode):
                target = os.readlink(child.path)
                try:
                    target.encode("utf-8")
                except UnicodeEncodeError:
                    raise ApkError("symlink target is not valid UTF-8", path=child.path) from None
                entries.append(TreeEntry(rel, "symlink", mode, uid, gid, link=target, source=child.path))
            elif stat.S_ISREG(st.st_mode):
                if st.st_nlink > 1:
                    inode_of[rel] = (st.st_dev, st.st_ino)
                xattrs = _read_xattrs(child.path) if options.xattrs else ()
                entries.append(
                    TreeEntry(rel, "file", mode, uid, gid, size=st.st_size, source=child.path, xattrs=xattrs)
                )
            else:
                kind = (
                    "character device" if stat.S_ISCHR(st.st_mode)
                    else "block device" if stat.S_ISBLK(st.st_mode)
                    else "FIFO" if stat.S_ISFIFO(st.st_mode)
                    else "socket" if stat.S_ISSOCK(st.st_mode)
                    else "special file"
                )  # fmt: skip
                raise ApkError(f"packages cannot contain a {kind}", path=child.path)
    entries.sort(key=lambda e: sort_key(e.path))
    # Hardlinks: the first path of an inode in archive order carries the content, later ones link to it.
    first: Dict[Tuple[int, int], str] = {}
    for i, e in enumerate(entries):
        key = inode_of.get(e.path)
        if key is None:
            continue
        if key in first:
            entries[i] = replace(e, kind="hardlink", link=first[key], xattrs=())
        else:
            first[key] = e.path
    return tuple(entries)


def add_extra_files(entries: Tuple[TreeEntry, ...], extra: Tuple[ExtraFile, ...]) -> Tuple[TreeEntry, ...]:
    """Merges virtual files (and their missing parent directories) into the entry list."""
    by_path = {e.path: e for e in entries}
    out = list(entries)
    for f in extra:
        path = f.path.strip("/")
        parts = path.split("/")
        if not path or any(p in ("", ".", "..") for p in parts):
            raise ApkError(f"invalid path for a generated file: {f.path!r}")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            existing = by_path.get(parent)
            if existing is None:
                entry = TreeEntry(parent, "dir", 0o755)
                by_path[parent] = entry
                out.append(entry)
            elif existing.kind != "dir":
                raise ApkError(f"cannot add {path}: {parent} is not a directory in the package")
        if path in by_path:
            raise ApkError(f"the package tree already has {path}")
        entry = TreeEntry(path, "file", f.mode, size=len(f.data), data=f.data)
        by_path[path] = entry
        out.append(entry)
    out.sort(key=lambda e: sort_key(e.path))
    return tuple(out)


def installed_size(entries: Tuple[TreeEntry, ...]) -> int:
    """Bytes of regular files (each path, hardlinks included) plus symlink targets.

    melange also adds the st_size of directories, which depends on the file system the tree sits on; we leave
    directories out so the number is reproducible.
    """
    return sum(e.size for e in entries if e.kind in ("file", "hardlink")) + sum(
        len(e.link.encode("utf-8")) for e in entries if e.kind == "symlink"
    )


def _chunks(f: BinaryIO, size: int, path: str) -> Iterator[bytes]:
    remaining = size
    while remaining > 0:
        chunk = f.read(min(CHUNK, remaining))
        if not chunk:
            raise ApkError("file shrank while it was being packaged", path=path)
        remaining -= len(chunk)
        yield chunk
    if f.read(1):
        raise ApkError("file grew while it was being packaged", path=path)


def _hash_file(path: str, size: int, want_sha256: bool) -> Tuple[str, str]:
    sha1 = hashlib.sha1()
    sha256 = hashlib.sha256() if want_sha256 else None
    try:
        with open(path, "rb") as f:
            for chunk in _chunks(f, size, path):
                sha1.update(chunk)
                if sha256 is not None:
                    sha256.update(chunk)
    except OSError as e:
        raise ApkError(f"cannot read file: {e.strerror}", path=path) from None
    return sha1.hexdigest(), sha256.hexdigest() if sha256 is not None else ""


def _owner_name(ident: int) -> str:
    return "root" if ident == 0 else ""


def _header(entry: TreeEntry, mtime: int, sha1_hex: Optional[str]) -> TarHeader:
    pax: List[Tuple[str, bytes]] = []
    if sha1_hex is not None:
        pax.append((CHECKSUM_SHA1, sha1_hex.encode("ascii")))
    pax.extend((XATTR_PREFIX + name, value) for name, value in entry.xattrs)
    typeflag = {"dir": DIRTYPE, "file": REGTYPE, "symlink": SYMTYPE, "hardlink": LNKTYPE}[entry.kind]
    return TarHeader(
        name=entry.path,
        typeflag=typeflag,
        mode=entry.mode,
        uid=entry.uid,
        gid=entry.gid,
        size=entry.size if entry.kind == "file" else 0,
        mtime=mtime,
        linkname=entry.link,
        uname=_owner_name(entry.uid),
        gname=_owner_name(entry.gid),
        pax=tuple(pax),
    )


class _Hasher:
    """Checksums files in archive order on one background thread, ahead of the compressor (only digests are
    kept)."""

    def __init__(self, entries: List[TreeEntry], want_sha256: bool) -> None:
        self._paths: Set[str] = {e.path for e in entries}
        self._entries = entries
        self._want_sha256 = want_sha256
        self._results: Dict[str, Tuple[str, str]] = {}
        self._error: Optional[BaseException] = None
        self._stopped = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="apk-checksums", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for e in self._entries:
            if self._stopped:
                return
            try:
                assert e.source is not None
                result = _hash_file(e.source, e.size, self._want_sha256)
            except BaseException as err:  # handed to the consumer
                with self._cond:
                    self._error = err
                    self._cond.notify_all()
                return
            with self._cond:
                self._results[e.path] = result
                self._cond.notify_all()

    def has(self, path: str) -> bool:
        return path in self._paths

    def get(self, path: str) -> Tuple[str, str]:
        with self._cond:
            while path not in self._results:
                if self._error is not None:
                    raise self._error
                self._cond.wait()
            return self._results[path]

    def stop(self) -> None:
        self._stopped = True
        self._thread.join()


@dataclass(frozen=True)
class DataSegment:
    datahash: str
    installed_size: int
    entries: Tuple[TreeEntry, ...]
    sbom: Optional[bytes]


def write_data_segment(
    out: BinaryIO,
    entries: Tuple[TreeEntry, ...],
    info: PkgInfo,
    options: WriteOptions,
) -> DataSegment:
    """Streams the data tar.gz for `entries` into `out`; the SBOM (if enabled) is generated on the way."""
    sbom_path = sbom_mod.sbom_path(info) if options.sbom is not None else None
    if sbom_path is not None:
        entries = add_extra_files(entries, (ExtraFile(sbom_path, b""),))
    want_sha256 = options.sbom is not None
    digest = hashlib.sha256()
    gz = GzipWriter(out, options.compression_level, [digest], threads=options.threads)
    tar = TarWriter(gz)
    sbom_doc: Optional[bytes] = None
    final_entries: List[TreeEntry] = []
    hasher = _Hasher([e for e in entries if e.kind == "file" and e.source is not None], want_sha256)
    try:
        for e in entries:
            if e.path == sbom_path:
                sbom_files = []
                for f in entries:
                    if f.kind == "file" and f.path != sbom_path:
                        s1, s256 = hasher.get(f.path) if f.data is None else _hash_bytes(f.data)
                        sbom_files.append(sbom_mod.SbomFile(f.path, s1, s256))
                assert options.sbom is not None
                sbom_doc = sbom_mod.render(info, sbom_files, options.source_date_epoch, options.sbom)
                e = replace(e, data=sbom_doc, size=len(sbom_doc))
            final_entries.append(e)
            mtime = options.source_date_epoch
            if e.kind == "file" and e.data is not None:
                tar.add_bytes(_header(e, mtime, hashlib.sha1(e.data).hexdigest()), e.data)
            elif e.kind == "file":
                sha1_hex = hasher.get(e.path)[0]
                assert e.source is not None
                try:
                    with open(e.source, "rb") as f:
                        tar.add(_header(e, mtime, sha1_hex), _chunks(f, e.size, e.source))
                except OSError as err:
                    raise ApkError(f"cannot read file: {err.strerror}", path=e.source) from None
            elif e.kind == "hardlink":
                tar.add(_header(e, mtime, hasher.get(e.link)[0] if hasher.has(e.link) else None))
            elif e.kind == "symlink":
                tar.add(_header(e, mtime, hashlib.sha1(e.link.encode("utf-8")).hexdigest()))
            else:
                tar.add(_header(e, mtime, None))
        tar.finish(end_of_archive=True)
        gz.close()
    except BaseException:
        gz.abort()
        raise
    finally:
        hasher.stop()
    done = tuple(final_entries)
    return DataSegment(digest.hexdigest(), installed_size(done), done, sbom_doc)


def _hash_bytes(data: bytes) -> Tuple[str, str]:
    return hashlib.sha1(data).hexdigest(), hashlib.sha256(data).hexdigest()


def control_segment(
    info: PkgInfo,
    source_date_epoch: int,
    scriptlets: Tuple[Tuple[str, bytes], ...] = (),
    melange_yaml: Optional[bytes] = None,
    level: int = DEFAULT_LEVEL,
) -> bytes:
    """The control tar.gz: `.PKGINFO` first, the rest sorted; no end-of-archive blocks."""
    files: List[Tuple[TarHeader, bytes]] = []
    for name, content in scriptlets:
        if name not in SCRIPTLETS:
            raise ApkError(f"unknown scriptlet {name!r} (expected one of {', '.join(SCRIPTLETS)})")
        files.append(file_header(name, content, source_date_epoch, 0o755))
    if melange_yaml is not None:
        files.append(file_header(".melange.yaml", melange_yaml, source_date_epoch))
    names = [h.name for h, _ in files]
    if len(set(names)) != len(names):
        raise ApkError("a scriptlet is given twice")
    files.sort(key=lambda hd: hd[0].name.encode())
    pkginfo = file_header(".PKGINFO", pkginfo_mod.render(info), source_date_epoch)
    return gzip_tar_bytes([pkginfo] + files, end_of_archive=False, level=level)


def signature_segment(
    key: SigningKey, control: bytes, source_date_epoch: int, level: int = DEFAULT_LEVEL
) -> bytes:
    """The signature tar.gz over the control segment's bytes; no end-of-archive blocks."""
    return gzip_tar_bytes(
        [file_header(key.signature_name, key.sign(control), source_date_epoch)],
        end_of_archive=False,
        level=level,
    )


def write_apk(
    tree: str,
    out_path: str,
    info: PkgInfo,
    *,
    signing_key: Optional[SigningKey] = None,
    scriptlets: Tuple[Tuple[str, bytes], ...] = (),
    melange_yaml: Optional[bytes] = None,
    extra_files: Tuple[ExtraFile, ...] = (),
    options: Optional[WriteOptions] = None,
) -> WrittenApk:
    """Packages `tree` as `out_path` (written atomically). `info`'s size, builddate and datahash are filled in."""
    options = options or DEFAULT_OPTIONS
    entries = scan_tree(tree, options)
    if extra_files:
        entries = add_extra_files(entries, extra_files)
    out_dir = os.path.dirname(os.path.abspath(out_path))
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        raise ApkError(f"cannot create output directory: {e.strerror}", path=out_dir) from None
    with tempfile.TemporaryFile(dir=out_dir, prefix=".apk-data-") as data_file:
        data = write_data_segment(data_file, entries, info, options)
        final = replace(
            info,
            installed_size=data.installed_size,
            builddate=options.source_date_epoch,
            datahash=data.datahash,
        )
        control = control_segment(
            final, options.source_date_epoch, scriptlets, melange_yaml, options.compression_level
        )
        signature = (
            signature_segment(signing_key, control, options.source_date_epoch, options.compression_level)
            if signing_key is not None
            else b""
        )
        try:
            with atomic_open(out_path, 0o644) as out:
                out.write(signature)
                out.write(control)
                data_file.seek(0)
                while True:
                    chunk = data_file.read(CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
        except OSError as e:
            raise ApkError(f"cannot write package: {e.strerror}", path=out_path) from None
        size = len(signature) + len(control) + data_file.tell()
    return WrittenApk(
        path=out_path,
        info=final,
        control_sha1=hashlib.sha1(control).digest(),
        size=size,
        signature_name=signing_key.signature_name if signing_key is not None else None,
    )
