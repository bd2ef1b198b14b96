from __future__ import annotations

import pytest

from melange_bk import llb
from melange_bk.errors import MelangeError
from melange_bk.protos import ops_pb2

AMD64 = llb.Platform("linux", "amd64")


def exec_op(defn: ops_pb2.Definition):
    ops = [(d, op) for d, op in llb.decode_ops(defn) if op.WhichOneof("op") == "exec"]
    assert len(ops) == 1
    return ops[0][0], ops[0][1]


def test_defaults_and_meta() -> None:
    res = llb.run(
        llb.local("rootfs"), ["/bin/sh", "-c", "true"], env={"PATH": "/bin", "A": "1"}, cwd="/w", user="build"
    )
    defn = llb.marshal(res.root, platform=AMD64)
    dgst, op = exec_op(defn)
    meta = op.exec.meta
    assert list(meta.args) == ["/bin/sh", "-c", "true"]
    assert list(meta.env) == ["A=1", "PATH=/bin"]
    assert (meta.cwd, meta.user, meta.removeMountStubsRecursive) == ("/w", "build", True)
    assert op.exec.network == ops_pb2.NONE
    assert op.exec.security == ops_pb2.SANDBOX
    assert op.platform.Architecture == "amd64" and op.platform.OS == "linux"
    assert len(op.exec.mounts) == 1
    root = op.exec.mounts[0]
    assert (root.dest, root.input, root.output, root.readonly) == ("/", 0, 0, False)
    assert sorted(defn.metadata[dgst].caps) == ["exec.meta.base", "exec.meta.network", "exec.mount.bind"]


@pytest.mark.parametrize(
    "env",
    [
        {"ZED": "z", "A0": "x", "A": "y", "B_C": "w"},
        [("B_C", "w"), ("A", "y"), ("ZED", "z"), ("A0", "x")],
    ],
)
def test_env_sorted_by_name_regardless_of_input_order(env: object) -> None:
    res = llb.run(llb.scratch(), ["/x"], env=env)
    _, op = exec_op(llb.marshal(res.root))
    assert list(op.exec.meta.env) == ["A=y", "A0=x", "B_C=w", "ZED=z"]


@pytest.mark.parametrize("env", [[("A", "1"), ("A", "2")], {"A=B": "1"}, {"": "x"}])
def test_env_invalid(env: object) -> None:
    with pytest.raises(MelangeError):
        llb.run(llb.scratch(), ["/x"], env=env)


def test_mounts_sorted_outputs_and_inputs_deduped() -> None:
    rootfs = llb.local("rootfs")
    src = llb.local("src")
    res = llb.run(
        rootfs,
        ["/bin/true"],
        mounts=[
            llb.tmpfs("/tmp", size=1 << 20),
            llb.bind("/out", llb.scratch()),
            llb.bind("/home/build", src),
            llb.bind("/ro", rootfs, selector="/etc", readonly=True),
            llb.cache("/var/cache/apk", "apk-cache", sharing="locked"),
        ],
    )
    defn = llb.marshal(res.get_mount("/out"))
    dgst, op = exec_op(defn)
    mounts = [(m.dest, m.input, m.output, m.readonly, m.selector) for m in op.exec.mounts]
    assert mounts == [
        ("/", 0, 0, False, ""),
        ("/home/build", 1, 1, False, ""),
        ("/out", -1, 2, False, ""),
        ("/ro", 0, -1, True, "/etc"),  # same state as the root: same input
        ("/tmp", -1, -1, False, ""),
        ("/var/cache/apk", -1, -1, False, ""),
    ]
    assert len(op.inputs) == 2
    by_mount = {m.dest: m for m in op.exec.mounts}
    assert by_mount["/tmp"].mountType == ops_pb2.TMPFS and by_mount["/tmp"].TmpfsOpt.size == 1 << 20
    cache = by_mount["/var/cache/apk"]
    assert cache.mountType == ops_pb2.CACHE
    assert (cache.cacheOpt.ID, cache.cacheOpt.sharing) == ("apk-cache", ops_pb2.LOCKED)
    assert sorted(defn.metadata[dgst].caps) == [
        "exec.meta.base",
        "exec.meta.network",
        "exec.mount.bind",
        "exec.mount.cache",
        "exec.mount.cache.sharing",
        "exec.mount.selector",
        "exec.mount.tmpfs",
        "exec.mount.tmpfs.size",
    ]
    # the result points at output 2 of the exec
    final = llb.decode_ops(defn)[-1][1]
    assert (final.inputs[0].digest, final.inputs[0].index) == (dgst, 2)
    # inputs precede the exec: local sources first, in mount order
    order = [op.WhichOneof("op") and (op.source.identifier or "exec") for _, op in llb.decode_ops(defn)[:-1]]
    assert order == ["local://rootfs", "local://src", "exec"]


def test_mounts_without_output() -> None:
    res = llb.run(llb.scratch(), ["/x"], readonly_root=True, mounts=[llb.tmpfs("/tmp"), llb.cache("/c", "c")])
    for dest in ("/", "/tmp", "/c"):
        with pytest.raises(MelangeError, match="no output"):
            res.get_mount(dest)
    with pytest.raises(MelangeError, match="no mount"):
        res.get_mount("/nope")


def test_readonly_root_and_scratch_output_mount() -> None:
    res = llb.run(llb.local("rootfs"), ["/x"], readonly_root=True, mounts=[llb.bind("/out", llb.scratch())])
    _, op = exec_op(llb.marshal(res.get_mount("/out")))
    assert [(m.dest, m.readonly, m.output) for m in op.exec.mounts] == [("/", True, -1), ("/out", False, 0)]


def test_network_and_security_only_when_asked() -> None:
    res = llb.run(llb.scratch(), ["/x"], network=llb.NetMode.HOST, security="insecure")
    defn = llb.marshal(res.root)
    dgst, op = exec_op(defn)
    assert op.exec.network == ops_pb2.HOST and op.exec.security == ops_pb2.INSECURE
    assert "exec.meta.security" in defn.metadata[dgst].caps
    sandbox = llb.run(llb.scratch(), ["/x"], network="sandbox")
    defn = llb.marshal(sandbox.root)
    dgst, op = exec_op(defn)
    assert op.exec.network == ops_pb2.UNSET
    assert "exec.meta.network" not in defn.metadata[dgst].caps


@pytest.mark.parametrize(
    "kwargs",
    [
        {"args": []},
        {"args": "/bin/sh -c x"},
        {"args": ["/x"], "cwd": "relative"},
        {"args": ["/x"], "mounts": [llb.bind("/a", llb.scratch()), llb.bind("/a/", llb.scratch())]},
        {"args": ["/x"], "mounts": [llb.bind("/", llb.scratch())]},
        {"args": ["/x"], "network": "bogus"},
    ],
)
def test_invalid_exec(kwargs: dict) -> None:
    with pytest.raises(MelangeError):
        llb.run(llb.scratch(), **kwargs)


def test_scratch_marshals_empty() -> None:
    defn = llb.marshal(llb.scratch())
    assert list(llb.op_bytes(defn)) == [] and len(defn.metadata) == 0
    assert llb.head_digest(defn) == ""
