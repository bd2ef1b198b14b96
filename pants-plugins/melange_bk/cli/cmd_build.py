"""`melange-bk build FILE`: build a melange YAML's packages on BuildKit (melange's flags where they make sense)."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from typing import List, Tuple

import yaml

from melange_bk.build.environment import EnvironmentOptions
from melange_bk.cli.common import add_buildkit_args, tls_from_args
from melange_bk.cli.host import add_host_args, resolve_host_args
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
        help="extra public key for repositories (repeatable)",
    )
    p.add_argument(
        "--package-append",
        action="append",
        default=[],
        metavar="PKG",
        help="extra package in the build environment (repeatable)",
    )
    p.add_argument(
        "--allow-untrusted",
        action="store_true",
        help="accept repository indexes without a trusted signature (local development only)",
    )
    p.add_argument(
        "--rootfs",
        default="",
        metavar="BASE",
        help="environment base: a rootfs directory or .tar (also dir:PATH, tar:PATH), image:REF@sha256:…, or none (default: packages only, as with Wolfi)",
    )
    p.add_argument(
        "--env-file", default="", metavar="FILE", help="KEY=VALUE lines added to the build environment"
    )
    p.add_argument(
        "--vars-file", default="", metavar="FILE", help="YAML mapping of vars, overriding the file's `vars:`"
    )
    p.add_argument("--var", action="append", default=[], metavar="K=V", help="set one var (repeatable)")
    p.add_argument(
        "--generate-index", action="store_true", help="write a signed APKINDEX.tar.gz next to the packages"
    )
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
    p.add_argument(
        "--source-date-epoch",
        type=int,
        default=None,
        metavar="N",
        help="timestamp for reproducible outputs (default: $SOURCE_DATE_EPOCH, else 0)",
    )
    add_buildkit_args(p)
    add_host_args(p)
    p.set_defaults(func=run)


def _kv_lines(path: str) -> Tuple[Tuple[str, str], ...]:
    out = []
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                key, sep, value = line.partition("=")
                if not sep or not key.strip():
                    raise ConfigError(f"expected KEY=VALUE, got {line!r}", path=path, line=n)
                out.append((key.strip(), value.strip()))
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror}", path=path) from None
    return tuple(out)


def _vars(args: argparse.Namespace) -> Tuple[Tuple[str, str], ...]:
    out: List[Tuple[str, str]] = []
    if args.vars_file:
        try:
            with open(args.vars_file, encoding="utf-8") as f:
                data = yaml.safe_load(f) or {}
        except OSError as e:
            raise ConfigError(f"cannot read: {e.strerror}", path=args.vars_file) from None
        except yaml.YAMLError as e:
            raise ConfigError(f"invalid YAML: {e}", path=args.vars_file) from None
        if not isinstance(data, dict):
            raise ConfigError("expected a mapping of var names to values", path=args.vars_file)
        out.extend((str(k), str(v)) for k, v in data.items())
    for item in args.var:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--var {item!r}: expected KEY=VALUE")
        out.append((key, value))
    return tuple(out)


def run(args: argparse.Namespace) -> int:
    resolve_host_args(args)
    from melange_bk.build import builder

    sde = args.source_date_epoch
    if sde is None:
        try:
            sde = int(os.environ.get("SOURCE_DATE_EPOCH", "0") or 0)
        except ValueError:
            raise ConfigError("SOURCE_DATE_EPOCH must be an integer") from None
    env = EnvironmentOptions(
        base=args.rootfs,
        repositories_append=tuple(args.repository_append),
        keyring_append=tuple(args.keyring_append),
        packages_append=tuple(args.package_append),
        cache_dir=args.cache_dir,
        allow_untrusted=args.allow_untrusted,
    )
    base = builder.BuildRequest(
        config_file=args.file,
        source_dir=args.source_dir,
        pipeline_dirs=tuple(args.pipeline_dir),
        vars=_vars(args),
        out_dir=args.out_dir,
        signing_key=args.signing_key,
        environment=env,
        buildkit_addr=args.buildkit_addr,
        tls=tls_from_args(args),
        progress=args.progress,
        cache_mounts=not args.no_cache_mounts,
        generate_index=args.generate_index,
        source_date_epoch=sde,
        emit_llb=args.emit_llb,
        extra_env=_kv_lines(args.env_file) if args.env_file else (),
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
