"""`./pants package` / `./pants test` on a temporary clone (hello, libgreet, greet) against the real daemon.

The tests share one clone and one Pants home (local store, named caches) and run in file order: a cold build,
then a no-change run (daemon unreachable), then edits that are undone afterwards (the undone state is warm again).
Which builds ran is read from Pants' own debug log (`spawned local process … "melange-bk.pex", "build", YAML`,
logged only when a Process runs, never for a cache hit) and `--stats-log` counters; never from timing.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import zlib
from pathlib import Path
from typing import Dict, List

import pytest

from tests.pants_it.clone import PantsRun, PantsRunner, dist_digests, git

HELLO, LIBGREET, GREET = (f"packages/{p}/melange.yaml" for p in ("hello", "libgreet", "greet"))


def _ok(run: PantsRun) -> PantsRun:
    assert run.returncode == 0, run.tail()
    return run


def _pkginfo(apk: str) -> List[str]:
    """The .PKGINFO lines of an .apk (concatenated gzip streams: signature, control, data)."""
    with open(apk, "rb") as f:
        rest = f.read()
    while rest:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        member = d.decompress(rest) + d.flush()
        rest = d.unused_data
        with tarfile.open(fileobj=io.BytesIO(member)) as tar:
            try:
                info = tar.extractfile(".PKGINFO")
            except KeyError:
                continue
            assert info is not None
            return info.read().decode().splitlines()
    raise AssertionError(f"{apk}: no .PKGINFO")


def _edit(repo: str, path: str, old: str, new: str) -> None:
    full = os.path.join(repo, path)
    with open(full) as f:
        text = f.read()
    assert old in text, (path, old)
    with open(full, "w") as f:
        f.write(text.replace(old, new, 1))


def _restore(repo: str, *paths: str) -> None:
    git(repo, "checkout", "--", *paths)


_STATE: Dict[str, Dict[str, str]] = {}


def test_greet_builds_after_libgreet_with_libgreet_dev(pants: PantsRunner, buildkit_addr: str) -> None:
    run = _ok(pants.run("package", "packages/greet:apk", buildkit_host=buildkit_addr))
    # Exactly the two builds, libgreet first: greet's Process starts after libgreet's completed (Pants awaits
    # the dependency's BuiltPackage), and Pants reports them in that order.
    assert run.spawned() == [LIBGREET, GREET], run.tail()
    assert run.completed() == [LIBGREET, GREET], run.tail()
    # greet's build got libgreet's packages as a local repository (`__deps/0`), trusted by our own key ...
    greet_argv = next(
        line for line in run.out.splitlines() if '"build", "packages/greet/melange.yaml"' in line
    )
    assert '"--repository-append", "__deps/0"' in greet_argv
    assert '"--repository-append", "__deps/0"' not in next(
        line for line in run.out.splitlines() if '"build", "packages/libgreet/melange.yaml"' in line
    )
    # ... and its environment held libgreet-dev: `cc … -lgreet` linked against it (greet.h, libgreet.so come only
    # from libgreet-dev), so SCA found the runtime dependency on libgreet's soname.
    apks = sorted(p for p in dist_digests(pants.repo) if p.endswith(".apk"))
    assert apks == ["dist/packages.greet/apk/x86_64/greet-1.0.0-r0.apk"], apks
    assert "depend = so:libgreet.so.1" in _pkginfo(os.path.join(pants.repo, apks[0]))
    _STATE["dist"] = dist_digests(pants.repo)


def test_no_change_runs_no_build_even_with_the_daemon_unreachable(
    pants: PantsRunner, buildkit_addr: str, tmp_path: Path
) -> None:
    if "dist" not in _STATE:
        pytest.fail("needs test_greet_builds_after_libgreet_with_libgreet_dev's cold build first")
    dead = f"unix://{tmp_path}/nobody-listens.sock"  # a solve would fail the run
    run = _ok(pants.run("package", "packages/greet:apk", buildkit_host=dead))
    assert run.spawned() == [], run.tail()
    assert run.completed() == [], run.tail()
    assert "Starting: melange-bk build" not in run.out
    stats = run.stats
    # Both builds were local cache hits; what ran locally is only the host-config probe (once per run without pantsd) and Pants'
    # interpreter lookup, each of which the debug log shows as spawned.
    assert stats["local_cache_requests_cached"] >= 2, stats
    assert stats["local_execution_requests"] == run.out.count("spawned local process as"), stats
    assert len(run.spawned("host-config")) == 1, run.tail()
    assert dist_digests(pants.repo) == _STATE["dist"]


def test_editing_a_leaf_rebuilds_only_it(pants: PantsRunner, buildkit_addr: str) -> None:
    # hello has not been built in this clone yet: `package ::` builds it, and only it.
    run = _ok(pants.run("package", "::", buildkit_host=buildkit_addr))
    assert run.spawned() == [HELLO], run.tail()
    _edit(pants.repo, GREET, "description: A program", "description: An edited program")
    try:
        run = _ok(pants.run("package", "::", buildkit_host=buildkit_addr))
        assert run.spawned() == [GREET], run.tail()
    finally:
        _restore(pants.repo, GREET)
    # Undone: the previous state is a cache hit again.
    run = _ok(pants.run("package", "::", buildkit_host=buildkit_addr))
    assert run.spawned() == [], run.tail()


def test_editing_libgreet_rebuilds_it_and_greet_not_hello(pants: PantsRunner, buildkit_addr: str) -> None:
    _edit(pants.repo, LIBGREET, "description: A tiny", "description: An edited tiny")
    try:
        run = _ok(pants.run("package", "::", buildkit_host=buildkit_addr))
        assert run.spawned() == [LIBGREET, GREET], run.tail()
        assert run.completed() == [LIBGREET, GREET], run.tail()
    finally:
        _restore(pants.repo, LIBGREET)


def test_a_failing_build_names_its_step_with_the_log_tail(pants: PantsRunner, buildkit_addr: str) -> None:
    compile_step = "      cc -O2 -Wall -o hello hello.c\n"
    _edit(
        pants.repo, HELLO, compile_step, compile_step + '      echo "compiled; now breaking"\n      exit 7\n'
    )
    try:
        run = pants.run("package", "packages/hello:apk", buildkit_host=buildkit_addr, debug=False)
        assert run.returncode != 0, run.tail()
        # In Pants' error: the step by its name and exit status, its command on lines of its own (not the daemon's
        # one-line quote of the whole script), and the end of its log.
        assert 'step "[hello] step 1: compile" failed: exit code: 7\n  command:\n' in run.out, run.tail()
        assert '\n    echo "compiled; now breaking"\n    exit 7\n' in run.out, run.tail()
        assert "  last log lines:\n    compiled; now breaking\n" in run.out, run.tail()
        assert "did not complete successfully" not in run.out, run.tail()
    finally:
        _restore(pants.repo, HELLO)


def test_pants_test_passes_and_fails_with_the_log(pants: PantsRunner, buildkit_addr: str) -> None:
    run = _ok(pants.run("test", "packages/hello:apk", buildkit_host=buildkit_addr))
    assert run.spawned("test") == [HELLO], run.tail()
    assert "✓ packages/hello:apk succeeded" in run.out, run.tail()

    _edit(pants.repo, HELLO, 'grep -qx "Hello, world!"', 'grep -qx "Goodbye, world!"')
    try:
        run = pants.run("test", "packages/hello:apk", buildkit_host=buildkit_addr)
        assert run.returncode != 0, run.tail()
        assert "packages/hello:apk failed" in run.out, run.tail()
        # The failing step is named, with its log (the command that failed), in Pants' output.
        assert "says hello" in run.out, run.tail()
        assert "Goodbye, world!" in run.out, run.tail()
    finally:
        _restore(pants.repo, HELLO)


def test_pantsd_measures_machine_local_inputs_again_only_when_they_change(
    pants: PantsRunner, buildkit_addr: str, tmp_path: Path
) -> None:
    """With pantsd, the host-config probe is memoised until a stat of what it reads changes (Pants does not watch
    files outside the repository); a changed content then reaches the builds' keys."""
    key = os.path.join(pants.repo, ".cache", "keys", "melange-bk-examples.rsa.pub")
    extra = tmp_path / "extra-keyring.rsa.pub"
    shutil.copyfile(key, extra)
    option = f"--melange-keyring=+['{extra}']"  # an absolute path: a machine-local input

    def package() -> PantsRun:
        return _ok(
            pants.run(
                option,
                "package",
                HELLO.replace("/melange.yaml", ":apk"),
                buildkit_host=buildkit_addr,
                pantsd=True,
            )
        )

    try:
        run = package()  # (a new keyring: hello is built again)
        assert run.spawned() == [HELLO], run.tail()
        assert len(run.spawned("host-config")) == 1, run.tail()
        run = package()
        assert run.spawned("host-config") == [] and run.spawned() == [], run.tail()
        os.utime(extra, ns=(1, 1))  # touched, same content: measured again, nothing to build
        run = package()
        assert len(run.spawned("host-config")) == 1 and run.spawned() == [], run.tail()
        run = package()
        assert run.spawned("host-config") == [] and run.spawned() == [], run.tail()
        # The recorded file deleted under pantsd (with its named cache): recorded again.
        recorded = [
            os.path.join(root, "host.json")
            for root, _dirs, files in os.walk(os.path.join(pants.home, "named_caches"))
            if "host.json" in files and os.path.basename(root).startswith("melange_bk_host_")
        ]
        assert recorded, os.listdir(os.path.join(pants.home, "named_caches"))
        for path in recorded:
            os.unlink(path)
        run = package()
        assert len(run.spawned("host-config")) == 1 and run.spawned() == [], run.tail()
        with open(extra, "a") as f:  # new content (the same key): another identity, another build
            f.write("\n")
        run = package()
        assert len(run.spawned("host-config")) == 1 and run.spawned() == [HELLO], run.tail()
    finally:
        pants.kill_pantsd()
