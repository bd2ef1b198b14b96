"""`melange-bk ping`: does BuildKit's control API answer at an address? (Used by bin/buildkit.)"""

from __future__ import annotations

import argparse

from melange_bk.buildkit.client import Client
from melange_bk.cli.common import add_buildkit_args, tls_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "ping",
        help="check that a BuildKit daemon answers (ListWorkers, Info)",
        description="Exit 0 and print the daemon's version and worker platforms if BuildKit's control API "
        "answers at the address; otherwise print why not and exit 1.",
    )
    add_buildkit_args(p)
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for an answer (default: 10)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with Client.connect(args.buildkit_addr, tls_from_args(args)) as bk:
        print(bk.ping(timeout=args.timeout))
    return 0
