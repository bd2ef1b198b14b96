"""The PEX that every melange-bk Process runs (the core library's CLI), and those Processes.

`PexProcess` would start the PEX with Pants' own interpreter (`sys.executable` in Pants 2.17: a path inside this
checkout's `.cache/`) and the user's `PATH` in its environment, both part of the cache key: no two checkouts or
machines would share a cache entry. `MelangeProcess` starts it with the interpreter the PEX was resolved for (a
system path such as `/usr/bin/python3.9`, which the PEX would re-exec into anyway), a fixed `PATH`, and the
`__host/` named cache (see host.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

from pants.backend.python.target_types import EntryPoint
from pants.backend.python.util_rules.pex import Pex
from pants.backend.python.util_rules.pex_environment import PexEnvironment
from pants.backend.python.util_rules.pex_from_targets import PexFromTargetsRequest
from pants.engine.addresses import Address
from pants.engine.fs import Digest, MergeDigests
from pants.engine.process import Process, ProcessCacheScope
from pants.engine.rules import Get, collect_rules, rule
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel

LIBRARY = Address("pants-plugins/melange_bk", target_name="lib")
FIXED_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# With a remote cache, Pants 2.17 starts the Process locally *while* it asks the cache, after this delay (default
# 0: at once). A local start is a solve on the daemon: wait longer than a cache lookup may take ([GLOBAL]
# remote_cache_rpc_timeout_millis, 1500 ms by default), so that a hit never costs a solve. Not part of the key.
SPECULATION_DELAY_MS = 10_000


@dataclass(frozen=True)
class MelangeBuilderPex:
    pex: Pex


@rule(desc="Building the melange-bk builder PEX", level=LogLevel.DEBUG)
async def builder_pex() -> MelangeBuilderPex:
    pex = await Get(
        Pex,
        PexFromTargetsRequest(
            [LIBRARY],
            output_filename="melange-bk.pex",
            internal_only=True,
            main=EntryPoint("melange_bk.cli.main", "main"),
        ),
    )
    return MelangeBuilderPex(pex)


@dataclass(frozen=True)
class MelangeProcess:
    """`melange-bk ARGV…` in a sandbox holding `input_digest`, with `append_only_caches` mounted."""

    argv: Tuple[str, ...]
    description: str
    input_digest: Digest
    append_only_caches: FrozenDict[str, str] = FrozenDict()
    output_files: Tuple[str, ...] = ()
    output_directories: Tuple[str, ...] = ()
    level: LogLevel = LogLevel.DEBUG
    cache_scope: ProcessCacheScope = ProcessCacheScope.SUCCESSFUL


@rule
async def melange_process(
    request: MelangeProcess, builder: MelangeBuilderPex, pex_environment: PexEnvironment
) -> Process:
    pex = builder.pex
    complete = pex_environment.in_sandbox(working_directory=None)
    python = pex.python.path if pex.python else complete.create_argv(pex.name)[0]
    env = {**complete.environment_dict(python=pex.python), "PATH": FIXED_PATH}
    input_digest = await Get(Digest, MergeDigests((pex.digest, request.input_digest)))
    caches = {
        **complete.append_only_caches,
        **(pex.python.append_only_caches if pex.python else {}),
        **request.append_only_caches,
    }
    return Process(
        (python, pex.name, *request.argv),
        description=request.description,
        level=request.level,
        input_digest=input_digest,
        env=env,
        append_only_caches=caches,
        output_files=request.output_files,
        output_directories=request.output_directories,
        cache_scope=request.cache_scope,
        remote_cache_speculation_delay_millis=SPECULATION_DELAY_MS,
    )


def rules():
    return collect_rules()
