"""`melange-bk`: the command line over the core library, shaped like melange's CLI.

Each sub-command lives in its own module `melange_bk.cli.cmd_<name>` that defines

    def register(subparsers) -> None   # adds its parser; sets `func=run` as default
    def run(args) -> int               # returns the process exit code

A module that does not exist yet is simply not offered, so layers can land independently.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType
from typing import List, Optional

from melange_bk import __version__
from melange_bk.errors import MelangeError

# Order is the order shown in --help.
COMMANDS = (
    "build",
    "test",
    "compile",
    "keygen",
    "index",
    "dump-llb",
    "bootstrap-repo",
    "ping",
    "host-config",
)


def _module_name(command: str) -> str:
    return "melange_bk.cli.cmd_" + command.replace("-", "_")


def _load_commands(only: Optional[str] = None) -> List[ModuleType]:
    """The sub-command modules (only the one named by `only` when it is a command: each pulls in its layers, and
    `melange-bk ping` or `host-config` should not pay for importing the whole library)."""
    modules = []
    for command in COMMANDS if only not in COMMANDS else (only,):
        try:
            modules.append(importlib.import_module(_module_name(command)))
        except ModuleNotFoundError as e:
            if e.name != _module_name(command):
                raise
    return modules


def build_parser(only: Optional[str] = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="melange-bk",
        description="Build Alpine-format .apk packages from melange YAML, with BuildKit as the execution backend.",
    )
    parser.add_argument("--version", action="version", version=f"melange-bk {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _load_commands(only):
        module.register(subparsers)
    return parser


def _command_in(argv: List[str]) -> Optional[str]:
    for arg in argv:
        if not arg.startswith("-"):
            return arg
    return None


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command_in(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except MelangeError as e:
        if args.debug:
            raise
        print(f"melange-bk: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("melange-bk: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
