"""The client side of a BuildKit session: a gRPC server the daemon calls back into during a solve.

The daemon is the HTTP/2 *client* of a session. We run a grpcio server on a private unix socket and tunnel one
connection to it through either
  - dockerd: `POST /session` upgraded to h2c on dockerd's socket, or
  - buildkitd: the `Control/Session` bidi stream, whose BytesMessages carry the HTTP/2 bytes.
Headers announce the session id, name, shared key and every method we serve.

Served methods: FileSync.DiffCopy (local sources: we send directories), FileSend.DiffCopy (exports: we receive
the local exporter's tree or the tar exporter's bytes) and grpc.health.v1.Health/Check (the daemon drops
sessions that stop answering it).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from concurrent import futures
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple
from urllib.parse import unquote

import grpc

from melange_bk.buildkit.dockerupgrade import splice, upgrade
from melange_bk.buildkit.fsrecv import Receiver
from melange_bk.buildkit.fssend import send
from melange_bk.buildkit.patterns import Filter
from melange_bk.errors import BuildKitError
from melange_bk.protos import control_pb2, filesync_pb2, health_pb2

FILESYNC_DIFFCOPY = "/moby.filesync.v1.FileSync/DiffCopy"
FILESEND_DIFFCOPY = "/moby.filesync.v1.FileSend/DiffCopy"
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
_CHUNK = 256 * 1024


@dataclass(frozen=True)
class ExportTarget:
    """Where an exporter's output goes: a directory (local exporter), a file (tar exporter), or the daemon's own
    image store (`image` on buildkitd, `moby` on dockerd; `attrs` name the image)."""

    kind: str  # "local" | "tar" | "image" | "moby"
    path: str = ""
    attrs: Tuple[Tuple[str, str], ...] = ()

    @property
    def to_client(self) -> bool:
        """Whether the daemon sends the output to us through the session (FileSend)."""
        return self.kind in ("local", "tar")


def _metadata(context: grpc.ServicerContext) -> Dict[str, List[str]]:
    md: Dict[str, List[str]] = {}
    for k, v in context.invocation_metadata():
        md.setdefault(k.lower(), []).append(v if isinstance(v, str) else v.decode())
    for key in list(md):  # BuildKit percent-encodes values that are not header-safe and flags it
        if key.endswith("-encoded"):
            base = key[: -len("-encoded")]
            if base in md:
                md[base] = [unquote(x) for x in md[base]]
    return md


class Session:
    """One session: local directories to offer and export targets to receive into.

    Use as a context manager; `attach(client)` opens the tunnel to the daemon."""

    def __init__(
        self,
        local_dirs: Optional[Dict[str, str]] = None,
        exports: Tuple[ExportTarget, ...] = (),
        name: str = "melange-bk",
        shared_key: str = "melange-bk",
    ) -> None:
        self.id = uuid.uuid4().hex
        self.name = name
        self.shared_key = shared_key
        self.local_dirs = dict(local_dirs or {})
        self.exports = exports
        self.receivers: List[Receiver] = []
        self.errors: List[str] = []
        self.sent_dirs: List[str] = []
        self._lock = threading.Lock()
        self._dir = tempfile.mkdtemp(prefix="melange-bk-session-")
        os.chmod(self._dir, 0o700)
        self._sock = os.path.join(self._dir, "session.sock")
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="bk-session"),
            options=[
                ("grpc.max_receive_message_length", 64 << 20),
                ("grpc.max_send_message_length", 64 << 20),
                # The daemon sends a local source's include/exclude patterns as request metadata (fsutil does):
                # gRPC C's 8 KiB default refuses a few hundred patterns; grpc-go allows 16 MiB.
                ("grpc.max_metadata_size", 4 << 20),
                ("grpc.absolute_max_metadata_size", 8 << 20),
            ],
        )
        self._server.add_generic_rpc_handlers((_Handler(self),))
        self._server.add_insecure_port("unix:" + self._sock)
        self._server.start()
        self._tunnels: List[Any] = []
        # When the daemon last called us: it health-checks every session every 5 s (BuildKit's monitorHealth),
        # so a long silence means the connection is gone even when no socket error says so (a silent drop).
        self.last_contact = time.monotonic()

    def touch(self) -> None:
        self.last_contact = time.monotonic()

    def methods(self) -> List[str]:
        ms = [HEALTH_CHECK]
        if self.local_dirs:
            ms.append(FILESYNC_DIFFCOPY)
        if self.exports:
            ms.append(FILESEND_DIFFCOPY)
        return ms

    def headers(self) -> Dict[str, Any]:
        return {
            "X-Docker-Expose-Session-Uuid": self.id,
            "X-Docker-Expose-Session-Name": self.name,
            "X-Docker-Expose-Session-Sharedkey": self.shared_key,
            "X-Docker-Expose-Session-Grpc-Method": self.methods(),
        }

    def _connect_local(self) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self._sock)
        return s

    def attach(self, client: Any, via: str = "auto") -> None:
        """Open the tunnel through which the daemon reaches this session (before Solve).

        `via`: "upgrade" (dockerd's POST /session), "stream" (Control/Session, what buildkitd offers; dockerd
        answers it too) or "auto" (upgrade on dockerd, stream elsewhere)."""
        if via not in ("auto", "upgrade", "stream"):
            raise ValueError(f"unknown session transport {via!r}")
        if via == "upgrade" and not client.docker_socket:
            raise BuildKitError(
                f"session transport 'upgrade' needs a docker-unix:// address, not {client.address}"
            )
        self.touch()
        if client.docker_socket and via != "stream":
            upstream, rest = upgrade(client.docker_socket, "/session", self.headers())
            local = self._connect_local()
            splice(local, upstream, rest)
            self._tunnels.append((local, upstream))
            return
        self._attach_stream(client)

    def _attach_stream(self, client: Any) -> None:
        local = self._connect_local()
        md = []
        for k, v in self.headers().items():
            for x in [v] if isinstance(v, str) else v:
                md.append((k.lower(), x))

        def requests() -> Iterator[control_pb2.BytesMessage]:
            while True:
                try:
                    data = local.recv(_CHUNK)
                except OSError:
                    return
                if not data:
                    return
                yield control_pb2.BytesMessage(data=data)

        call = client.channel.stream_stream(
            "/moby.buildkit.v1.Control/Session",
            request_serializer=control_pb2.BytesMessage.SerializeToString,
            response_deserializer=control_pb2.BytesMessage.FromString,
        )
        responses = call(requests(), metadata=md)

        def pump() -> None:
            try:
                for m in responses:
                    local.sendall(m.data)
            except (grpc.RpcError, OSError):
                pass
            finally:
                try:
                    local.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        threading.Thread(target=pump, daemon=True, name="bk-session-pump").start()
        self._tunnels.append((local, responses))

    def close(self) -> None:
        for local, other in self._tunnels:
            try:
                local.close()
            except OSError:
                pass
            if hasattr(other, "cancel"):
                other.cancel()
            elif hasattr(other, "close"):
                try:
                    other.close()
                except OSError:
                    pass
        self._tunnels.clear()
        self._server.stop(grace=None)
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- served methods ---------------------------------------------------------------------------------------

    def diffcopy_send(self, incoming: Iterable[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        md = _metadata(context)
        name = (md.get("dir-name") or [""])[0]
        root = self.local_dirs.get(name)
        if root is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no access allowed to dir {name!r}")
        with self._lock:
            self.sent_dirs.append(name)
        flt = Filter(
            include=tuple(md.get("include-patterns", ())),
            exclude=tuple(md.get("exclude-patterns", ())),
            follow=tuple(md.get("followpaths", ())),
        )
        return send(root, incoming, flt)  # type: ignore[arg-type]

    def diffcopy_receive(self, incoming: Iterable[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        md = _metadata(context)
        try:
            index = int((md.get("buildkit-attachable-exporter-id") or ["0"])[0])
        except ValueError:
            index = 0
        if index >= len(self.exports):
            context.abort(grpc.StatusCode.NOT_FOUND, f"exporter {index} not found")
        target = self.exports[index]
        if target.kind == "local":
            os.makedirs(target.path, exist_ok=True)
            receiver = Receiver(target.path)
            with self._lock:
                self.receivers.append(receiver)
            return receiver.serve(incoming)
        return self._receive_tar(target.path, incoming)

    def _receive_tar(self, path: str, incoming: Iterable[bytes]) -> Iterator[bytes]:
        try:
            with open(path, "wb") as f:
                for raw in incoming:
                    f.write(filesync_pb2.BytesMessage.FromString(raw).data)
        except OSError as e:
            with self._lock:
                self.errors.append(f"writing {path}: {e.strerror}")
        return iter(())


class _Handler(grpc.GenericRpcHandler):
    def __init__(self, session: Session) -> None:
        self.session = session

    def service(self, details: grpc.HandlerCallDetails) -> Optional[grpc.RpcMethodHandler]:
        method = details.method.lower()  # type: ignore[attr-defined]
        self.session.touch()
        if method == HEALTH_CHECK.lower():
            return grpc.unary_unary_rpc_method_handler(
                lambda req, ctx: health_pb2.HealthCheckResponse(
                    status=health_pb2.HealthCheckResponse.SERVING
                ),
                request_deserializer=health_pb2.HealthCheckRequest.FromString,
                response_serializer=health_pb2.HealthCheckResponse.SerializeToString,
            )
        if method == FILESYNC_DIFFCOPY.lower() and self.session.local_dirs:
            return grpc.stream_stream_rpc_method_handler(self.session.diffcopy_send)
        if method == FILESEND_DIFFCOPY.lower() and self.session.exports:
            return grpc.stream_stream_rpc_method_handler(self.session.diffcopy_receive)
        return None


def check_receivers(session: Session) -> None:
    """Raise if an export did not arrive whole."""
    problems = list(session.errors) + [r.error for r in session.receivers if r.error]
    if problems:
        raise BuildKitError("export failed: " + "; ".join(problems))
