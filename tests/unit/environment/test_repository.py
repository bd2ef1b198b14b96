"""Repository client: local dir, file:// and http:// (a server on 127.0.0.1), signatures, checksums, cache."""

from __future__ import annotations

import base64
import functools
import http.server
import os
import shutil
import threading
from pathlib import Path
from typing import Iterator

import pytest

from melange_bk.environment.repository import (
    RepositoryError,
    cache_dir,
    fetch_keys,
    fetch_package,
    load_index,
    make_keyring,
    to_url,
)

from .conftest import ARCH, Key, Pkg, RepoFactory, build_package


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def serve() -> Iterator:
    servers = []

    def start(directory: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(directory))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def _keyring(key: Key):
    return make_keyring(fetch_keys([key.public]))


@pytest.fixture
def repo(make_repo: RepoFactory) -> Path:
    return make_repo(
        [Pkg("hello", "1.0-r0", files={"usr/bin/hello": b"#!/bin/sh\necho hi\n"}), Pkg("lib", "2.1-r3")]
    )


def _locations(repo: Path, serve) -> dict:
    return {"dir": str(repo), "file": "file://" + str(repo), "http": serve(repo)}


@pytest.mark.parametrize("kind", ["dir", "file", "http"])
def test_index_and_package_from_each_kind(kind: str, repo: Path, key: Key, serve, cache: str) -> None:
    location = _locations(repo, serve)[kind]
    index = load_index(location, ARCH, _keyring(key))
    assert sorted((p.name, p.version) for p in index.packages) == [("hello", "1.0-r0"), ("lib", "2.1-r3")]
    assert index.signed_by == "test.rsa.pub"
    assert index.description == "test repo"
    hello = next(p for p in index.packages if p.name == "hello")
    fetched = fetch_package(hello, cache)
    assert fetched.path.startswith(os.path.join(cache, "apk") + os.sep)
    assert fetched.contents.info.name == "hello"


def test_keys_by_url(key: Key, serve) -> None:
    base = serve(Path(key.public).parent)
    (k,) = fetch_keys([base + "/test.rsa.pub"])
    assert k.name == "test.rsa.pub"
    assert k.pem == Path(key.public).read_bytes()


def test_same_key_name_twice_must_be_the_same_key(key: Key, other_key: Key) -> None:
    with pytest.raises(RepositoryError, match="two different keys are named 'test.rsa.pub'"):
        fetch_keys([key.public, other_key.public])


def test_index_signed_by_another_key_is_refused(make_repo: RepoFactory, key: Key, other_key: Key) -> None:
    repo = make_repo([Pkg("hello")], index_signer=other_key)
    with pytest.raises(RepositoryError, match="APKINDEX.tar.gz: signature check failed"):
        load_index(str(repo), ARCH, _keyring(key))


def test_unsigned_index_is_refused_unless_untrusted_allowed(make_repo: RepoFactory, key: Key) -> None:
    repo = make_repo([Pkg("hello")], signer=None)
    with pytest.raises(RepositoryError, match="not signed"):
        load_index(str(repo), ARCH, _keyring(key))
    index = load_index(str(repo), ARCH, None, allow_untrusted=True)
    assert [p.name for p in index.packages] == ["hello"]


def test_empty_keyring_is_explained(repo: Path) -> None:
    with pytest.raises(RepositoryError, match="the keyring is empty"):
        load_index(str(repo), ARCH, make_keyring(()))


def test_missing_index(tmp_path: Path, serve, key: Key) -> None:
    with pytest.raises(RepositoryError, match=r"cannot fetch .*/x86_64/APKINDEX.tar.gz"):
        load_index(str(tmp_path / "nothing"), ARCH, _keyring(key))
    with pytest.raises(RepositoryError, match="HTTP 404"):
        load_index(serve(tmp_path), ARCH, _keyring(key))


def test_package_whose_checksum_differs_from_the_index_is_refused(
    repo: Path, key: Key, serve, cache: str, tmp_path: Path
) -> None:
    index = load_index(serve(repo), ARCH, _keyring(key))
    hello = next(p for p in index.packages if p.name == "hello")
    # Same name and version, different content: a different control segment (datahash), so a different Q1.
    (tmp_path / "evil").mkdir()
    other = build_package(
        Pkg("hello", "1.0-r0", files={"usr/bin/hello": b"evil\n"}),
        tmp_path / "evil",
        key.signing_key(),
        tmp_path,
    )
    shutil.copyfile(other, repo / ARCH / "hello-1.0-r0.apk")
    with pytest.raises(RepositoryError, match="checksum mismatch: the index says Q1"):
        fetch_package(hello, cache)
    assert not os.listdir(os.path.join(cache, "apk")), "a refused download is not cached"


def test_truncated_package_is_refused(repo: Path, key: Key, cache: str) -> None:
    index = load_index(str(repo), ARCH, _keyring(key))
    hello = next(p for p in index.packages if p.name == "hello")
    path = repo / ARCH / "hello-1.0-r0.apk"
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(RepositoryError, match="hello-1.0-r0.apk: "):
        fetch_package(hello, cache)


def test_cache_is_keyed_by_checksum_and_reused(repo: Path, key: Key, cache: str) -> None:
    index = load_index(str(repo), ARCH, _keyring(key))
    hello = next(p for p in index.packages if p.name == "hello")
    first = fetch_package(hello, cache)
    shutil.rmtree(repo)  # the repository is gone: the cache still serves the package
    again = fetch_package(hello, cache)
    assert again.path == first.path
    assert os.path.basename(first.path) == base64.b64decode(hello.checksum[2:]).hex() + ".apk"


def test_corrupt_cache_entry_is_fetched_again(repo: Path, key: Key, cache: str) -> None:
    index = load_index(str(repo), ARCH, _keyring(key))
    hello = next(p for p in index.packages if p.name == "hello")
    first = fetch_package(hello, cache)
    Path(first.path).write_bytes(b"garbage")
    again = fetch_package(hello, cache)
    assert again.contents.info.name == "hello"


def test_cache_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MELANGE_BK_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == str(tmp_path / "xdg" / "melange-bk")
    monkeypatch.setenv("MELANGE_BK_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_dir() == str(tmp_path / "mine")
    assert cache_dir("/explicit") == "/explicit"
    monkeypatch.delenv("MELANGE_BK_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == str(tmp_path / "home" / ".cache" / "melange-bk")


def test_to_url() -> None:
    assert to_url("https://x/y") == "https://x/y"
    assert to_url("file:///r") == "file:///r"
    assert to_url("/srv/repo") == "file:///srv/repo"
    with pytest.raises(RepositoryError, match="unsupported"):
        to_url("ftp://x/y")
