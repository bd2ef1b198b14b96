"""From a plan's environment to an LLB state and the local directories its solve must offer.

    prepared = prepare_environment(plan.environment, base=parse_base("none"), arch="x86_64")
    result = llb.run(prepared.state, [...])
    solve_stored(client, llb.marshal(...), prepared.stored, local_dirs=prepared.local_dirs_dict(),
                 memo_dir=prepared.memo_dir)

Steps: fetch the keyring, fetch and verify each repository's index, resolve the packages, then install them into
a layer directory under the user cache keyed by the layer's digest (the packages' checksums, the world, keys,
remote repositories and accounts) -- an existing layer is reused without fetching a package again.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

from melange_bk import llb
from melange_bk.atomicfile import atomic_write
from melange_bk.buildkit.store import StoredTree
from melange_bk.config.arch import host_arch
from melange_bk.environment.base import NONE, Base, local_identity, local_rootfs, read_base_file
from melange_bk.environment.installer import (
    BUILD_GROUP,
    BUILD_USER,
    GroupAccount,
    InstallOptions,
    Scriptlet,
    UserAccount,
    base_links,
    fit_to_base,
    install,
    shadowed_by_base,
)
from melange_bk.environment.loader import BASE_LOCAL_NAME, base_tree, environment_state, layer_tree
from melange_bk.environment.repository import (
    cache_dir,
    fetch_keys,
    fetch_packages,
    load_indexes,
    make_keyring,
)
from melange_bk.environment.resolver import Resolution, resolve
from melange_bk.plan import model as plan

LAYER_FORMAT = 1


@dataclass(frozen=True)
class PreparedEnvironment:
    state: llb.State
    local_dirs: Tuple[Tuple[str, str], ...]  # (local source name, directory), sorted
    # The trees `state` reads as stored images (base first, then the layer): solve with `solve_stored`, which
    # loads those the daemon lacks (remembered in `memo_dir`).
    stored: Tuple[StoredTree, ...]
    memo_dir: str
    layer_name: str
    layer_dir: str
    resolution: Resolution
    scriptlets: Tuple[Scriptlet, ...]
    base: Base

    def local_dirs_dict(self) -> Dict[str, str]:
        return dict(self.local_dirs)


def accounts_from_plan(
    accounts: Optional[plan.Accounts],
) -> Tuple[Tuple[UserAccount, ...], Tuple[GroupAccount, ...]]:
    if accounts is None or (not accounts.users and not accounts.groups):
        return (BUILD_USER,), (BUILD_GROUP,)
    users = tuple(
        UserAccount(
            u.username,
            u.uid if u.uid is not None else 1000,
            u.gid if u.gid is not None else (u.uid if u.uid is not None else 1000),
            u.homedir or f"/home/{u.username}",
            u.shell or "/bin/sh",
        )
        for u in accounts.users
    )
    groups = tuple(
        GroupAccount(g.groupname, g.gid if g.gid is not None else 1000, g.members) for g in accounts.groups
    )
    return users, groups


def layer_digest(
    resolution: Resolution, options: InstallOptions, links: Sequence[Tuple[str, str]] = ()
) -> str:
    doc = {
        "base_links": [list(x) for x in links],
        "format": LAYER_FORMAT,
        "arch": options.arch,
        "packages": [[p.name, p.version, p.checksum] for p in resolution.packages],
        "world": sorted(set(options.world)),
        "repositories": [r for r in options.repositories if r.startswith(("http://", "https://"))],
        "keys": [[k.name, hashlib.sha256(k.pem).hexdigest()] for k in options.keys],
        "users": [[u.name, u.uid, u.gid, u.home, u.shell] for u in options.users],
        "groups": [[g.name, g.gid, list(g.members)] for g in options.groups],
        "base_passwd": options.base_passwd,
        "base_group": options.base_group,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def _manifest(scriptlets: Sequence[Scriptlet], packages: Sequence[str]) -> bytes:
    return json.dumps(
        {
            "packages": list(packages),
            "scriptlets": [
                [s.package, s.kind, base64.b64encode(s.content).decode("ascii")] for s in scriptlets
            ],
        },
        sort_keys=True,
    ).encode("utf-8")


def _load_manifest(path: str) -> Optional[Tuple[Scriptlet, ...]]:
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read())
        return tuple(Scriptlet(p, k, base64.b64decode(c)) for p, k, c in doc["scriptlets"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def prepare(
    packages: Sequence[str],
    repositories: Sequence[str],
    keyring: Sequence[str],
    *,
    base: Base = NONE,
    arch: Optional[str] = None,
    users: Tuple[UserAccount, ...] = (BUILD_USER,),
    groups: Tuple[GroupAccount, ...] = (BUILD_GROUP,),
    cache: Optional[str] = None,
    allow_untrusted: bool = False,
) -> PreparedEnvironment:
    """Resolve `packages` against `repositories` (indexes verified with `keyring`: paths or URLs of public keys),
    install them into a cached layer and describe the environment as LLB on top of `base`."""
    arch = arch or host_arch()
    keys = fetch_keys(keyring)
    indexes = load_indexes(repositories, arch, make_keyring(keys), allow_untrusted)
    resolution = resolve(packages, indexes)
    options = InstallOptions(
        world=tuple(sorted(set(packages))),
        repositories=tuple(repositories),
        keys=keys,
        arch=arch,
        users=users,
        groups=groups,
        base_passwd=read_base_file(base, "etc/passwd", cache),
        base_group=read_base_file(base, "etc/group", cache),
    )
    root = local_rootfs(base, cache)
    links = base_links(root) if root is not None else ()
    digest = layer_digest(resolution, options, links)
    layers = os.path.join(cache_dir(cache), "layers")
    layer_dir = os.path.join(layers, digest)
    manifest_path = layer_dir + ".json"
    scriptlets = _load_manifest(manifest_path) if os.path.isdir(layer_dir) else None
    if scriptlets is None:
        fetched = fetch_packages(resolution.packages, cache)
        os.makedirs(layers, exist_ok=True)
        work = f"{layer_dir}.tmp-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        try:
            result = install(fetched, work, options)
            fit_to_base(work, links)
            try:
                os.rename(work, layer_dir)
            except OSError:
                if not os.path.isdir(layer_dir):
                    raise
                # another process installed the same layer (same digest, same content) first: use theirs
        finally:
            shutil.rmtree(work, ignore_errors=True)
        scriptlets = result.scriptlets
        atomic_write(manifest_path, _manifest(scriptlets, result.packages))
    layer_name = "melange-bk-env-" + digest[:32]
    local_dirs = {layer_name: layer_dir}
    stored = [layer_tree(layer_name, digest, shadowed_by_base(layer_dir, root) if root is not None else ())]
    if root is not None:
        local_dirs[BASE_LOCAL_NAME] = root
        stored.insert(0, base_tree(local_identity(base, cache)))
    return PreparedEnvironment(
        state=environment_state(base, stored[-1], scriptlets, stored[0] if root is not None else None),
        local_dirs=tuple(sorted(local_dirs.items())),
        stored=tuple(stored),
        memo_dir=os.path.join(cache_dir(cache), "stored"),
        layer_name=layer_name,
        layer_dir=layer_dir,
        resolution=resolution,
        scriptlets=scriptlets,
        base=base,
    )


def prepare_environment(
    environment: plan.Environment,
    *,
    base: Base = NONE,
    arch: Optional[str] = None,
    extra_repositories: Sequence[str] = (),
    extra_keyring: Sequence[str] = (),
    cache: Optional[str] = None,
    allow_untrusted: bool = False,
) -> PreparedEnvironment:
    """`prepare` for a build plan's environment (`extra_*` as melange's --repository-append/--keyring-append)."""
    users, groups = accounts_from_plan(environment.accounts)
    return prepare(
        environment.packages,
        tuple(environment.repositories) + tuple(extra_repositories),
        tuple(environment.keyring) + tuple(extra_keyring),
        base=base,
        arch=arch,
        users=users,
        groups=groups,
        cache=cache,
        allow_untrusted=allow_untrusted,
    )
