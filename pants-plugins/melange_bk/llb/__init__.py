"""LLB: BuildKit's build graph, built from immutable states and marshalled deterministically.

    root = llb.file(llb.scratch(), llb.copy(llb.local("rootfs"), "/", "/", copy_dir_contents=True))
    result = llb.run(root, ["/bin/sh", "-c", "make"], env={"PATH": "/usr/bin:/bin"}, cwd="/home/build",
                     mounts=[llb.bind("/home/build/melange-out", llb.scratch())])
    definition = llb.marshal(result.get_mount("/home/build/melange-out"))
"""

from __future__ import annotations

from melange_bk.llb.digest import definition_digest, digest_bytes, head_digest, op_bytes
from melange_bk.llb.dump import decode_ops, dump_dot, dump_json_lines, dump_ops, parse_definition
from melange_bk.llb.exec import (
    CacheSharing,
    ExecOp,
    ExecResult,
    Mount,
    NetMode,
    SecurityMode,
    bind,
    cache,
    required_entitlements,
    run,
    security_for,
    tmpfs,
)
from melange_bk.llb.file import FileActions, FileOp, Owner, copy, file, mkdir, mkfile, rm
from melange_bk.llb.isolate import isolate_locals
from melange_bk.llb.marshal import marshal, to_bytes
from melange_bk.llb.source import (
    STORED_DOMAIN,
    SourceOp,
    git,
    http,
    image,
    local,
    normalize_image_ref,
    stored_image,
)
from melange_bk.llb.state import LLBError, Output, Platform, State, scratch

__all__ = [
    "CacheSharing",
    "ExecOp",
    "ExecResult",
    "FileActions",
    "FileOp",
    "LLBError",
    "Mount",
    "NetMode",
    "Output",
    "Owner",
    "Platform",
    "SecurityMode",
    "SourceOp",
    "State",
    "bind",
    "cache",
    "copy",
    "decode_ops",
    "definition_digest",
    "digest_bytes",
    "dump_dot",
    "dump_json_lines",
    "dump_ops",
    "file",
    "git",
    "head_digest",
    "http",
    "image",
    "isolate_locals",
    "stored_image",
    "STORED_DOMAIN",
    "local",
    "marshal",
    "mkdir",
    "mkfile",
    "normalize_image_ref",
    "op_bytes",
    "parse_definition",
    "required_entitlements",
    "rm",
    "run",
    "scratch",
    "security_for",
    "tmpfs",
    "to_bytes",
]
