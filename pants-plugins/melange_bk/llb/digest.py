"""Digests of ops and definitions."""

from __future__ import annotations

import hashlib
from typing import Sequence

from melange_bk.protos import ops_pb2


def digest_bytes(data: bytes) -> str:
    """`sha256:<hex>` of `data` (an op's digest is this over its serialized bytes)."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def serialize(message: object) -> bytes:
    """Deterministic protobuf serialization (map entries sorted by key)."""
    return message.SerializeToString(deterministic=True)  # type: ignore[attr-defined]


def definition_digest(defn: ops_pb2.Definition) -> str:
    """A cache key for a whole Definition: sha256 over its deterministic serialization (ops, in order, and the
    metadata map sorted by op digest)."""
    return digest_bytes(serialize(defn))


def op_bytes(defn: ops_pb2.Definition) -> Sequence[bytes]:
    """The serialized ops of a Definition (the field is named `def`, a Python keyword)."""
    return getattr(defn, "def")


def head_digest(defn: ops_pb2.Definition) -> str:
    """The digest of the result op (the single input of the final op), or "" for an empty Definition."""
    ops = op_bytes(defn)
    if not ops:
        return ""
    last = ops_pb2.Op()
    last.ParseFromString(ops[-1])
    return last.inputs[0].digest if last.inputs else ""
