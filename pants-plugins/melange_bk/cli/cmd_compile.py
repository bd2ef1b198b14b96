"""`melange-bk compile FILE`: print the resolved build plan as JSON."""

from __future__ import annotations

import argparse
import sys

from melange_bk.cli.planargs import add_permission_args


def register(subparsers) -> None:  # type: ignore[no-untyped-def]
    parser = subparsers.add_parser(
        "compile", help="compile a melange YAML into the resolved build plan (JSON on stdout)"
    )
    parser.add_argument("file", metavar="FILE", help="the melange YAML")
    parser.add_argument("--arch", default="x86_64", help="target architecture (default: x86_64)")
    parser.add_argument(
        "--pipeline-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="directory of pipeline definitions, searched before the built-ins (repeatable)",
    )
    parser.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="K=V",
        help="set or override a `vars:` entry (repeatable)",
    )
    add_permission_args(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from melange_bk.cli.planargs import parse_vars, permissions
    from melange_bk.driver.permissions import check
    from melange_bk.plan.compile import compile_file

    plan = compile_file(
        args.file, arch=args.arch, pipeline_dirs=args.pipeline_dir, extra_vars=parse_vars(args.var)
    )
    check(plan, args.file, permissions(args))  # what `build` would refuse, refused here too
    sys.stdout.write(plan.to_json())
    return 0
