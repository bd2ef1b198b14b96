"""`var-transforms`: a Go (RE2) regular expression and a Go replacement template, applied with Python's `re`.

Go's template syntax: `$1`, `${1}`, `$name`, `${name}`; `$$` is a literal `$`; an unknown or unmatched group
expands to nothing; a `$` not followed by a valid reference is kept literally.
"""

from __future__ import annotations

import re
from typing import Dict, Pattern

from melange_bk.config import limits
from melange_bk.config.subst import ValueTooLong

_NAMED_GROUP = re.compile(r"\(\?<([A-Za-z_][A-Za-z0-9_]*)>")
_POSIX_CLASSES = {
    "[:alnum:]": "a-zA-Z0-9",
    "[:alpha:]": "a-zA-Z",
    "[:digit:]": "0-9",
    "[:lower:]": "a-z",
    "[:upper:]": "A-Z",
    "[:space:]": r"\s",
    "[:word:]": r"\w",
    "[:xdigit:]": "0-9A-Fa-f",
    "[:punct:]": r"!-/:-@\[-`{-~",
}
_cache: Dict[str, Pattern[str]] = {}


def compile_go_regexp(pattern: str) -> Pattern[str]:
    """Compile an RE2 pattern with Python's `re` (raises re.error)."""
    compiled = _cache.get(pattern)
    if compiled is None:
        py = _NAMED_GROUP.sub(r"(?P<\1>", pattern).replace(r"\z", r"\Z")
        for posix, cls in _POSIX_CLASSES.items():
            py = py.replace(posix, cls)
        compiled = re.compile(py)
        _cache[pattern] = compiled
    return compiled


def _ident_end(template: str, i: int) -> int:
    while i < len(template) and (template[i].isalnum() or template[i] == "_") and template[i].isascii():
        i += 1
    return i


def go_expand(template: str, match: re.Match[str]) -> str:
    out = []
    i, n = 0, len(template)
    while i < n:
        j = template.find("$", i)
        if j < 0:
            out.append(template[i:])
            break
        out.append(template[i:j])
        if template.startswith("$$", j):
            out.append("$")
            i = j + 2
            continue
        if j + 1 < n and template[j + 1] == "{":
            end = _ident_end(template, j + 2)
            if end > j + 2 and end < n and template[end] == "}":
                out.append(_group(template[j + 2 : end], match))
                i = end + 1
                continue
        else:
            end = _ident_end(template, j + 1)
            if end > j + 1:
                out.append(_group(template[j + 1 : end], match))
                i = end
                continue
        out.append("$")  # not a reference: literal
        i = j + 1
    return "".join(out)


def _group(name: str, match: re.Match[str]) -> str:
    try:
        value = match.group(int(name) if name.isdigit() else name)
    except (IndexError, ValueError):
        return ""
    return value or ""


def replace_all(pattern: str, source: str, template: str) -> str:
    """Go's `regexp.ReplaceAllString(source, template)`; a result longer than `limits.MAX_VALUE_CHARS` raises
    `ValueTooLong` (an empty match at every character, each replaced by a long template, would be quadratic).
    """
    size = [len(source)]

    def expand(m: re.Match[str]) -> str:
        out = go_expand(template, m)
        size[0] += len(out) - (m.end() - m.start())
        if size[0] > limits.MAX_VALUE_CHARS:
            raise ValueTooLong(limits.VALUE_TOO_LONG, m.start())
        return out

    return compile_go_regexp(pattern).sub(expand, source)


def to_python_template(template: str) -> str:
    """The equivalent Python `re.sub` template (`$1`/`${1}` -> `\\g<1>`), for callers that want one."""
    out = []
    i, n = 0, len(template)
    while i < n:
        c = template[i]
        if c == "\\":
            out.append("\\\\")
            i += 1
        elif c == "$" and template.startswith("$$", i):
            out.append("$")
            i += 2
        elif c == "$":
            if i + 1 < n and template[i + 1] == "{":
                end = _ident_end(template, i + 2)
                if end > i + 2 and end < n and template[end] == "}":
                    out.append(f"\\g<{template[i + 2:end]}>")
                    i = end + 1
                    continue
            else:
                end = _ident_end(template, i + 1)
                if end > i + 1:
                    out.append(f"\\g<{template[i + 1:end]}>")
                    i = end
                    continue
            out.append("$")
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)
