"""Reads, verifies and safely extracts APK v2 packages (ours or anyone's).

`read_apk` splits the file into its gzip members in one streaming pass (the data member is decompressed to check
its CRC and hashed, never held in memory); `verify_apk` then checks the control segment's signature against a
keyring (a key is looked up by the name the signature carries, as apk-tools does) and the data segment's SHA-256
against `.PKGINFO`'s `datahash`. `iter_data`/`list_files` stream the data tar, `extract` unpacks it under a
directory without ever writing outside it.

Limits against hostile archives (module constants; every decompression and tar read goes through them, so
`read_apk`, `list_files`, `extract` and the environment installer all stop early, in bounded memory and time):
- `MAX_METADATA`: the signature and control segments decompress to at most 64 MiB;
- `MAX_UNPACKED`: the data segment decompresses to at most 16 GiB;
- `MAX_RATIO`: beyond its first `RATIO_FLOOR` (64 MiB) decompressed bytes, a gzip member may not expand more than
  200 times (a zip bomb expands ~1000 times; real packages stay far below 200:1);
- `MAX_HEADER`: a PAX extended header or GNU long-name record holds at most 1 MiB (refused before it is read);
- `MAX_NAME`: entry names and link targets are at most 4096 bytes (PATH_MAX).
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Callable, Dict, Iterator, List, Optional, Set, Tuple

from melange_bk.apk import pkginfo as pkginfo_mod
from melange_bk.apk.pkginfo import PkgInfo
from melange_bk.apk.sign import Keyring, Signature, signature_segment, verify_any
from melange_bk.apk.tarstream import CHECKSUM_SHA1
from melange_bk.errors import ApkError

CHUNK = 1 << 20
MAX_METADATA = 64 << 20  # decompressed size limit of signature and control segments
MAX_UNPACKED = 16 << 30  # decompressed size limit of a data segment
MAX_RATIO = 200  # decompressed:compressed, checked once a member has produced RATIO_FLOOR bytes
RATIO_FLOOR = 64 << 20
MAX_HEADER = 1 << 20  # PAX extended headers, GNU long names/links
MAX_NAME = 4096  # bytes of an entry name or link target

_LONG_HEADERS = (
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
)


def _check_inflated(out: int, raw: int, limit: int, what: str, path: Optional[str]) -> None:
    """Refuse a gzip member that produced more than `limit` bytes or expands like a zip bomb."""
    if out > limit:
        raise ApkError(f"{what} decompresses to more than {limit >> 20} MiB: refused", path=path)
    if out > RATIO_FLOOR and out > MAX_RATIO * max(raw, 1):
        raise ApkError(
            f"{what} expands more than {MAX_RATIO} times ({raw} compressed bytes gave {out} so far): "
            "refused as a zip bomb",
            path=path,
        )


class _BoundedTarInfo(tarfile.TarInfo):
    """Refuses oversized PAX/GNU long headers before tarfile reads them into memory."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:  # type: ignore[override]
        if self.type in _LONG_HEADERS and self.size > MAX_HEADER:
            raise ApkError(
                f"tar header record of {self.size} bytes (type {self.type.decode('ascii', 'replace')!r}) is "
                f"larger than {MAX_HEADER} bytes: refused"
            )
        return super()._proc_member(tarfile_)  # type: ignore[misc]


@dataclass(frozen=True)
class Segment:
    offset: int
    length: int


@dataclass(frozen=True)
class ApkContents:
    path: str
    signatures: Tuple[Signature, ...]
    control: bytes  # the control segment's gzip bytes (what is signed)
    control_files: Tuple[Tuple[str, bytes], ...]  # (name, content), .PKGINFO first
    info: PkgInfo
    data: Segment
    data_sha256: str
    size: int

    @property
    def control_sha1(self) -> bytes:
        """The package identity apk uses (APKINDEX `C:Q1<base64>`)."""
        return hashlib.sha1(self.control).digest()

    def control_file(self, name: str) -> Optional[bytes]:
        for n, content in self.control_files:
            if n == name:
                return content
        return None


@dataclass(frozen=True)
class DataMember:
    name: str
    kind: str  # "file", "dir", "symlink", "hardlink", or the tar type for anything else
    mode: int
    uid: int
    gid: int
    size: int
    mtime: int
    linkname: str
    sha1: Optional[str]  # the APK-TOOLS.checksum.SHA1 record, hex
    xattrs: Tuple[Tuple[str, bytes], ...] = ()


def _inflate_member(
    f: BinaryIO,
    path: str,
    on_data: Callable[[bytes], None],
    on_raw: Callable[[bytes], None],
    limit: int = MAX_UNPACKED,
    what: str = "gzip member",
) -> int:
    """Decompresses one gzip member starting at `f`'s position; returns its compressed length and leaves `f` at
    its end. `on_raw` sees exactly the member's bytes, `on_data` its decompressed bytes (at most `limit`)."""
    start = f.tell()
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    fed = 0
    produced = 0
    pending = b""
    try:
        while not d.eof:
            if d.unconsumed_tail:
                out = d.decompress(d.unconsumed_tail, CHUNK)
            else:
                if pending:
                    on_raw(pending)
                pending = f.read(CHUNK)
                if not pending:
                    raise ApkError("truncated gzip stream", path=path)
                fed += len(pending)
                out = d.decompress(pending, CHUNK)
            if out:
                produced += len(out)
                _check_inflated(produced, fed, limit, what, path)
                on_data(out)
    except zlib.error as e:
        raise ApkError(f"corrupt gzip stream at byte {start}: {e}", path=path) from None
    used = len(pending) - len(d.unused_data)
    on_raw(pending[:used])
    length = fed - len(d.unused_data)
    f.seek(start + length)
    return length


def _read_small_member(f: BinaryIO, path: str) -> Tuple[bytes, bytes]:
    """(raw gzip bytes, decompressed bytes) of a small member."""
    raw: List[bytes] = []
    out: List[bytes] = []
    total = [0]

    def on_data(chunk: bytes) -> None:
        total[0] += len(chunk)
        if total[0] > MAX_METADATA:
            raise ApkError("signature/control segment is implausibly large", path=path)
        out.append(chunk)

    _inflate_member(
        f, path, on_data, raw.append, limit=MAX_METADATA + CHUNK, what="signature/control segment"
    )
    return b"".join(raw), b"".join(out)


def _tar_files(tar_bytes: bytes, path: str, what: str) -> List[Tuple[str, bytes]]:
    try:
        with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:", tarinfo=_BoundedTarInfo) as tar:
            files = []
            for m in tar:
                if not m.isfile():
                    raise ApkError(f"{what} segment holds a non-file entry {m.name!r}", path=path)
                extracted = tar.extractfile(m)
                assert extracted is not None
                files.append((m.name, extracted.read()))
            return files
    except tarfile.TarError as e:
        raise ApkError(f"{what} segment is not a valid tar: {e}", path=path) from None
    except ApkError as e:
        raise ApkError(f"{what} segment: {e.message}", path=e.path or path) from None


def read_apk(path: str) -> ApkContents:
    """Parses the package's segments (no verification beyond gzip CRCs)."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise ApkError(f"cannot open package: {e.strerror}", path=path) from None
    with f:
        size = os.fstat(f.fileno()).st_size
        first_raw, first_tar = _read_small_member(f, path)
        first = _tar_files(first_tar, path, "first")
        signatures = signature_segment(first, "the signature segment", path)
        if signatures is not None:
            if f.tell() >= size:
                raise ApkError("package has no control segment", path=path)
            control_raw, control_tar = _read_small_member(f, path)
            control_files = _tar_files(control_tar, path, "control")
        else:
            control_raw, control_files = first_raw, first
        names = [n for n, _ in control_files]
        if ".PKGINFO" not in names:
            raise ApkError("control segment has no .PKGINFO", path=path)
        info = pkginfo_mod.parse(dict(control_files)[".PKGINFO"], path=path)
        data_offset = f.tell()
        if data_offset >= size:
            raise ApkError("package has no data segment", path=path)
        digest = hashlib.sha256()
        data_length = _inflate_member(f, path, lambda _chunk: None, digest.update, what="data segment")
        if f.tell() != size:
            raise ApkError(f"{size - f.tell()} unexpected bytes after the data segment", path=path)
    ordered = sorted(control_files, key=lambda nf: (nf[0] != ".PKGINFO",))
    return ApkContents(
        path=path,
        signatures=signatures or (),
        control=control_raw,
        control_files=tuple(ordered),
        info=info,
        data=Segment(data_offset, data_length),
        data_sha256=digest.hexdigest(),
        size=size,
    )


def verify_apk(path: str, keyring: Keyring, require_signature: bool = True) -> ApkContents:
    """read_apk + signature check over the control segment + datahash check, or ApkError."""
    contents = read_apk(path)
    if require_signature or contents.signatures:
        verify_any(contents.signatures, keyring, contents.control, path=path)
    if not contents.info.datahash:
        raise ApkError(".PKGINFO has no datahash; the data segment cannot be verified", path=path)
    if contents.info.datahash.lower() != contents.data_sha256:
        raise ApkError(
            f"data segment does not match .PKGINFO datahash ({contents.data_sha256} != {contents.info.datahash})",
            path=path,
        )
    return contents


class _MemberStream(io.RawIOBase):
    """Decompressed bytes of one gzip member at a known offset and length of a file."""

    def __init__(self, f: BinaryIO, segment: Segment, path: str) -> None:
        super().__init__()
        self._f = f
        self._path = path
        f.seek(segment.offset)
        self._remaining = segment.length
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._buf = b""
        self._raw = 0
        self._out = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        try:
            while not self._buf:
                if self._d.eof:
                    return 0
                if self._d.unconsumed_tail:
                    self._buf = self._d.decompress(self._d.unconsumed_tail, CHUNK)
                else:
                    raw = self._f.read(min(CHUNK, self._remaining)) if self._remaining > 0 else b""
                    if not raw:
                        raise ApkError("truncated data segment", path=self._path)
                    self._remaining -= len(raw)
                    self._raw += len(raw)
                    self._buf = self._d.decompress(raw, CHUNK)
                self._out += len(self._buf)
                _check_inflated(self._out, self._raw, MAX_UNPACKED, "data segment", self._path)
        except zlib.error as e:
            raise ApkError(f"corrupt data segment: {e}", path=self._path) from None
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


_KINDS = {
    tarfile.REGTYPE: "file",
    tarfile.AREGTYPE: "file",
    tarfile.DIRTYPE: "dir",
    tarfile.SYMTYPE: "symlink",
    tarfile.LNKTYPE: "hardlink",
}


def _member(m: tarfile.TarInfo) -> DataMember:
    pax = m.pax_headers or {}
    xattrs = tuple(
        sorted(
            (k[len("SCHILY.xattr.") :], v.encode("utf-8", "surrogateescape") if isinstance(v, str) else v)
            for k, v in pax.items()
            if k.startswith("SCHILY.xattr.")
        )
    )
    kind = _KINDS.get(m.type, m.type.decode("ascii", "replace"))
    return DataMember(
        name=m.name.rstrip("/"),
        kind=kind,
        mode=m.mode & 0o7777,
        uid=m.uid,
        gid=m.gid,
        size=m.size,
        mtime=int(m.mtime),
        linkname=m.linkname,
        sha1=pax.get(CHECKSUM_SHA1),
        xattrs=xattrs,
    )


def iter_data(
    path: str, contents: Optional[ApkContents] = None
) -> Iterator[Tuple[DataMember, Optional[BinaryIO]]]:
    """Streams the data tar: (member, file object for regular files' content)."""
    contents = contents or read_apk(path)
    with open(path, "rb") as f:
        stream = io.BufferedReader(_MemberStream(f, contents.data, path), CHUNK)
        try:
            with tarfile.open(fileobj=stream, mode="r|", tarinfo=_BoundedTarInfo) as tar:
                for m in tar:
                    yield _member(m), tar.extractfile(m) if m.isfile() else None
        except tarfile.TarError as e:
            raise ApkError(f"data segment is not a valid tar: {e}", path=path) from None
        except ApkError as e:
            if e.path:
                raise
            raise ApkError(f"data segment: {e.message}", path=path) from None


def list_files(path: str, contents: Optional[ApkContents] = None) -> Tuple[DataMember, ...]:
    return tuple(m for m, _ in iter_data(path, contents))


# ---------------------------------------------------------------------------------------------------- extraction


def _clean_name(name: str, path: str) -> str:
    if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME:
        raise ApkError(f"entry name {name[:60]!r}… is longer than {MAX_NAME} bytes", path=path)
    if "\0" in name:
        raise ApkError(f"entry name contains NUL: {name!r}", path=path)
    if name.startswith("/"):
        raise ApkError(f"absolute entry name {name!r}", path=path)
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ApkError(f"entry name {name!r} climbs out of the package root", path=path)
    if not parts:
        raise ApkError(f"empty entry name {name!r}", path=path)
    return "/".join(parts)


def secure_join(root: str, rel: str, follow_last: bool = False, max_links: int = 64) -> str:
    """`root/rel` with every symlink on the way resolved as if `root` were `/` (never leaving it).

    The last component is not followed unless `follow_last`, so it can be replaced or created.
    """
    todo = [p for p in rel.split("/")][::-1]
    resolved: List[str] = []
    links = 0
    while todo:
        part = todo.pop()
        if part in ("", "."):
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        is_last = not any(p not in ("", ".") for p in todo)
        if is_last and not follow_last:
            resolved.append(part)
            break
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            resolved.append(part)
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > max_links:
                raise ApkError(f"too many levels of symlinks resolving {rel!r}", path=root)
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            todo.extend(target.split("/")[::-1])
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)


def _symlink_escapes(name: str, target: str) -> bool:
    """A relative target that climbs above the package root from where the link sits."""
    if target.startswith("/"):
        return False
    depth = len(name.split("/")) - 1
    for part in target.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


def _remove_existing(dst: str) -> None:
    try:
        st = os.lstat(dst)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        raise ApkError("refusing to replace a directory with a non-directory", path=dst)
    os.unlink(dst)


def extract(
    path: str,
    dest: str,
    *,
    contents: Optional[ApkContents] = None,
    preserve_owner: bool = False,
    verify_checksums: bool = True,
) -> Tuple[str, ...]:
    """Unpacks the data segment under `dest` and returns the entry names. Rejects absolute names, `..`, symlinks
    whose relative target climbs out of the root, hardlinks to anything but an earlier regular file of the same
    package, and device nodes/FIFOs; writes never follow a symlink out of `dest`."""
    os.makedirs(dest, exist_ok=True)
    root = os.path.realpath(dest)
    names: List[str] = []
    files: Set[str] = set()
    dirs: List[Tuple[str, DataMember]] = []
    chown = preserve_owner and hasattr(os, "lchown") and os.geteuid() == 0
    for m, fobj in iter_data(path, contents):
        name = _clean_name(m.name, path)
        where = f"{path}: {name}"
        if m.kind not in ("file", "dir", "symlink", "hardlink"):
            raise ApkError(
                f"entry {name!r} is a device node, FIFO or other special file (type {m.kind!r})", path=path
            )
        dst = secure_join(root, name)
        parent = os.path.dirname(dst)
        try:
            os.makedirs(parent, exist_ok=True)
            if m.kind == "dir":
                if not os.path.isdir(dst) or os.path.islink(dst):
                    _remove_existing(dst)
                    os.mkdir(dst, 0o700)
                dirs.append((dst, m))
            elif m.kind == "file":
                assert fobj is not None
                _remove_existing(dst)
                sha1 = hashlib.sha1()
                fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
                with os.fdopen(fd, "wb") as out:
                    while True:
                        chunk = fobj.read(CHUNK)
                        if not chunk:
                            break
                        sha1.update(chunk)
                        out.write(chunk)
                if verify_checksums and m.sha1 is not None and sha1.hexdigest() != m.sha1.lower():
                    raise ApkError(
                        f"content of {name!r} does not match its APK-TOOLS.checksum.SHA1", path=path
                    )
                os.chmod(dst, m.mode)
                files.add(name)
            elif m.kind == "symlink":
                if len(m.linkname.encode("utf-8", "surrogateescape")) > MAX_NAME:
                    raise ApkError(f"symlink {name!r} has a target longer than {MAX_NAME} bytes", path=path)
                if _symlink_escapes(name, m.linkname):
                    raise ApkError(
                        f"symlink {name!r} -> {m.linkname!r} points outside the package root", path=path
                    )
                _remove_existing(dst)
                os.symlink(m.linkname, dst)
            else:  # hardlink
                target = _clean_name(m.linkname, path)
                if target not in files:
                    raise ApkError(
                        f"hardlink {name!r} -> {m.linkname!r} does not point at an earlier file of the package",
                        path=path,
                    )
                _remove_existing(dst)
                os.link(secure_join(root, target), dst, follow_symlinks=False)
            if chown:
                os.lchown(dst, m.uid, m.gid)
            if m.kind != "dir":
                os.utime(dst, (m.mtime, m.mtime), follow_symlinks=False)
        except OSError as e:
            raise ApkError(f"cannot extract: {e.strerror}", path=where) from None
        names.append(name)
    # directory modes and times last (a read-only directory must still receive its contents)
    for dst, m in reversed(dirs):
        try:
            os.chmod(dst, m.mode)
            os.utime(dst, (m.mtime, m.mtime))
        except OSError as e:
            raise ApkError(f"cannot set directory mode: {e.strerror}", path=dst) from None
    return tuple(names)


def control_map(contents: ApkContents) -> Dict[str, bytes]:
    return dict(contents.control_files)


__all__ = [
    "ApkContents",
    "DataMember",
    "Segment",
    "control_map",
    "extract",
    "iter_data",
    "list_files",
    "read_apk",
    "secure_join",
    "verify_apk",
]
