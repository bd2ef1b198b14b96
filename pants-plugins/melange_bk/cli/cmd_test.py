"""`melange-bk test FILE`: run the `test:` sections of a melange YAML on BuildKit against built packages."""

from __future__ import annotations

import argparse
import os
import sys

from melange_bk.build.environment import EnvironmentOptions
from melange_bk.cli.cmd_build import _kv_lines, _vars
from melange_bk.cli.common import add_buildkit_args, tls_from_args
from melange_bk.cli.host import add_host_args, resolve_host_args
from melange_bk.errors import ConfigError


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
    p.add_argument(
        "--pipeline-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="pipelines searched before the built-ins (repeatable)",
    )
    p.add_argument(
        "--repository-append",
        action="append",
        default=[],
        metavar="REPO",
        help="extra APK repository (repeatable)",
    )
    p.add_argument(
        "--keyring-append",
        action="append",
        default=[],
        metavar="KEY",
        help="extra public key, for repositories and for the packages under test (repeatable)",
    )
    p.add_argument(
        "--package-append",
        "--test-package-append",
        action="append",
        default=[],
        metavar="PKG",
        help="extra package in every test environment (repeatable)",
    )
    p.add_argument(
        "--allow-untrusted",
        action="store_true",
        help="accept unsigned packages under test and unsigned repository indexes (local development only)",
    )
    p.add_argument(
        "--rootfs",
        default="",
        metavar="BASE",
        help="environment base: a rootfs directory or .tar (also dir:PATH, tar:PATH), image:REF@sha256:…, or none",
    )
    p.add_argument("--env-file", default="", metavar="FILE", help="KEY=VALUE lines added to the test steps")
    p.add_argument(
        "--vars-file", default="", metavar="FILE", help="YAML mapping of vars, overriding the file's `vars:`"
    )
    p.add_argument("--var", action="append", default=[], metavar="K=V", help="set one var (repeatable)")
    p.add_argument(
        "--progress",
        default="auto",
        choices=("auto", "plain", "tty", "rawjson", "quiet"),
        help="progress output (default: auto)",
    )
    p.add_argument(
        "--cache-dir",
        default="",
        metavar="DIR",
        help="client-side cache (unpacked rootfs tarballs, downloaded APKs)",
    )
    p.add_argument(
        "--source-date-epoch",
        type=int,
        default=None,
        metavar="N",
        help="SOURCE_DATE_EPOCH in the test steps (default: $SOURCE_DATE_EPOCH, else 0)",
    )
    add_buildkit_args(p)
    add_host_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    resolve_host_args(args)
    from melange_bk.build import testing

    sde = args.source_date_epoch
    if sde is None:
        try:
            sde = int(os.environ.get("SOURCE_DATE_EPOCH", "0") or 0)
        except ValueError:
            raise ConfigError("SOURCE_DATE_EPOCH must be an integer") from None
    req = testing.TestRequest(
        config_file=args.file,
        arch=args.arch,
        apks=tuple(args.apk),
        out_dir=args.out_dir,
        source_dir=args.source_dir,
        pipeline_dirs=tuple(args.pipeline_dir),
        vars=_vars(args),
        environment=EnvironmentOptions(
            base=args.rootfs,
            repositories_append=tuple(args.repository_append),
            keyring_append=tuple(args.keyring_append),
            packages_append=tuple(args.package_append),
            cache_dir=args.cache_dir,
            allow_untrusted=args.allow_untrusted,
        ),
        buildkit_addr=args.buildkit_addr,
        tls=tls_from_args(args),
        progress=args.progress,
        source_date_epoch=sde,
        extra_env=_kv_lines(args.env_file) if args.env_file else (),
    )
    result = testing.run_tests(req)
    if not result.outcomes:
        print(f"melange-bk: {args.file}: no test: sections, nothing to run", file=sys.stderr)
        return 0
    for o in result.outcomes:
        print(f"ok {o.package} ({o.steps} step{'s' if o.steps != 1 else ''})")
    return 0
