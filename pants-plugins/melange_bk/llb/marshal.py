"""`marshal()`: a state's graph → `pb.Definition`, byte-for-byte deterministic.

As Go's `State.Marshal`: ops are visited inputs-first (in each op's input order), each serialized
deterministically and named by the sha256 of its bytes; duplicates (same digest) appear once; a final op with a
single input selects the result. Metadata is kept per digest: the capabilities each op needs and its
description; the final op declares `constraints` and `platform` (and `meta.description` when any op has one).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Set, Tuple

from melange_bk.llb.digest import digest_bytes, op_bytes, serialize
from melange_bk.llb.state import LLBError, Output, Platform, State, Vertex
from melange_bk.protos import ops_pb2


def _post_order(root: Vertex) -> List[Vertex]:
    """Vertices reachable from `root`, each after all of its inputs, inputs visited in order (iterative, so deep
    graphs do not hit the recursion limit)."""
    order: List[Vertex] = []
    done: Set[int] = set()
    stack: List[Tuple[Vertex, bool]] = [(root, False)]
    while stack:
        vertex, expanded = stack.pop()
        if id(vertex) in done:
            continue
        if expanded:
            done.add(id(vertex))
            order.append(vertex)
            continue
        stack.append((vertex, True))
        for inp in reversed(vertex.inputs()):
            if id(inp.vertex) not in done:
                stack.append((inp.vertex, False))
    return order


def marshal(
    state: State, platform: Optional[Platform] = None, ignore_cache: bool = False
) -> ops_pb2.Definition:
    """Serialize the graph behind `state`.

    `platform` is set on exec ops and image sources that do not carry their own; None leaves it empty, which
    the daemon reads as its worker's default platform (never this machine's). Scratch gives an empty
    Definition. `ignore_cache` marks every op so the daemon re-runs it (`--no-cache`).
    """
    defn = ops_pb2.Definition()
    if state.output is None:
        return defn
    digests: Dict[int, str] = {}
    seen: Set[str] = set()

    def resolve(out: Output) -> ops_pb2.Input:
        try:
            return ops_pb2.Input(digest=digests[id(out.vertex)], index=out.index)
        except KeyError:
            raise LLBError(f"internal: input {type(out.vertex).__name__} marshalled out of order") from None

    described = False
    for vertex in _post_order(state.output.vertex):
        spec = vertex.to_spec(resolve, platform)
        data = serialize(spec.op)
        dgst = digest_bytes(data)
        digests[id(vertex)] = dgst
        md = defn.metadata[dgst]  # creates the entry: Go keeps metadata for every op
        for cap in spec.caps:
            md.caps[cap] = True
        if ignore_cache:
            md.ignore_cache = True
        for key, value in spec.description:
            md.description[key] = value
            described = True
        if dgst not in seen:
            seen.add(dgst)
            op_bytes(defn).append(data)

    final = ops_pb2.Op()
    final.inputs.add().CopyFrom(resolve(state.output))
    data = serialize(final)
    md = defn.metadata[digest_bytes(data)]
    md.caps["constraints"] = True
    md.caps["platform"] = True
    if described:
        md.caps["meta.description"] = True
    if ignore_cache:
        md.caps["meta.ignorecache"] = True
    op_bytes(defn).append(data)
    return defn


def to_bytes(defn: ops_pb2.Definition) -> bytes:
    """The Definition as bytes (deterministic), e.g. for `melange-bk dump-llb` or a Solve request."""
    return serialize(defn)
