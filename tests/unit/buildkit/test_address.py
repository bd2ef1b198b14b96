from __future__ import annotations

import pytest

from melange_bk.buildkit.address import TLSConfig, address_from_env, parse_address
from melange_bk.errors import BuildKitError


def test_schemes() -> None:
    a = parse_address("unix:///run/buildkit/buildkitd.sock")
    assert (a.scheme, a.path) == ("unix", "/run/buildkit/buildkitd.sock")
    d = parse_address("docker-unix:///var/run/docker.sock")
    assert d.is_docker and d.path == "/var/run/docker.sock"
    t = parse_address("tcp://buildkit.example:1234")
    assert (t.scheme, t.host, t.port) == ("tcp", "buildkit.example", 1234)


@pytest.mark.parametrize(
    "raw, message",
    [
        ("", "no BuildKit address: set BUILDKIT_HOST"),
        ("/run/buildkit.sock", "expected one of unix://, tcp://, docker-unix://"),
        ("http://x:1", "unsupported BuildKit address scheme 'http'"),
        ("unix://relative.sock", "needs an absolute socket path"),
        ("tcp://host", "expected tcp://HOST:PORT"),
        ("tcp://host:notaport", "expected tcp://HOST:PORT"),
    ],
)
def test_bad_addresses(raw: str, message: str) -> None:
    with pytest.raises(BuildKitError) as e:
        parse_address(raw)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_flag_wins_over_env() -> None:
    env = {"BUILDKIT_HOST": "unix:///a.sock"}
    assert address_from_env(None, env).path == "/a.sock"
    assert address_from_env("unix:///b.sock", env).path == "/b.sock"


def test_tls_from_env() -> None:
    tls = TLSConfig.from_env({"BUILDKIT_TLS_CA_CERT": "/ca.pem", "BUILDKIT_TLS_SERVER_NAME": "bk"})
    assert tls.enabled and tls.ca_cert == "/ca.pem" and tls.server_name == "bk"
    assert not TLSConfig.from_env({}).enabled
