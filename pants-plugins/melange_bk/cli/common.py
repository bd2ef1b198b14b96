"""Options shared by sub-commands: the BuildKit daemon's (named as buildctl names them) and the machine-local
inputs' (`melange_bk.environment.hostinputs`)."""

from __future__ import annotations

import argparse
import os

from melange_bk.buildkit.address import TLS_ENV, TLSConfig


def add_buildkit_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("BuildKit daemon")
    g.add_argument(
        "--buildkit-addr",
        default=None,
        metavar="ADDR",
        help="daemon address: unix://PATH, tcp://HOST:PORT or docker-unix://PATH (default: $BUILDKIT_HOST); "
        "several, comma-separated, spread packages over daemons (a stable choice per package name, the next one "
        "when it does not answer)",
    )
    g.add_argument(
        "--tlscacert", default=None, metavar="FILE", help="CA certificate for tcp:// (BUILDKIT_TLS_CA_CERT)"
    )
    g.add_argument(
        "--tlscert", default=None, metavar="FILE", help="client certificate for tcp:// (BUILDKIT_TLS_CERT)"
    )
    g.add_argument("--tlskey", default=None, metavar="FILE", help="client key for tcp:// (BUILDKIT_TLS_KEY)")
    g.add_argument(
        "--tlsservername",
        default=None,
        metavar="NAME",
        help="server name to verify in the daemon's certificate (BUILDKIT_TLS_SERVER_NAME)",
    )


def tls_from_args(args: argparse.Namespace) -> TLSConfig:
    """Each --tls* option, else its BUILDKIT_TLS_* variable."""
    return TLSConfig(*(getattr(args, option) or os.environ.get(var) or None for option, var in TLS_ENV))


def add_host_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("machine-local inputs (used by the Pants backend)")
    g.add_argument(
        "--host-config",
        default="",
        metavar="FILE",
        help="JSON written by `melange-bk host-config`: daemon address, TLS files and the paths that "
        "@host:NAME values stand for",
    )
    g.add_argument(
        "--host-input",
        action="append",
        default=[],
        metavar="NAME=ID",
        help="identity @host:NAME must have (as printed by host-config); a mismatch is an error",
    )
