"""Small helpers shared by the tests that talk to the daemon: the checkout they run from and what its scripts install
on first use, a free loopback port for the servers they start, and the files of a built .apk."""

from __future__ import annotations

import os
import socket
import subprocess
import tarfile
from pathlib import Path
from typing import Dict


def checkout() -> str:
    """The checkout: MELANGE_BK_REPO (pants.toml's [test] extra_env_vars), else the one holding this file."""
    repo = os.environ.get("MELANGE_BK_REPO", "")
    if not repo:
        here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        if os.path.exists(os.path.join(here, ".git")):  # (a file in a git worktree)
            repo = here
    if not repo or not os.path.isfile(os.path.join(repo, "pants.toml")):
        raise RuntimeError("MELANGE_BK_REPO must name the checkout (pants.toml's [test] extra_env_vars)")
    return repo


def cache_dir(repo: str) -> str:
    return os.environ.get("MELANGE_BK_CACHE") or os.path.join(repo, ".cache")


def install(script: str, *args: str) -> None:
    """Run the checkout's `bin/<script> ARGS`: what a test needs, installed by the test itself on first use (so that
    the README's `./pants test ::` needs no extra step). The scripts are idempotent, quiet when ready, and take a
    lock, so test processes that start at once take turns. Raises RuntimeError with the script's last output.
    """
    repo = checkout()
    cmd = [os.path.join(repo, "bin", script), *args]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        tail = "\n".join(done.stdout.splitlines()[-15:])
        raise RuntimeError(f"{' '.join(['bin/' + script, *args])} failed (exit {done.returncode}):\n{tail}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def apk_files(apk: Path) -> Dict[str, bytes]:
    """Path → content of every regular file in an .apk (its gzip streams read as one tar)."""
    out = {}
    with tarfile.open(apk, "r:gz") as tf:
        for m in tf.getmembers():
            if m.isfile():
                f = tf.extractfile(m)
                assert f is not None
                out[m.name] = f.read()
    return out


def build(yaml: Path, out: Path, rootfs: str, addr: str, *extra: str) -> int:
    """`melange-bk build YAML --rootfs ROOTFS --out-dir OUT --buildkit-addr ADDR EXTRA…` in this process."""
    from melange_bk.cli.main import main

    return main(
        ["build", str(yaml), "--rootfs", rootfs, "--out-dir", str(out), "--buildkit-addr", addr, *extra]
    )
