"""Docker Engine's embedded BuildKit: HTTP/1.1 → h2c upgrades on dockerd's unix socket.

dockerd serves BuildKit's control API after `POST /grpc` is upgraded to h2c, and takes a client's session after
`POST /session` is upgraded the same way (the docker CLI's "hijack"). grpcio cannot perform such an upgrade
itself, so `UpgradeBridge` listens on a private unix socket and, for every connection grpcio opens, dials dockerd,
performs the upgrade and relays bytes both ways.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from typing import List, Mapping, Optional, Sequence, Tuple, Union

from melange_bk.errors import BuildKitError

HeaderValue = Union[str, Sequence[str]]
_CHUNK = 256 * 1024


def upgrade(
    sock_path: str,
    path: str,
    headers: Optional[Mapping[str, HeaderValue]] = None,
    timeout: float = 10.0,
) -> Tuple[socket.socket, bytes]:
    """Dial dockerd at `sock_path`, upgrade `POST path` to h2c; return the socket and bytes already read past
    the HTTP response (the start of the HTTP/2 stream)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
    except FileNotFoundError:
        s.close()
        raise BuildKitError(
            f"cannot reach BuildKit at docker-unix://{sock_path}: the socket does not exist "
            '(is dockerd running? start it with: eval "$(bin/buildkit up)")'
        ) from None
    except OSError as e:
        s.close()
        raise BuildKitError(
            f"cannot reach BuildKit at docker-unix://{sock_path}: {e.strerror or e}"
        ) from None
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: docker",
        "Connection: Upgrade",
        "Upgrade: h2c",
        "Content-Length: 0",
    ]
    for name, value in (headers or {}).items():
        for v in [value] if isinstance(value, str) else list(value):
            lines.append(f"{name}: {v}")
    try:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                raise BuildKitError(
                    f"docker-unix://{sock_path}: dockerd closed the connection during the {path} upgrade"
                )
            buf += chunk
            if len(buf) > 64 * 1024:
                raise BuildKitError(f"docker-unix://{sock_path}: oversized HTTP response to POST {path}")
    except OSError as e:
        s.close()
        raise BuildKitError(f"cannot reach BuildKit at docker-unix://{sock_path}: {e}") from None
    except BuildKitError:
        s.close()
        raise
    head, rest = buf.split(b"\r\n\r\n", 1)
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or parts[1] != "101":
        s.close()
        body = rest.decode("utf-8", "replace").strip().splitlines()
        detail = f": {body[0][:200]}" if body else ""
        raise BuildKitError(
            f"docker-unix://{sock_path}: dockerd refused the BuildKit upgrade of POST {path} "
            f"({status_line.strip()}){detail} — is this a Docker Engine with BuildKit (18.09 or newer)?"
        )
    s.settimeout(None)
    return s, rest


def relay(src: socket.socket, dst: socket.socket, initial: bytes = b"") -> None:
    """Copy bytes from src to dst until EOF or error; then half-close both directions involved."""
    try:
        if initial:
            dst.sendall(initial)
        while True:
            data = src.recv(_CHUNK)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for sock, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
            try:
                sock.shutdown(how)
            except OSError:
                pass


def splice(a: socket.socket, b: socket.socket, initial_b_to_a: bytes = b"") -> List[threading.Thread]:
    """Relay both ways between two connected sockets in daemon threads; close both when both directions end."""
    t1 = threading.Thread(target=relay, args=(b, a, initial_b_to_a), daemon=True, name="bk-relay-in")
    t2 = threading.Thread(target=relay, args=(a, b), daemon=True, name="bk-relay-out")

    def closer() -> None:
        t1.join()
        t2.join()
        a.close()
        b.close()

    t1.start()
    t2.start()
    threading.Thread(target=closer, daemon=True, name="bk-relay-close").start()
    return [t1, t2]


class UpgradeBridge:
    """A private unix socket whose every connection is relayed to dockerd's upgraded `POST path`."""

    def __init__(self, docker_sock: str, path: str = "/grpc") -> None:
        self.docker_sock = docker_sock
        self.path = path
        self._dir = tempfile.mkdtemp(prefix="melange-bk-bridge-")
        os.chmod(self._dir, 0o700)
        self.listen_path = os.path.join(self._dir, "grpc.sock")
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.listen_path)
        self._server.listen(64)
        self._closed = False
        self.last_error: Optional[BuildKitError] = None
        threading.Thread(target=self._accept, daemon=True, name="bk-bridge-accept").start()

    @property
    def target(self) -> str:
        """A grpcio target for the bridge."""
        return "unix:" + self.listen_path

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(client,), daemon=True, name="bk-bridge-conn").start()

    def _handle(self, client: socket.socket) -> None:
        try:
            upstream, rest = upgrade(self.docker_sock, self.path)
        except BuildKitError as e:
            self.last_error = e
            client.close()
            return
        splice(client, upstream, rest)

    def close(self) -> None:
        self._closed = True
        try:
            self._server.close()
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)
