"""`melange-bk test FILE`: run the `test:` sections of a melange YAML on BuildKit against built packages."""

from __future__ import annotations

import argparse
import sys

from melange_bk.cli.planargs import add_environment_args, add_run_args, request_fields
from melange_bk.environment.hostinputs import resolve_host_args


def register(subparsers) -> None:  # type: ignore[no-untyped-def]
    p = subparsers.add_parser(
        "test",
        help="run the test: sections of a melange YAML on BuildKit",
        description="Run the package's and each subpackage's test: pipeline on BuildKit (every step one "
        "ExecOp, network off) in an environment of the test's packages plus the package under test, taken "
        "from --apk files or from OUT-DIR/ARCH/ of a previous build.",
    )
    p.add_argument("file", metavar="FILE", help="the melange YAML")
    p.add_argument(
        "--apk",
        action="append",
        default=[],
        metavar="PATH",
        help="a package under test (repeatable; default: OUT-DIR/ARCH/*.apk)",
    )
    p.add_argument(
        "--out-dir",
        default="packages",
        metavar="DIR",
        help="where a previous build wrote DIR/ARCH/*.apk (default: packages)",
    )
    p.add_argument("--arch", default="x86_64", help="architecture to test (default: x86_64)")
    p.add_argument(
        "--source-dir",
        default="",
        metavar="DIR",
        help="copied to /home/build for the test steps (default: the YAML's folder)",
    )
    add_environment_args(p, test=True)
    add_run_args(p, test=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    resolve_host_args(args)
    from melange_bk.driver import testrun

    req = testrun.TestRequest(
        **request_fields(args),
        arch=args.arch,
        apks=tuple(args.apk),
        out_dir=args.out_dir,
    )
    result = testrun.run_tests(req)
    if not result.outcomes:
        print(f"melange-bk: {args.file}: no test: sections, nothing to run", file=sys.stderr)
        return 0
    for o in result.outcomes:
        print(f"ok {o.package} ({o.steps} step{'s' if o.steps != 1 else ''})")
    return 0
