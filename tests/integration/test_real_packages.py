"""Real Wolfi packages (packages/real/*) built on the Debian build rootfs from Debian's upstream tarballs.

The `.orig.tar.*` files come from `bin/real-sources` (.cache/real-sources/, or MELANGE_BK_REAL_SOURCES), which the
test runs itself (a download on first use, quiet when they are there), and are
served on 127.0.0.1 (port 38917, or an ephemeral one if it is taken), passed to the YAMLs as `--var source-port=PORT`: the `fetch` steps
become daemon-side LLB HTTP sources (the daemon shares the host's network namespace). Each package is built with
`melange-bk build`, its `test:` sections run with `melange-bk test`, and its binary (or library) from the
extracted APK is run on this host as a smoke test (the host and the build rootfs are both Debian bookworm).
"""

from __future__ import annotations

import ctypes
import functools
import http.server
import os
import posixpath
import subprocess
import tarfile
import threading
import time
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest
import yaml

from melange_bk.apk import load_keyring, verify_apk, write_keypair
from melange_bk.cli.main import main
from melange_bk.environment.bootstrap import BootstrapRepo, build_bootstrap_repo
from melange_bk.environment.prepare import host_arch
from tests.integration.local import install

REPO_ROOT = Path(__file__).resolve().parents[2]
REAL = REPO_ROOT / "packages" / "real"
PACKAGES = ("m4", "lz4", "zlib", "gzip")


def _sources_dir() -> Path:
    return Path(os.environ.get("MELANGE_BK_REAL_SOURCES") or REPO_ROOT / ".cache" / "real-sources")


def _yaml(name: str) -> dict:
    with open(REAL / name / "melange.yaml", encoding="utf-8") as f:
        return yaml.safe_load(f)


def _source_file(name: str) -> Tuple[str, str]:
    """The tarball a package's fetch step asks for, and the version it names."""
    doc = _yaml(name)
    version = str(doc["package"]["version"])
    (fetch,) = (s for s in doc["pipeline"] if s.get("uses") == "fetch")
    return posixpath.basename(fetch["with"]["uri"]).replace("${{package.version}}", version), version


FIXED_PORT = 38917


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        pass


@pytest.fixture(scope="module")
def source_port() -> Iterator[int]:
    root = _sources_dir()
    try:
        install("real-sources")  # checks each tarball's sha256; downloads the missing ones
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    missing = [f for f, _ in map(_source_file, PACKAGES) if not (root / f).is_file()]
    if missing:
        pytest.fail(
            f"bin/real-sources left Debian source tarballs missing in {root}: {', '.join(missing)}",
            pytrace=False,
        )
    handler = functools.partial(_Handler, directory=str(root))
    # A fixed port when free: the port is in each fetch step's text, so a fixed one lets a rerun hit the daemon's
    # cache instead of rebuilding all four packages; an ephemeral one otherwise.
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", FIXED_PORT), handler)
    except OSError:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="real-sources", daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def debian_tarball() -> str:
    path = os.environ.get("MELANGE_BK_DEBIAN_ROOTFS") or str(REPO_ROOT / ".cache/rootfs/debian-build.tar")
    if not os.path.isfile(path):
        pytest.fail(f"no Debian build rootfs at {path}: run bin/example-env", pytrace=False)
    return path


@pytest.fixture(scope="module")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> BootstrapRepo:
    return build_bootstrap_repo(str(tmp_path_factory.mktemp("bootstrap")), arch=host_arch())


@pytest.fixture(scope="module")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("keys")
    write_keypair(str(d / "real.rsa"), bits=2048)
    return d / "real.rsa"


def _common(port: int, tarball: str, repo: BootstrapRepo, addr: str) -> List[str]:
    args = ["--var", f"source-port={port}", "--rootfs", tarball, "--repository-append", repo.path]
    for k in repo.keyring:
        args += ["--keyring-append", k]
    return args + ["--buildkit-addr", addr, "--progress", "plain"]


def _extract(apks: List[Path], dest: Path) -> Path:
    dest.mkdir()
    for apk in apks:
        with tarfile.open(apk) as tar:  # one gzip'd tar: signature, control and data segments
            members = [m for m in tar.getmembers() if not m.name.startswith(".")]
            kwargs = {"filter": "fully_trusted"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(dest, members=members, **kwargs)  # noqa: S202 (our own freshly built package)
    return dest


def _run(argv: List[str], root: Path, stdin: str = "") -> str:
    env = dict(os.environ, LD_LIBRARY_PATH=f"{root}/usr/lib:{root}/lib")
    out = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env, timeout=60, check=True)
    return out.stdout


def _smoke_m4(root: Path, version: str) -> None:
    assert version in _run([str(root / "usr/bin/m4"), "--version"], root)
    assert _run([str(root / "usr/bin/m4")], root, "define(FOO, bar)FOO eval(2+3)\n").strip() == "bar 5"


def _smoke_lz4(root: Path, version: str) -> None:
    lz4 = str(root / "usr/bin/lz4")
    assert version in _run([lz4, "--version"], root)
    data = "The quick brown fox jumps over the lazy dog. " * 100
    packed = subprocess.run([lz4, "-c"], input=data.encode(), capture_output=True, check=True, timeout=60,
                            env=dict(os.environ, LD_LIBRARY_PATH=f"{root}/usr/lib")).stdout  # fmt: skip
    assert len(packed) < len(data)
    back = subprocess.run([lz4, "-dc"], input=packed, capture_output=True, check=True, timeout=60,
                          env=dict(os.environ, LD_LIBRARY_PATH=f"{root}/usr/lib")).stdout  # fmt: skip
    assert back.decode() == data


def _smoke_zlib(root: Path, version: str) -> None:
    libz = ctypes.CDLL(str(root / "lib/libz.so.1"))
    libz.zlibVersion.restype = ctypes.c_char_p
    assert libz.zlibVersion().decode() == version


def _smoke_gzip(root: Path, version: str) -> None:
    assert version in _run([str(root / "bin/gzip"), "--version"], root)
    packed = subprocess.run([str(root / "bin/gzip"), "-c"], input=b"gzip round trip\n", capture_output=True,
                            check=True, timeout=60).stdout  # fmt: skip
    assert (
        subprocess.run(["gzip", "-dc"], input=packed, capture_output=True, check=True).stdout
        == b"gzip round trip\n"
    )


SMOKE = {"m4": _smoke_m4, "lz4": _smoke_lz4, "zlib": _smoke_zlib, "gzip": _smoke_gzip}
# Which built packages the smoke test extracts (the binary and the libraries it loads).
SMOKE_APKS: Dict[str, Tuple[str, ...]] = {"lz4": ("lz4", "liblz4-1")}


@pytest.mark.parametrize("name", PACKAGES)
def test_real_package_builds_and_passes_its_tests(  # type: ignore[no-untyped-def]
    name: str, source_port: int, debian_tarball: str, bootstrap: BootstrapRepo, signing_key: Path,
    buildkit_addr: str, tmp_path: Path, capsys,
) -> None:  # fmt: skip
    yaml_path = str(REAL / name / "melange.yaml")
    out = tmp_path / "out"
    common = _common(source_port, debian_tarball, bootstrap, buildkit_addr)
    start = time.monotonic()
    rc = main(["build", yaml_path, "--signing-key", str(signing_key), "--out-dir", str(out), *common])
    took = time.monotonic() - start
    assert rc == 0, capsys.readouterr().err[-3000:]
    print(f"{name}: built in {took:.1f}s")

    doc = _yaml(name)
    version = str(doc["package"]["version"])
    arch_dir = out / host_arch()
    names = [name] + [s["name"] for s in doc.get("subpackages", [])]
    keyring = load_keyring(str(signing_key.parent))
    for n in names:
        apk = arch_dir / f"{n}-{version}-r0.apk"
        assert apk.is_file(), f"{apk.name} not written: {sorted(p.name for p in arch_dir.iterdir())}"
        verify_apk(str(apk), keyring)

    rc = main(
        ["test", yaml_path, "--out-dir", str(out), "--keyring-append", str(signing_key) + ".pub", *common]
    )
    assert rc == 0, capsys.readouterr().err[-3000:]

    apks = [arch_dir / f"{n}-{version}-r0.apk" for n in SMOKE_APKS.get(name, (name,))]
    SMOKE[name](_extract(apks, tmp_path / "root"), version)
