"""buildkit/store.py without a daemon: stored images are named by content and read from the daemon's own store;
for a daemon without an image store the Definition sends the trees instead, with every user re-pointed."""

from __future__ import annotations

import pytest

from melange_bk import llb
from melange_bk.buildkit.store import StoredTree, inline_stored
from melange_bk.protos import ops_pb2

P = llb.Platform("linux", "amd64")
BASE = StoredTree("base", "tar-" + "1" * 64, "melange-bk-base")
LAYER = StoredTree("layer", "2" * 64, "melange-bk-env-x", ("usr/bin/tar",))


def _graph() -> ops_pb2.Definition:
    root = llb.file(
        BASE.state(), llb.copy(LAYER.state(), "/", "/", copy_dir_contents=True), custom_name="install"
    )
    return llb.marshal(llb.run(root, ["true"], custom_name="step").root, platform=P)


def _sources(defn: ops_pb2.Definition) -> list:
    return sorted(op.source.identifier for _, op in llb.decode_ops(defn) if op.WhichOneof("op") == "source")


def test_stored_images_are_read_from_the_daemons_store() -> None:
    defn = _graph()
    assert _sources(defn) == [f"docker-image://{BASE.ref}", f"docker-image://{LAYER.ref}"]
    for _, op in llb.decode_ops(defn):
        if op.WhichOneof("op") == "source":
            assert dict(op.source.attrs) == {"image.resolvemode": "local"}
            assert op.platform.OS == "linux"
    assert BASE.ref == "melange-bk.invalid/base:tar-" + "1" * 64


@pytest.mark.parametrize(
    "ref", ["docker.io/library/x:1", "melange-bk.invalid/base", "melange-bk.invalid/B:x"]
)
def test_stored_image_refs_are_ours_only(ref: str) -> None:
    with pytest.raises(llb.LLBError):
        llb.stored_image(ref)


def test_inline_sends_the_trees_and_keeps_the_rest() -> None:
    defn = _graph()
    out = inline_stored(defn, (BASE, LAYER), P)
    assert _sources(out) == ["local://melange-bk-base", "local://melange-bk-env-x"]
    ops = llb.decode_ops(out)
    digests = [d for d, _ in ops]
    for i, (_, op) in enumerate(ops):  # every input precedes its user, and exists
        assert all(inp.digest in digests[:i] for inp in op.inputs)
    names = [out.metadata[d].description.get("llb.customname", "") for d in digests]
    assert "install" in names and "step" in names and any(n.startswith("send layer ") for n in names)
    assert b'["usr/bin/tar"]' in out.SerializeToString()  # the layer's exclusions travel with it
    assert llb.to_bytes(inline_stored(defn, (BASE, LAYER), P)) == llb.to_bytes(out)  # deterministic
    assert llb.to_bytes(inline_stored(defn, (), P)) == llb.to_bytes(defn)
