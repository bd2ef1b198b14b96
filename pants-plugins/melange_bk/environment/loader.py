"""An environment as LLB: the base, the installed layer copied on top, then the recorded scriptlets.

    base none   scratch
    base dir    the stored image of the rootfs directory (`buildkit.store`: loaded into the daemon once, keyed by
    base tar    its content identity; the tarball is unpacked into the cache once)
    base image  an image source (pinned by digest)

The installed layer is a stored image too, keyed by the layer's digest and the paths left out of it: a build on an
unchanged base and layer sends neither and walks neither (their cache keys are the images' config digests).
Scriptlets (`.pre-install` then `.post-install` of each package, in install order) run in one exec, from files
made by a FileOp and mounted read-only, so they never reach the environment itself. Nothing here depends on
paths of this machine: equal inputs marshal to equal bytes.
"""

from __future__ import annotations

import hashlib
import json
from typing import Optional, Sequence

from melange_bk import llb
from melange_bk.buildkit.store import StoredTree
from melange_bk.environment.base import Base
from melange_bk.environment.installer import Scriptlet

BASE_LOCAL_NAME = "melange-bk-base"
SCRIPTLET_DIR = "/.melange-bk-scriptlets"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
RUN_ALL = f'set -e; for s in {SCRIPTLET_DIR}/*; do echo "running ${{s##*/}}"; "$s"; done'


def base_tree(identity: str) -> StoredTree:
    """The stored image of a local base whose content identity is `identity` (see base.local_identity)."""
    return StoredTree("base", identity, BASE_LOCAL_NAME)


def layer_tree(layer_name: str, digest: str, exclude: Sequence[str] = ()) -> StoredTree:
    """The stored image of an installed layer (`digest`, the layer's), without `exclude` (`shadowed_by_base`)."""
    doc = json.dumps([digest, sorted(exclude)], separators=(",", ":")).encode("utf-8")
    return StoredTree("layer", hashlib.sha256(doc).hexdigest(), layer_name, tuple(exclude))


def base_state(base: Base, stored: Optional[StoredTree] = None) -> llb.State:
    """`stored`: the base's stored image (`base_tree`), for a local base."""
    if base.kind == "none":
        return llb.scratch()
    if base.kind == "image":
        return llb.image(base.location, custom_name=f"base image {llb.normalize_image_ref(base.location)}")
    if stored is None:
        raise ValueError("a local base is read from its stored image: give base_tree(identity)")
    return stored.state()


def scriptlet_state(scriptlets: Sequence[Scriptlet]) -> llb.State:
    actions = llb.FileActions()
    for i, s in enumerate(scriptlets):
        actions = actions.mkfile(f"/{i:04d}-{s.file_name}", 0o755, s.content, timestamp=0)
    return llb.file(llb.scratch(), actions, custom_name="scriptlets")


def environment_state(
    base: Base,
    layer: StoredTree,
    scriptlets: Sequence[Scriptlet] = (),
    stored_base: Optional[StoredTree] = None,
) -> llb.State:
    """The environment's root filesystem: `layer` (`layer_tree`) copied onto the base, then the scriptlets."""
    state = llb.file(
        base_state(base, stored_base),
        llb.copy(layer.state(), "/", "/", copy_dir_contents=True),
        custom_name=f"install {layer.local_name}",
    )
    if not scriptlets:
        return state
    return llb.run(
        state,
        ["/bin/sh", "-c", RUN_ALL],
        env={"PATH": PATH},
        cwd="/",
        mounts=[llb.bind(SCRIPTLET_DIR, scriptlet_state(scriptlets), readonly=True)],
        custom_name=f"run {len(scriptlets)} install scriptlet(s)",
    ).root
