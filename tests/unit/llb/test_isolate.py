"""isolate_locals: a nonce on every local source, inputs re-pointed, the rest of the Definition untouched."""

from __future__ import annotations

from melange_bk import llb
from melange_bk.llb.source import ATTR_LOCAL_UNIQUE
from melange_bk.protos import ops_pb2


def _graph() -> ops_pb2.Definition:
    ws = llb.local("workspace", exclude=("melange.yaml",))
    root = llb.file(llb.scratch(), llb.copy(ws, "/", "/home/build", copy_dir_contents=True), custom_name="ws")
    root = llb.run(root, ["/bin/sh", "-c", "true"], env={"PATH": "/bin"}, custom_name="step").root
    return llb.marshal(root)


def _ops(defn: ops_pb2.Definition):
    out = []
    for data in llb.op_bytes(defn):
        op = ops_pb2.Op()
        op.ParseFromString(data)
        out.append((llb.digest_bytes(data), op))
    return out


def test_locals_get_the_nonce_and_inputs_follow() -> None:
    defn = _graph()
    iso = llb.isolate_locals(defn, "n1")
    before, after = _ops(defn), _ops(iso)
    assert len(before) == len(after)
    sources = [op for _, op in after if op.WhichOneof("op") == "source"]
    assert [s.source.attrs[ATTR_LOCAL_UNIQUE].endswith("-n1") for s in sources] == [True]
    digests = {d for d, _ in after}
    for _, op in after:
        for inp in op.inputs:
            assert inp.digest in digests
    assert set(iso.metadata) == digests
    # every op downstream of the local changed; the Definition it came from did not
    assert not ({d for d, _ in before} & digests)
    assert llb.definition_digest(defn) == llb.definition_digest(_graph())


def test_nonces_differ_and_are_deterministic() -> None:
    defn = _graph()
    a, b = llb.isolate_locals(defn, "a"), llb.isolate_locals(defn, "b")
    assert llb.definition_digest(a) != llb.definition_digest(b)
    assert llb.definition_digest(a) == llb.definition_digest(llb.isolate_locals(_graph(), "a"))
    assert llb.head_digest(a) != llb.head_digest(defn)


def test_no_local_no_change() -> None:
    defn = llb.marshal(llb.file(llb.scratch(), llb.FileActions().mkdir("/x", 0o755)))
    assert llb.definition_digest(llb.isolate_locals(defn, "n")) == llb.definition_digest(defn)
