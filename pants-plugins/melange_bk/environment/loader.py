"""An environment as LLB: the base, the installed layer copied on top, then the recorded scriptlets.

    base none   scratch
    base dir    scratch + copy of the local source `melange-bk-base`
    base tar    same, from the tarball unpacked into the cache
    base image  an image source (pinned by digest)

The layer directory is sent through the session as the local source `layer_name` and copied onto the base (the
copy's cache key is the layer's content, so an unchanged layer is a cache hit whatever its path on this machine).
Scriptlets (`.pre-install` then `.post-install` of each package, in install order) run in one exec, from files
made by a FileOp and mounted read-only, so they never reach the environment itself. Nothing here depends on
paths of this machine: equal inputs marshal to equal bytes.
"""

from __future__ import annotations

from typing import Sequence

from melange_bk import llb
from melange_bk.environment.base import Base
from melange_bk.environment.installer import Scriptlet

BASE_LOCAL_NAME = "melange-bk-base"
SCRIPTLET_DIR = "/.melange-bk-scriptlets"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
RUN_ALL = f'set -e; for s in {SCRIPTLET_DIR}/*; do echo "running ${{s##*/}}"; "$s"; done'


def base_state(base: Base, identity: str = "") -> llb.State:
    """`identity` (see base.local_identity) keeps two different local bases apart in the daemon."""
    if base.kind == "none":
        return llb.scratch()
    if base.kind == "image":
        return llb.image(base.location, custom_name=f"base image {llb.normalize_image_ref(base.location)}")
    return llb.file(
        llb.scratch(),
        llb.copy(llb.local(BASE_LOCAL_NAME, unique=identity or None), "/", "/", copy_dir_contents=True),
        custom_name="base rootfs",
    )


def scriptlet_state(scriptlets: Sequence[Scriptlet]) -> llb.State:
    actions = llb.FileActions()
    for i, s in enumerate(scriptlets):
        actions = actions.mkfile(f"/{i:04d}-{s.file_name}", 0o755, s.content, timestamp=0)
    return llb.file(llb.scratch(), actions, custom_name="scriptlets")


def environment_state(
    base: Base,
    layer_name: str,
    scriptlets: Sequence[Scriptlet] = (),
    exclude: Sequence[str] = (),
    base_identity: str = "",
) -> llb.State:
    """The environment's root filesystem; `layer_name` is the local source holding the installed layer, of which
    the paths in `exclude` (`shadowed_by_base`) are not sent."""
    state = llb.file(
        base_state(base, base_identity),
        llb.copy(llb.local(layer_name, exclude=tuple(exclude)), "/", "/", copy_dir_contents=True),
        custom_name=f"install {layer_name}",
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
