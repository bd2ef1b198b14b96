"""Bases, the environment's LLB, and prepare_environment end to end on a local repository (no daemon)."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from melange_bk import llb
from melange_bk.environment.base import NONE, Base, BaseError, local_rootfs, parse_base
from melange_bk.environment.installer import Scriptlet
from melange_bk.environment.loader import BASE_LOCAL_NAME, base_tree, environment_state, layer_tree
from melange_bk.environment.prepare import prepare, prepare_environment
from melange_bk.environment.resolver import ResolveError
from melange_bk.llb import STORED_DOMAIN
from melange_bk.plan.model import Accounts, Environment, Group, User

from .conftest import ARCH, Key, Pkg, RepoFactory

DIGEST = "sha256:" + "a" * 64


def _ops(state: llb.State) -> list:
    return llb.dump_ops(llb.marshal(state))


def test_parse_base(tmp_path: Path) -> None:
    assert parse_base("none") == NONE
    assert parse_base("dir:/x") == Base("dir", "/x")
    assert parse_base("tar:/x.tar") == Base("tar", "/x.tar")
    assert parse_base(f"image:alpine@{DIGEST}") == Base("image", f"alpine@{DIGEST}")
    assert parse_base(str(tmp_path)) == Base("dir", str(tmp_path))
    (tmp_path / "r.tar").write_bytes(b"")
    assert parse_base(str(tmp_path / "r.tar")) == Base("tar", str(tmp_path / "r.tar"))
    assert str(Base("dir", "/x")) == "dir:/x"


@pytest.mark.parametrize(
    "text,message",
    [
        ("image:alpine:3.19", "not pinned by digest"),
        ("dir:", "needs a location"),
        ("none:/x", "takes no location"),
        ("/does/not/exist", "neither an existing path"),
        ("", "empty base"),
    ],
)
def test_bad_base(text: str, message: str) -> None:
    with pytest.raises(BaseError, match=message):
        parse_base(text)


LAYER = layer_tree("melange-bk-env-x", "0" * 64)


def test_states_per_base() -> None:
    none = json.dumps(_ops(environment_state(NONE, LAYER)))
    assert f"docker-image://{LAYER.ref}" in none and "local://" not in none and "base:" not in none
    base = base_tree("tar-" + "1" * 64)
    d = json.dumps(
        _ops(environment_state(Base("dir", "/somewhere/on/this/machine"), LAYER, stored_base=base))
    )
    assert f"docker-image://{STORED_DOMAIN}/base:tar-{'1' * 64}" in d and "/somewhere" not in d
    assert "local://" not in d, "nothing of this machine is sent by a build: the trees are stored images"
    i = json.dumps(_ops(environment_state(Base("image", f"alpine@{DIGEST}"), LAYER)))
    assert f"docker-image://docker.io/library/alpine@{DIGEST}" in i
    with pytest.raises(ValueError):
        environment_state(Base("dir", "/b"), LAYER)


def test_stored_trees_are_read_locally_and_named_by_content() -> None:
    (op,) = (o for o in _ops(environment_state(NONE, LAYER)) if "source" in o["Op"].get("Op", {}))
    assert op["Op"]["Op"]["source"]["attrs"] == {"image.resolvemode": "local"}
    assert layer_tree("n", "0" * 64).ref == layer_tree("other-name", "0" * 64).ref  # the name is not content
    assert layer_tree("n", "0" * 64, ("usr/bin/tar",)).ref != LAYER.ref
    assert layer_tree("n", "1" * 64).ref != LAYER.ref


def test_scriptlets_run_in_one_exec_from_a_read_only_mount() -> None:
    s = (
        Scriptlet("a-1-r0", ".post-install", b"#!/bin/sh\ntrue\n"),
        Scriptlet("b-1-r0", ".pre-install", b"x"),
    )
    ops = _ops(environment_state(NONE, LAYER, s))
    execs = [o["Op"]["Op"]["exec"] for o in ops if "exec" in o["Op"].get("Op", {})]
    assert len(execs) == 1
    (mount,) = (m for m in execs[0]["mounts"] if m["dest"] == "/.melange-bk-scriptlets")
    assert mount.get("readonly") is True
    text = json.dumps(ops)
    assert "/0000-a-1-r0.post-install" in text and "/0001-b-1-r0.pre-install" in text
    assert json.dumps(_ops(environment_state(NONE, LAYER))).count('"exec"') == 0


def test_tarball_base_unpacked_once_into_the_cache(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    os.symlink("etc", root / "link")
    tar = tmp_path / "rootfs.tar"
    with tarfile.open(tar, "w") as t:
        t.add(root, arcname=".")
    cache = str(tmp_path / "cache")
    first = local_rootfs(Base("tar", str(tar)), cache)
    assert first is not None and Path(first, "etc/passwd").read_text().startswith("root:")
    assert os.readlink(Path(first, "link")) == "etc"
    assert local_rootfs(Base("tar", str(tar)), cache) == first


def test_tarball_entry_under_a_symlink_is_refused(tmp_path: Path) -> None:
    tar = tmp_path / "evil.tar"
    with tarfile.open(tar, "w") as t:
        link = tarfile.TarInfo("etc")
        link.type = tarfile.SYMTYPE
        link.linkname = str(tmp_path)
        t.addfile(link)
        f = tarfile.TarInfo("etc/planted")
        t.addfile(f, None)
    with pytest.raises(BaseError, match="lies under a symlink"):
        local_rootfs(Base("tar", str(tar)), str(tmp_path / "cache"))
    assert not (tmp_path / "planted").exists()


# ------------------------------------------------------------------------------------------------- prepare


PKGS = [
    Pkg("busybox", "1.36.1-r0", files={"bin/busybox": b"not really"}, symlinks={"bin/sh": "busybox"}, provides=["cmd:sh"]),
    Pkg("hello", "1.0-r0", depends=["cmd:sh"], files={"usr/bin/hello": b"#!/bin/sh\necho hi\n"},
        scriptlets=((".post-install", b"#!/bin/sh\necho post\n"),)),
]  # fmt: skip


def _env(repo: Path, key: Key, packages=("hello",)) -> Environment:  # type: ignore[no-untyped-def]
    return Environment(
        repositories=(str(repo),),
        keyring=(key.public,),
        packages=tuple(packages),
        env=(),
        accounts=Accounts("", (User("build", 1000, 1000),), (Group("build", 1000, ("build",)),)),
    )


def test_prepare_environment(make_repo: RepoFactory, key: Key, tmp_path: Path) -> None:
    repo = make_repo(PKGS)
    p = prepare_environment(_env(repo, key), arch=ARCH, cache=str(tmp_path / "cache"))
    assert [str(x) for x in p.resolution.packages] == ["busybox-1.36.1-r0", "hello-1.0-r0"]
    assert p.local_dirs == ((p.layer_name, p.layer_dir),)
    assert Path(p.layer_dir, "usr/bin/hello").exists()
    assert [s.kind for s in p.scriptlets] == [".post-install"]
    assert json.dumps(llb.dump_ops(llb.marshal(p.state))).count('"exec"') == 1


def test_same_resolved_set_same_digest_anywhere(make_repo: RepoFactory, key: Key, tmp_path: Path) -> None:
    repo = make_repo(PKGS)
    copy = tmp_path / "elsewhere" / "repo"
    shutil.copytree(repo, copy)
    a = prepare_environment(_env(repo, key), arch=ARCH, cache=str(tmp_path / "c1"))
    b = prepare_environment(_env(copy, key), arch=ARCH, cache=str(tmp_path / "c2"))
    assert a.layer_dir != b.layer_dir
    assert llb.definition_digest(llb.marshal(a.state)) == llb.definition_digest(llb.marshal(b.state))
    c = prepare_environment(_env(repo, key, ("busybox",)), arch=ARCH, cache=str(tmp_path / "c1"))
    assert llb.definition_digest(llb.marshal(c.state)) != llb.definition_digest(llb.marshal(a.state))


def test_cached_layer_is_reused_without_fetching(make_repo: RepoFactory, key: Key, tmp_path: Path) -> None:
    repo = make_repo(PKGS)
    cache = str(tmp_path / "cache")
    first = prepare(["hello"], [str(repo)], [key.public], arch=ARCH, cache=cache)
    shutil.rmtree(os.path.join(cache, "apk"))
    again = prepare(["hello"], [str(repo)], [key.public], arch=ARCH, cache=cache)
    assert again.layer_dir == first.layer_dir and again.scriptlets == first.scriptlets
    assert not os.path.exists(os.path.join(cache, "apk")), "nothing fetched"


def test_dir_base_is_offered_as_a_local_dir(make_repo: RepoFactory, key: Key, tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\nbuild:x:1000:1000::/home/build:/bin/sh\n")
    repo = make_repo(PKGS)
    p = prepare(
        ["busybox"],
        [str(repo)],
        [key.public],
        base=Base("dir", str(root)),
        arch=ARCH,
        cache=str(tmp_path / "c"),
    )
    assert p.local_dirs_dict()[BASE_LOCAL_NAME] == str(root)
    assert [t.local_name for t in p.stored] == [BASE_LOCAL_NAME, p.layer_name]
    assert p.stored[0].identity.startswith("tree-")
    assert Path(p.layer_dir, "etc/passwd").read_text() == (root / "etc/passwd").read_text()


def test_unsatisfiable_environment(make_repo: RepoFactory, key: Key, tmp_path: Path) -> None:
    repo = make_repo(PKGS)
    with pytest.raises(ResolveError, match=r'no package provides "gcc" \(required by world\)'):
        prepare_environment(_env(repo, key, ("hello", "gcc")), arch=ARCH, cache=str(tmp_path / "c"))
