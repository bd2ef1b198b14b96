"""Local trees stored once in the daemon as content-addressed images (a base rootfs, an installed-packages layer).

A local source is synced by every solve: its cache key belongs to the session, so BuildKit has the client walk
the whole tree and compares it each time (4.5 s of a 5.9 s fully cached build for the 650 MB Debian rootfs). A
`StoredTree` is loaded once instead: a solve copies the local directory onto scratch and exports it into the
daemon's own image store (the `image` exporter on buildkitd, `moby` on dockerd) as
`melange-bk.invalid/NAME:IDENTITY`; builds read it with `llb.stored_image`, whose cache key is the image's config
digest, the same in every session, so an unchanged tree is neither sent nor walked. IDENTITY is the tree's
content identity (a tarball's SHA-256, a layer's digest): a changed tree has another name and is loaded anew.

Which images a daemon holds is remembered in `memo_dir` (an empty file per daemon address and image). An image
the daemon does not have (never loaded, or pruned since) makes the build fail on that image's vertex before any
step runs: it is then loaded and the build retried, once.

Only dockerd's embedded BuildKit has an image store that builds can read from (`moby` exporter, prefer-local
resolution). buildkitd's OCI worker has none (its worker sets no ImageStore): there `solve_stored` sends each
tree as a local source again, the stored image's vertex replaced by the tree's load (`inline_stored`) — as fast
as before this module, and the same result.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

from melange_bk import llb
from melange_bk.buildkit.client import Client
from melange_bk.buildkit.progress import Progress
from melange_bk.buildkit.session import ExportTarget
from melange_bk.buildkit.solve import SolveResult, solve
from melange_bk.errors import BuildKitError
from melange_bk.llb.digest import digest_bytes, op_bytes, serialize
from melange_bk.protos import ops_pb2


@dataclass(frozen=True)
class StoredTree:
    """A local directory (offered to the session as `local_name`) that builds read as a stored image."""

    name: str  # the image's repository under llb.STORED_DOMAIN: "base", "layer"
    identity: str  # its tag: the tree's content identity (lowercase letters, digits, `-`, `.`)
    local_name: str
    exclude: Tuple[str, ...] = ()  # paths of the directory left out of the image

    @property
    def ref(self) -> str:
        return f"{llb.STORED_DOMAIN}/{self.name}:{self.identity}"

    def state(self) -> llb.State:
        return llb.stored_image(self.ref, custom_name=f"stored {self.ref}")

    def load_state(self) -> llb.State:
        """The directory copied onto scratch: what is exported as the image."""
        source = llb.local(self.local_name, exclude=self.exclude, unique=f"{self.name}-{self.identity}")
        return llb.file(
            llb.scratch(),
            llb.copy(source, "/", "/", copy_dir_contents=True),
            custom_name=f"send {self.name} {self.identity}",
        )


def load(
    client: Client,
    tree: StoredTree,
    local_dirs: Dict[str, str],
    platform: llb.Platform,
    progress: Optional[Progress] = None,
) -> None:
    """Send `tree` once and store it in the daemon's image store under `tree.ref`."""
    kind = "moby" if client.address.is_docker else "image"
    solve(
        client,
        llb.marshal(tree.load_state(), platform=platform),
        local_dirs={tree.local_name: local_dirs[tree.local_name]},
        export=ExportTarget(kind, attrs=(("name", tree.ref),)),
        progress=progress,
    )


def _memo(memo_dir: str, client: Client, tree: StoredTree) -> str:
    daemon = hashlib.sha256(str(client.address).encode("utf-8")).hexdigest()[:16]
    return os.path.join(memo_dir, daemon, f"{tree.name}-{tree.identity}")


def _load_remembered(
    client: Client,
    tree: StoredTree,
    local_dirs: Dict[str, str],
    platform: llb.Platform,
    memo_dir: str,
    progress: Optional[Progress],
) -> None:
    """Load `tree` unless remembered; builds running side by side wait for the one that loads it."""
    memo = _memo(memo_dir, client, tree)
    if os.path.exists(memo):
        return
    os.makedirs(os.path.dirname(memo), exist_ok=True)
    with open(memo + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(memo):
            return
        load(client, tree, local_dirs, platform, progress)
        open(memo, "w").close()


def _forget(memo_dir: Optional[str], client: Client, tree: StoredTree) -> None:
    if memo_dir:
        try:
            os.unlink(_memo(memo_dir, client, tree))
        except FileNotFoundError:
            pass


def solve_stored(
    client: Client,
    definition: ops_pb2.Definition,
    stored: Sequence[StoredTree],
    *,
    local_dirs: Dict[str, str],
    memo_dir: Optional[str] = None,
    export: Optional[ExportTarget] = None,
    progress: Optional[Progress] = None,
) -> SolveResult:
    """`solve`, with the `stored` trees the Definition reads loaded into the daemon first (those not known to be
    there). Only the workspace and other plain local sources are sent; `local_dirs` must also hold the stored
    trees' directories, for loading."""
    platform = _platform_of(definition)
    if not client.address.is_docker:
        definition = inline_stored(definition, stored, platform)
        return solve(client, definition, local_dirs=local_dirs, export=export, progress=progress)
    if memo_dir:
        for tree in stored:
            _load_remembered(client, tree, local_dirs, platform, memo_dir, progress)
    try:
        return solve(client, definition, local_dirs=local_dirs, export=export, progress=progress)
    except BuildKitError as e:
        missing = [t for t in stored if t.ref in str(e)]
        if not missing:
            raise
    for tree in missing:
        _forget(memo_dir, client, tree)
        if memo_dir:
            _load_remembered(client, tree, local_dirs, platform, memo_dir, progress)
        else:
            load(client, tree, local_dirs, platform, progress)
    return solve(client, definition, local_dirs=local_dirs, export=export, progress=progress)


def inline_stored(
    definition: ops_pb2.Definition, stored: Sequence[StoredTree], platform: llb.Platform
) -> ops_pb2.Definition:
    """`definition` with each stored image's source op replaced by the ops that load its tree from the local
    directory (`StoredTree.load_state`), for a daemon without an image store; the ops that used it re-pointed.
    """
    by_identifier = {
        "docker-image://" + t.ref: llb.marshal(t.load_state(), platform=platform) for t in stored
    }
    loads: Dict[str, ops_pb2.Definition] = {}  # image source op digest -> the load's Definition
    for dgst, op in llb.decode_ops(definition):
        if op.WhichOneof("op") == "source" and op.source.identifier in by_identifier:
            loads[dgst] = by_identifier[op.source.identifier]
    out = ops_pb2.Definition()
    renamed: Dict[str, str] = {}
    present = set()

    def append(data: bytes) -> None:
        d = digest_bytes(data)
        if d not in present:
            present.add(d)
            op_bytes(out).append(data)

    for data in op_bytes(definition):
        old = digest_bytes(data)
        load = loads.get(old)
        if load is not None:
            for inner in op_bytes(load)[:-1]:  # (its last op only points at the result)
                append(inner)
            for dgst, md in load.metadata.items():
                out.metadata[dgst].CopyFrom(md)
            renamed[old] = llb.head_digest(load)
            continue
        op = ops_pb2.Op()
        op.ParseFromString(data)
        if any(inp.digest in renamed for inp in op.inputs):
            for inp in op.inputs:
                inp.digest = renamed.get(inp.digest, inp.digest)
            data = serialize(op)
            renamed[old] = digest_bytes(data)
        append(data)
    for dgst, md in definition.metadata.items():
        if dgst not in loads:
            out.metadata[renamed.get(dgst, dgst)].CopyFrom(md)
    return out


def _platform_of(definition: ops_pb2.Definition) -> llb.Platform:
    """The platform the Definition reads the stored images for (they are made for it)."""
    for _, op in llb.decode_ops(definition):
        if op.WhichOneof("op") == "source" and op.source.identifier.startswith("docker-image://"):
            p = op.platform
            if p.OS:
                return llb.Platform(p.OS, p.Architecture, p.Variant)
    return llb.Platform("linux", "amd64")
