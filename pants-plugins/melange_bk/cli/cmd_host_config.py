"""`melange-bk host-config --out FILE --input NAME=KIND:PATH …`: record this machine's inputs for Pants.

Run by the Pants backend (never in a persistent cache; under pantsd, again when an input was touched): writes where the daemon and each machine-local input
are into FILE (a Pants named cache, outside every cache key) and prints `{"NAME": "IDENTITY", …}`, which the
backend puts in the builds' argv (inside the key). See `melange_bk.environment.hostinputs`.
"""

from __future__ import annotations

import argparse
import json
from typing import Dict, Tuple

from melange_bk.cli.common import add_buildkit_args
from melange_bk.environment import hostinputs
from melange_bk.errors import ConfigError


def register(subparsers) -> None:  # type: ignore[no-untyped-def]
    p = subparsers.add_parser(
        "host-config",
        help="record the daemon and machine-local inputs for builds (used by the Pants backend)",
        description="Measure each --input, write them with the daemon address to --out (JSON) and print "
        "NAME -> identity as JSON.",
    )
    p.add_argument("--out", required=True, metavar="FILE", help="host configuration to write")
    p.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME=KIND:PATH",
        help=f"a machine-local input; KIND is one of {', '.join(hostinputs.KINDS)}; PATH is absolute (repeatable)",
    )
    add_buildkit_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    inputs: Dict[str, Tuple[str, str]] = {}
    for item in args.input:
        name, sep, rest = item.partition("=")
        kind, sep2, path = rest.partition(":")
        if not sep or not sep2 or not name or not path:
            raise ConfigError(f"--input {item!r}: expected NAME=KIND:PATH")
        inputs[name] = (kind, path)
    buildkit = {key: getattr(args, key) or "" for key in hostinputs.BUILDKIT_KEYS}
    ids = hostinputs.write(args.out, inputs, buildkit)
    print(json.dumps(ids, sort_keys=True))
    return 0
