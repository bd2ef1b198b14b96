"""`melange-bk dump-llb [FILE|-] [--dot]`: print a serialized LLB Definition as JSON lines (or dot), like
`buildctl debug dump-llb`. Needs no daemon."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from melange_bk.errors import MelangeError
from melange_bk.llb.dump import dump_dot, dump_json_lines, parse_definition


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dump-llb",
        help="print a serialized LLB Definition as JSON (one op per line)",
        description="Read a serialized pb.Definition from FILE (or stdin) and print each op as JSON, in order: "
        "digest, op, metadata. No daemon needed.",
    )
    parser.add_argument(
        "file", nargs="?", default="-", metavar="FILE", help="Definition file, or - for stdin"
    )
    parser.add_argument("--dot", action="store_true", help="print a Graphviz dot graph instead")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.file == "-":
        data = sys.stdin.buffer.read()
        where = "<stdin>"
    else:
        where = args.file
        try:
            with open(args.file, "rb") as f:
                data = f.read()
        except OSError as e:
            raise MelangeError(f"cannot read LLB definition: {e.strerror}", path=args.file) from None
    try:
        defn = parse_definition(data)
        text = dump_dot(defn) if args.dot else dump_json_lines(defn)
    except MelangeError as e:
        raise MelangeError(e.message, path=where) from None
    sys.stdout.write(text)
    sys.stdout.flush()
    return 0
