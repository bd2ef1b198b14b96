"""`melange-bk ping`: does BuildKit's control API answer at an address? (Used by bin/buildkit.)"""

from __future__ import annotations

import argparse

from melange_bk.buildkit.address import addresses_from_env
from melange_bk.buildkit.client import Client
from melange_bk.cli.common import add_buildkit_args, tls_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "ping",
        help="check that a BuildKit daemon answers (ListWorkers, Info)",
        description="Exit 0 and print the daemon's version and worker platforms if BuildKit's control API "
        "answers at the address (at each address of a comma-separated list); otherwise print why not and exit 1.",
    )
    add_buildkit_args(p)
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for an answer (default: 10)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    addresses = addresses_from_env(args.buildkit_addr)
    for addr in addresses:
        with Client(addr, tls_from_args(args)) as bk:
            line = bk.ping(timeout=args.timeout)
        print(f"{addr}: {line}" if len(addresses) > 1 else line)
    return 0
