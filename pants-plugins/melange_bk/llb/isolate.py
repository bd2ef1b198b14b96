"""Make a Definition's local sources belong to one solve only.

BuildKit merges identical vertices of concurrent jobs: two builds whose `local://workspace` sources marshal to the
same bytes (same name, patterns and `local.unique`, which we derive from those so that Definitions are
deterministic) share one vertex, synced from one of the two sessions, and one build gets the other's files. Go's
clients avoid this with a per-session attribute. `isolate_locals` adds a nonce to every local source's
`local.unique` just before a solve, after the Definition's digest was taken: emitted LLB stays deterministic, and
caching is unaffected (a local source's cache key is per session anyway; what follows it is keyed by content).
"""

from __future__ import annotations

from typing import Dict

from melange_bk.llb.digest import digest_bytes, op_bytes, serialize
from melange_bk.llb.source import ATTR_LOCAL_UNIQUE
from melange_bk.protos import ops_pb2


def isolate_locals(defn: ops_pb2.Definition, nonce: str) -> ops_pb2.Definition:
    """A copy of `defn` whose local sources carry `nonce` in `local.unique` (inputs re-pointed; ops in order)."""
    out = ops_pb2.Definition()
    renamed: Dict[str, str] = {}
    for data in op_bytes(defn):
        old = digest_bytes(data)
        op = ops_pb2.Op()
        op.ParseFromString(data)
        changed = False
        if op.WhichOneof("op") == "source" and op.source.identifier.startswith("local://"):
            base = op.source.attrs.get(ATTR_LOCAL_UNIQUE, "")
            op.source.attrs[ATTR_LOCAL_UNIQUE] = f"{base}-{nonce}" if base else nonce
            changed = True
        for inp in op.inputs:
            if inp.digest in renamed:
                inp.digest = renamed[inp.digest]
                changed = True
        if changed:
            data = serialize(op)
        new = digest_bytes(data)
        if new != old:
            renamed[old] = new
        op_bytes(out).append(data)
    for dgst, md in defn.metadata.items():
        out.metadata[renamed.get(dgst, dgst)].CopyFrom(md)
    if defn.HasField("Source"):
        out.Source.infos.extend(defn.Source.infos)
        for dgst, locs in defn.Source.locations.items():
            out.Source.locations[renamed.get(dgst, dgst)].CopyFrom(locs)
    return out
