"""The BuildKit control client: one gRPC channel to a daemon, whatever the address scheme.

    with Client.connect("docker-unix:///path/docker.sock") as bk:
        bk.workers()      # [WorkerInfo(id=..., platforms=("linux/amd64", ...))]
        bk.info()         # DaemonInfo(package="github.com/moby/buildkit", version="v0.13.2", ...)
        bk.ping()         # one line describing the daemon, or BuildKitError saying why not

Every failure is a `BuildKitError` whose message names the address and what to do.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Tuple, Type, TypeVar

import grpc

from melange_bk.buildkit.address import Address, TLSConfig, address_from_env, parse_address
from melange_bk.buildkit.dockerupgrade import UpgradeBridge
from melange_bk.errors import BuildKitError
from melange_bk.protos import control_pb2

CONTROL = "/moby.buildkit.v1.Control/"
MAX_MESSAGE = 64 << 20
T = TypeVar("T")


@dataclass(frozen=True)
class WorkerInfo:
    id: str
    platforms: Tuple[str, ...]
    labels: Tuple[Tuple[str, str], ...]


@dataclass(frozen=True)
class DaemonInfo:
    package: str
    version: str
    revision: str


def _platform_str(p: Any) -> str:
    s = f"{p.OS}/{p.Architecture}"
    return s + (f"/{p.Variant}" if p.Variant else "")


def _read(path: Optional[str], what: str) -> Optional[bytes]:
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise BuildKitError(f"cannot read the TLS {what} {path}: {e.strerror}") from None


_TLS_HINTS = (
    ("CERTIFICATE_VERIFY_FAILED", "the server certificate is not signed by the given CA (check --tlscacert)"),
    ("WRONG_VERSION_NUMBER", "the server does not speak TLS (drop the --tls* options?)"),
    ("certificate required", "the server wants a client certificate (--tlscert/--tlskey)"),
    ("Peer name", "the certificate does not name this host (set --tlsservername)"),
    (
        "ALPN",
        "the daemon's TLS listener does not offer HTTP/2 (ALPN h2; buildkitd before v0.17): use unix:// or a newer buildkitd",
    ),
)


def describe_rpc_error(address: Address, err: grpc.RpcError, bridge: Optional[UpgradeBridge] = None) -> str:
    """One actionable line for a failed call."""
    code = err.code() if hasattr(err, "code") else None
    details = (err.details() if hasattr(err, "details") else str(err)) or ""
    if (
        bridge is not None
        and bridge.last_error is not None
        and code
        in (
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.DEADLINE_EXCEEDED,
        )
    ):
        return str(bridge.last_error)
    low = details.lower()
    if "ssl" in low or "tls" in low or "handshake" in low or "alpn" in low:
        for needle, hint in _TLS_HINTS:
            if needle.lower() in low:
                return f"TLS handshake with BuildKit at {address} failed: {hint}"
        return f"TLS handshake with BuildKit at {address} failed: {details.strip()}"
    if code == grpc.StatusCode.UNAVAILABLE or code == grpc.StatusCode.DEADLINE_EXCEEDED:
        m = re.search(r"last error: (.*)", details)
        reason = (m.group(1) if m else details).strip() or "no answer"
        return f"cannot reach BuildKit at {address}: {reason}"
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return f"BuildKit at {address} does not implement this call ({details.strip()}): is it too old?"
    name = code.name if code is not None else "ERROR"
    return f"BuildKit at {address}: {name}: {details.strip()}"


class Client:
    """A connection to one BuildKit daemon. Cheap to create; close() it (or use `with`)."""

    def __init__(self, address: Address, tls: Optional[TLSConfig] = None) -> None:
        self.address = address
        self.tls = tls or TLSConfig()
        self._bridge: Optional[UpgradeBridge] = None
        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE),
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.enable_http_proxy", 0),
        ]
        if address.scheme == "unix":
            if not os.path.exists(address.path):
                raise BuildKitError(
                    f"cannot reach BuildKit at {address}: the socket does not exist (is buildkitd running?)"
                )
            self.channel = grpc.insecure_channel("unix:" + address.path, options=options)
        elif address.scheme == "docker-unix":
            if not os.path.exists(address.path):
                raise BuildKitError(
                    f"cannot reach BuildKit at {address}: the socket does not exist "
                    '(is dockerd running? start it with: eval "$(bin/buildkit up)")'
                )
            self._bridge = UpgradeBridge(address.path, "/grpc")
            # dockerd's :authority check does not matter over a unix socket; keep grpcio from using the path.
            options.append(("grpc.default_authority", "localhost"))
            self.channel = grpc.insecure_channel(self._bridge.target, options=options)
        else:
            target = f"{address.host}:{address.port}"
            if self.tls.enabled:
                creds = grpc.ssl_channel_credentials(
                    root_certificates=_read(self.tls.ca_cert, "CA certificate"),
                    private_key=_read(self.tls.key, "key"),
                    certificate_chain=_read(self.tls.cert, "certificate"),
                )
                if self.tls.server_name:
                    options.append(("grpc.ssl_target_name_override", self.tls.server_name))
                self.channel = grpc.secure_channel(target, creds, options=options)
            else:
                self.channel = grpc.insecure_channel(target, options=options)

    @classmethod
    def connect(cls, address: Optional[str] = None, tls: Optional[TLSConfig] = None) -> Client:
        """Connect to `address`, or to BUILDKIT_HOST when None."""
        addr = parse_address(address) if address else address_from_env()
        return cls(addr, tls if tls is not None else TLSConfig.from_env())

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()
        if self._bridge is not None:
            self._bridge.close()
            self._bridge = None

    @property
    def docker_socket(self) -> Optional[str]:
        """dockerd's socket when this is Docker's embedded BuildKit (sessions then use POST /session)."""
        return self.address.path if self.address.is_docker else None

    def error(self, err: grpc.RpcError) -> BuildKitError:
        return BuildKitError(describe_rpc_error(self.address, err, self._bridge))

    def unary(self, method: str, request: Any, response_type: Type[T], timeout: Optional[float] = 30.0) -> T:
        call: Callable[..., T] = self.channel.unary_unary(
            CONTROL + method,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_type.FromString,  # type: ignore[attr-defined]
        )
        try:
            return call(request, timeout=timeout)
        except grpc.RpcError as e:
            raise self.error(e) from None

    def workers(self, timeout: float = 30.0) -> List[WorkerInfo]:
        resp = self.unary(
            "ListWorkers", control_pb2.ListWorkersRequest(), control_pb2.ListWorkersResponse, timeout
        )
        return [
            WorkerInfo(
                id=r.ID,
                platforms=tuple(_platform_str(p) for p in r.platforms),
                labels=tuple(sorted(r.Labels.items())),
            )
            for r in resp.record
        ]

    def info(self, timeout: float = 30.0) -> DaemonInfo:
        resp = self.unary("Info", control_pb2.InfoRequest(), control_pb2.InfoResponse, timeout)
        v = resp.buildkitVersion
        return DaemonInfo(package=v.package, version=v.version, revision=v.revision)

    def ping(self, timeout: float = 10.0) -> str:
        """Check that the control API answers; return a one-line description of the daemon."""
        workers = self.workers(timeout)
        try:
            info = self.info(timeout)
            version = f"{info.package or 'BuildKit'} {info.version}".strip()
        except BuildKitError:
            version = "BuildKit (no Info call: older than v0.11)"
        platforms = sorted({p for w in workers for p in w.platforms})
        return f"{version}, {len(workers)} worker(s): {' '.join(platforms) or 'no platforms'}"
