"""`melange-bk build`: compile → environment → LLB → solve on BuildKit → APKs (+ index), nothing half-written.

Outputs land in `<out-dir>/<arch>/` only once every package of the build is complete: the solve exports into a
staging folder next to them, the APKs are written there, then renamed into place.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from typing import Dict, Optional, Tuple

from melange_bk import llb
from melange_bk.apk import load_signing_key
from melange_bk.apk.index import write_index
from melange_bk.atomicfile import atomic_write
from melange_bk.buildkit.address import TLSConfig
from melange_bk.buildkit.fssend import SourceTree
from melange_bk.buildkit.progress import Progress
from melange_bk.buildkit.select import connect_for
from melange_bk.buildkit.session import ExportTarget
from melange_bk.buildkit.solve import SolveResult
from melange_bk.buildkit.store import StoredTree, solve_stored
from melange_bk.config.canonical import canonical_yaml
from melange_bk.config.yamlsrc import read_text
from melange_bk.driver.buildenv import EnvironmentOptions, environment_for
from melange_bk.driver.llbgen import WORKSPACE, GraphOptions, build_graph, workspace_dir
from melange_bk.driver.package import write_packages
from melange_bk.driver.permissions import Permissions
from melange_bk.driver.permissions import check as check_permissions
from melange_bk.errors import MelangeError
from melange_bk.filehash import git_mode, walk_sorted
from melange_bk.plan.compile import compile_file
from melange_bk.plan.model import BuildPlan


class OutputError(MelangeError):
    """The packages could not be written (disk full, permissions, I/O error); nothing was left half-written."""

    exit_code = 1


@dataclass(frozen=True)
class BuildRequest:
    config_file: str
    arch: str = "x86_64"
    source_dir: str = ""  # default: the YAML's folder
    pipeline_dirs: Tuple[str, ...] = ()
    vars: Tuple[Tuple[str, str], ...] = ()
    out_dir: str = "packages"
    signing_key: str = ""
    environment: EnvironmentOptions = field(default_factory=EnvironmentOptions)
    buildkit_addr: Optional[str] = None
    tls: Optional[TLSConfig] = None
    progress: str = "auto"
    cache_mounts: bool = True
    generate_index: bool = False
    source_date_epoch: int = 0
    emit_llb: str = ""
    extra_env: Tuple[Tuple[str, str], ...] = ()  # --env-file: added to the build environment
    permissions: Permissions = Permissions()  # what the YAML may ask beyond the defaults (driver.permissions)


@dataclass(frozen=True)
class BuildResult:
    plan: BuildPlan
    definition_digest: str
    apks: Tuple[str, ...] = ()
    index: str = ""
    solve: Optional[SolveResult] = None


@dataclass(frozen=True)
class Prepared:
    """Everything up to the Definition (no daemon needed)."""

    plan: BuildPlan
    definition: llb.ops_pb2.Definition  # type: ignore[name-defined]
    local_dirs: Dict[str, str]  # what the session offers (the workspace, and the stored trees for loading)
    stored: Tuple[StoredTree, ...]  # the environment's stored images (see buildkit.store)
    memo_dir: str


def prepare(req: BuildRequest) -> Prepared:
    """Everything up to the Definition (no daemon): plan, LLB, the local dirs, the stored trees."""
    plan = compile_file(req.config_file, arch=req.arch, pipeline_dirs=req.pipeline_dirs, extra_vars=req.vars)
    check_permissions(plan, req.config_file, req.permissions)
    if req.extra_env:
        env = dict(plan.environment.env)
        env.update(dict(req.extra_env))
        plan = replace(plan, environment=replace(plan.environment, env=tuple(sorted(env.items()))))
    env = environment_for(plan, req.environment)
    source_dir, exclude = workspace_dir(req.config_file, req.source_dir)
    if req.signing_key:  # a key kept in the source dir is never uploaded (the client alone signs)
        key_real, src_real = os.path.realpath(req.signing_key), os.path.realpath(source_dir)
        if key_real.startswith(src_real + os.sep):
            rel = os.path.relpath(key_real, src_real).replace(os.sep, "/")
            exclude += (re.sub(r"([*?\[\\])", r"\\\1", rel),)
    graph = build_graph(
        plan,
        env.state,
        GraphOptions(
            source_date_epoch=req.source_date_epoch,
            cache_mounts=req.cache_mounts,
            workspace_exclude=exclude,
            workspace_unique=workspace_digest(source_dir, exclude),
        ),
    )
    local_dirs = env.local_dirs_dict()
    local_dirs[WORKSPACE] = SourceTree(source_dir)
    return Prepared(plan, graph.marshal(), local_dirs, env.stored, env.memo_dir)


def workspace_digest(root: str, exclude: Tuple[str, ...] = ()) -> str:
    """sha256 over the workspace's paths, git modes (`git_mode`: type and executable bit) and contents (`exclude`
    paths and melange-out left out): equal checkouts give equal LLB on any machine, under any umask and at any
    path; different ones never collide in the daemon. Entries git does not keep (sockets, FIFOs) are left out, as
    the upload leaves them out (`SourceTree`)."""
    h = hashlib.sha256()
    skip = {re.sub(r"\\(.)", r"\1", e) for e in exclude} | {"melange-out"}
    for rel, full in walk_sorted(root, skip):
        mode = git_mode(os.lstat(full).st_mode)
        if mode is None:
            continue
        h.update(f"{rel}\0{mode:o}\0".encode("utf-8", "surrogateescape"))
        if os.path.islink(full):
            h.update(os.readlink(full).encode("utf-8", "surrogateescape"))
        elif os.path.isfile(full):
            with open(full, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        h.update(b"\n")
    return h.hexdigest()


def build(req: BuildRequest) -> BuildResult:
    prepared = prepare(req)
    plan, definition = prepared.plan, prepared.definition
    digest = llb.definition_digest(definition)
    if req.emit_llb:
        atomic_write(req.emit_llb, llb.to_bytes(definition))
        return BuildResult(plan=plan, definition_digest=digest)
    key = load_signing_key(req.signing_key) if req.signing_key else None
    arch_dir = os.path.join(req.out_dir, plan.arch)
    os.makedirs(arch_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{plan.package.name}-staging-", dir=arch_dir)
    try:
        # What the package embeds is the parsed configuration re-encoded (as melange does), never the file's
        # bytes: a comment or a reformatting leaves the .apk byte-identical, so dependents stay cached.
        melange_yaml = canonical_yaml(req.config_file, read_text(req.config_file))
        with connect_for(plan.package.name, req.buildkit_addr, req.tls) as client:
            result = solve_stored(
                client,
                definition,
                prepared.stored,
                local_dirs=prepared.local_dirs,
                memo_dir=prepared.memo_dir,
                export=ExportTarget("local", os.path.join(staging, "melange-out")),
                progress=Progress(req.progress),
            )
        written = write_packages(
            plan,
            os.path.join(staging, "melange-out"),
            os.path.join(staging, "apks"),
            signing_key=key,
            source_date_epoch=req.source_date_epoch,
            melange_yaml=melange_yaml,
        )
        final = []
        for w in written:
            dest = os.path.join(arch_dir, os.path.basename(w.path))
            os.replace(w.path, dest)
            final.append(dest)
    except OSError as e:  # disk full, quota, I/O error while writing the packages: one line, staging removed
        raise OutputError(f"writing packages in {arch_dir} failed: {e.strerror or e}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    index = ""
    if req.generate_index:
        index = generate_index(arch_dir, plan.arch, key)
    return BuildResult(plan=plan, definition_digest=digest, apks=tuple(final), index=index, solve=result)


def generate_index(arch_dir: str, arch: str, key) -> str:  # type: ignore[no-untyped-def]
    """(Re)write `<arch_dir>/APKINDEX.tar.gz` over every .apk in the folder."""
    from melange_bk.apk.index import Index, entry_from_apk

    apks = sorted(p for p in os.listdir(arch_dir) if p.endswith(".apk"))
    entries = tuple(entry_from_apk(os.path.join(arch_dir, p)) for p in apks)
    path = os.path.join(arch_dir, "APKINDEX.tar.gz")
    write_index(path, Index(description="", entries=entries), signing_key=key)
    return path
