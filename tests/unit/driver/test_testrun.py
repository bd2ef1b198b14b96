"""driver/testrun.py without a daemon: which tests run, their LLB, and the local repository of packages under test."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Tuple

import pytest

from melange_bk import llb
from melange_bk.apk import load_signing_key, write_keypair
from melange_bk.apk.index import parse_index_bytes
from melange_bk.apk.pkginfo import PkgInfo
from melange_bk.apk.sign import keyring_from_pems
from melange_bk.apk.writer import write_apk
from melange_bk.driver import testrun
from melange_bk.plan.compile import compile_text
from melange_bk.protos import ops_pb2

YAML = """
package:
  name: demo
  version: "1.2.3"
  epoch: 4
  description: demo
environment:
  contents:
    packages: [build-base]
pipeline:
  - runs: echo build
subpackages:
  - name: demo-doc
    pipeline:
      - runs: echo doc
    test:
      environment:
        contents:
          packages: [grep]
      pipeline:
        - name: has docs
          runs: test -d /usr/share/doc
  - name: demo-extra
    pipeline:
      - runs: echo extra
test:
  environment:
    environment:
      GREETING: hi
  pipeline:
    - name: runs
      runs: demo --version
    - runs: |
        demo | grep hi
"""


def _plan():
    return compile_text("melange.yaml", YAML)


def test_targets_main_then_subpackages_with_tests() -> None:
    got = [(t.package, t.version, len(t.test.steps)) for t in testrun.targets(_plan())]
    assert got == [("demo", "1.2.3-r4", 2), ("demo-doc", "1.2.3-r4", 1)]
    doc = testrun.targets(_plan())[1]
    assert "grep" in doc.test.environment.packages and "demo-doc" in doc.test.environment.packages


def _ops(state: llb.State) -> List[Tuple[str, ops_pb2.Op, ops_pb2.OpMetadata]]:
    defn = llb.marshal(state)
    out = []
    for data in llb.op_bytes(defn):
        op = ops_pb2.Op()
        op.ParseFromString(data)
        dgst = llb.digest_bytes(data)
        out.append((dgst, op, defn.metadata[dgst]))
    return out


def test_state_one_exec_per_step_named_network_none() -> None:
    target = testrun.targets(_plan())[0]
    state = testrun.test_state(
        target, llb.scratch(), source_date_epoch=7, workspace_exclude=("melange.yaml",)
    )
    execs = [(op, md) for _, op, md in _ops(state) if op.WhichOneof("op") == "exec"]
    names = [md.description["llb.customname"] for _, md in execs]
    assert names == ["[demo] test 1: runs", "[demo] test 2: demo | grep hi"]
    for op, _ in execs:
        assert op.exec.network == ops_pb2.NONE
        env = dict(e.split("=", 1) for e in op.exec.meta.env)
        assert env["GREETING"] == "hi" and env["SOURCE_DATE_EPOCH"] == "7" and env["HOME"] == "/home/build"
        assert op.exec.meta.cwd == "/home/build"
    locals_ = [op.source for _, op, _ in _ops(state) if op.WhichOneof("op") == "source"]
    assert [s.identifier for s in locals_] == ["local://workspace"]
    assert "melange.yaml" in locals_[0].attrs["local.excludepatterns"]
    # deterministic
    again = testrun.test_state(
        target, llb.scratch(), source_date_epoch=7, workspace_exclude=("melange.yaml",)
    )
    assert llb.definition_digest(llb.marshal(state)) == llb.definition_digest(llb.marshal(again))


def _apk(d: Path, name: str, version: str = "1.2.3", epoch: int = 4, arch: str = "x86_64", key=None) -> str:
    tree = d / f"tree-{name}-{version}-{arch}"
    (tree / "usr/share" / name).mkdir(parents=True)
    (tree / "usr/share" / name / "f").write_text(name)
    out = d / f"{name}-{version}-r{epoch}.apk"
    write_apk(
        str(tree), str(out), PkgInfo(name=name, version=version, epoch=epoch, arch=arch), signing_key=key
    )
    return str(out)


@pytest.fixture()
def signer(tmp_path: Path) -> Tuple[object, str]:
    write_keypair(str(tmp_path / "signer.rsa"), bits=2048)
    return load_signing_key(str(tmp_path / "signer.rsa")), str(tmp_path / "signer.rsa.pub")


def test_find_apks_keeps_only_this_version_of_own_packages(tmp_path: Path) -> None:
    d = tmp_path / "out" / "x86_64"
    d.mkdir(parents=True)
    for name in ("demo-1.2.3-r4", "demo-1.2.2-r0", "demo-doc-1.2.3-r4", "other-lib-0.1-r0", "notes.txt"):
        (d / (name if name.endswith(".txt") else name + ".apk")).write_bytes(b"")
    got = [os.path.basename(p) for p in testrun.find_apks(_plan(), str(tmp_path / "out"))]
    assert got == ["demo-1.2.3-r4.apk", "demo-doc-1.2.3-r4.apk", "other-lib-0.1-r0.apk"]
    with pytest.raises(testrun.TestError, match="build first, or give --apk"):
        testrun.find_apks(_plan(), str(tmp_path / "missing"))


def test_local_repository_verifies_then_indexes(tmp_path: Path, signer) -> None:
    key, pub = signer
    apks = (_apk(tmp_path, "demo", key=key), _apk(tmp_path, "demo-doc", key=key))
    repo = testrun.local_repository(
        apks,
        str(tmp_path / "repo"),
        arch="x86_64",
        keyring=(pub,),
        allow_untrusted=False,
        cache=str(tmp_path / "c"),
    )
    assert repo.packages == ("demo-1.2.3-r4", "demo-doc-1.2.3-r4")
    assert sorted(os.listdir(tmp_path / "repo" / "x86_64")) == [
        "APKINDEX.tar.gz",
        "demo-1.2.3-r4.apk",
        "demo-doc-1.2.3-r4.apk",
    ]
    with open(repo.public_key, "rb") as f:
        ring = keyring_from_pems({os.path.basename(repo.public_key): f.read()})
    with open(tmp_path / "repo" / "x86_64" / "APKINDEX.tar.gz", "rb") as f:
        index = parse_index_bytes(f.read(), "APKINDEX.tar.gz", ring)  # signed with the cached local key
    assert [e.name for e in index.entries] == ["demo", "demo-doc"]
    # the local key is made once per cache directory
    again = testrun.local_repository(
        apks,
        str(tmp_path / "repo2"),
        arch="x86_64",
        keyring=(pub,),
        allow_untrusted=False,
        cache=str(tmp_path / "c"),
    )
    assert again.public_key == repo.public_key


def test_local_repository_refuses_untrusted_and_foreign_arch(tmp_path: Path, signer) -> None:
    key, pub = signer
    unsigned = _apk(tmp_path, "demo")
    cache = str(tmp_path / "c")
    with pytest.raises(testrun.TestError, match="--keyring-append"):
        testrun.local_repository((unsigned,), str(tmp_path / "r1"), arch="x86_64", keyring=(pub,),
                                 allow_untrusted=False, cache=cache)  # fmt: skip
    with pytest.raises(testrun.TestError, match="no keyring"):
        testrun.local_repository((unsigned,), str(tmp_path / "r2"), arch="x86_64", keyring=(),
                                 allow_untrusted=False, cache=cache)  # fmt: skip
    repo = testrun.local_repository((unsigned,), str(tmp_path / "r3"), arch="x86_64", keyring=(),
                                    allow_untrusted=True, cache=cache)  # fmt: skip
    assert repo.packages == ("demo-1.2.3-r4",)
    arm = _apk(tmp_path, "demo-doc", arch="aarch64", key=key)
    with pytest.raises(testrun.TestError, match="is for aarch64, not x86_64"):
        testrun.local_repository((arm,), str(tmp_path / "r4"), arch="x86_64", keyring=(pub,),
                                 allow_untrusted=False, cache=cache)  # fmt: skip
