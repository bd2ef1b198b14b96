"""`${{...}}` substitutions with melange's rules.

Names are made of letters, digits, `.`, `-` and `_`; whitespace inside the braces is allowed. At parse time only
known names are replaced and everything else is left alone (`partial`); when pipelines are compiled every reference
must resolve (`strict`), otherwise `UndefinedVariable` says which one and where.
"""

from __future__ import annotations

from typing import Callable, Mapping, Optional

from melange_bk.config import limits
from melange_bk.errors import ConfigError

_VAR_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_")
_WS = " \t\r\n"


class SubstitutionError(Exception):
    """A bad or undefined reference at `offset` in the substituted text."""

    def __init__(self, message: str, offset: int, name: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.name = name


class UndefinedVariable(SubstitutionError):
    pass


class ValueTooLong(SubstitutionError, ConfigError):
    """The result would be longer than `limits.MAX_VALUE_CHARS` (raised whether strict or not). Callers locate it
    as any SubstitutionError; one that does not still ends as a one-line ConfigError."""

    def __init__(self, message: str, offset: int, name: str = "") -> None:
        ConfigError.__init__(self, message)
        self.offset = offset
        self.name = name


def _scan(text: str, start: int):
    """Parse a reference whose `${{` starts at `start`: (name, end) or (None, error message)."""
    i = start + 3
    n = len(text)
    while i < n and text[i] in _WS:
        i += 1
    name_start = i
    while i < n and text[i] in _VAR_CHARS:
        i += 1
    name = text[name_start:i]
    while i < n and text[i] in _WS:
        i += 1
    if not name:
        return None, "empty variable name in ${{...}}"
    if text[i : i + 2] != "}}":
        return None, f"unterminated variable reference ${{{{{name}"
    return name, i + 2


def substitute(
    text: str,
    lookup: Mapping[str, str],
    *,
    strict: bool,
    fallback: Optional[Callable[[str], Optional[str]]] = None,
) -> str:
    """Replace `${{name}}` by `lookup[name]`.

    strict: an unknown name or malformed reference raises; otherwise it is left as written.
    fallback: consulted for names not in `lookup` (returns None when unknown).
    A result longer than `limits.MAX_VALUE_CHARS` raises `ValueTooLong` (at the reference that makes it so).
    """
    pos = text.find("${{")
    if pos < 0:
        return text
    out = []
    last = 0
    size = len(text)  # of the result so far, with the references not replaced yet still in
    while pos >= 0:
        name, end = _scan(text, pos)
        if name is None:
            if strict:
                raise SubstitutionError(str(end), pos)
            nxt = text.find("${{", pos + 3)
            pos = nxt
            continue
        value = lookup.get(name)
        if value is None and fallback is not None:
            value = fallback(name)
        if value is None:
            if strict:
                raise UndefinedVariable(f'undefined variable "{name}"', pos, name)
        else:
            size += len(value) - (end - pos)
            if size > limits.MAX_VALUE_CHARS:
                raise ValueTooLong(limits.VALUE_TOO_LONG, pos, name)
            out.append(text[last:pos])
            out.append(value)
            last = end
        pos = text.find("${{", end)
    out.append(text[last:])
    if last and not limits.spend(size):
        raise ValueTooLong(limits.TOO_MUCH_SUBSTITUTED, 0)
    return "".join(out)


def references(text: str) -> list:
    """The names referenced in `text`, in order (malformed references are skipped)."""
    names = []
    pos = text.find("${{")
    while pos >= 0:
        name, end = _scan(text, pos)
        if name is None:
            pos = text.find("${{", pos + 3)
            continue
        names.append(name)
        pos = text.find("${{", end)
    return names
