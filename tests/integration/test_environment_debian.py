"""The Debian build rootfs (`bin/rootfs debian-build --tarball`) as the base of an environment compiles and runs
a C program in BuildKit. Slow the very first time on a machine: debootstrap (minutes) if the tarball is not
cached under .cache/rootfs/, then unpacking it once into the user cache and sending it to the daemon (~650 MB)."""

from __future__ import annotations

import io
import os
import subprocess
import uuid

import pytest

from melange_bk import llb
from melange_bk.buildkit.client import Client
from melange_bk.buildkit.progress import Progress
from melange_bk.buildkit.store import solve_stored
from melange_bk.environment.base import Base
from melange_bk.environment.bootstrap import build_bootstrap_repo
from melange_bk.environment.prepare import host_arch, prepare

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def debian_tarball() -> str:
    # Pants sets this to .cache/rootfs/debian-build.tar of the checkout ([test] in pants.toml); outside Pants the
    # checkout's own bin/rootfs makes it.
    path = os.environ.get("MELANGE_BK_DEBIAN_ROOTFS") or os.path.join(
        REPO_ROOT, ".cache/rootfs/debian-build.tar"
    )
    if not os.path.isfile(path) and os.path.exists(os.path.join(REPO_ROOT, "bin/rootfs")):
        out = subprocess.run(
            [os.path.join(REPO_ROOT, "bin/rootfs"), "debian-build", "--tarball"],
            check=True,
            capture_output=True,
            text=True,
            timeout=3600,
        )
        path = out.stdout.strip().splitlines()[-1]
    if not os.path.isfile(path):
        pytest.fail(
            f"no Debian build rootfs at {path}: run bin/example-env (or bin/rootfs debian-build --tarball)"
        )
    return path


def test_c_hello_world_on_the_debian_build_rootfs(bk: Client, debian_tarball: str, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    repo = build_bootstrap_repo(str(tmp_path_factory.mktemp("bootstrap")), arch=host_arch())
    # The default user cache: the tarball is unpacked there once per machine, not once per test run.
    env = prepare(["build-base"], [repo.path], repo.keyring, base=Base("tar", debian_tarball))
    nonce = uuid.uuid4().hex
    script = (
        "set -e; cd /home/build; "
        f"printf '#include <stdio.h>\\nint main(void) {{ puts(\"hello {nonce}\"); return 0; }}\\n' > hello.c; "
        "gcc -O2 -o hello hello.c; ./hello"
    )
    run = llb.run(env.state, ["/bin/sh", "-c", script], env={"PATH": "/usr/bin:/bin"}, cwd="/home/build",
                  user="build")  # fmt: skip
    out = io.StringIO()
    solve_stored(
        bk,
        llb.marshal(run.root),
        env.stored,
        local_dirs=env.local_dirs_dict(),
        memo_dir=env.memo_dir,
        progress=Progress("plain", out=out),
    )
    assert f"hello {nonce}" in out.getvalue()
