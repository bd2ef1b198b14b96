"""BuildKit daemon addresses, as `buildctl` spells them, plus our `docker-unix://` for Docker's embedded BuildKit.

    unix:///run/buildkit/buildkitd.sock      standalone buildkitd on a unix socket
    tcp://host:1234                          standalone buildkitd over TCP (TLS when a CA/cert is configured)
    docker-unix:///var/run/docker.sock       dockerd's embedded BuildKit: POST /grpc and /session upgraded to h2c

`BUILDKIT_HOST` is honoured, like buildctl; TLS files come from flags or BUILDKIT_TLS_* variables. Several
daemons are given as a comma-separated list (`parse_addresses`); `buildkit.select` picks one per package.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Mapping, Optional, Tuple
from urllib.parse import urlsplit

from melange_bk.errors import BuildKitError

SCHEMES = ("unix", "tcp", "docker-unix")
ENV_VAR = "BUILDKIT_HOST"
# The TLS options (named as buildctl's flags; in `TLSConfig`'s field order) and the variables that stand in for them.
TLS_ENV = (
    ("tlscacert", "BUILDKIT_TLS_CA_CERT"),
    ("tlscert", "BUILDKIT_TLS_CERT"),
    ("tlskey", "BUILDKIT_TLS_KEY"),
    ("tlsservername", "BUILDKIT_TLS_SERVER_NAME"),
)


@dataclass(frozen=True)
class TLSConfig:
    """Client TLS settings for `tcp://` (the same four knobs as buildctl's --tls* flags)."""

    ca_cert: Optional[str] = None
    cert: Optional[str] = None
    key: Optional[str] = None
    server_name: Optional[str] = None

    @property
    def enabled(self) -> bool:
        return bool(self.ca_cert or self.cert or self.key)

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> TLSConfig:
        env = os.environ if env is None else env
        return cls(*(env.get(var) or None for _option, var in TLS_ENV))


@dataclass(frozen=True)
class Address:
    """A parsed daemon address. `path` for unix/docker-unix, `host`/`port` for tcp."""

    raw: str
    scheme: str
    path: str = ""
    host: str = ""
    port: int = 0

    def __str__(self) -> str:
        return self.raw

    @property
    def is_docker(self) -> bool:
        return self.scheme == "docker-unix"


def parse_address(raw: str) -> Address:
    """Parse a daemon address; a MelangeError names what is wrong and what is accepted."""
    text = raw.strip()
    if not text:
        raise BuildKitError(
            'no BuildKit address: set BUILDKIT_HOST or pass --buildkit-addr (e.g. eval "$(bin/buildkit up)")'
        )
    if "," in text:
        raise BuildKitError(
            f"{raw!r} is a list of BuildKit addresses: this command talks to one daemon (give one address)"
        )
    if "://" not in text:
        raise BuildKitError(
            f"invalid BuildKit address {raw!r}: expected one of {', '.join(s + '://' for s in SCHEMES)}"
        )
    scheme, rest = text.split("://", 1)
    if scheme not in SCHEMES:
        raise BuildKitError(
            f"unsupported BuildKit address scheme {scheme!r} in {raw!r}: expected one of "
            + ", ".join(s + "://" for s in SCHEMES)
        )
    if scheme in ("unix", "docker-unix"):
        if not rest.startswith("/"):
            raise BuildKitError(
                f"invalid BuildKit address {raw!r}: {scheme}:// needs an absolute socket path"
            )
        return Address(raw=text, scheme=scheme, path=rest)
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or not port or (parts.path not in ("", "/")):
        raise BuildKitError(f"invalid BuildKit address {raw!r}: expected tcp://HOST:PORT")
    return Address(raw=text, scheme=scheme, host=parts.hostname, port=port)


def address_from_env(explicit: Optional[str] = None, env: Optional[Mapping[str, str]] = None) -> Address:
    """The address to use: an explicit one (flag/option) wins over BUILDKIT_HOST."""
    env = os.environ if env is None else env
    raw = explicit or env.get(ENV_VAR, "")
    return parse_address(raw)


def parse_addresses(raw: str) -> Tuple[Address, ...]:
    """A comma-separated list of daemon addresses (one address is a list of one); empty items and repeats of the
    same spelling are dropped, the order is kept. A MelangeError names the first bad item."""
    seen: List[str] = []
    for item in raw.split(","):
        item = item.strip()
        if item and item not in seen:
            seen.append(item)
    if not seen:
        parse_address("")  # raises: no address
    return tuple(parse_address(item) for item in seen)


def addresses_from_env(
    explicit: Optional[str] = None, env: Optional[Mapping[str, str]] = None
) -> Tuple[Address, ...]:
    """Like `address_from_env`, for a comma-separated list (flag/option first, else BUILDKIT_HOST)."""
    env = os.environ if env is None else env
    return parse_addresses(explicit or env.get(ENV_VAR, ""))
