"""Build environments in BuildKit: busybox from the bootstrap repository, installed on scratch, runs a shell; the
same environment solved again is fully cached; scriptlets run inside BuildKit, not on the host."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest

from melange_bk import llb
from melange_bk.apk import PkgInfo, WriteOptions, load_signing_key, write_apk
from melange_bk.apk.index import Index, entry_from_apk, write_index
from melange_bk.buildkit.client import Client
from melange_bk.buildkit.progress import Progress
from melange_bk.buildkit.session import ExportTarget
from melange_bk.buildkit.store import solve_stored
from melange_bk.environment.bootstrap import build_bootstrap_repo
from melange_bk.environment.prepare import host_arch, prepare

PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


@pytest.fixture(scope="module")
def bootstrap(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return build_bootstrap_repo(str(tmp_path_factory.mktemp("bootstrap")), arch=host_arch())


def test_busybox_environment_runs_and_is_cached(bk: Client, bootstrap, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = prepare(["busybox"], [bootstrap.path], bootstrap.keyring, cache=str(tmp_path / "cache"))
    assert [str(p) for p in env.resolution.packages] == [
        p for p in bootstrap.packages if p.startswith("busybox-")
    ]
    nonce = uuid.uuid4().hex
    run = llb.run(env.state, ["busybox", "sh", "-c", f"echo ok-{nonce}"], env={"PATH": PATH}, cwd="/home/build",
                  user="build")  # fmt: skip
    defn = llb.marshal(run.root)
    out = io.StringIO()
    first = solve_stored(
        bk,
        defn,
        env.stored,
        local_dirs=env.local_dirs_dict(),
        memo_dir=env.memo_dir,
        progress=Progress("plain", out=out),
    )
    assert f"ok-{nonce}" in out.getvalue()
    assert not first.all_cached

    # The same environment prepared again (from a fresh cache, so a fresh layer directory): identical LLB, and
    # every vertex is a cache hit.
    again = prepare(["busybox"], [bootstrap.path], bootstrap.keyring, cache=str(tmp_path / "cache2"))
    assert again.layer_dir != env.layer_dir
    defn2 = llb.marshal(llb.run(again.state, ["busybox", "sh", "-c", f"echo ok-{nonce}"], env={"PATH": PATH},
                                cwd="/home/build", user="build").root)  # fmt: skip
    assert llb.definition_digest(defn2) == llb.definition_digest(defn)
    second = solve_stored(
        bk, defn2, again.stored, local_dirs=again.local_dirs_dict(), memo_dir=again.memo_dir
    )
    assert second.all_cached, [(v.name, v.cached) for v in second.vertices]


def test_environment_contents(bk: Client, bootstrap, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = prepare(["busybox"], [bootstrap.path], bootstrap.keyring, cache=str(tmp_path / "cache"))
    script = (
        "set -e; id -u build > /out/uid; stat -c %u:%g /home/build > /out/home; cat /etc/apk/world > /out/world;"
        " grep -c '^P:' /lib/apk/db/installed > /out/npkgs; readlink /bin/sh > /out/sh"
    )
    run = llb.run(
        env.state, ["/bin/sh", "-c", script], env={"PATH": PATH}, mounts=[llb.bind("/out", llb.scratch())]
    )
    dest = tmp_path / "out"
    solve_stored(bk, llb.marshal(run.get_mount("/out")), env.stored, local_dirs=env.local_dirs_dict(), memo_dir=env.memo_dir,
          export=ExportTarget("local", str(dest)))  # fmt: skip
    assert (dest / "uid").read_text() == "1000\n"
    assert (dest / "home").read_text() == "1000:1000\n"
    assert (dest / "world").read_text() == "busybox\n"
    assert (dest / "npkgs").read_text() == "1\n"
    assert (dest / "sh").read_text() == "busybox\n"


def test_scriptlets_run_inside_buildkit(bk: Client, bootstrap, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    arch = host_arch()
    repo = tmp_path / "repo"
    (repo / arch).mkdir(parents=True)
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc/greeting").write_text("hello\n")
    nonce = uuid.uuid4().hex
    key = load_signing_key(str(Path(bootstrap.path) / ".signing" / "melange-bk-bootstrap.rsa"))
    apk = repo / arch / "greeter-1.0-r0.apk"
    write_apk(str(tree), str(apk), PkgInfo("greeter", "1.0", 0, arch, depends=("cmd:sh",)), signing_key=key,
              scriptlets=((".post-install", f"#!/bin/sh\necho {nonce} > /etc/post-install-ran\n".encode()),),
              options=WriteOptions(sbom=None))  # fmt: skip
    write_index(str(repo / arch / "APKINDEX.tar.gz"), Index("", (entry_from_apk(str(apk)),)), key)
    env = prepare(["greeter"], [str(repo), bootstrap.path], bootstrap.keyring, cache=str(tmp_path / "cache"))
    assert [s.kind for s in env.scriptlets] == [".post-install"]
    assert not (Path(env.layer_dir) / "etc/post-install-ran").exists(), "not run on the host"
    run = llb.run(env.state, ["/bin/sh", "-c", "cp /etc/post-install-ran /out/; ls -a / > /out/root"],
                  env={"PATH": PATH}, mounts=[llb.bind("/out", llb.scratch())])  # fmt: skip
    dest = tmp_path / "out"
    solve_stored(bk, llb.marshal(run.get_mount("/out")), env.stored, local_dirs=env.local_dirs_dict(), memo_dir=env.memo_dir,
          export=ExportTarget("local", str(dest)))  # fmt: skip
    assert (dest / "post-install-ran").read_text() == f"{nonce}\n"
    assert ".melange-bk-scriptlets" not in (dest / "root").read_text().split()
