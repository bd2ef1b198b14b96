"""The immutable graph: vertices (ops), their outputs, and the states that point at them.

A `State` is a filesystem: either scratch (no output) or one output of a vertex. Vertices are frozen dataclasses
that know how to turn themselves into an `ops_pb2.Op` once the digests of their inputs are known; `marshal`
(in `melange_bk.llb.marshal`) walks them inputs-first.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

from melange_bk.errors import MelangeError
from melange_bk.protos import ops_pb2

# Maps an output of an already-marshalled vertex to the `pb.Input` that references it.
InputResolver = Callable[["Output"], ops_pb2.Input]


class LLBError(MelangeError):
    """An LLB graph that cannot be built as asked (bad reference, bad path, conflicting mounts...)."""


@dataclass(frozen=True)
class Platform:
    """An OCI platform (`linux/amd64`, `linux/arm64/v8`)."""

    os: str
    architecture: str
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise LLBError(f"invalid platform {text!r}: expected os/arch[/variant]")
        return cls(os=parts[0], architecture=parts[1], variant=parts[2] if len(parts) == 3 else "")

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def to_pb(self) -> ops_pb2.Platform:
        return ops_pb2.Platform(OS=self.os, Architecture=self.architecture, Variant=self.variant)


@dataclass(frozen=True)
class OpSpec:
    """What a vertex marshals to: the op itself plus the metadata BuildKit keeps beside it."""

    op: ops_pb2.Op
    caps: Tuple[str, ...] = ()
    description: Tuple[Tuple[str, str], ...] = ()


class Vertex:
    """Base of every op dataclass. Subclasses are `@dataclass(frozen=True)`."""

    def inputs(self) -> Tuple[Output, ...]:
        """The outputs this vertex reads, in the order its op lists them (marshal visits them in this order)."""
        raise NotImplementedError

    def to_spec(self, resolve: InputResolver, platform: Optional[Platform]) -> OpSpec:
        """Build the op; `resolve` gives the `pb.Input` of any output in `inputs()`."""
        raise NotImplementedError


@dataclass(frozen=True)
class Output:
    """One output (by index) of a vertex."""

    vertex: Vertex
    index: int = 0


@dataclass(frozen=True)
class State:
    """A filesystem in the graph. `State()` is scratch (empty)."""

    output: Optional[Output] = None

    @property
    def is_scratch(self) -> bool:
        return self.output is None


def scratch() -> State:
    """The empty filesystem."""
    return State()


def new_op(platform: Optional[Platform]) -> ops_pb2.Op:
    """An op carrying the fields Go's `MarshalConstraints` sets on every op: platform (if any) and an empty
    worker-constraints message."""
    op = ops_pb2.Op()
    if platform is not None:
        op.platform.CopyFrom(platform.to_pb())
    op.constraints.SetInParent()
    return op


def description(name: Optional[str]) -> Tuple[Tuple[str, str], ...]:
    return (("llb.customname", name),) if name else ()


def clean_path(p: str) -> str:
    """Go's `path.Clean`: lexical, `//a` becomes `/a`, empty becomes `.`."""
    if not p:
        return "."
    cleaned = posixpath.normpath(p)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def abs_path(p: str, keep_slash: bool = False) -> str:
    """Absolute, cleaned path inside a filesystem (relative paths are taken from `/`). With `keep_slash`, a
    trailing `/` or `/.` of the original is kept, as Go's file op does for copy destinations."""
    cleaned = clean_path(p)
    if not cleaned.startswith("/"):
        cleaned = clean_path("/" + cleaned)
    if keep_slash:
        if p.endswith("/") and not cleaned.endswith("/"):
            cleaned += "/"
        elif p.endswith("/."):
            if cleaned != "/":
                cleaned += "/"
            cleaned += "."
    return cleaned


def sorted_items(mapping: Dict[str, str]) -> Tuple[Tuple[str, str], ...]:
    return tuple(sorted(mapping.items()))
