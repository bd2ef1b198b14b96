"""Include/exclude patterns for local sources, with the semantics of BuildKit's (dockerignore-style) matcher.

A pattern is a slash-separated glob (`*`, `?`, `[...]`, and `**` for any number of path segments); it matches a
path or any of its parents. Exclude patterns are applied in order, later ones win, and `!pattern` re-includes.
The daemon sends the patterns; the client (the sender) applies them while walking.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple


def _clean(pattern: str) -> str:
    p = posixpath.normpath(pattern.strip())
    return "" if p == "." else p.lstrip("/")


def _segment_regex(seg: str) -> str:
    out = []
    i = 0
    while i < len(seg):
        c = seg[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = seg.find("]", i + 1)
            if j < 0:
                out.append(re.escape(c))
            else:
                body = seg[i + 1 : j]
                if body.startswith("^") or body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j
        elif c == "\\" and i + 1 < len(seg):
            i += 1
            out.append(re.escape(seg[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def compile_pattern(pattern: str) -> re.Pattern[str]:
    parts = _clean(pattern).split("/")
    rx = ""
    for n, seg in enumerate(parts):
        last = n == len(parts) - 1
        if seg == "**":
            rx += "(?:.*)" if last else "(?:[^/]*/)*"
        else:
            rx += _segment_regex(seg) + ("" if last else "/")
    return re.compile("^" + rx + "$")


@dataclass(frozen=True)
class _Pat:
    text: str
    negated: bool
    rx: re.Pattern[str]


class Matcher:
    """Ordered patterns; `matches(path)` is True if the path (or a parent) is selected by the last matching rule."""

    def __init__(self, patterns: Sequence[str]) -> None:
        pats: List[_Pat] = []
        for raw in patterns:
            neg = raw.startswith("!")
            text = _clean(raw[1:] if neg else raw)
            if not text:
                continue
            pats.append(_Pat(text, neg, compile_pattern(text)))
        self.patterns: Tuple[_Pat, ...] = tuple(pats)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    @property
    def has_exclusions(self) -> bool:
        return any(p.negated for p in self.patterns)

    def matches(self, path: str) -> bool:
        parents = _parents(path)
        result = False
        for p in self.patterns:
            if any(p.rx.match(c) for c in parents):
                result = not p.negated
        return result

    def could_match_below(self, dir_path: str) -> bool:
        """True if some non-negated pattern could match a path below `dir_path` (include traversal)."""
        prefix = dir_path + "/"
        for p in self.patterns:
            if p.negated:
                continue
            literal = p.text.split("*")[0].split("?")[0].split("[")[0]
            if (
                literal.startswith(prefix)
                or prefix.startswith(literal.rsplit("/", 1)[0] + "/")
                or "/" not in literal
            ):
                return True
            if p.text.startswith("**"):
                return True
        return False


def _parents(path: str) -> List[str]:
    parts = path.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


@dataclass(frozen=True)
class Filter:
    include: Tuple[str, ...] = ()
    exclude: Tuple[str, ...] = ()
    follow: Tuple[str, ...] = ()

    def compiled(self) -> Tuple[Optional[Matcher], Optional[Matcher]]:
        inc = Matcher(self.include) if self.include else None
        exc = Matcher(self.exclude) if self.exclude else None
        return inc, exc
