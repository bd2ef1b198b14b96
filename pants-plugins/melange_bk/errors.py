"""Errors a user can act on.

Every layer raises `MelangeError` (or a subclass) for problems in the user's input or environment. The CLI prints
`str(err)` on one line and exits with `err.exit_code` -- never a traceback (use `--debug` for one).
"""

from __future__ import annotations

from typing import Optional


class MelangeError(Exception):
    """A user-facing error, optionally located in a file.

    Renders as `path:line:col: message`, `path:line: message`, `path: message` or `message`.
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        path: Optional[str] = None,
        line: Optional[int] = None,
        col: Optional[int] = None,
    ) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.col = col
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ""
        if self.path:
            where = self.path
            if self.line is not None:
                where += f":{self.line}"
                if self.col is not None:
                    where += f":{self.col}"
            where += ": "
        return f"{where}{self.message}"


class ConfigError(MelangeError):
    """Invalid melange YAML or pipeline definitions (exit code 2)."""


class BuildKitError(MelangeError):
    """The BuildKit daemon is unreachable, refused a request, or a solve failed (exit code 1)."""

    exit_code = 1


class ApkError(MelangeError):
    """A malformed, unsigned or tampered APK / APKINDEX (exit code 1)."""

    exit_code = 1
