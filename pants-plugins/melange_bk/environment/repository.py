"""APK repositories: keyrings, signed APKINDEXes and verified package downloads, with a download cache.

A repository is a local directory, a `file://` URL or an `http(s)://` URL; all three are read through urllib (a
directory becomes a `file://` URL), so tests of one exercise the code path of the others. As with apk-tools, a
repository holds `<arch>/APKINDEX.tar.gz` and `<arch>/<name>-<version>.apk`.

- Keyring entries are paths or URLs of PEM public keys; a key is known by its file name (as in /etc/apk/keys).
- An index must carry a signature that a key of the keyring verifies (`allow_untrusted` lifts this).
- A package is fetched into the cache under its index checksum (`C:Q1…`, the SHA-1 of its control segment), and
  is only used when reading it gives that checksum back and its data segment matches `.PKGINFO`'s datahash.

The cache lives in `$MELANGE_BK_CACHE_DIR`, else `$XDG_CACHE_HOME/melange-bk`, else `~/.cache/melange-bk`.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Tuple

from melange_bk.apk.index import Index, IndexEntry, parse_index_bytes, q1
from melange_bk.apk.reader import ApkContents, read_apk
from melange_bk.apk.sign import Keyring, keyring_from_pems
from melange_bk.atomicfile import atomic_open
from melange_bk.errors import ApkError, MelangeError

INDEX_NAME = "APKINDEX.tar.gz"
USER_AGENT = "melange-bk"
TIMEOUT = 60.0
MAX_INDEX_BYTES = 256 << 20
CHUNK = 1 << 20


class RepositoryError(MelangeError):
    """A repository, key or package cannot be fetched or is not what its index says (exit code 1)."""

    exit_code = 1


def cache_dir(override: Optional[str] = None) -> str:
    """The user cache directory for downloads and installed layers (not created here)."""
    if override:
        return override
    env = os.environ.get("MELANGE_BK_CACHE_DIR")
    if env:
        return env
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return os.path.join(xdg, "melange-bk")
    return os.path.join(os.path.expanduser("~"), ".cache", "melange-bk")


def to_url(location: str) -> str:
    """A repository or key location as a URL: `http(s)://` and `file://` stay, a path becomes `file://`."""
    scheme = urllib.parse.urlsplit(location).scheme.lower()
    if scheme in ("http", "https", "file"):
        return location
    if scheme and len(scheme) > 1:
        raise RepositoryError(
            f"unsupported repository/key location {location!r}: use a path, file:// or http(s)://"
        )
    return "file://" + urllib.request.pathname2url(os.path.abspath(location))


def join_url(base: str, *parts: str) -> str:
    return base.rstrip("/") + "/" + "/".join(urllib.parse.quote(p) for p in parts)


def _open(url: str) -> object:
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        return urllib.request.urlopen(req, timeout=TIMEOUT)  # noqa: S310 (schemes checked by to_url)
    except urllib.error.HTTPError as e:
        raise RepositoryError(f"cannot fetch {url}: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        reason = e.reason.strerror if isinstance(e.reason, OSError) and e.reason.strerror else e.reason
        raise RepositoryError(f"cannot fetch {url}: {reason}") from None
    except OSError as e:
        raise RepositoryError(f"cannot fetch {url}: {e.strerror or e}") from None


def fetch_bytes(url: str, limit: int = MAX_INDEX_BYTES) -> bytes:
    resp = _open(url)
    try:
        with resp:  # type: ignore[attr-defined]
            data = resp.read(limit + 1)  # type: ignore[attr-defined]
    except OSError as e:
        raise RepositoryError(f"cannot fetch {url}: {e.strerror or e}") from None
    if len(data) > limit:
        raise RepositoryError(f"{url} is larger than {limit} bytes")
    return data


def fetch_to_file(url: str, dest: str) -> int:
    """Streams `url` to `dest` (atomically); returns its size."""
    resp = _open(url)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    size = 0
    try:
        with atomic_open(dest) as out, resp:  # type: ignore[attr-defined]
            while True:
                chunk = resp.read(CHUNK)  # type: ignore[attr-defined]
                if not chunk:
                    break
                out.write(chunk)
                size += len(chunk)
    except OSError as e:
        raise RepositoryError(f"cannot fetch {url}: {e.strerror or e}") from None
    return size


# ------------------------------------------------------------------------------------------------------ keyring


@dataclass(frozen=True)
class KeyFile:
    name: str  # the file name apk knows the key by, e.g. "wolfi-signing.rsa.pub"
    pem: bytes


def key_name(location: str) -> str:
    path = urllib.parse.urlsplit(to_url(location)).path
    name = urllib.parse.unquote(path.rstrip("/").rsplit("/", 1)[-1])
    if not name or name in (".", ".."):
        raise RepositoryError(f"keyring entry {location!r} has no file name")
    return name


def fetch_keys(locations: Iterable[str]) -> Tuple[KeyFile, ...]:
    """The keyring's PEM files, by name (sorted); the same name twice must be the same key."""
    keys = {}
    for loc in locations:
        name = key_name(loc)
        pem = fetch_bytes(to_url(loc), limit=1 << 20)
        if name in keys and keys[name] != pem:
            raise RepositoryError(f"two different keys are named {name!r} in the keyring")
        keys[name] = pem
    return tuple(KeyFile(n, keys[n]) for n in sorted(keys))


def make_keyring(keys: Sequence[KeyFile]) -> Keyring:
    return keyring_from_pems({k.name: k.pem for k in keys})


# ------------------------------------------------------------------------------------------------- repositories


@dataclass(frozen=True)
class Package:
    """An index entry and the repository it came from."""

    entry: IndexEntry
    repository: str  # as configured (path or URL)
    repository_url: str  # the <repo>/<arch> URL

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def version(self) -> str:
        return self.entry.version

    @property
    def checksum(self) -> str:
        return self.entry.checksum

    @property
    def filename(self) -> str:
        return f"{self.entry.name}-{self.entry.version}.apk"

    @property
    def url(self) -> str:
        return join_url(self.repository_url, self.filename)

    def __str__(self) -> str:
        return f"{self.entry.name}-{self.entry.version}"


@dataclass(frozen=True)
class RepositoryIndex:
    repository: str
    url: str  # <repo>/<arch>
    description: str
    packages: Tuple[Package, ...]
    signed_by: str  # key name, "" when untrusted


def load_index(
    repository: str, arch: str, keyring: Optional[Keyring], allow_untrusted: bool = False
) -> RepositoryIndex:
    """Fetches `<repository>/<arch>/APKINDEX.tar.gz` and checks its signature against `keyring`."""
    url = join_url(to_url(repository), arch)
    index_url = join_url(url, INDEX_NAME)
    data = fetch_bytes(index_url)
    try:
        if allow_untrusted:
            index = parse_index_bytes(data, index_url, None)
            signed_by = ""
        else:
            if keyring is None or not keyring.keys:
                raise RepositoryError(
                    f"{index_url}: cannot verify the index: the keyring is empty (add the repository's public key "
                    "to environment.contents.keyring)"
                )
            index = parse_index_bytes(data, index_url, keyring)
            signed_by = _verified_key(index, keyring)
    except ApkError as e:
        raise RepositoryError(f"{index_url}: {e.message}") from None
    packages = []
    for entry in index.entries:
        if not entry.checksum.startswith("Q1"):
            raise RepositoryError(f"{index_url}: package {entry.name}-{entry.version} has no Q1 checksum")
        packages.append(Package(entry=entry, repository=repository, repository_url=url))
    return RepositoryIndex(
        repository=repository,
        url=url,
        description=index.description,
        packages=tuple(packages),
        signed_by=signed_by,
    )


def _verified_key(index: Index, keyring: Keyring) -> str:
    for sig in index.signatures:
        if keyring.get(sig.key_name) is not None:
            return str(sig.key_name)
    return ""


def load_indexes(
    repositories: Sequence[str], arch: str, keyring: Optional[Keyring], allow_untrusted: bool = False
) -> Tuple[RepositoryIndex, ...]:
    return tuple(load_index(r, arch, keyring, allow_untrusted) for r in repositories)


# ------------------------------------------------------------------------------------------------------ packages


def _cache_name(checksum: str) -> str:
    """A file name for a Q1 checksum: the hex SHA-1."""
    try:
        raw = base64.b64decode(checksum[2:], validate=True)
    except (ValueError, TypeError):
        raw = b""
    if not checksum.startswith("Q1") or len(raw) != 20:
        raise RepositoryError(f"invalid package checksum {checksum!r}")
    return raw.hex() + ".apk"


def check_package(path: str, package: Package) -> ApkContents:
    """The package at `path` is the one the index names: same control checksum, intact data segment."""
    try:
        contents = read_apk(path)
    except ApkError as e:
        raise RepositoryError(f"{package.url}: {e.message}") from None
    got = q1(contents.control_sha1)
    if got != package.checksum:
        raise RepositoryError(
            f"{package.url}: checksum mismatch: the index says {package.checksum}, the package is {got}"
        )
    info = contents.info
    if info.datahash and info.datahash.lower() != contents.data_sha256:
        raise RepositoryError(f"{package.url}: data segment does not match .PKGINFO datahash")
    if info.name != package.name or info.pkgver != package.version:
        raise RepositoryError(
            f"{package.url}: the package is {info.name}-{info.pkgver}, the index says {package}"
        )
    return contents


@dataclass(frozen=True)
class FetchedPackage:
    package: Package
    path: str  # in the cache
    contents: ApkContents


def fetch_package(package: Package, cache: Optional[str] = None) -> FetchedPackage:
    """The package file, from the cache or downloaded into it, verified against its index checksum."""
    dest = os.path.join(cache_dir(cache), "apk", _cache_name(package.checksum))
    if os.path.isfile(dest):
        try:
            return FetchedPackage(package, dest, check_package(dest, package))
        except RepositoryError:
            os.unlink(dest)  # a corrupt cache entry: fetch again
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dest), prefix=".pkg-")
    os.close(fd)
    try:
        fetch_to_file(package.url, tmp)
        contents = check_package(tmp, package)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return FetchedPackage(package, dest, dataclasses.replace(contents, path=dest))


def fetch_packages(packages: Sequence[Package], cache: Optional[str] = None) -> Tuple[FetchedPackage, ...]:
    out: List[FetchedPackage] = []
    for p in packages:
        out.append(fetch_package(p, cache))
    return tuple(out)
