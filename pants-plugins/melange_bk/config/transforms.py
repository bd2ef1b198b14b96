"""`var-transforms`: a Go (RE2) regular expression (config/goregexp.py, linear time) and a Go replacement template.

Go's template syntax: `$1`, `${1}`, `$name`, `${name}`; `$$` is a literal `$`; an unknown or unmatched group
expands to nothing; a `$` not followed by a valid reference is kept literally.
"""

from __future__ import annotations

import re
from typing import Union

from melange_bk.config import goregexp, limits
from melange_bk.config.subst import ValueTooLong


def _ident_end(template: str, i: int) -> int:
    while i < len(template) and (template[i].isalnum() or template[i] == "_") and template[i].isascii():
        i += 1
    return i


AnyMatch = Union["re.Match[str]", goregexp.Match]


def go_expand(template: str, match: AnyMatch) -> str:
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


def _group(name: str, match: AnyMatch) -> str:
    try:
        value = match.group(int(name) if name.isdigit() else name)
    except (IndexError, ValueError):
        return ""
    return value or ""


def replace_all(pattern: str, source: str, template: str) -> str:
    """Go's `regexp.ReplaceAllString(source, template)`; a result longer than `limits.MAX_VALUE_CHARS` raises
    `ValueTooLong` (an empty match at every character, each replaced by a long template, would be quadratic);
    a pattern Go would refuse, or one past a bound, raises `goregexp.RegexpError`.
    """
    size = [len(source)]

    def expand(m: goregexp.Match) -> str:
        out = go_expand(template, m)
        size[0] += len(out) - (m.end() - m.start())
        if size[0] > limits.MAX_VALUE_CHARS:
            raise ValueTooLong(limits.VALUE_TOO_LONG, m.start())
        return out

    return goregexp.compile(pattern).sub(expand, source)


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
