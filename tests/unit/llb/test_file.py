from __future__ import annotations

import pytest

from melange_bk import llb
from melange_bk.errors import MelangeError

AMD64 = llb.Platform("linux", "amd64")


def file_ops(defn):
    return [(d, op) for d, op in llb.decode_ops(defn) if op.WhichOneof("op") == "file"]


def test_chain_is_one_file_op_with_relative_inputs() -> None:
    base = llb.local("base")
    src = llb.local("src")
    actions = (
        llb.mkdir("/home/build", 0o755, make_parents=True, owner=(1000, 1000), timestamp=315532800)
        .mkfile("home/build/x", 0o600, "hi\n", owner="build:build")
        .copy(
            src,
            "a/../b/",
            "/home/build/dest/",
            mode=0o644,
            follow_symlinks=True,
            create_dest_path=True,
            include=["*.c"],
            exclude=["test/"],
            allow_wildcard=True,
        )
        .rm("/home/build/*.o", allow_not_found=True, allow_wildcard=True)
    )
    defn = llb.marshal(llb.file(base, actions), platform=AMD64)
    [(dgst, op)] = file_ops(defn)
    assert not op.HasField("platform")  # file ops are not platform-specific
    assert [i.digest for i in op.inputs] == [llb.decode_ops(defn)[0][0], llb.decode_ops(defn)[1][0]]
    acts = op.file.actions
    assert [(a.input, a.secondaryInput, a.output) for a in acts] == [
        (0, -1, -1),
        (2, -1, -1),
        (3, 1, -1),
        (4, -1, 0),
    ]
    mk = acts[0].mkdir
    assert (mk.path, mk.mode, mk.makeParents, mk.timestamp) == ("/home/build", 0o755, True, 315532800 * 10**9)
    assert (mk.owner.user.byID, mk.owner.group.byID) == (1000, 1000)
    mf = acts[1].mkfile
    assert (mf.path, mf.mode, mf.data, mf.timestamp) == ("/home/build/x", 0o600, b"hi\n", -1)
    assert (mf.owner.user.byName.name, mf.owner.user.byName.input) == ("build", 0)
    cp = acts[2].copy
    assert (cp.src, cp.dest, cp.mode, cp.followSymlink, cp.createDestPath, cp.allowWildcard) == (
        "/b",
        "/home/build/dest/",
        0o644,
        True,
        True,
        True,
    )
    assert (list(cp.include_patterns), list(cp.exclude_patterns), cp.timestamp) == (["*.c"], ["test/"], -1)
    rm = acts[3].rm
    assert (rm.path, rm.allowNotFound, rm.allowWildcard) == ("/home/build/*.o", True, True)
    assert sorted(defn.metadata[dgst].caps) == [
        "file.base",
        "file.copy.includeexcludepatterns",
        "file.rm.wildcard",
    ]


def test_copy_onto_scratch_dedupes_inputs() -> None:
    rootfs = llb.local("rootfs")
    actions = llb.copy(rootfs, "/", "/", copy_dir_contents=True).copy(rootfs, "/etc", "/etc2")
    defn = llb.marshal(llb.file(llb.scratch(), actions))
    [(_, op)] = file_ops(defn)
    assert len(op.inputs) == 1
    assert [(a.input, a.secondaryInput, a.output) for a in op.file.actions] == [(-1, 0, -1), (1, 0, 0)]
    assert op.file.actions[0].copy.mode == -1 and op.file.actions[0].copy.dirCopyContents
    assert len(llb.decode_ops(defn)) == 3  # local, file, final


def test_keep_slash_on_dest() -> None:
    for dest, expected in (
        ("/a/", "/a/"),
        ("/a/.", "/a/."),
        ("/.", "/."),
        ("//x//y", "/x/y"),
        ("rel", "/rel"),
    ):
        actions = llb.copy(llb.local("s"), "/f", dest)
        [(_, op)] = file_ops(llb.marshal(llb.file(llb.scratch(), actions)))
        assert op.file.actions[0].copy.dest == expected


@pytest.mark.parametrize(
    "make",
    [
        lambda: llb.mkdir("/a", timestamp=-1),
        lambda: llb.mkfile("/a", owner=object()),
        lambda: llb.copy("not a state", "/a", "/b"),
        lambda: llb.copy(llb.scratch(), "/a", "/b", include="*.c"),
        lambda: llb.file(llb.scratch(), llb.FileActions()),
    ],
)
def test_invalid_file_actions(make) -> None:
    with pytest.raises(MelangeError):
        make()


def test_file_actions_are_immutable_values() -> None:
    first = llb.mkdir("/a")
    second = first.mkdir("/b")
    assert len(first.actions) == 1 and len(second.actions) == 2
    assert llb.mkdir("/a").mkdir("/b") == second
    assert hash(llb.file(llb.scratch(), second)) == hash(llb.file(llb.scratch(), llb.mkdir("/a").mkdir("/b")))
