"""Deterministic tar and gzip writing for APK segments.

We write the ustar/PAX headers ourselves (rather than through `tarfile`) so the bytes depend on nothing but the
inputs: no interpreter-version differences, no `././@PaxHeader` naming quirks, PAX records sorted by key. The
PAX extended header of an entry is named like Go's `archive/tar` names it (`dir/PaxHeaders.0/base`), which is
what melange's packages carry; readers ignore that name.

`GzipWriter` frames raw deflate output in a gzip member with a fixed header (MTIME 0, no file name, OS 255), so
the compressed bytes depend only on the data and the compression level. It can feed its output to hash objects
on the way out (the APK `datahash` and signatures are over compressed bytes).
"""

from __future__ import annotations

import os
import posixpath
import struct
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO, Deque, Dict, Iterable, List, Optional, Tuple

BLOCK = 512
END_OF_ARCHIVE = b"\0" * (2 * BLOCK)

REGTYPE = b"0"
LNKTYPE = b"1"
SYMTYPE = b"2"
DIRTYPE = b"5"
PAXTYPE = b"x"

CHECKSUM_SHA1 = "APK-TOOLS.checksum.SHA1"
XATTR_PREFIX = "SCHILY.xattr."

# Fixed gzip member header: magic, CM=deflate, FLG=0, MTIME=0, XFL=0, OS=255 (unknown).
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
DEFAULT_LEVEL = 6

_MAX_OCTAL_7 = 0o7777777  # uid, gid, mode, devmajor/minor fields
_MAX_OCTAL_11 = 0o77777777777  # size, mtime fields


@dataclass(frozen=True)
class TarHeader:
    """One tar entry's metadata (the content, if any, is written separately)."""

    name: str
    typeflag: bytes = REGTYPE
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    size: int = 0
    mtime: int = 0
    linkname: str = ""
    uname: str = "root"
    gname: str = "root"
    # Extra PAX records (key -> raw value bytes), e.g. the APK checksum and SCHILY.xattr.* records.
    pax: Tuple[Tuple[str, bytes], ...] = ()


def _octal(value: int, width: int) -> bytes:
    """A NUL-terminated, zero-padded octal field of `width` bytes."""
    return b"%0*o\0" % (width - 1, value)


def _fits_ascii(text: str, limit: int) -> bool:
    try:
        return len(text.encode("ascii")) <= limit
    except UnicodeEncodeError:
        return False


def pax_record(key: str, value: bytes) -> bytes:
    """One `"%d %s=%s\\n"` record; the leading length counts the whole record, itself included."""
    body = b" " + key.encode("utf-8") + b"=" + value + b"\n"
    length = len(body) + 1
    while len(str(length).encode()) + len(body) != length:
        length += 1
    return str(length).encode() + body


def _ustar_block(
    name: bytes,
    typeflag: bytes,
    mode: int,
    uid: int,
    gid: int,
    size: int,
    mtime: int,
    linkname: bytes,
    uname: bytes,
    gname: bytes,
) -> bytes:
    parts = [
        name[:100].ljust(100, b"\0"),
        _octal(mode, 8),
        _octal(uid, 8),
        _octal(gid, 8),
        _octal(size, 12),
        _octal(mtime, 12),
        b" " * 8,  # checksum placeholder
        typeflag,
        linkname[:100].ljust(100, b"\0"),
        b"ustar\x0000",
        uname[:32].ljust(32, b"\0"),
        gname[:32].ljust(32, b"\0"),
        _octal(0, 8),  # devmajor
        _octal(0, 8),  # devminor
        b"\0" * 155,  # prefix (unused: long names go in PAX records)
        b"\0" * 12,
    ]
    block = b"".join(parts)
    assert len(block) == BLOCK
    checksum = sum(block)
    return block[:148] + b"%06o\0 " % checksum + block[156:]


def encode_header(header: TarHeader) -> bytes:
    """The header block(s) of one entry: a PAX extended header when needed, then the ustar header."""
    records: Dict[str, bytes] = dict(header.pax)
    name_b = header.name.encode("utf-8")
    link_b = header.linkname.encode("utf-8")
    if not _fits_ascii(header.name, 100):
        records["path"] = name_b
    if not _fits_ascii(header.linkname, 100):
        records["linkpath"] = link_b
    if header.size > _MAX_OCTAL_11:
        records["size"] = str(header.size).encode()
    for key, value in (("uid", header.uid), ("gid", header.gid)):
        if value > _MAX_OCTAL_7:
            records[key] = str(value).encode()
    if not _fits_ascii(header.uname, 32):
        records["uname"] = header.uname.encode("utf-8")
    if not _fits_ascii(header.gname, 32):
        records["gname"] = header.gname.encode("utf-8")

    def clamp(value: int, limit: int) -> int:
        return value if value <= limit else 0

    out = []
    if records:
        payload = b"".join(pax_record(k, records[k]) for k in sorted(records))
        dirname, base = posixpath.split(header.name.rstrip("/"))
        pax_name = posixpath.join(dirname, "PaxHeaders.0", base).encode("utf-8", "replace")
        out.append(
            _ustar_block(
                _ascii_prefix(pax_name),
                PAXTYPE,
                0,
                0,
                0,
                len(payload),
                clamp(header.mtime, _MAX_OCTAL_11),
                b"",
                b"",
                b"",
            )
        )
        out.append(payload + b"\0" * (-len(payload) % BLOCK))
    out.append(
        _ustar_block(
            _ascii_prefix(name_b),
            header.typeflag,
            header.mode & 0o7777,
            clamp(header.uid, _MAX_OCTAL_7),
            clamp(header.gid, _MAX_OCTAL_7),
            clamp(header.size, _MAX_OCTAL_11),
            clamp(header.mtime, _MAX_OCTAL_11),
            _ascii_prefix(link_b),
            _ascii_prefix(header.uname.encode("utf-8")),
            _ascii_prefix(header.gname.encode("utf-8")),
        )
    )
    return b"".join(out)


def _ascii_prefix(raw: bytes) -> bytes:
    """Bytes for a fixed-width ustar field; the full value, if it does not fit, is in a PAX record."""
    return raw.decode("utf-8", "replace").encode("ascii", "replace")


def padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


def _deflate_block(level: int, data: bytes, zdict: bytes, final: bool) -> bytes:
    """Raw deflate of one block, primed with the previous block's last 32 KiB; ends on a byte boundary
    (Z_SYNC_FLUSH) or finishes the stream. Concatenated, the blocks form one valid deflate stream (as pigz).
    """
    if zdict:
        c = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, zdict=zdict)
    else:
        c = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    return c.compress(data) + c.flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH)


class GzipWriter:
    """Writes one deterministic gzip member to `raw`, optionally hashing the compressed bytes.

    Input is cut into fixed 1 MiB blocks compressed independently (each primed with the 32 KiB before it), so
    blocks can be compressed on several threads (zlib releases the GIL) while the output depends only on the
    data and the level, never on the number of threads.
    """

    BLOCK_SIZE = 1 << 20
    WINDOW = 32 * 1024

    def __init__(
        self, raw: BinaryIO, level: int = DEFAULT_LEVEL, hashers: Iterable[object] = (), threads: int = 0
    ) -> None:
        self._raw = raw
        self._hashers: List[object] = list(hashers)
        self._level = level
        self._crc = 0
        self._size = 0
        self._buf = bytearray()
        self._zdict = b""
        self.compressed_size = 0
        self._closed = False
        if threads <= 0:
            threads = min(4, os.cpu_count() or 1)
        self._pool: Optional[ThreadPoolExecutor] = (
            ThreadPoolExecutor(max_workers=threads, thread_name_prefix="gzip") if threads > 1 else None
        )
        self._inflight: Deque[Future[bytes]] = deque()
        self._max_inflight = 2 * threads
        self._emit(_GZIP_HEADER)

    def _emit(self, data: bytes) -> None:
        if data:
            self._raw.write(data)
            for h in self._hashers:
                h.update(data)  # type: ignore[attr-defined]
            self.compressed_size += len(data)

    def _submit(self, block: bytes, final: bool) -> None:
        zdict = self._zdict
        self._zdict = (
            (self._zdict + block)[-self.WINDOW :] if len(block) < self.WINDOW else block[-self.WINDOW :]
        )
        if self._pool is None:
            self._emit(_deflate_block(self._level, block, zdict, final))
            return
        self._inflight.append(self._pool.submit(_deflate_block, self._level, block, zdict, final))
        while len(self._inflight) > (0 if final else self._max_inflight):
            self._emit(self._inflight.popleft().result())

    def write(self, data: bytes) -> None:
        if not data:
            return
        self._crc = zlib.crc32(data, self._crc)
        self._size += len(data)
        self._buf += data
        while len(self._buf) >= self.BLOCK_SIZE:
            block = bytes(self._buf[: self.BLOCK_SIZE])
            del self._buf[: self.BLOCK_SIZE]
            self._submit(block, final=False)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._submit(bytes(self._buf), final=True)
            self._buf = bytearray()
            self._emit(struct.pack("<II", self._crc & 0xFFFFFFFF, self._size & 0xFFFFFFFF))
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)

    def abort(self) -> None:
        """Stops the worker threads without writing the trailer (after an error)."""
        self._closed = True
        for fut in self._inflight:
            fut.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=True)


class TarWriter:
    """Streams tar entries into a binary sink (usually a `GzipWriter`)."""

    def __init__(self, sink: object) -> None:
        self._sink = sink

    def add(self, header: TarHeader, chunks: Iterable[bytes] = ()) -> int:
        """Writes one entry; `chunks` must add up to exactly `header.size` bytes. Returns the bytes written."""
        self._sink.write(encode_header(header))  # type: ignore[attr-defined]
        written = 0
        for chunk in chunks:
            written += len(chunk)
            self._sink.write(chunk)  # type: ignore[attr-defined]
        if written != header.size:
            raise ValueError(f"{header.name}: wrote {written} bytes, header says {header.size}")
        self._sink.write(padding(written))  # type: ignore[attr-defined]
        return written

    def add_bytes(self, header: TarHeader, data: bytes) -> None:
        self.add(header, (data,))

    def finish(self, end_of_archive: bool) -> None:
        """Ends the archive: with the two zero blocks, or without them (apk's signature/control segments)."""
        if end_of_archive:
            self._sink.write(END_OF_ARCHIVE)  # type: ignore[attr-defined]


def gzip_tar_bytes(
    entries: Iterable[Tuple[TarHeader, bytes]], end_of_archive: bool, level: int = DEFAULT_LEVEL
) -> bytes:
    """A small in-memory tar.gz segment (signature, control, index)."""
    import io

    buf = io.BytesIO()
    gz = GzipWriter(buf, level, threads=1)
    tar = TarWriter(gz)
    for header, data in entries:
        tar.add_bytes(header, data)
    tar.finish(end_of_archive)
    gz.close()
    return buf.getvalue()


def file_header(name: str, data: bytes, mtime: int, mode: int = 0o644) -> Tuple[TarHeader, bytes]:
    """A root-owned regular file entry for an in-memory segment."""
    return TarHeader(name=name, mode=mode, size=len(data), mtime=mtime), data


__all__ = [
    "BLOCK",
    "CHECKSUM_SHA1",
    "DEFAULT_LEVEL",
    "DIRTYPE",
    "GzipWriter",
    "LNKTYPE",
    "REGTYPE",
    "SYMTYPE",
    "TarHeader",
    "TarWriter",
    "XATTR_PREFIX",
    "encode_header",
    "file_header",
    "gzip_tar_bytes",
    "pax_record",
]
