"""APKINDEX.tar.gz: a repository's package list, optionally signed.

Layout: [signature gzip member: `.SIGN.RSA.<key>.pub` over the SHA-1 of the index member, no end-of-archive]
followed by the index member (a tar.gz with `DESCRIPTION` and `APKINDEX`, with end-of-archive blocks).
Each APKINDEX record is a block of `X:value` lines in go-apk's order (C P V A S I T U L o m t c D i p k), a blank
line after each; `C:` is `Q1` + base64 of the SHA-1 of the package's control segment. Records are sorted by
name, version and arch, so the bytes depend only on the set of packages.
"""

from __future__ import annotations

import base64
import io
import tarfile
import zlib
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Tuple

from melange_bk.apk.reader import ApkContents, read_apk
from melange_bk.apk.sign import Keyring, Signature, SigningKey, signature_segment, verify_any
from melange_bk.apk.tarstream import file_header, gzip_tar_bytes
from melange_bk.atomicfile import atomic_write
from melange_bk.errors import ApkError


@dataclass(frozen=True)
class IndexEntry:
    checksum: str  # "Q1<base64 sha1 of the control segment>"
    name: str
    version: str  # with the epoch: "1.2.3-r0"
    arch: str = ""
    size: int = 0  # bytes of the .apk
    installed_size: int = 0
    description: str = ""
    url: str = ""
    license: str = ""
    origin: str = ""
    maintainer: str = ""
    build_time: int = 0
    commit: str = ""
    depends: Tuple[str, ...] = ()
    install_if: Tuple[str, ...] = ()
    provides: Tuple[str, ...] = ()
    provider_priority: int = 0

    @property
    def sort_key(self) -> Tuple[str, str, str]:
        return (self.name, self.version, self.arch)


@dataclass(frozen=True)
class Index:
    description: str = ""
    entries: Tuple[IndexEntry, ...] = ()
    signatures: Tuple[Signature, ...] = ()


def q1(control_sha1: bytes) -> str:
    return "Q1" + base64.b64encode(control_sha1).decode("ascii")


def entry_from_contents(contents: ApkContents) -> IndexEntry:
    info = contents.info
    return IndexEntry(
        checksum=q1(contents.control_sha1),
        name=info.name,
        version=info.pkgver,
        arch=info.arch,
        size=contents.size,
        installed_size=info.installed_size,
        description=info.description,
        url=info.url,
        license=" AND ".join(info.licenses),
        origin=info.origin,
        maintainer=info.maintainer,
        build_time=info.builddate,
        commit=info.commit,
        depends=info.depends,
        install_if=info.install_if,
        provides=info.provides,
        provider_priority=info.provider_priority or 0,
    )


def entry_from_apk(path: str) -> IndexEntry:
    return entry_from_contents(read_apk(path))


def _line(key: str, value: str) -> str:
    if "\n" in value:
        raise ApkError(f"APKINDEX field {key}: must not contain a line break: {value!r}")
    return f"{key}:{value}\n"


def render_apkindex(entries: Iterable[IndexEntry]) -> bytes:
    out: List[str] = []
    for e in sorted(entries, key=lambda x: x.sort_key):
        out.append(_line("C", e.checksum))
        out.append(_line("P", e.name))
        out.append(_line("V", e.version))
        if e.arch:
            out.append(_line("A", e.arch))
        if e.size:
            out.append(_line("S", str(e.size)))
        if e.installed_size:
            out.append(_line("I", str(e.installed_size)))
        out.append(_line("T", e.description))
        for key, value in (("U", e.url), ("L", e.license), ("o", e.origin), ("m", e.maintainer)):
            if value:
                out.append(_line(key, value))
        if e.build_time:
            out.append(_line("t", str(e.build_time)))
        if e.commit:
            out.append(_line("c", e.commit))
        if e.depends:
            out.append(_line("D", " ".join(e.depends)))
        if e.install_if:
            out.append(_line("i", " ".join(e.install_if)))
        if e.provides:
            out.append(_line("p", " ".join(e.provides)))
        if e.provider_priority:
            out.append(_line("k", str(e.provider_priority)))
        out.append("\n")
    return "".join(out).encode("utf-8")


def parse_apkindex(text: bytes, path: Optional[str] = None) -> Tuple[IndexEntry, ...]:
    entries: List[IndexEntry] = []
    fields: Dict[str, str] = {}
    start_line = 1

    def flush() -> None:
        if not fields:
            return
        if "P" not in fields or "V" not in fields:
            raise ApkError("APKINDEX record without P: or V:", path=path, line=start_line)

        def num(key: str) -> int:
            try:
                return int(fields.get(key, "0") or 0)
            except ValueError:
                raise ApkError(f"APKINDEX {key}: is not a number", path=path, line=start_line) from None

        entries.append(
            IndexEntry(
                checksum=fields.get("C", ""),
                name=fields["P"],
                version=fields["V"],
                arch=fields.get("A", ""),
                size=num("S"),
                installed_size=num("I"),
                description=fields.get("T", ""),
                url=fields.get("U", ""),
                license=fields.get("L", ""),
                origin=fields.get("o", ""),
                maintainer=fields.get("m", ""),
                build_time=num("t"),
                commit=fields.get("c", ""),
                depends=tuple(fields.get("D", "").split()),
                install_if=tuple(fields.get("i", "").split()),
                provides=tuple(fields.get("p", "").split()),
                provider_priority=num("k"),
            )
        )
        fields.clear()

    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        raise ApkError("APKINDEX is not UTF-8", path=path) from None
    for lineno, line in enumerate(decoded.split("\n"), 1):
        if not line:
            flush()
            start_line = lineno + 1
            continue
        if len(line) < 2 or line[1] != ":":
            raise ApkError(f"APKINDEX line is not `X:value`: {line!r}", path=path, line=lineno)
        fields[line[0]] = line[2:]
    flush()
    return tuple(entries)


def merge(existing: Iterable[IndexEntry], new: Iterable[IndexEntry]) -> Tuple[IndexEntry, ...]:
    """`new` entries replace existing ones of the same name, version and arch (as melange's --merge does)."""
    by_key: Dict[Tuple[str, str, str], IndexEntry] = {e.sort_key: e for e in existing}
    for e in new:
        by_key[e.sort_key] = e
    return tuple(by_key[k] for k in sorted(by_key))


def index_member(index: Index, source_date_epoch: int = 0) -> bytes:
    """The unsigned index tar.gz (DESCRIPTION, APKINDEX, end-of-archive blocks)."""
    return gzip_tar_bytes(
        [
            file_header("DESCRIPTION", index.description.encode("utf-8"), source_date_epoch),
            file_header("APKINDEX", render_apkindex(index.entries), source_date_epoch),
        ],
        end_of_archive=True,
    )


def build_index(index: Index, signing_key: Optional[SigningKey] = None, source_date_epoch: int = 0) -> bytes:
    body = index_member(index, source_date_epoch)
    if signing_key is None:
        return body
    signature = gzip_tar_bytes(
        [file_header(signing_key.signature_name, signing_key.sign(body), source_date_epoch)],
        end_of_archive=False,
    )
    return signature + body


def write_index(
    path: str, index: Index, signing_key: Optional[SigningKey] = None, source_date_epoch: int = 0
) -> bytes:
    """Writes the index atomically; returns its bytes."""
    data = build_index(index, signing_key, source_date_epoch)
    try:
        atomic_write(path, data, 0o644)
    except OSError as e:
        raise ApkError(f"cannot write index: {e.strerror}", path=path) from None
    return data


def _split_first_member(data: bytes, path: str) -> Tuple[bytes, bytes]:
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        d.decompress(data)
    except zlib.error as e:
        raise ApkError(f"index is not gzip: {e}", path=path) from None
    if not d.eof:
        raise ApkError("truncated index", path=path)
    end = len(data) - len(d.unused_data)
    return data[:end], data[end:]


def _members(gz: bytes, path: str) -> List[Tuple[str, bytes]]:
    try:
        tar_bytes = zlib.decompress(gz, 16 + zlib.MAX_WBITS)
        with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as t:
            out = []
            for m in t:
                f = t.extractfile(m)
                out.append((m.name, f.read() if f is not None else b""))
            return out
    except (zlib.error, tarfile.TarError) as e:
        raise ApkError(f"index is not a valid tar.gz: {e}", path=path) from None


def parse_index_bytes(data: bytes, path: str, keyring: Optional[Keyring] = None) -> Index:
    """Parses an APKINDEX.tar.gz; with a keyring, its signature must verify."""
    first, rest = _split_first_member(data, path)
    first_members = _members(first, path)
    signatures = signature_segment(first_members, "the index signature", path)
    if signatures is not None:
        body = rest
        body_members = _members(body, path)
    else:
        body = data
        body_members = first_members + (_members(rest, path) if rest else [])
    if keyring is not None:
        verify_any(signatures or (), keyring, body, path=path)
    files = dict(body_members)
    if "APKINDEX" not in files:
        raise ApkError("index has no APKINDEX entry", path=path)
    return Index(
        description=files.get("DESCRIPTION", b"").decode("utf-8", "replace"),
        entries=parse_apkindex(files["APKINDEX"], path=path),
        signatures=signatures or (),
    )


def read_index(path: str, keyring: Optional[Keyring] = None) -> Index:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ApkError(f"cannot read index: {e.strerror}", path=path) from None
    return parse_index_bytes(data, path, keyring)
