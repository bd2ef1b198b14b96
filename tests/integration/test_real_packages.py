"""Real Wolfi packages (packages/real/*) built on the Debian build rootfs from Debian's upstream tarballs.

The `.orig.tar.*` files come from `bin/real-sources` (.cache/real-sources/, or MELANGE_BK_REAL_SOURCES), which the
test runs itself (a download on first use, quiet when they are there), and are
served on 127.0.0.1 (port 38917, or an ephemeral one if it is taken), passed to the YAMLs as `--var source-port=PORT`: the `fetch` steps
become daemon-side LLB HTTP sources (the daemon shares the host's network namespace). Each package is built with
`melange-bk build`, its `test:` sections run with `melange-bk test`, and its binary (or library) from the
extracted APK is run on this host as a smoke test (the host and the build rootfs are both Debian bookworm).

packages/real/potrace is different: Wolfi's YAML unchanged but for its source, so its `test:` sections use Wolfi's
own test pipelines (`test/tw/*`, `test/pkgconf`, `test/docs`) from the shared Wolfi tree (../shared/wolfi-os, or
MELANGE_BK_WOLFI_OS). Most of those need Wolfi's `tw` tool packages (ldd-check, ver-check, help-check, ...) or
apk-tools, which neither the bootstrap repository nor the Debian rootfs provides: `melange-bk test` of the YAML
as it is must fail naming one of them, and the YAML without exactly those steps must pass.
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
# Wolfi YAMLs changed only in their source step: their tests use Wolfi's test pipelines (test_wolfi_yaml_...).
UNCHANGED = ("potrace",)


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
    missing = [f for f, _ in map(_source_file, PACKAGES + UNCHANGED) if not (root / f).is_file()]
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
def wolfi_test_pipelines(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A --pipeline-dir holding only `test/` of the Wolfi tree's pipelines: the YAML's test: sections get Wolfi's
    own test pipelines, its build steps our built-in ones (as for the adapted packages)."""
    # beside the checkout; under `./pants test` the sandbox is not the checkout, MELANGE_BK_REPO names it
    checkout = Path(os.environ.get("MELANGE_BK_REPO") or REPO_ROOT)
    tree = Path(os.environ.get("MELANGE_BK_WOLFI_OS") or checkout.parent / "shared" / "wolfi-os")
    test_dir = tree / "pipelines" / "test"
    if not test_dir.is_dir():
        pytest.fail(f"the Wolfi tree is missing: {test_dir} (set MELANGE_BK_WOLFI_OS)", pytrace=False)
    d = tmp_path_factory.mktemp("wolfi-pipelines")
    (d / "test").symlink_to(test_dir)
    return d


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


def _smoke_potrace(root: Path, version: str) -> None:
    potrace = str(root / "usr/bin/potrace")
    assert version in _run([potrace, "--version"], root)
    eps = _run([potrace, "-o", "-"], root, "P1\n8 8\n" + "1 1 1 1 1 1 1 1\n" * 8)
    assert eps.startswith("%!PS-Adobe"), eps[:200]


SMOKE = {
    "m4": _smoke_m4, "lz4": _smoke_lz4, "zlib": _smoke_zlib, "gzip": _smoke_gzip, "potrace": _smoke_potrace,
}  # fmt: skip
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


def _pipeline_needs(pipeline_dir: Path, uses: str) -> Tuple[str, ...]:
    """The `needs.packages` of a test pipeline of the Wolfi tree (empty for our built-in pipelines)."""
    path = pipeline_dir / f"{uses}.yaml"
    if not path.is_file():
        return ()
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f) or {}
    return tuple(str(n) for n in ((doc.get("needs") or {}).get("packages") or ()))


def _without_unprovided(
    doc: dict, pipeline_dir: Path, provided: set
) -> Tuple[dict, List[Tuple[str, str, Tuple[str, ...]]]]:
    """The YAML with each test step removed whose pipeline needs a package that `provided` lacks (nothing else
    changed), and those steps as (package, uses, the needs not provided)."""
    dropped: List[Tuple[str, str, Tuple[str, ...]]] = []

    def keep(owner: str, test: dict) -> None:
        steps = []
        for step in test.get("pipeline") or ():
            needs = _pipeline_needs(pipeline_dir, step.get("uses", ""))
            missing = tuple(sorted(n for n in needs if n not in provided))
            if missing:
                dropped.append((owner, step["uses"], missing))
            else:
                steps.append(step)
        test["pipeline"] = steps

    if doc.get("test"):
        keep(doc["package"]["name"], doc["test"])
    for sub in doc.get("subpackages") or ():
        if sub.get("test"):
            keep(sub["name"], sub["test"])
    return doc, dropped


@pytest.mark.parametrize("name", UNCHANGED)
def test_wolfi_yaml_builds_and_runs_the_tests_this_environment_allows(  # type: ignore[no-untyped-def]
    name: str, source_port: int, debian_tarball: str, bootstrap: BootstrapRepo, signing_key: Path,
    wolfi_test_pipelines: Path, buildkit_addr: str, tmp_path: Path, capsys,
) -> None:  # fmt: skip
    yaml_path = str(REAL / name / "melange.yaml")
    out = tmp_path / "out"
    common = _common(source_port, debian_tarball, bootstrap, buildkit_addr)
    common += ["--pipeline-dir", str(wolfi_test_pipelines)]  # the build compiles the test: sections too
    start = time.monotonic()
    rc = main(["build", yaml_path, "--signing-key", str(signing_key), "--out-dir", str(out), *common])
    took = time.monotonic() - start
    assert rc == 0, capsys.readouterr().err[-3000:]

    doc = _yaml(name)
    full_version = f"{doc['package']['version']}-r{doc['package'].get('epoch', 0)}"
    arch_dir = out / host_arch()
    keyring = load_keyring(str(signing_key.parent))
    for n in [name] + [s["name"] for s in doc.get("subpackages", [])]:
        apk = arch_dir / f"{n}-{full_version}.apk"
        assert apk.is_file(), f"{apk.name} not written: {sorted(p.name for p in arch_dir.iterdir())}"
        verify_apk(str(apk), keyring)

    test_args = ["--out-dir", str(out), "--keyring-append", str(signing_key) + ".pub", *common]
    provided = {p.rsplit("-", 2)[0] for p in bootstrap.packages}
    runnable, dropped = _without_unprovided(_yaml(name), wolfi_test_pipelines, provided)
    assert dropped, "every test pipeline's needs resolve now: run the YAML's tests as they are (PACKAGES)"

    # As it is: the test environments do not resolve, and the error names a package a dropped step needs.
    capsys.readouterr()
    rc = main(["test", yaml_path, "--source-dir", str(REAL / name), *test_args])
    err = capsys.readouterr().err
    assert rc == 2, err[-3000:]
    assert any(f'no package provides "{n}"' in err for _, _, missing in dropped for n in missing), err

    # Without those steps: every other step of every test: section runs, unchanged.
    runnable_path = tmp_path / "runnable" / "melange.yaml"
    runnable_path.parent.mkdir()
    runnable_path.write_text(yaml.safe_dump(runnable, sort_keys=False), encoding="utf-8")
    rc = main(["test", str(runnable_path), "--source-dir", str(REAL / name), *test_args])
    captured = capsys.readouterr()
    assert rc == 0, captured.err[-3000:]
    assert f"ok {name} (" in captured.out, captured.out
    with capsys.disabled():  # the report, for -s
        print(f"\n{name}: built in {took:.1f}s; test steps this environment cannot run:")
        for owner, uses, missing in dropped:
            print(f"  {owner}: {uses} (needs {', '.join(missing)})")
        print(captured.out.strip())

    root = _extract([arch_dir / f"{name}-{full_version}.apk"], tmp_path / "root")
    SMOKE[name](root, str(doc["package"]["version"]))
