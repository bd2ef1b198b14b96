"""The `[melange]` options as Process inputs that do not depend on where the checkout, user or machine is.

A Process's cache key (local and remote) is the digest of its argv, env, output paths and input files; Pants 2.17
leaves `append_only_caches` (named caches) out of it when running locally. So:

- a relative path in `[melange]` names a file or folder of the repository: it becomes part of the input digest and
  is passed relative to the sandbox;
- an absolute path (the git-ignored `.cache/` files of `bin/example-env`, a system keyring, ...) and the daemon
  address/TLS files are machine-local: a `melange-bk host-config` Process writes where they are into a named cache
  mounted at `__host/` (outside the key) and prints their identities (sha256 of content, public key of the signing
  key); builds get `@host:NAME` plus `--host-input NAME=IDENTITY` (in the key), and the builder checks the
  identity before using the path;
- URLs and `image:REF@sha256:...` bases are content-addressed or location-independent already: passed verbatim.

The named cache's name carries a hash of the recorded locations, so two checkouts (or two shells with different
`BUILDKIT_HOST`) never overwrite each other's file; the name is not part of any cache key.

When the probe runs: Pants watches the files of the repository, not these, so every run (`RunId`) this rule stats
the machine-local inputs (every entry of a folder) and gives the digest of those stats to the probe as an
environment variable. The probe is memoised for the life of pantsd (`PER_RESTART_SUCCESSFUL`): while nothing was
touched its key is the same and it does not run again; a touched, replaced or deleted input changes the key and it
measures again; if the recorded file itself is gone, it records again. Without pantsd it runs once per invocation.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Dict, List, Tuple

from pants.backend.python.util_rules.pex_environment import PexEnvironment
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import Digest, PathGlobs, RemovePrefix, Snapshot
from pants.engine.internals.session import RunId
from pants.engine.process import Process, ProcessCacheScope, ProcessResult
from pants.engine.rules import Get, collect_rules, rule
from pants.option.global_options import NamedCachesDirOption
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel

from melange_bk.buildkit.address import ENV_VAR, TLS_ENV
from melange_bk.environment.hostinputs import BASE_PREFIXES, stat_stamp
from melange_bk.pants.builder import FIXED_PATH, MelangeBuilderPex
from melange_bk.pants.subsystem import MelangeSubsystem

PLUGIN_ROOT = "pants-plugins"
# What `melange-bk host-config` imports (standard library only; tests/unit/environment/test_hostinputs.py checks
# the list).
PROBE_SOURCES = (
    "__init__.py",
    "errors.py",
    "filehash.py",
    "atomicfile.py",
    "environment/__init__.py",
    "environment/hostinputs.py",
    "cli/__init__.py",
    "cli/main.py",
    "cli/common.py",
    "cli/cmd_host_config.py",
    "buildkit/__init__.py",
    "buildkit/address.py",
)
PROBE_MAIN = "import sys; sys.path.insert(0, '.'); from melange_bk.cli.main import main; sys.exit(main())"
HOST_DIR = "__host"
HOST_CONFIG = f"{HOST_DIR}/host.json"
STAMP_ENV = "MELANGE_BK_HOST_STAMP"


def _is_url(value: str) -> bool:
    return "://" in value


@dataclass(frozen=True)
class MelangeInputs:
    """What every melange-bk Process gets from the `[melange]` options (see the module docstring)."""

    # --rootfs, --pipeline-dir, --repository-append and --keyring-append, in the options' order.
    environment_argv: Tuple[str, ...]
    # The value of --signing-key ("" when unset) and of the --keyring-append that trusts what it signed.
    signing_key: str
    signing_pub: str
    # --host-config / --host-input (empty when nothing is machine-local).
    host_argv: Tuple[str, ...]
    append_only_caches: FrozenDict[str, str]
    # The repository files named by relative paths.
    digest: Digest


@rule(desc="Recording the machine-local inputs of melange builds", level=LogLevel.DEBUG)
async def melange_inputs(
    melange: MelangeSubsystem,
    builder: MelangeBuilderPex,
    pex_environment: PexEnvironment,
    named_caches: NamedCachesDirOption,
    run_id: RunId,  # (re-run every run: see "When the probe runs" above)
) -> MelangeInputs:
    env = await Get(EnvironmentVars, EnvironmentVarsRequest([ENV_VAR, *(v for _, v in TLS_ENV)]))
    host: Dict[str, Tuple[str, str]] = {}  # NAME -> (KIND, absolute path)
    globs: List[str] = []

    def place(name: str, kind: str, value: str) -> str:
        if os.path.isabs(value):
            host[name] = (kind, value)
            return f"@host:{name}"
        if not _is_url(value):
            globs.append(value if kind in ("file", "signing-key") else f"{value}/**")
            if kind == "path":
                globs.append(value)
        return value

    argv: List[str] = []
    base = melange.environment_base or ""
    if base:
        head = next((p for p in BASE_PREFIXES if base.startswith(p)), "")
        rest = base[len(head) :]
        argv += ["--rootfs", base if rest.startswith("image:") else head + place("rootfs", "path", rest)]
    for i, d in enumerate(melange.pipeline_dirs):
        argv += ["--pipeline-dir", place(f"pipeline-dir.{i}", "dir", d)]
    for i, r in enumerate(melange.repositories):
        argv += ["--repository-append", place(f"repository.{i}", "repository", r)]
    for i, k in enumerate(melange.keyring):
        argv += ["--keyring-append", place(f"keyring.{i}", "file", k)]
    key = melange.signing_key or ""
    signing_key = place("signing-key", "signing-key", key) if key else ""
    signing_pub = place("signing-key.pub", "file", key + ".pub") if key else ""

    addr = melange.buildkit_addr or env.get(ENV_VAR) or ""
    buildkit = [("buildkit-addr", addr)] + [(opt, env.get(var) or "") for opt, var in TLS_ENV]
    buildkit = [(k, v) for k, v in buildkit if v]

    snapshot = await Get(Snapshot, PathGlobs(globs))
    if not host and not buildkit:
        return MelangeInputs(tuple(argv), signing_key, signing_pub, (), FrozenDict(), snapshot.digest)

    # Named after what it records (not part of any cache key): no two configurations share one file.
    record = json.dumps({"host": sorted(host.items()), "buildkit": buildkit}, sort_keys=True)
    # (Pants accepts only [a-z_] in cache names: the hex digits are spelled as letters.)
    digest = hashlib.sha256(record.encode()).hexdigest()[:16]
    cache_name = "melange_bk_host_" + digest.translate(str.maketrans("0123456789", "ghijklmnop"))
    caches = FrozenDict({cache_name: HOST_DIR})
    probe_argv = ["host-config", "--out", HOST_CONFIG]
    for name, (kind, path) in sorted(host.items()):
        probe_argv += ["--input", f"{name}={kind}:{path}"]
    for opt, value in buildkit:
        probe_argv += [f"--{opt}", value]
    # Never in a persistent cache (it reads this machine's files and writes outside its sandbox); memoised while
    # pantsd lives, keyed on the stats of what it reads. It runs the few stdlib-only modules it needs
    # straight from the sources with the builder PEX's interpreter, not the whole PEX (whose start-up would
    # double a no-change `pants package` without pantsd).
    recorded = os.path.join(str(named_caches.val), cache_name, os.path.basename(HOST_CONFIG))
    sources = await Get(Digest, PathGlobs([f"{PLUGIN_ROOT}/melange_bk/{f}" for f in PROBE_SOURCES]))
    sources = await Get(Digest, RemovePrefix(sources, PLUGIN_ROOT))
    complete = pex_environment.in_sandbox(working_directory=None)
    pex = builder.pex
    python = pex.python.path if pex.python else complete.create_argv(pex.name)[0]
    probe = Process(
        (python, "-c", PROBE_MAIN, *probe_argv),
        description="melange-bk host-config (machine-local inputs)",
        level=LogLevel.DEBUG,
        input_digest=sources,
        # (The stamp is not read by the probe: it is in the key.)
        env={"PATH": FIXED_PATH, STAMP_ENV: stat_stamp(path for _, path in host.values())},
        append_only_caches=caches,
        cache_scope=ProcessCacheScope.PER_RESTART_SUCCESSFUL,
    )
    result = await Get(ProcessResult, Process, probe)
    if not os.path.isfile(recorded):
        # The recorded file went away while pantsd kept the probe's result (its named cache was deleted): record
        # again, in a Process that is not memoised.
        probe = dataclasses.replace(probe, cache_scope=ProcessCacheScope.PER_SESSION)
        result = await Get(ProcessResult, Process, probe)
    ids = json.loads(result.stdout.decode())
    host_argv: List[str] = ["--host-config", HOST_CONFIG]
    for name in sorted(ids):
        host_argv += ["--host-input", f"{name}={ids[name]}"]
    return MelangeInputs(tuple(argv), signing_key, signing_pub, tuple(host_argv), caches, snapshot.digest)


def rules():
    return collect_rules()
