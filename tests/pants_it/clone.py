"""Real Pants in a temporary git clone of this checkout: shared by tests/pants_it and bench/pants_incremental.py.

A clone of HEAD shares with the checkout only what is not Pants' cache: the Pants virtualenv, the pex tool, the
wheels and the example environment (rootfs, bootstrap repository, keys) as symlinks under its `.cache/`. Each
`PantsRunner` has its own HOME, Pants local store and named caches, so no result is served from the checkout's
caches (nor from another clone's). `tiny()` reduces the clone to a small packages/ tree and commits it, so that
`--changed-since=HEAD` sees only what a test changes.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from tests.integration.local import cache_dir, checkout  # noqa: F401 (checkout: re-exported for the tests)

# What a clone borrows from the checkout's .cache/ (besides the `pants-*` virtualenvs).
SHARED_CACHE = ("tools", "wheels", "bootstrap-venv", "rootfs", "bootstrap-repo", "keys")
# `spawned local process as Some(PID) for Process { argv: ["/usr/bin/python3.9", "melange-bk.pex", "build", YAML`:
# Pants (-ldebug) logs this only when it runs a Process, never for a cache hit.
_SPAWNED = re.compile(
    # The builder PEX (`… "melange-bk.pex", "build", …`) or the host-config probe (`… sys.exit(main())", "host-config"`).
    r'spawned local process as Some\(\d+\) for Process \{ argv: \[[^\]]*?(?:"melange-bk\.pex"|sys\.exit\(main\(\)\)"), '
    r'"(\w[\w-]*)", "([^"]*)"'
)
_COMPLETED = re.compile(r"\[INFO\] Completed: melange-bk (build|test) (\S+)")
_COUNTER = re.compile(r"^\s+(\w+): (\d+)$", re.M)
_GIT = (
    "git",
    "-c",
    "user.name=pants-it",
    "-c",
    "user.email=pants-it@localhost",
    "-c",
    "commit.gpgsign=false",
)


def clone(repo: str, dest: str) -> str:
    """A clone of HEAD sharing only what is not the Pants cache (virtualenv, wheels, example environment)."""
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", repo, dest], check=True)
    cache = cache_dir(repo)
    os.makedirs(os.path.join(dest, ".cache"))
    for name in sorted(os.listdir(cache)):
        if name.startswith("pants-") or name in SHARED_CACHE:
            os.symlink(os.path.join(cache, name), os.path.join(dest, ".cache", name))
    return dest


def dist_digests(repo: str) -> Dict[str, str]:
    """sha256 of every file under `repo`/dist, by path relative to `repo`."""
    out = {}
    for root, _dirs, files in os.walk(os.path.join(repo, "dist")):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, repo)] = hashlib.sha256(f.read()).hexdigest()
    return out


def git(repo: str, *args: str) -> str:
    return subprocess.run(
        [*_GIT, *args], cwd=repo, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    ).stdout.decode()


def tiny(
    repo: str, keep: Sequence[str] = ("hello", "libgreet", "greet"), build: Optional[str] = None
) -> None:
    """Reduce a clone to the backend and `packages/<keep>`, with `packages/BUILD` = `build`, committed."""
    drop = [p for p in ("tests", "bench", "docs") if os.path.exists(os.path.join(repo, p))]
    drop += [
        os.path.join("packages", p)
        for p in sorted(os.listdir(os.path.join(repo, "packages")))
        if os.path.isdir(os.path.join(repo, "packages", p)) and p not in keep
    ]
    if drop:
        git(repo, "rm", "-rq", "--", *drop)
    if build is None:
        repo_pkgs = [f"packages/{p}:apk" for p in keep if p not in ("libgreet",)]
        build = f'melange_repository(name="repo", packages={repo_pkgs!r})\n'
    with open(os.path.join(repo, "packages", "BUILD"), "w") as f:
        f.write(build)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "a tiny repository for tests")


@dataclass(frozen=True)
class PantsRun:
    argv: Tuple[str, ...]
    returncode: int
    out: str

    @property
    def stats(self) -> Dict[str, int]:
        """The `--stats-log` counters (local_cache_requests_cached, local_execution_requests, ...)."""
        return {k: int(v) for k, v in _COUNTER.findall(self.out)}

    def spawned(self, command: str = "build") -> List[str]:
        """YAML paths of the `melange-bk COMMAND` Processes Pants ran (not cache hits), in start order."""
        return [path for cmd, path in _SPAWNED.findall(self.out) if cmd == command]

    def completed(self, command: str = "build") -> List[str]:
        """YAML paths of Pants' `Completed: melange-bk COMMAND …` lines, in order."""
        return [path for cmd, path in _COMPLETED.findall(self.out) if cmd == command]

    def tail(self, n: int = 6000) -> str:
        return f"$ {' '.join(self.argv)} (exit {self.returncode})\n{self.out[-n:]}"


class PantsRunner:
    """`./pants --no-pantsd` in `repo` with its own HOME, local store and named caches under `home`."""

    def __init__(self, repo: str, home: str) -> None:
        self.repo = repo
        self.home = home
        os.makedirs(home, exist_ok=True)

    def env(self, buildkit_host: str) -> Dict[str, str]:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("PANTS_", "MELANGE_BK_", "BUILDKIT_"))
        }
        env.update(HOME=self.home, BUILDKIT_HOST=buildkit_host, MELANGE_BK_NO_FETCH_WHEELS="1")
        return env

    def argv(self, args: Sequence[str], debug: bool = True, pantsd: bool = False) -> List[str]:
        return [
            "./pants",
            "--pantsd" if pantsd else "--no-pantsd",
            "--no-dynamic-ui",
            *(["-ldebug", "--stats-log"] if debug else []),
            f"--local-store-dir={self.home}/lmdb_store",
            f"--named-caches-dir={self.home}/named_caches",
            *args,
        ]

    def run(
        self, *args: str, buildkit_host: str, debug: bool = True, pantsd: bool = False, timeout: float = 1500
    ) -> PantsRun:
        argv = self.argv(args, debug=debug, pantsd=pantsd)
        proc = subprocess.run(
            argv,
            cwd=self.repo,
            env=self.env(buildkit_host),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
        )
        out = proc.stdout.decode("utf-8", "replace")
        with open(os.path.join(self.home, "pants.log"), "a", encoding="utf-8") as f:
            f.write(f"\n===== {' '.join(argv)} (exit {proc.returncode})\n{out}")
        return PantsRun(tuple(argv), proc.returncode, out)

    def kill_pantsd(self) -> None:
        """Stop the pantsd of this clone, if `run(pantsd=True)` started one (by its pid file)."""
        pid_file = os.path.join(self.repo, ".pids")
        for root, _dirs, files in os.walk(pid_file):
            if "pid" in files and os.path.basename(root) == "pantsd":
                try:
                    with open(os.path.join(root, "pid")) as f:
                        os.kill(int(f.read().strip()), 15)
                except (OSError, ValueError):
                    pass

    def cleanup(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)
