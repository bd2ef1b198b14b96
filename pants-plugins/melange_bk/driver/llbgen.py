"""A build plan as LLB, the shape the upstream plan chose:

    environment state  →  workspace copied to /home/build  →  melange-out/<pkg> dirs created
      →  daemon-side sources (fetch: HTTP with checksum, git-checkout: Git at a commit) placed where the steps
         expect them  →  one ExecOp per main pipeline step  →  each subpackage's steps  →  melange-out alone,
         copied onto scratch, is what gets exported.

Deterministic: the same plan and environment give byte-identical Definitions (nothing here reads the clock, the
machine or hash-seeded iteration order).
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from melange_bk import llb
from melange_bk.config.arch import substitutions
from melange_bk.config.model import Capabilities
from melange_bk.errors import MelangeError
from melange_bk.plan.model import PATH, WORKDIR, BuildPlan, GitSource, HttpSource, Step

OUT_DIR = f"{WORKDIR}/melange-out"
WORKSPACE = "workspace"
BUILD_UID = 1000

# Language caches as BuildKit cache mounts: stable ids, so every build of every package shares them.
CACHE_MOUNTS: Tuple[Tuple[str, str, str], ...] = (
    # (cache id, mount point, environment variable pointing at it)
    ("melange-bk-go-mod", "/var/cache/melange-bk/go-mod", "GOMODCACHE"),
    ("melange-bk-go-build", "/var/cache/melange-bk/go-build", "GOCACHE"),
    ("melange-bk-pip", "/var/cache/melange-bk/pip", "PIP_CACHE_DIR"),
    ("melange-bk-npm", "/var/cache/melange-bk/npm", "npm_config_cache"),
    ("melange-bk-cargo-registry", "/var/cache/melange-bk/cargo-registry", "CARGO_HOME"),
    ("melange-bk-ccache", "/var/cache/melange-bk/ccache", "CCACHE_DIR"),
)


@dataclass(frozen=True)
class GraphOptions:
    source_date_epoch: int = 0
    cache_mounts: bool = True
    user: str = ""  # "" → the plan's accounts.run-as, else root
    # Workspace paths not uploaded: the YAML itself when it sits in the workspace, so that editing one step
    # re-runs that step and the later ones only (the steps' scripts are in the LLB already).
    workspace_exclude: Tuple[str, ...] = ()
    # What makes this workspace different from any other (a digest of its contents): BuildKit merges identical
    # ops of concurrent solves, so two packages' workspaces must never marshal to the same local source op.
    workspace_unique: str = ""


@dataclass(frozen=True)
class BuildGraph:
    """The LLB for one package build and the local directories its session must offer (name → purpose)."""

    state: llb.State  # melange-out contents, ready to export
    platform: llb.Platform
    local_names: Tuple[str, ...]

    def marshal(self) -> llb.ops_pb2.Definition:  # type: ignore[name-defined]
        return llb.marshal(self.state, platform=self.platform)


def platform_for(arch: str) -> llb.Platform:
    goarch = substitutions(arch)["build.goarch"]
    parts = goarch.split("/")
    return llb.Platform("linux", parts[0], parts[1] if len(parts) > 1 else "")


def step_name(pkg: str, step: Step, kind: str = "step") -> str:
    """The vertex name of a step, e.g. `[hello] step 2: install` or `[hello] test 1: says hello`."""
    what = step.name or (
        f"uses {step.uses}"
        if step.uses
        else step.runs.strip().splitlines()[0][:60] if step.runs.strip() else ""
    )
    return f"[{pkg}] {kind} {step.id}: {what}".rstrip()


def _base_env(plan: BuildPlan, opts: GraphOptions) -> Dict[str, str]:
    env = {"PATH": PATH, "HOME": WORKDIR, "SOURCE_DATE_EPOCH": str(opts.source_date_epoch)}
    env.update(dict(plan.environment.env))
    if opts.cache_mounts:
        for _, mount, var in CACHE_MOUNTS:
            env.setdefault(var, mount)
    return env


def _place_sources(root: llb.State, step: Step) -> llb.State:
    src = step.source
    if isinstance(src, HttpSource):
        digest = f"sha256:{src.sha256}" if src.sha256 else f"sha512:{src.sha512}"
        name = src.filename or posixpath.basename(src.uri.split("?", 1)[0]) or "download"
        fetched = llb.http(src.uri, checksum=digest, filename=name, custom_name=f"fetch {src.uri}")
        return llb.file(
            root,
            llb.copy(fetched, "/" + name, src.cache_path, create_dest_path=True),
            custom_name=f"place {name} for step {step.id}",
        )
    if isinstance(src, GitSource):
        repo = llb.git(
            src.repository,
            src.commit,
            keep_git_dir=True,
            custom_name=f"git {src.repository}@{src.commit[:12]}",
        )
        dest = (
            src.destination
            if src.destination.startswith("/")
            else posixpath.join(step.workdir, src.destination)
        )
        return llb.file(
            root,
            llb.copy(repo, "/", posixpath.normpath(dest), copy_dir_contents=True, create_dest_path=True),
            custom_name=f"place {src.repository} for step {step.id}",
        )
    return root


def run_steps(
    root: llb.State,
    pkg: str,
    steps: Tuple[Step, ...],
    env: Dict[str, str],
    user: str,
    mounts: List[llb.Mount],
    kind: str = "step",
    capabilities: Optional[Capabilities] = None,
) -> llb.State:
    """One ExecOp per step (cwd /home/build, `env` then the step's own), each named by `step_name`; network none,
    but the host's for a step that needs it (`Step.network`) (`driver.permissions` has checked that the user allows it);
    `capabilities` beyond BuildKit's defaults make the steps insecure ones (see `llb.security_for`)."""
    caps = capabilities or Capabilities()
    security = llb.security_for(caps.add, caps.drop)
    for step in steps:
        root = _place_sources(root, step)
        step_env = dict(env)
        step_env.update(dict(step.env))
        root = llb.run(
            root,
            list(step.argv()),
            env=step_env,
            cwd=WORKDIR,
            user=user,
            mounts=mounts,
            network=llb.NetMode.HOST if step.network else llb.NetMode.NONE,
            security=security,
            custom_name=step_name(pkg, step, kind),
        ).root
    return root


def workspace_dir(config_file: str, source_dir: str = "") -> Tuple[str, Tuple[str, ...]]:
    """The absolute workspace folder (`source_dir`, default the YAML's folder) and the paths in it not uploaded:
    the YAML itself when it is there, so that editing one step re-runs that step and the later ones only."""
    folder = os.path.abspath(source_dir or os.path.dirname(os.path.abspath(config_file)))
    if not os.path.isdir(folder):
        raise MelangeError(f"source directory {folder} does not exist")
    yaml_abs = os.path.abspath(config_file)
    return folder, ((os.path.basename(yaml_abs),) if os.path.dirname(yaml_abs) == folder else ())


def workspace_copy(exclude: Tuple[str, ...] = (), unique: str = "") -> llb.FileActions:
    """The local source WORKSPACE (without melange-out and `exclude`; `unique` as its `local.unique`) copied into
    /home/build, owned by the build user: the start of a build and of a test."""
    return llb.copy(
        llb.local(
            WORKSPACE,
            exclude=("melange-out",) + tuple(exclude),
            unique=unique or None,
            custom_name="workspace",
        ),
        "/",
        WORKDIR,
        copy_dir_contents=True,
        create_dest_path=True,
        owner=(BUILD_UID, BUILD_UID),
    )


def build_graph(plan: BuildPlan, environment: llb.State, opts: Optional[GraphOptions] = None) -> BuildGraph:
    """The LLB that builds `plan` on top of `environment` (which already holds the base and the packages)."""
    opts = opts or GraphOptions()
    user = opts.user or plan.environment.accounts.run_as or "root"
    pkg = plan.package.name
    names = [pkg] + [s.name for s in plan.subpackages]
    actions = workspace_copy(opts.workspace_exclude, opts.workspace_unique)
    actions = actions.mkdir(OUT_DIR, 0o755, make_parents=True, owner=(BUILD_UID, BUILD_UID))
    for name in names:
        actions = actions.mkdir(f"{OUT_DIR}/{name}", 0o755, make_parents=True, owner=(BUILD_UID, BUILD_UID))
    root = llb.file(environment, actions, custom_name=f"[{pkg}] workspace and melange-out")
    env = _base_env(plan, opts)
    mounts: List[llb.Mount] = []
    if opts.cache_mounts:
        mounts = [llb.cache(mount, cid, sharing="shared") for cid, mount, _ in CACHE_MOUNTS]
    caps = plan.capabilities
    root = run_steps(root, pkg, plan.steps, env, user, mounts, capabilities=caps)
    for sub in plan.subpackages:
        root = run_steps(root, sub.name, sub.steps, env, user, mounts, capabilities=caps)
    out = llb.file(
        llb.scratch(),
        llb.copy(root, OUT_DIR, "/", copy_dir_contents=True),
        custom_name=f"[{pkg}] melange-out",
    )
    return BuildGraph(state=out, platform=platform_for(plan.arch), local_names=(WORKSPACE,))
