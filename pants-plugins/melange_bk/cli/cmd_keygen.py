"""`melange-bk keygen [name]`: writes `<name>.rsa` (PEM RSA private key, mode 0600) and `<name>.rsa.pub`."""

from __future__ import annotations

import argparse

from melange_bk.apk.sign import DEFAULT_KEY_BITS, write_keypair


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "keygen",
        help="generate an RSA key pair for signing packages and indexes",
        description="Write <name>.rsa (private key, PEM) and <name>.rsa.pub (public key for /etc/apk/keys).",
    )
    p.add_argument("name", nargs="?", default="melange", help="key file stem (default: melange)")
    p.add_argument("--key-size", type=int, default=DEFAULT_KEY_BITS, help="RSA modulus size in bits")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    name = args.name
    private_path = name if name.endswith(".rsa") else name + ".rsa"
    private, public = write_keypair(private_path, bits=args.key_size)
    print(f"wrote private key {private}")
    print(f"wrote public key {public}")
    return 0
