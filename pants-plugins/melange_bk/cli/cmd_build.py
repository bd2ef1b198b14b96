"""`melange-bk build FILE`: build a melange YAML's packages on BuildKit (melange's flags where they make sense)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from melange_bk.cli.planargs import add_environment_args, add_run_args, request_fields
from melange_bk.environment.hostinputs import resolve_host_args
from melange_bk.errors import ConfigError


def register(subparsers) -> None:  # type: ignore[no-untyped-def]
    p = subparsers.add_parser(
        "build",
        help="build the packages of a melange YAML on BuildKit",
        description="Compile FILE to LLB, solve it on BuildKit (every step in the daemon, network off), and "
        "write signed .apk files to OUT-DIR/ARCH/.",
    )
    p.add_argument("file", metavar="FILE", help="the melange YAML")
    p.add_argument(
        "--arch", action="append", default=[], help="architecture to build for (repeatable; default: x86_64)"
    )
    p.add_argument(
        "--signing-key", default="", metavar="KEY", help="RSA private key (PEM) to sign packages and index"
    )
    p.add_argument(
        "--out-dir",
        default="packages",
        metavar="DIR",
        help="where packages go, as DIR/ARCH/*.apk (default: packages)",
    )
    p.add_argument(
        "--source-dir",
        default="",
        metavar="DIR",
        help="workspace uploaded to /home/build (default: the YAML's folder)",
    )
    add_environment_args(p, test=False)
    p.add_argument(
        "--generate-index", action="store_true", help="write a signed APKINDEX.tar.gz next to the packages"
    )
    p.add_argument(
        "--no-cache-mounts",
        action="store_true",
        help="no BuildKit cache mounts for language caches (go, pip, npm, cargo, ccache)",
    )
    p.add_argument(
        "--emit-llb",
        default="",
        metavar="FILE",
        help="write the marshalled LLB Definition to FILE and stop (no daemon needed)",
    )
    add_run_args(p, test=False)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    resolve_host_args(args)
    from melange_bk.driver import builder

    base = builder.BuildRequest(
        **request_fields(args),
        out_dir=args.out_dir,
        signing_key=args.signing_key,
        cache_mounts=not args.no_cache_mounts,
        generate_index=args.generate_index,
        emit_llb=args.emit_llb,
    )
    arches = args.arch or ["x86_64"]
    if args.emit_llb and len(arches) > 1:
        raise ConfigError("--emit-llb writes one Definition: give a single --arch")
    for arch in arches:
        res = builder.build(replace(base, arch=arch))
        if args.emit_llb:
            print(f"wrote {args.emit_llb} ({res.definition_digest})", file=sys.stderr)
            continue
        for apk in res.apks:
            print(apk)
        if res.index:
            print(res.index)
    return 0
