"""Bad set-ups give one actionable line naming the address (no daemon needed)."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
from pathlib import Path
from typing import Iterator

import pytest

from melange_bk.buildkit.client import Client
from melange_bk.cli.main import main
from melange_bk.errors import BuildKitError


def test_missing_docker_socket(tmp_path: Path) -> None:
    with pytest.raises(BuildKitError) as e:
        Client.connect(f"docker-unix://{tmp_path}/docker.sock")
    assert str(e.value).startswith(
        f"cannot reach BuildKit at docker-unix://{tmp_path}/docker.sock: the socket does not exist"
    )
    assert "bin/buildkit up" in str(e.value)


def test_missing_unix_socket(tmp_path: Path) -> None:
    with pytest.raises(BuildKitError, match="the socket does not exist"):
        Client.connect(f"unix://{tmp_path}/buildkitd.sock")


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_refused_tcp_port_names_the_address() -> None:
    port = _free_port()
    with Client.connect(f"tcp://127.0.0.1:{port}") as bk:
        with pytest.raises(BuildKitError) as e:
            bk.workers(timeout=5)
    msg = str(e.value)
    assert msg.startswith(f"cannot reach BuildKit at tcp://127.0.0.1:{port}: ")
    assert "refused" in msg.lower()


@pytest.fixture()
def not_docker() -> Iterator[str]:
    """A unix socket that answers every request with HTTP 404, like a server that is not dockerd."""
    d = tempfile.mkdtemp(prefix="bk-test-")
    path = os.path.join(d, "docker.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(8)

    def serve() -> None:
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = c.recv(4096)
                if not chunk:
                    break
                buf += chunk
            c.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 19\r\n\r\npage not found here")
            c.close()

    threading.Thread(target=serve, daemon=True).start()
    yield path
    srv.close()
    os.unlink(path)
    os.rmdir(d)


def test_upgrade_refused_is_explained(not_docker: str) -> None:
    with Client.connect(f"docker-unix://{not_docker}") as bk:
        with pytest.raises(BuildKitError) as e:
            bk.workers(timeout=5)
    msg = str(e.value)
    assert "dockerd refused the BuildKit upgrade of POST /grpc (HTTP/1.1 404 Not Found)" in msg
    assert "\n" not in msg


def test_ping_cli_one_line_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rc = main(["ping", "--buildkit-addr", f"docker-unix://{tmp_path}/nope.sock"])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.count("\n") == 1 and err.startswith(
        "melange-bk: error: cannot reach BuildKit at docker-unix://"
    )


def test_tls_file_missing(tmp_path: Path) -> None:
    from melange_bk.buildkit.address import TLSConfig

    with pytest.raises(BuildKitError, match="cannot read the TLS CA certificate"):
        Client.connect("tcp://127.0.0.1:1234", TLSConfig(ca_cert=str(tmp_path / "ca.pem")))


def test_alpn_failure_gets_a_hint() -> None:
    import grpc

    from melange_bk.buildkit.address import parse_address
    from melange_bk.buildkit.client import describe_rpc_error

    class Err(grpc.RpcError):
        def code(self):  # type: ignore[no-untyped-def]
            return grpc.StatusCode.UNAVAILABLE

        def details(self) -> str:
            return "failed to connect to all addresses; last error: UNKNOWN: Cannot check peer: missing selected ALPN property."

    msg = describe_rpc_error(parse_address("tcp://127.0.0.1:1234"), Err())
    assert msg.startswith("TLS handshake with BuildKit at tcp://127.0.0.1:1234 failed: ")
    assert "v0.17" in msg
