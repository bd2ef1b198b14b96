"""Exec ops: run a command in a root filesystem with extra mounts.

Follows moby/buildkit client/llb/exec.go: mounts sorted by destination, inputs deduplicated in mount order,
outputs numbered over the writable bind mounts, `removeMountStubsRecursive` set. Differences on purpose: the
network defaults to NONE (Go: the daemon's default), and the environment is sorted by name.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from melange_bk.llb.digest import op_bytes
from melange_bk.llb.state import (
    InputResolver,
    LLBError,
    OpSpec,
    Output,
    Platform,
    State,
    Vertex,
    abs_path,
    description,
    new_op,
)
from melange_bk.protos import ops_pb2


class NetMode(enum.Enum):
    """`NONE` (default here), `HOST` (needs the `network.host` entitlement), `SANDBOX` (the daemon's default)."""

    SANDBOX = "sandbox"
    HOST = "host"
    NONE = "none"


class SecurityMode(enum.Enum):
    """`SANDBOX` (default) or `INSECURE` (needs the `security.insecure` entitlement)."""

    SANDBOX = "sandbox"
    INSECURE = "insecure"


class CacheSharing(enum.Enum):
    SHARED = "shared"
    PRIVATE = "private"
    LOCKED = "locked"


class MountKind(enum.Enum):
    BIND = "bind"
    CACHE = "cache"
    TMPFS = "tmpfs"


# What a step gets in BuildKit's SANDBOX security mode: moby's default capability set (oci.DefaultCaps).
DEFAULT_CAPABILITIES = frozenset(
    "CAP_" + c
    for c in """CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID SETFCAP SETPCAP NET_BIND_SERVICE
    SYS_CHROOT KILL AUDIT_WRITE""".split()
)
_ENTITLEMENT = {"network": "network.host", "security": "security.insecure"}


def security_for(add: Iterable[str], drop: Iterable[str] = ()) -> SecurityMode:
    """The security mode that gives a step the capabilities `add` (CAP_* names) on top of the defaults.

    SANDBOX when the defaults hold them all; INSECURE otherwise, the only way LLB grants more: it gives every
    capability (and no seccomp filter), and the daemon must allow the `security.insecure` entitlement. An exec
    cannot lose a default capability in LLB: `drop` is refused unless it only names capabilities it lacks anyway.
    """
    dropped = sorted(set(drop) & (DEFAULT_CAPABILITIES | set(add)))
    if dropped:
        raise LLBError(
            f"capabilities.drop ({', '.join(dropped)}) is not supported: BuildKit cannot take a capability away "
            "from a step"
        )
    return SecurityMode.SANDBOX if set(add) <= DEFAULT_CAPABILITIES else SecurityMode.INSECURE


def required_entitlements(definition: ops_pb2.Definition) -> Tuple[str, ...]:
    """The entitlements a solve of `definition` must ask for: `network.host` for host-network execs,
    `security.insecure` for insecure ones (sorted)."""
    out = set()
    for data in op_bytes(definition):
        op = ops_pb2.Op.FromString(data)
        if op.WhichOneof("op") != "exec":
            continue
        if op.exec.network == ops_pb2.HOST:
            out.add(_ENTITLEMENT["network"])
        if op.exec.security == ops_pb2.INSECURE:
            out.add(_ENTITLEMENT["security"])
    return tuple(sorted(out))


_NET_PB = {NetMode.SANDBOX: ops_pb2.UNSET, NetMode.HOST: ops_pb2.HOST, NetMode.NONE: ops_pb2.NONE}
_SECURITY_PB = {SecurityMode.SANDBOX: ops_pb2.SANDBOX, SecurityMode.INSECURE: ops_pb2.INSECURE}
_SHARING_PB = {
    CacheSharing.SHARED: ops_pb2.SHARED,
    CacheSharing.PRIVATE: ops_pb2.PRIVATE,
    CacheSharing.LOCKED: ops_pb2.LOCKED,
}


@dataclass(frozen=True)
class Mount:
    """One mount of an exec. Build with `bind()`, `cache()` or `tmpfs()`."""

    dest: str
    source: State = field(default_factory=State)
    selector: str = ""
    readonly: bool = False
    kind: MountKind = MountKind.BIND
    cache_id: str = ""
    sharing: CacheSharing = CacheSharing.SHARED
    tmpfs_size: int = 0

    @property
    def has_output(self) -> bool:
        return self.kind is MountKind.BIND and not self.readonly


def bind(dest: str, source: State, selector: str = "", readonly: bool = False) -> Mount:
    """Mount `source` (or the `selector` path inside it) at `dest`. A writable bind mount has an output:
    `ExecResult.get_mount(dest)`. Scratch gives an empty writable directory."""
    return Mount(dest=abs_path(dest), source=source, selector=selector, readonly=readonly)


def cache(
    dest: str,
    id: str,  # noqa: A002 - BuildKit's name for it
    sharing: Union[CacheSharing, str] = CacheSharing.SHARED,
    source: Optional[State] = None,
) -> Mount:
    """A persistent cache directory shared between builds by `id` (no output)."""
    if not id:
        raise LLBError(f"cache mount at {dest!r} needs an id")
    return Mount(
        dest=abs_path(dest),
        source=source if source is not None else State(),
        kind=MountKind.CACHE,
        cache_id=id,
        sharing=_choice(CacheSharing, sharing, "cache sharing mode"),
    )


def tmpfs(dest: str, size: int = 0) -> Mount:
    """A tmpfs at `dest`, `size` bytes at most (0: the daemon's default). No output."""
    if size < 0:
        raise LLBError(f"tmpfs at {dest!r}: size must not be negative")
    return Mount(dest=abs_path(dest), kind=MountKind.TMPFS, tmpfs_size=size)


def _choice(enum_type: type, value: object, what: str) -> Any:
    try:
        return enum_type(value)
    except ValueError:
        choices = ", ".join(m.value for m in enum_type)  # type: ignore[attr-defined]
        raise LLBError(f"invalid {what} {value!r}: expected one of {choices}") from None


EnvLike = Union[Mapping[str, str], Iterable[Tuple[str, str]]]


def _env(env: EnvLike) -> Tuple[str, ...]:
    pairs = list(env.items()) if isinstance(env, Mapping) else [tuple(p) for p in env]
    seen = set()
    for pair in pairs:
        if len(pair) != 2:
            raise LLBError(f"environment entries must be (name, value) pairs, got {pair!r}")
        name, value = pair
        if not isinstance(name, str) or not isinstance(value, str):
            raise LLBError(f"environment variable {name!r} must have a string name and value")
        if not name or "=" in name or "\0" in name or "\0" in value:
            raise LLBError(f"invalid environment variable name {name!r}")
        if name in seen:
            raise LLBError(f"environment variable {name!r} given twice")
        seen.add(name)
    return tuple(f"{name}={value}" for name, value in sorted(pairs))


@dataclass(frozen=True)
class ExecOp(Vertex):
    mounts: Tuple[Mount, ...]  # sorted by dest; the root ("/") is first
    args: Tuple[str, ...]
    env: Tuple[str, ...] = ()
    cwd: str = "/"
    user: str = ""
    hostname: str = ""
    network: NetMode = NetMode.NONE
    security: SecurityMode = SecurityMode.SANDBOX
    platform: Optional[Platform] = None
    name: Optional[str] = None

    def inputs(self) -> Tuple[Output, ...]:
        # Not deduplicated here: marshal tracks vertices by identity and the op dedupes inputs by digest.
        return tuple(
            m.source.output
            for m in self.mounts
            if m.source.output is not None and m.kind is not MountKind.TMPFS
        )

    def output_index(self, dest: str) -> int:
        dest = abs_path(dest)
        index = 0
        for m in self.mounts:
            if m.dest == dest:
                if not m.has_output:
                    raise LLBError(
                        f"mount {dest!r} has no output (read-only, cache or tmpfs mounts have none)"
                    )
                return index
            if m.has_output:
                index += 1
        raise LLBError(f"exec has no mount at {dest!r}")

    def to_spec(self, resolve: InputResolver, platform: Optional[Platform]) -> OpSpec:
        op = new_op(self.platform or platform)
        ex = op.exec
        ex.meta.args.extend(self.args)
        ex.meta.env.extend(self.env)
        ex.meta.cwd = self.cwd
        ex.meta.user = self.user
        ex.meta.hostname = self.hostname
        ex.meta.removeMountStubsRecursive = True
        ex.network = _NET_PB[self.network]
        ex.security = _SECURITY_PB[self.security]

        caps = {"exec.meta.base"}
        if self.network is not NetMode.SANDBOX:
            caps.add("exec.meta.network")
        if self.security is SecurityMode.INSECURE:
            caps.add("exec.meta.security")

        input_keys: List[Tuple[str, int]] = []
        out_index = 0
        for m in self.mounts:
            pm = ex.mounts.add()
            pm.dest = m.dest
            pm.readonly = m.readonly
            pm.selector = m.selector
            pm.input = -1
            if m.source.output is not None and m.kind is not MountKind.TMPFS:
                inp = resolve(m.source.output)
                key = (inp.digest, inp.index)
                if key not in input_keys:
                    input_keys.append(key)
                    op.inputs.add().CopyFrom(inp)
                pm.input = input_keys.index(key)
            if m.has_output:
                pm.output = out_index
                out_index += 1
            else:
                pm.output = -1
            if m.selector:
                caps.add("exec.mount.selector")
            if m.kind is MountKind.CACHE:
                pm.mountType = ops_pb2.CACHE
                pm.cacheOpt.ID = m.cache_id
                pm.cacheOpt.sharing = _SHARING_PB[m.sharing]
                caps.update(("exec.mount.cache", "exec.mount.cache.sharing"))
            elif m.kind is MountKind.TMPFS:
                pm.mountType = ops_pb2.TMPFS
                pm.TmpfsOpt.size = m.tmpfs_size
                caps.add("exec.mount.tmpfs")
                if m.tmpfs_size > 0:
                    caps.add("exec.mount.tmpfs.size")
            elif m.source.output is not None:
                caps.add("exec.mount.bind")
        return OpSpec(op=op, caps=tuple(sorted(caps)), description=description(self.name))


@dataclass(frozen=True)
class ExecResult:
    """The result of `run()`: the root filesystem after the command, and the outputs of writable mounts."""

    op: ExecOp

    @property
    def root(self) -> State:
        return self.get_mount("/")

    def get_mount(self, dest: str) -> State:
        return State(Output(self.op, self.op.output_index(dest)))


def run(
    root: State,
    args: Sequence[str],
    *,
    env: EnvLike = (),
    cwd: str = "/",
    user: str = "",
    mounts: Iterable[Mount] = (),
    readonly_root: bool = False,
    network: Union[NetMode, str] = NetMode.NONE,
    security: Union[SecurityMode, str] = SecurityMode.SANDBOX,
    hostname: str = "",
    platform: Optional[Platform] = None,
    custom_name: Optional[str] = None,
) -> ExecResult:
    """Run `args` (argv, no shell) in `root`.

    The environment is sorted by name (no PATH is added: pass one). The network is NONE and the security
    mode SANDBOX unless asked otherwise; HOST / INSECURE need entitlements, which the caller must request.
    """
    if isinstance(args, str) or not args:
        raise LLBError("exec needs a non-empty argument list (not a string)")
    if not all(isinstance(a, str) for a in args):
        raise LLBError(f"exec arguments must be strings: {list(args)!r}")
    if not cwd.startswith("/"):
        raise LLBError(f"exec working directory {cwd!r} must be absolute")
    all_mounts = [Mount(dest="/", source=root, readonly=readonly_root)] + list(mounts)
    dests = [m.dest for m in all_mounts]
    for d in dests:
        if dests.count(d) > 1:
            raise LLBError(f"two mounts at {d!r}")
    for m in all_mounts:
        if m.kind is MountKind.TMPFS and m.source.output is not None:
            raise LLBError(f"tmpfs mount at {m.dest!r} cannot have a source")
    vertex = ExecOp(
        mounts=tuple(sorted(all_mounts, key=lambda m: m.dest.encode("utf-8"))),
        args=tuple(args),
        env=_env(env),
        cwd=abs_path(cwd),
        user=user,
        hostname=hostname,
        network=_choice(NetMode, network, "network mode"),
        security=_choice(SecurityMode, security, "security mode"),
        platform=platform,
        name=custom_name,
    )
    return ExecResult(vertex)
