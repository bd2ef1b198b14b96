"""Pants' REAPI remote cache across two clones: same Process digests, and the second clone builds with no solve.

A BuildGrid server (CAS + ActionCache in memory, `bin/remote-cache serve`) runs on 127.0.0.1. Two `git clone`s
of this repository in different temporary folders, each with its own Pants local store and named caches (they
share only the Pants virtualenv, the wheels and the example environment: rootfs, bootstrap repository, keys, as
symlinks, i.e. under different paths), run `./pants package ::` with the remote cache on:

- clone A with the BuildKit daemon: every `melange-bk build` misses the remote cache and is solved;
- clone B with BUILDKIT_HOST pointing at a socket nobody listens on: every `melange-bk build` is a remote cache hit
  under the *same action digest* as in A (from Pants' debug log), no build Process runs, and dist/ is identical.

Needs BUILDKIT_HOST (fails, never skips, like the integration tests), MELANGE_BK_REPO (the checkout, from
pants.toml's [test] extra_env_vars) and BuildGrid, which the test installs on first use (`bin/remote-cache install`:
idempotent, quiet when ready).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from typing import Dict, Iterator, Tuple

import pytest

from tests.integration.local import cache_dir as _cache_dir
from tests.integration.local import checkout, free_port, install
from tests.pants_it.clone import clone as _clone
from tests.pants_it.clone import dist_digests

PACKAGES = ("greet", "hello", "libgreet", "ranged", "templated")
INSTANCE = "melange-bk"
_CACHE_LINE = re.compile(r'remote cache (hit|miss) for: "(melange-bk build [^"]+)" digest=(Digest \{[^}]*\})')
_COUNTER = re.compile(r"^\s+(\w+): (\d+)$", re.M)


def _repo() -> str:
    try:
        return checkout()
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="module")
def remote_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    repo = _repo()
    try:
        install("remote-cache", "install")  # BuildGrid into .cache/buildgrid-venv, once
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    port = free_port()
    run_dir = tmp_path_factory.mktemp("buildgrid")
    log = open(run_dir / "buildgrid.log", "wb")
    server = subprocess.Popen(
        [os.path.join(repo, "bin", "remote-cache"), "serve", str(port), str(run_dir)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "MELANGE_BK_CACHE": _cache_dir(repo)},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"BuildGrid did not start: {(run_dir / 'buildgrid.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield f"grpc://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _pants(clone: str, remote: str, buildkit_host: str, home: str) -> Tuple[str, Dict[str, int]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PANTS_", "MELANGE_BK_", "BUILDKIT_"))}
    env.update(HOME=home, BUILDKIT_HOST=buildkit_host, MELANGE_BK_NO_FETCH_WHEELS="1")
    argv = [
        "./pants",
        "--no-pantsd",
        "--no-dynamic-ui",
        "-ldebug",
        f"--local-store-dir={home}/lmdb_store",
        f"--named-caches-dir={home}/named_caches",
        "--remote-cache-read",
        "--remote-cache-write",
        f"--remote-store-address={remote}",
        f"--remote-instance-name={INSTANCE}",
        "--stats-log",
        "package",
        "::",
    ]
    proc = subprocess.run(
        argv, cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=1500
    )
    out = proc.stdout.decode("utf-8", "replace")
    with open(os.path.join(home, "pants.log"), "w", encoding="utf-8") as f:
        f.write(out)
    assert proc.returncode == 0, f"./pants package :: failed in {clone}:\n{out[-6000:]}"
    return out, {k: int(v) for k, v in _COUNTER.findall(out)}


def _lookups(out: str) -> Dict[str, Tuple[str, str]]:
    """description -> (hit|miss, action digest) of every `melange-bk build` remote cache lookup."""
    return {m.group(2): (m.group(1), m.group(3)) for m in _CACHE_LINE.finditer(out)}


def test_second_clone_builds_from_the_remote_cache_without_the_daemon(
    buildkit_addr: str, remote_cache: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    repo = _repo()
    a_home, b_home = tmp_path_factory.mktemp("clone-a"), tmp_path_factory.mktemp("clone-b-elsewhere")
    a = _clone(repo, str(a_home / "melange-bk"))
    b = _clone(repo, str(b_home / "checkout" / "of" / "melange-bk"))
    assert a != b

    out_a, stats_a = _pants(a, remote_cache, buildkit_addr, str(a_home))
    dead = f"unix://{b_home}/nobody-listens.sock"  # no daemon: a solve would fail the run
    out_b, stats_b = _pants(b, remote_cache, dead, str(b_home))

    lookups_a, lookups_b = _lookups(out_a), _lookups(out_b)
    builds = sorted(f"melange-bk build packages/{p}/melange.yaml" for p in PACKAGES)
    assert sorted(lookups_a) == builds, out_a[-4000:]
    assert sorted(lookups_b) == builds, out_b[-4000:]
    # The same Process digests in both clones (two paths, two local stores, two daemon addresses) ...
    assert {d: v[1] for d, v in lookups_a.items()} == {d: v[1] for d, v in lookups_b.items()}
    # ... A solved every package (the remote cache was empty), B none: all five came from the remote cache.
    assert {v[0] for v in lookups_a.values()} == {"miss"}
    assert {v[0] for v in lookups_b.values()} == {"hit"}
    assert stats_a.get("remote_cache_write_successes", 0) >= len(PACKAGES), stats_a
    assert stats_b.get("remote_cache_requests_cached", 0) >= len(PACKAGES), stats_b
    # No local run raced the lookups (builder.py: SPECULATION_DELAY_MS); B's local Processes are the host-config
    # probe and Pants' own (PEX tooling), never a build: with the daemon unreachable a build would fail the run.
    assert stats_b.get("remote_cache_speculation_local_completed_first", 0) == 0, stats_b
    assert stats_b.get("local_execution_requests", 0) < len(PACKAGES), stats_b
    # Byte-identical packages and indexes.
    dist_a, dist_b = dist_digests(a), dist_digests(b)
    assert len([p for p in dist_a if p.endswith(".apk")]) >= len(PACKAGES)
    assert dist_a == dist_b
    print(
        f"remote cache: A {len(lookups_a)} builds solved, {stats_a.get('remote_cache_write_successes')} writes; "
        f"B {stats_b.get('remote_cache_requests_cached')} remote hits, 0 solves, "
        f"{stats_b.get('local_execution_requests')} local processes (none a build)"
    )
    shutil.rmtree(a, ignore_errors=True)
    shutil.rmtree(b, ignore_errors=True)
