"""`melange-bk bootstrap-repo DIR`: a signed local APK repository (busybox + Debian-base meta packages)."""

from __future__ import annotations

import argparse

from melange_bk.config.arch import host_arch
from melange_bk.environment.bootstrap import BUSYBOX, build_bootstrap_repo


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "bootstrap-repo",
        help="build a local APK repository of bootstrap packages (busybox, …) from this machine's tools",
        description=(
            "Write DIR/<arch>/*.apk and a signed DIR/<arch>/APKINDEX.tar.gz: `busybox` (Debian's static busybox, "
            "providing cmd:<applet>) and file-less meta packages (build-base, git, …) satisfied by the Debian "
            "build rootfs. Use DIR in environment.contents.repositories and DIR/<key>.rsa.pub in its keyring."
        ),
    )
    p.add_argument("dir", help="repository directory (created if missing)")
    p.add_argument("--arch", default=None, help="architecture directory name (default: this machine's)")
    p.add_argument(
        "--signing-key",
        default=None,
        metavar="KEY",
        help="RSA private key (default: DIR/.signing/, generated)",
    )
    p.add_argument("--busybox", default=BUSYBOX, help=f"static busybox binary (default: {BUSYBOX})")
    p.add_argument("--no-debian-metas", action="store_true", help="only the busybox package")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    repo = build_bootstrap_repo(
        args.dir,
        arch=args.arch or host_arch(),
        signing_key=args.signing_key,
        busybox=args.busybox,
        debian_metas=not args.no_debian_metas,
    )
    print(f"repository: {repo.path}")
    for key in repo.keyring:
        print(f"keyring: {key}")
    print(f"packages: {' '.join(repo.packages)}")
    return 0
