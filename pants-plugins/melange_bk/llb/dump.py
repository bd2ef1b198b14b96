"""Definition → JSON lines / dot, like `buildctl debug dump-llb`.

One object per op, in Definition order: `{"Op": …, "Digest": "sha256:…", "OpMetadata": …}`. The op is shaped like
Go's `pb.Op` JSON (`inputs`, `Op: {exec|source|file|…}`, `platform`, `constraints`; file actions as `input`,
`secondaryInput`, `output`, `Action: {copy|mkfile|mkdir|rm}`), with proto field names, integers as numbers, bytes
as base64 and enums by name. Unset fields are left out, except the input/output indexes of mounts and file
actions (0 is meaningful there). Map keys are sorted, so the output is stable.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Dict, List, Tuple

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from melange_bk.llb.digest import digest_bytes, op_bytes
from melange_bk.llb.state import LLBError
from melange_bk.protos import ops_pb2

_ALWAYS = {
    "pb.Mount": ("input", "output"),
    "pb.FileAction": ("input", "secondaryInput", "output"),
}
_ONEOF_WRAPPER = {"pb.Op": ("op", "Op"), "pb.FileAction": ("action", "Action")}


def _scalar(fd: FieldDescriptor, value: Any) -> Any:
    if fd.type == FieldDescriptor.TYPE_BYTES:
        return base64.b64encode(value).decode("ascii")
    if fd.type == FieldDescriptor.TYPE_ENUM:
        ev = fd.enum_type.values_by_number.get(value)
        return ev.name if ev is not None else value
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        return message_to_dict(value)
    return value


def message_to_dict(msg: Message) -> Dict[str, Any]:
    """A stable dict of a protobuf message (see module doc)."""
    full = msg.DESCRIPTOR.full_name
    out: Dict[str, Any] = {}
    for name in _ALWAYS.get(full, ()):
        out[name] = getattr(msg, name)
    wrapper = _ONEOF_WRAPPER.get(full)
    for fd, value in msg.ListFields():
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            value_fd = fd.message_type.fields_by_name["value"]
            entry = {k: _scalar(value_fd, value[k]) for k in sorted(value)}
            out[fd.name] = entry
        elif fd.label == FieldDescriptor.LABEL_REPEATED:
            out[fd.name] = [_scalar(fd, v) for v in value]
        elif (
            wrapper is not None and fd.containing_oneof is not None and fd.containing_oneof.name == wrapper[0]
        ):
            out[wrapper[1]] = {fd.name: _scalar(fd, value)}
        else:
            out[fd.name] = _scalar(fd, value)
    return out


def parse_definition(data: bytes) -> ops_pb2.Definition:
    defn = ops_pb2.Definition()
    try:
        defn.ParseFromString(data)
    except DecodeError as e:
        raise LLBError(f"not a serialized LLB Definition: {e}") from None
    return defn


def decode_ops(defn: ops_pb2.Definition) -> List[Tuple[str, ops_pb2.Op]]:
    """(digest, parsed op) for each op, in Definition order."""
    result = []
    for i, data in enumerate(op_bytes(defn)):
        op = ops_pb2.Op()
        try:
            op.ParseFromString(data)
        except DecodeError as e:
            raise LLBError(f"op {i} of the Definition does not parse: {e}") from None
        result.append((digest_bytes(data), op))
    return result


def dump_ops(defn: ops_pb2.Definition) -> List[Dict[str, Any]]:
    """One dict per op, in Definition order."""
    result = []
    for dgst, op in decode_ops(defn):
        entry: Dict[str, Any] = {"Op": message_to_dict(op), "Digest": dgst}
        if dgst in defn.metadata:
            entry["OpMetadata"] = message_to_dict(defn.metadata[dgst])
        else:
            entry["OpMetadata"] = {}
        result.append(entry)
    return result


def dump_json_lines(defn: ops_pb2.Definition) -> str:
    """The `dump-llb` text: one compact JSON object per line."""
    return "".join(json.dumps(e, separators=(",", ":"), ensure_ascii=False) + "\n" for e in dump_ops(defn))


def _label(op: ops_pb2.Op, dgst: str) -> Tuple[str, str]:
    kind = op.WhichOneof("op")
    if kind == "source":
        return op.source.identifier, "ellipse"
    if kind == "exec":
        return " ".join(op.exec.meta.args), "box"
    if kind == "file":
        names = []
        for a in op.file.actions:
            which = a.WhichOneof("action")
            if which == "copy":
                names.append(f"copy{{src={a.copy.src}, dest={a.copy.dest}}}")
            elif which in ("mkfile", "mkdir", "rm"):
                names.append(f"{which}{{path={getattr(a, which).path}}}")
            else:
                names.append(str(which))
        return ",".join(names), "note"
    if kind in ("build", "merge", "diff"):
        return kind, {"build": "box3d", "merge": "invtriangle", "diff": "doublecircle"}[kind]
    return dgst, "plaintext"


def dump_dot(defn: ops_pb2.Definition) -> str:
    """The graph in Graphviz dot, like `buildctl debug dump-llb --dot`."""
    lines = ["digraph {"]
    parsed = decode_ops(defn)
    for dgst, op in parsed:
        name, shape = _label(op, dgst)
        lines.append(f"  {json.dumps(dgst)} [label={json.dumps(name)} shape={json.dumps(shape)}];")
    for dgst, op in parsed:
        for i, inp in enumerate(op.inputs):
            label = ""
            if op.WhichOneof("op") == "exec":
                for m in op.exec.mounts:
                    if m.input == i and m.dest != "/":
                        label = m.dest
            lines.append(f"  {json.dumps(inp.digest)} -> {json.dumps(dgst)} [label={json.dumps(label)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
