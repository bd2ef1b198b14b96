"""`uses: git-checkout` against a real git server: `git daemon` serving a repository on 127.0.0.1.

The checkout is a daemon-side LLB git source pinned to `expected-commit` (the daemon shares the host's network
namespace, so it reaches 127.0.0.1); the pipeline's own step then checks the commit in the build environment (the
Debian build rootfs, which has git). The repository's branch has moved on past the pinned commit, so a checkout of
the branch tip instead of the pin would show.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Iterator, NamedTuple

import pytest

from tests.integration.examples import ARCH, Env, build_example, make_examples_env
from tests.integration.local import apk_files, free_port

MISSING = "1" * 40


class GitServer(NamedTuple):
    url: str  # git://127.0.0.1:PORT/hello.git
    first: str  # the pinned commit (tag v1)
    tip: str  # main's tip, one commit later
    fix: str  # on branch `fixes`, after tip: adds fix.txt (a cherry-pick onto `first` applies cleanly)


def _git(cwd: Path, *args: str) -> str:
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.invalid",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.invalid",
        GIT_AUTHOR_DATE="1700000000 +0000",
        GIT_COMMITTER_DATE="1700000000 +0000",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
    )
    r = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"git {' '.join(args)}: {r.stderr}"
    return r.stdout.strip()


@pytest.fixture(scope="module")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    if shutil.which("git") is None:
        pytest.fail("git is not installed on this host (the git server of this test)", pytrace=False)
    root = tmp_path_factory.mktemp("git-server")
    work = root / "work"
    work.mkdir()
    _git(work, "init", "-q", "-b", "main")
    (work / "greeting.txt").write_text("hello from the pinned commit\n")
    _git(work, "add", "greeting.txt")
    _git(work, "commit", "-qm", "first")
    _git(work, "tag", "v1")
    first = _git(work, "rev-parse", "HEAD")
    (work / "greeting.txt").write_text("hello from the branch tip\n")
    _git(work, "commit", "-qam", "second")
    tip = _git(work, "rev-parse", "HEAD")
    _git(work, "checkout", "-q", "-b", "fixes")
    (work / "fix.txt").write_text("the picked fix\n")
    _git(work, "add", "fix.txt")
    _git(work, "commit", "-qm", "fix")
    fix = _git(work, "rev-parse", "HEAD")
    _git(work, "checkout", "-q", "main")
    _git(root, "clone", "-q", "--bare", str(work), "hello.git")

    port = free_port()
    daemon = subprocess.Popen(
        ["git", "daemon", "--export-all", "--reuseaddr", "--informative-errors", f"--base-path={root}",
         "--listen=127.0.0.1", f"--port={port}", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"git://127.0.0.1:{port}/hello.git"
    try:
        deadline = time.monotonic() + 20
        while True:
            r = subprocess.run(["git", "ls-remote", url], capture_output=True, text=True, timeout=20)
            if r.returncode == 0 and tip in r.stdout:
                break
            if daemon.poll() is not None or time.monotonic() > deadline:
                daemon.kill()
                pytest.fail(f"git daemon on port {port} did not serve {url}: {daemon.communicate()[1]!r}")
            time.sleep(0.1)
        yield GitServer(url, first, tip, fix)
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


@pytest.fixture(scope="module")
def examples_env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    return make_examples_env(tmp_path_factory)


def _yaml(tmp_path: Path, url: str, commit: str, destination: str = ".", picks: str = "") -> Path:
    text = f"""
package:
  name: gitdemo
  version: "1.0"
  epoch: 0
  description: git-checkout from a real git server
  copyright:
    - license: MIT
environment:
  contents:
    packages:
      - busybox
pipeline:
  - uses: git-checkout
    with:
      repository: {url}
      branch: main
      expected-commit: {commit}
      destination: {destination}
{picks}  - runs: |
      cd {destination}
      mkdir -p ${{{{targets.destdir}}}}/usr/share/gitdemo
      cp greeting.txt ${{{{targets.destdir}}}}/usr/share/gitdemo/
      if [ -e fix.txt ]; then cp fix.txt ${{{{targets.destdir}}}}/usr/share/gitdemo/; fi
      git rev-parse HEAD > ${{{{targets.destdir}}}}/usr/share/gitdemo/commit
"""
    path = tmp_path / "src" / "melange.yaml"
    path.parent.mkdir()
    path.write_text(text)
    return path


@pytest.mark.parametrize("destination", [".", "src/hello"])
def test_checkout_of_the_pinned_commit(  # type: ignore[no-untyped-def]
    git_server: GitServer, examples_env: Env, buildkit_addr: str, tmp_path: Path, destination: str, capsys
) -> None:
    yaml_path = _yaml(tmp_path, git_server.url, git_server.first, destination)
    out = tmp_path / "out"
    rc = build_example(examples_env, str(yaml_path), out, buildkit_addr)
    assert rc == 0, capsys.readouterr().err[-3000:]
    files = apk_files(out / ARCH / "gitdemo-1.0-r0.apk")
    assert {k: v for k, v in files.items() if k.startswith("usr/share/gitdemo/")} == {
        "usr/share/gitdemo/greeting.txt": b"hello from the pinned commit\n",
        "usr/share/gitdemo/commit": git_server.first.encode() + b"\n",
    }


def test_a_commit_the_server_does_not_have_names_the_repository(  # type: ignore[no-untyped-def]
    git_server: GitServer, examples_env: Env, buildkit_addr: str, tmp_path: Path, capsys
) -> None:
    yaml_path = _yaml(tmp_path, git_server.url, MISSING)
    out = tmp_path / "out"
    rc = build_example(examples_env, str(yaml_path), out, buildkit_addr)
    err = capsys.readouterr().err
    assert rc == 1, err[-3000:]
    lines = [ln for ln in err.splitlines() if ln.startswith("melange-bk: error:")]
    assert lines, err[-3000:]
    assert f'step "git {git_server.url}@{MISSING[:12]}" failed: git error' in lines[-1], err[-3000:]
    assert "context canceled" not in lines[-1], err[-3000:]
    assert not list(out.rglob("*.apk"))


def _picks(fix: str) -> str:
    return f"      cherry-picks: |\n        # the fix, from its branch\n        fixes/{fix}: add fix.txt\n"


def test_cherry_picks_need_the_users_permission(  # type: ignore[no-untyped-def]
    git_server: GitServer, examples_env: Env, buildkit_addr: str, tmp_path: Path, capsys
) -> None:
    yaml_path = _yaml(tmp_path, git_server.url, git_server.first, picks=_picks(git_server.fix))
    out = tmp_path / "out"
    rc = build_example(examples_env, str(yaml_path), out, buildkit_addr)
    err = capsys.readouterr().err
    assert rc == 2, err[-3000:]
    (line,) = (ln for ln in err.splitlines() if ln.startswith("melange-bk: error:"))
    assert line == (
        f"melange-bk: error: {yaml_path}:14: pipeline step 1 (git-checkout): git-checkout cherry-picks fetch "
        "commits in the build step, which needs the network: allow it with --allow-network (Pants: "
        "[melange].allow_network = true); the daemon must allow the network.host entitlement"
    ), err[-3000:]
    assert not out.exists() or not list(out.rglob("*.apk"))


def test_cherry_picks_are_applied_with_the_network_allowed(  # type: ignore[no-untyped-def]
    git_server: GitServer, examples_env: Env, buildkit_addr: str, tmp_path: Path, capsys
) -> None:
    """The daemon checks out the pin (shallow); the step, on the host's network, fetches the picked commit and its
    parent from the git server and cherry-picks it: the pinned tree plus the fix, as a new commit on the pin.
    """
    yaml_path = _yaml(tmp_path, git_server.url, git_server.first, "src/hello", picks=_picks(git_server.fix))
    out = tmp_path / "out"
    rc = build_example(examples_env, str(yaml_path), out, buildkit_addr, "--allow-network")
    assert rc == 0, capsys.readouterr().err[-3000:]
    files = apk_files(out / ARCH / "gitdemo-1.0-r0.apk")
    shipped = {k: v for k, v in files.items() if k.startswith("usr/share/gitdemo/")}
    assert shipped["usr/share/gitdemo/greeting.txt"] == b"hello from the pinned commit\n"
    assert shipped["usr/share/gitdemo/fix.txt"] == b"the picked fix\n"
    head = shipped["usr/share/gitdemo/commit"].decode().strip()
    assert head not in (git_server.first, git_server.tip, git_server.fix) and len(head) == 40
