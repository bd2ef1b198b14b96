"""Options and their parsing shared by the sub-commands that compile a YAML and prepare its environment
(`build`, `test`; `compile` shares `--var`)."""

from __future__ import annotations

import argparse
import os
from typing import Any, Dict, Iterable, List, Tuple

from melange_bk.cli.common import add_buildkit_args, add_host_args, tls_from_args
from melange_bk.driver.buildenv import EnvironmentOptions
from melange_bk.driver.permissions import Permissions
from melange_bk.errors import ConfigError

PROGRESS_MODES = ("auto", "plain", "tty", "rawjson", "quiet")


def add_environment_args(p: argparse.ArgumentParser, *, test: bool) -> None:
    """--pipeline-dir … --var: what the plan and its environment are made of (`test` words the help for tests)."""
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
        help=(
            "extra public key, for repositories and for the packages under test (repeatable)"
            if test
            else "extra public key for repositories (repeatable)"
        ),
    )
    p.add_argument(
        "--package-append",
        *(("--test-package-append",) if test else ()),
        action="append",
        default=[],
        metavar="PKG",
        help=(
            "extra package in every test environment (repeatable)"
            if test
            else "extra package in the build environment (repeatable)"
        ),
    )
    p.add_argument(
        "--allow-untrusted",
        action="store_true",
        help=(
            "accept unsigned packages under test and unsigned repository indexes (local development only)"
            if test
            else "accept repository indexes without a trusted signature (local development only)"
        ),
    )
    p.add_argument(
        "--rootfs",
        default="",
        metavar="BASE",
        help="environment base: a rootfs directory or .tar (also dir:PATH, tar:PATH), image:REF@sha256:…, or none"
        + ("" if test else " (default: packages only, as with Wolfi)"),
    )
    p.add_argument(
        "--env-file",
        default="",
        metavar="FILE",
        help="KEY=VALUE lines added to the " + ("test steps" if test else "build environment"),
    )
    p.add_argument(
        "--vars-file", default="", metavar="FILE", help="YAML mapping of vars, overriding the file's `vars:`"
    )
    p.add_argument("--var", action="append", default=[], metavar="K=V", help="set one var (repeatable)")


def add_permission_args(p: argparse.ArgumentParser) -> None:
    """--allow-network, --allow-insecure: what a YAML may ask beyond the defaults (`driver.permissions`)."""
    g = p.add_argument_group("permissions (off by default; the daemon must allow the entitlement too)")
    g.add_argument(
        "--allow-network",
        action="store_true",
        help="let the steps that need it reach the network (git-checkout cherry-picks; entitlement network.host)",
    )
    g.add_argument(
        "--allow-insecure",
        action="store_true",
        help="grant capabilities.add beyond BuildKit's defaults with insecure steps (entitlement "
        "security.insecure)",
    )


def permissions(args: argparse.Namespace) -> Permissions:
    return Permissions(network=args.allow_network, insecure=args.allow_insecure)


def add_run_args(p: argparse.ArgumentParser, *, test: bool) -> None:
    """--progress, --cache-dir, --source-date-epoch, then the permissions', the daemon's and the machine-local
    inputs' options."""
    p.add_argument(
        "--progress", default="auto", choices=PROGRESS_MODES, help="progress output (default: auto)"
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
        help=(
            "SOURCE_DATE_EPOCH in the test steps (default: $SOURCE_DATE_EPOCH, else 0)"
            if test
            else "timestamp for reproducible outputs (default: $SOURCE_DATE_EPOCH, else 0)"
        ),
    )
    add_permission_args(p)
    add_buildkit_args(p)
    add_host_args(p)


def parse_vars(items: Iterable[str]) -> List[Tuple[str, str]]:
    """`--var K=V` values."""
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--var {item!r}: expected KEY=VALUE")
        out.append((key, value))
    return out


def vars_from_args(args: argparse.Namespace) -> Tuple[Tuple[str, str], ...]:
    """--vars-file, then every --var (later ones win)."""
    import yaml

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
    out.extend(parse_vars(args.var))
    return tuple(out)


def env_file(path: str) -> Tuple[Tuple[str, str], ...]:
    """KEY=VALUE lines (blank lines and # comments skipped); "" → none."""
    if not path:
        return ()
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


def source_date_epoch(args: argparse.Namespace) -> int:
    """--source-date-epoch, else $SOURCE_DATE_EPOCH, else 0."""
    if args.source_date_epoch is not None:
        return int(args.source_date_epoch)
    try:
        return int(os.environ.get("SOURCE_DATE_EPOCH", "0") or 0)
    except ValueError:
        raise ConfigError("SOURCE_DATE_EPOCH must be an integer") from None


def environment_options(args: argparse.Namespace) -> EnvironmentOptions:
    return EnvironmentOptions(
        base=args.rootfs,
        repositories_append=tuple(args.repository_append),
        keyring_append=tuple(args.keyring_append),
        packages_append=tuple(args.package_append),
        cache_dir=args.cache_dir,
        allow_untrusted=args.allow_untrusted,
    )


def request_fields(args: argparse.Namespace) -> Dict[str, Any]:
    """The fields `driver.builder.BuildRequest` and `driver.testrun.TestRequest` share, from the options above and
    the daemon's."""
    return dict(
        config_file=args.file,
        source_dir=args.source_dir,
        pipeline_dirs=tuple(args.pipeline_dir),
        vars=vars_from_args(args),
        environment=environment_options(args),
        buildkit_addr=args.buildkit_addr,
        tls=tls_from_args(args),
        progress=args.progress,
        source_date_epoch=source_date_epoch(args),
        extra_env=env_file(args.env_file),
        permissions=permissions(args),
    )
