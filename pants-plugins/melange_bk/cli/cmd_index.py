"""`melange-bk index -o APKINDEX.tar.gz [--signing-key KEY] [--merge] [--source INDEX] APK...`

Builds a repository index from packages, like `melange index`: `--merge` starts from an existing index (the
output file, or `--source`), replacing entries of the same name, version and arch.
"""

from __future__ import annotations

import argparse
import os
from typing import List

from melange_bk.apk.index import Index, entry_from_apk, merge, read_index, write_index
from melange_bk.apk.sign import SHA1, SHA256, load_signing_key
from melange_bk.cli.common import add_host_args
from melange_bk.environment.hostinputs import resolve_host_args
from melange_bk.errors import MelangeError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "index",
        help="build a (signed) APKINDEX.tar.gz from packages",
        description="Build an APKINDEX.tar.gz listing the given .apk files, optionally signed and merged.",
    )
    p.add_argument("packages", nargs="+", metavar="APK", help=".apk files to index")
    p.add_argument(
        "-o", "--output", default="APKINDEX.tar.gz", help="index to write (default: APKINDEX.tar.gz)"
    )
    p.add_argument("--signing-key", help="PEM RSA private key; the signature is named <basename>.pub")
    p.add_argument(
        "--signature-digest", choices=(SHA1, SHA256), default=SHA1,
        help="sha1: .SIGN.RSA. (apk-tools 2 default); sha256: .SIGN.RSA256.",
    )  # fmt: skip
    p.add_argument("-m", "--merge", action="store_true", help="merge with an existing index")
    p.add_argument("-s", "--source", help="index to merge from (default: the output file)")
    p.add_argument("-d", "--description", default="", help="text of the DESCRIPTION entry")
    p.add_argument("-a", "--arch", help="skip packages of any other architecture")
    p.add_argument(
        "--source-date-epoch", type=int, default=None,
        help="mtime of the index entries (default: $SOURCE_DATE_EPOCH or 0)",
    )  # fmt: skip
    add_host_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    resolve_host_args(args)
    sde = args.source_date_epoch
    if sde is None:
        raw = os.environ.get("SOURCE_DATE_EPOCH", "0") or "0"
        try:
            sde = int(raw)
        except ValueError:
            raise MelangeError(f"SOURCE_DATE_EPOCH={raw!r} is not a number") from None
    key = load_signing_key(args.signing_key, args.signature_digest) if args.signing_key else None
    new = []
    skipped: List[str] = []
    for path in args.packages:
        entry = entry_from_apk(path)
        if args.arch and entry.arch != args.arch:
            skipped.append(path)
            continue
        new.append(entry)
    description = args.description
    entries = tuple(new)
    if args.merge:
        source = args.source or args.output
        if os.path.exists(source):
            old = read_index(source)
            entries = merge(old.entries, new)
            description = description or old.description
        elif args.source:
            raise MelangeError("index to merge from does not exist", path=source)
    else:
        entries = merge((), new)
    write_index(args.output, Index(description=description, entries=entries), key, sde)
    for path in skipped:
        print(f"skipped {path}: not {args.arch}")
    print(f"wrote {args.output} ({len(entries)} packages{', signed' if key else ''})")
    return 0
