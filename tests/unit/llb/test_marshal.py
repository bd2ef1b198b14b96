from __future__ import annotations

from melange_bk import llb
from melange_bk.protos import ops_pb2


def kinds(defn):
    out = []
    for _, op in llb.decode_ops(defn):
        kind = op.WhichOneof("op")
        out.append(op.source.identifier if kind == "source" else kind)
    return out


def test_op_digests_are_sha256_of_bytes_and_inputs_precede_users() -> None:
    rootfs = llb.local("rootfs")
    tools = llb.local("tools")
    root = llb.file(llb.scratch(), llb.copy(rootfs, "/", "/").copy(tools, "/bin", "/usr/local/bin"))
    res = llb.run(root, ["/bin/true"], mounts=[llb.bind("/src", tools, readonly=True)])
    defn = llb.marshal(res.root)
    assert kinds(defn) == ["local://rootfs", "local://tools", "file", "exec", None]
    position = {}
    for i, data in enumerate(llb.op_bytes(defn)):
        dgst = llb.digest_bytes(data)
        position[dgst] = i
        op = ops_pb2.Op()
        op.ParseFromString(data)
        for inp in op.inputs:
            assert position[inp.digest] < i
        assert op.SerializeToString(deterministic=True) == data
    assert set(defn.metadata) == set(position)


def test_equal_subgraphs_deduplicated_by_digest() -> None:
    # two separately built but equal local sources: one op
    a = llb.local("ctx")
    b = llb.local("ctx")
    assert a is not b
    res = llb.run(a, ["/x"], mounts=[llb.bind("/b", b)])
    defn = llb.marshal(res.root)
    assert kinds(defn) == ["local://ctx", "exec", None]
    _, ex = llb.decode_ops(defn)[1]
    assert len(ex.inputs) == 1 and [m.input for m in ex.exec.mounts] == [0, 0]


def test_diamond_visits_shared_input_once() -> None:
    base = llb.file(llb.scratch(), llb.mkdir("/a"))
    left = llb.run(base, ["/left"]).root
    right = llb.run(base, ["/right"]).root
    top = llb.file(left, llb.copy(right, "/r", "/r"))
    defn = llb.marshal(top)
    assert kinds(defn) == ["file", "exec", "exec", "file", None]
    assert len(set(llb.op_bytes(defn))) == 5


def test_final_op_and_metadata() -> None:
    res = llb.run(llb.local("r"), ["/x"], custom_name="step 1")
    defn = llb.marshal(res.root)
    final_dgst, final = llb.decode_ops(defn)[-1]
    assert len(final.inputs) == 1 and final.inputs[0].digest == llb.decode_ops(defn)[1][0]
    assert final.WhichOneof("op") is None and not final.HasField("platform")
    assert dict(defn.metadata[final_dgst].caps) == {
        "constraints": True,
        "platform": True,
        "meta.description": True,
    }
    assert llb.head_digest(defn) == final.inputs[0].digest
    assert dict(defn.metadata[llb.head_digest(defn)].description) == {"llb.customname": "step 1"}


def test_definition_digest_changes_with_graph() -> None:
    one = llb.marshal(llb.run(llb.local("r"), ["/x"]).root)
    two = llb.marshal(llb.run(llb.local("r"), ["/y"]).root)
    assert llb.definition_digest(one) != llb.definition_digest(two)
    again = llb.marshal(llb.run(llb.local("r"), ["/x"]).root)
    assert llb.to_bytes(one) == llb.to_bytes(again)
    assert llb.definition_digest(one) == llb.definition_digest(again)


def test_platform_only_on_exec_and_image() -> None:
    digest = "sha256:" + "cd" * 32
    base = llb.file(llb.image(f"wolfi-base@{digest}"), llb.mkdir("/x"))
    defn = llb.marshal(llb.run(base, ["/x"]).root, platform=llb.Platform("linux", "arm64"))
    has_platform = {op.WhichOneof("op"): op.HasField("platform") for _, op in llb.decode_ops(defn)[:-1]}
    assert has_platform == {"source": True, "file": False, "exec": True}


def test_deep_chain_does_not_recurse() -> None:
    st = llb.scratch()
    for i in range(3000):
        st = llb.file(st, llb.mkdir(f"/d{i}"))
    defn = llb.marshal(st)
    assert len(llb.op_bytes(defn)) == 3001


def test_ignore_cache_marks_every_op() -> None:
    defn = llb.marshal(llb.run(llb.local("r"), ["/x"]).root, ignore_cache=True)
    ops = llb.decode_ops(defn)
    assert all(defn.metadata[d].ignore_cache for d, _ in ops[:-1])
    assert defn.metadata[ops[-1][0]].caps["meta.ignorecache"]
    plain = llb.marshal(llb.run(llb.local("r"), ["/x"]).root)
    assert not any(md.ignore_cache for md in plain.metadata.values())
    # the ops themselves are the same: only metadata differs
    assert list(llb.op_bytes(plain)) == list(llb.op_bytes(defn))
