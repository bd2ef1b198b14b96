"""Go's `regexp` (RE2 syntax and semantics) for `var-transforms`, in time linear in the text.

melange applies `var-transforms` with Go's regexp, which never backtracks. Python's `re` does: a 13-line YAML with
`match: ^(a+)+$` over a 40-character value ran for hours. This module parses the pattern with Python's own regular
expression parser (after translating the few spellings RE2 and Python write differently), refuses what RE2 does
not have (backreferences, look-around, atomic groups, possessive repeats, repeat counts above 1,000) and runs the
program on a Pike VM (Thompson's construction with submatches, leftmost-first like Go). Its work is counted
against the caller's budget (`limits.spend_regexp`), so that a large value times a large program is an error
rather than minutes of CPU.

Go's semantics where they differ from Python's `re`: `\\d`, `\\s`, `\\w` and `\\b` are ASCII; `$` is the end of the
text (not also before a final newline) unless `(?m)`; `ReplaceAllString` skips an empty match right after a
match.
"""

from __future__ import annotations

import re
import threading
import warnings
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from melange_bk.config import limits

try:  # Python 3.11 and later: the parser's own modules (sre_parse and sre_constants are deprecated shims there)
    from re import _constants as C  # type: ignore[attr-defined]
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # Python 3.9 and 3.10
    import sre_constants as C  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

__all__ = ["RegexpError", "RegexpTooCostly", "Regexp", "Match", "compile"]


class RegexpError(ValueError):
    """A pattern Go's regexp would not accept, or one past a bound of `limits`; the message completes a sentence
    that starts with the pattern ("... uses a backreference, which ...")."""


class RegexpTooCostly(RegexpError):
    """The var-transforms of one YAML took more than `limits.MAX_REGEXP_STEPS` steps, or used programs of more than
    `limits.MAX_REGEXP_INSTRUCTIONS` instructions in all."""


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
_MAX_REPEAT_COUNT = 1000  # Go's regexp/syntax refuses larger counts

# opcodes of the program
_CHAR, _SPLIT, _JMP, _SAVE, _ASSERT, _MATCH = range(6)
Inst = Tuple[int, object, int]  # (opcode, argument, second target of a split)

_DIGIT = frozenset("0123456789")
_SPACE = frozenset("\t\n\f\r ")  # Go's \s (no \v)
_WORD = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_CATEGORIES: Dict[object, Callable[[str], bool]] = {
    C.CATEGORY_DIGIT: lambda c: c in _DIGIT,
    C.CATEGORY_NOT_DIGIT: lambda c: c not in _DIGIT,
    C.CATEGORY_SPACE: lambda c: c in _SPACE,
    C.CATEGORY_NOT_SPACE: lambda c: c not in _SPACE,
    C.CATEGORY_WORD: lambda c: c in _WORD,
    C.CATEGORY_NOT_WORD: lambda c: c not in _WORD,
}


def _translate(pattern: str) -> str:
    """RE2 spellings Python writes differently: `(?<name>`, `\\z`, POSIX classes."""
    py = _NAMED_GROUP.sub(r"(?P<\1>", pattern).replace(r"\z", r"\Z")
    for posix, cls in _POSIX_CLASSES.items():
        py = py.replace(posix, cls)
    return py


def _nesting(pattern: str) -> int:
    """How deep the pattern's groups nest (escapes and character classes skipped), before Python's recursive
    parser sees it."""
    depth = deepest = 0
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":
            i += 2 if pattern.startswith("[]", i) or pattern.startswith("[^", i) else 1
            if pattern.startswith("]", i) and pattern[i - 1] == "^":
                i += 1
            while i < n and pattern[i] != "]":
                i += 2 if pattern[i] == "\\" else 1
        elif c == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif c == ")":
            depth -= 1
        i += 1
    return deepest


class _Compiler:
    def __init__(self) -> None:
        self.prog: List[List[object]] = []

    def emit(self, op: int, arg: object = None, other: int = -1) -> int:
        if len(self.prog) >= limits.MAX_REGEXP_INSTRUCTIONS:
            raise RegexpError(f"compiles to more than {limits.MAX_REGEXP_INSTRUCTIONS:,} instructions")
        self.prog.append([op, arg, other])
        return len(self.prog) - 1

    def seq(self, items: Sequence[Tuple[object, object]], flags: int) -> None:
        for op, av in items:
            self.node(op, av, flags)

    def node(self, op: object, av: object, flags: int) -> None:
        if op in (C.LITERAL, C.NOT_LITERAL, C.ANY, C.IN):
            self.emit(_CHAR, _predicate(op, av, flags))
        elif op is C.AT:
            self.emit(_ASSERT, _assertion(av, flags))
        elif op is C.SUBPATTERN:
            group, add, remove, sub = av  # type: ignore[misc]
            _check_flags(add | remove)
            inner = (flags | add) & ~remove
            if group is not None:
                self.emit(_SAVE, 2 * group)
            self.seq(sub, inner)
            if group is not None:
                self.emit(_SAVE, 2 * group + 1)
        elif op is C.BRANCH:
            _, alternatives = av  # type: ignore[misc]
            jumps = []
            for k, alt in enumerate(alternatives):
                if k < len(alternatives) - 1:
                    split = self.emit(_SPLIT, len(self.prog) + 1)
                    self.seq(alt, flags)
                    jumps.append(self.emit(_JMP))
                    self.prog[split][2] = len(self.prog)
                else:
                    self.seq(alt, flags)
            for j in jumps:
                self.prog[j][1] = len(self.prog)
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT):
            lo, hi, sub = av  # type: ignore[misc]
            self.repeat(lo, None if hi == C.MAXREPEAT else hi, sub, op is C.MAX_REPEAT, flags)
        else:
            raise RegexpError(f"uses {_op_name(op)}, which Go's regexp (RE2) does not have")

    def repeat(self, lo: int, hi: Optional[int], sub: object, greedy: bool, flags: int) -> None:
        """As Go's regexp/syntax does it: `x{n,}` is n-1 copies and `x+`; `x*` of an `x` that can match empty is
        `(x+)?` (so an empty iteration still records its groups); `x{n,m}` is n copies and m-n nested `x?`."""
        for count in (lo, hi):
            if count is not None and count > _MAX_REPEAT_COUNT:
                raise RegexpError(f"repeat count {count:,} is larger than {_MAX_REPEAT_COUNT:,}")
        body: Sequence[Tuple[object, object]] = sub  # type: ignore[assignment]
        if hi is None:
            for _ in range(max(lo - 1, 0)):
                self.seq(body, flags)
            if lo == 0 and not _nullable(body):  # L: split(body, out); body; jmp L
                top = self.emit(_SPLIT)
                self.seq(body, flags)
                self.emit(_JMP, top)
                self._targets(top, top + 1, len(self.prog), greedy)
                return
            skip = self.emit(_SPLIT) if lo == 0 else -1  # (x+)?
            start = len(self.prog)
            self.seq(body, flags)
            again = self.emit(_SPLIT)  # x+: body; split(body, out)
            self._targets(again, start, len(self.prog), greedy)
            if skip >= 0:
                self._targets(skip, skip + 1, len(self.prog), greedy)
            return
        for _ in range(lo):
            self.seq(body, flags)
        splits = []
        for _ in range(hi - lo):  # each optional copy: split(body, out)
            splits.append(self.emit(_SPLIT))
            self.seq(body, flags)
        for s in splits:
            self._targets(s, s + 1, len(self.prog), greedy)

    def _targets(self, at: int, body: int, out: int, greedy: bool) -> None:
        self.prog[at][1], self.prog[at][2] = (body, out) if greedy else (out, body)


_FLAGS = C.SRE_FLAG_IGNORECASE | C.SRE_FLAG_MULTILINE | C.SRE_FLAG_DOTALL | C.SRE_FLAG_UNICODE


def _check_flags(flags: int) -> None:
    if flags & ~_FLAGS:
        raise RegexpError("uses a flag other than i, m and s")


def _nullable(items: Sequence[Tuple[object, object]]) -> bool:
    """Whether the sequence can match the empty string."""
    for op, av in items:
        if op in (C.LITERAL, C.NOT_LITERAL, C.ANY, C.IN):
            return False
        if op is C.SUBPATTERN and not _nullable(av[3]):  # type: ignore[index]
            return False
        if op is C.BRANCH and not any(_nullable(alt) for alt in av[1]):  # type: ignore[index]
            return False
        if op in (C.MAX_REPEAT, C.MIN_REPEAT) and av[0] > 0 and not _nullable(av[2]):  # type: ignore[index]
            return False
    return True


def _op_name(op: object) -> str:
    names = {
        "GROUPREF": "a backreference",
        "GROUPREF_EXISTS": "a conditional group",
        "ASSERT": "a look-ahead or look-behind",
        "ASSERT_NOT": "a negative look-ahead or look-behind",
        "ATOMIC_GROUP": "an atomic group",
        "POSSESSIVE_REPEAT": "a possessive repeat",
    }
    return names.get(str(op), str(op).lower())


def _predicate(op: object, av: object, flags: int) -> Callable[[str], bool]:
    fold = bool(flags & C.SRE_FLAG_IGNORECASE)
    if op is C.LITERAL or op is C.NOT_LITERAL:
        want = chr(av)  # type: ignore[arg-type]
        forms = frozenset({want, want.lower(), want.upper()} if fold else {want})

        def test(c: str) -> bool:
            return c in forms or (fold and (c.lower() in forms or c.upper() in forms))

        return test if op is C.LITERAL else (lambda c: not test(c))
    if op is C.ANY:
        return (lambda c: True) if flags & C.SRE_FLAG_DOTALL else (lambda c: c != "\n")
    negate = False
    singles = set()
    checks: List[Callable[[str], bool]] = []
    for kind, value in av:  # type: ignore[attr-defined]
        if kind is C.NEGATE:
            negate = True
        elif kind is C.LITERAL:
            singles.add(chr(value))
        elif kind is C.RANGE:
            lo, hi = chr(value[0]), chr(value[1])
            checks.append(lambda c, lo=lo, hi=hi: lo <= c <= hi)
        elif kind is C.CATEGORY:
            checks.append(_CATEGORIES[value])
        else:
            raise RegexpError(f"uses {_op_name(kind)} in a character class, which Go's regexp does not have")

    def member(c: str) -> bool:
        return c in singles or any(check(c) for check in checks)

    if fold:
        inner = member
        member = lambda c: inner(c) or inner(c.lower()) or inner(c.upper())  # noqa: E731
    return (lambda c: not member(c)) if negate else member


def _at_text_start(text: str, i: int) -> bool:
    return i == 0


def _assertion(at: object, flags: int) -> Callable[[str, int], bool]:
    multiline = bool(flags & C.SRE_FLAG_MULTILINE)
    if at is C.AT_BEGINNING_STRING or (at is C.AT_BEGINNING and not multiline):
        return _at_text_start
    if at is C.AT_BEGINNING:
        return lambda text, i: i == 0 or text[i - 1] == "\n"
    if at is C.AT_END_STRING or (at is C.AT_END and not multiline):
        return lambda text, i: i == len(text)
    if at is C.AT_END:
        return lambda text, i: i == len(text) or text[i] == "\n"

    def word_boundary(text: str, i: int) -> bool:
        before = i > 0 and text[i - 1] in _WORD
        after = i < len(text) and text[i] in _WORD
        return before != after

    if at is C.AT_BOUNDARY:
        return word_boundary
    if at is C.AT_NON_BOUNDARY:
        return lambda text, i: not word_boundary(text, i)
    raise RegexpError(f"uses {_op_name(at)}, which Go's regexp does not have")


class Match:
    """The parts of `re.Match` that `var-transforms` templates use."""

    __slots__ = ("_caps", "_text", "_names")

    def __init__(self, caps: Sequence[Optional[int]], text: str, names: Dict[str, int]) -> None:
        self._caps = caps
        self._text = text
        self._names = names

    def start(self) -> int:
        return self._caps[0]  # type: ignore[return-value]

    def end(self) -> int:
        return self._caps[1]  # type: ignore[return-value]

    def group(self, key: object = 0) -> Optional[str]:
        index = self._names.get(key) if isinstance(key, str) else key  # type: ignore[call-overload]
        if not isinstance(index, int) or not 0 <= index < len(self._caps) // 2:
            raise IndexError("no such group")
        lo, hi = self._caps[2 * index], self._caps[2 * index + 1]
        return None if lo is None or hi is None else self._text[lo:hi]


class Regexp:
    """A compiled pattern."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        if len(pattern) > limits.MAX_REGEXP_CHARS:
            raise RegexpError(f"is longer than {limits.MAX_REGEXP_CHARS:,} characters")
        if _nesting(pattern) > limits.MAX_REGEXP_DEPTH:
            raise RegexpError(f"nests groups deeper than {limits.MAX_REGEXP_DEPTH} levels")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                parsed = sre_parse.parse(_translate(pattern))
        except (re.error, OverflowError, RecursionError) as e:
            raise RegexpError(f"is not a valid regular expression: {e}") from None
        state = parsed.state
        flags = state.flags
        _check_flags(flags)
        compiler = _Compiler()
        compiler.emit(_SAVE, 0)
        compiler.seq(parsed.data, flags)
        compiler.emit(_SAVE, 1)
        compiler.emit(_MATCH)
        self._prog: List[Inst] = [(op, arg, other) for op, arg, other in compiler.prog]  # type: ignore[misc]
        self._ncaps = 2 * state.groups
        # `^abc` (not multiline) can only match at 0: no thread starts elsewhere
        self._anchored = self._prog[1][0] == _ASSERT and self._prog[1][1] is _at_text_start
        self._names: Dict[str, int] = dict(state.groupdict)

    def search(self, text: str, start: int = 0, _mark: Optional[List[int]] = None) -> Optional[Match]:
        """The leftmost-first match at or after `start`, as Go's regexp finds it."""
        prog, ncaps, n = self._prog, self._ncaps, len(text)
        # per instruction, the last thread list it was added to (numbers grow across the searches of one `sub`)
        mark = [-1] * (len(prog) + 1) if _mark is None else _mark
        steps = 0

        def add(
            into: List[Tuple[int, Tuple[Optional[int], ...]]], gen: int, pc: int, caps: tuple, pos: int
        ) -> int:
            todo = [(pc, caps)]
            visited = 0
            while todo:
                pc, caps = todo.pop()
                if mark[pc] == gen:
                    continue
                mark[pc] = gen
                visited += 1
                op, arg, other = prog[pc]
                if op == _JMP:
                    todo.append((arg, caps))  # type: ignore[arg-type]
                elif op == _SPLIT:
                    todo.append((other, caps))
                    todo.append((arg, caps))  # type: ignore[arg-type]
                elif op == _SAVE:
                    todo.append((pc + 1, caps[:arg] + (pos,) + caps[arg + 1 :]))  # type: ignore[operator]
                elif op == _ASSERT:
                    if arg(text, pos):  # type: ignore[operator]
                        todo.append((pc + 1, caps))
                else:
                    into.append((pc, caps))
            return visited

        empty: Tuple[Optional[int], ...] = (None,) * ncaps
        matched: Optional[Tuple[Optional[int], ...]] = None
        current: List[Tuple[int, Tuple[Optional[int], ...]]] = []
        gen = mark[-1] + 1
        pos = start
        while True:
            if matched is None and (pos == 0 or not self._anchored):
                steps += add(current, gen, 0, empty, pos)
            if not current:
                break
            gen += 1
            following: List[Tuple[int, Tuple[Optional[int], ...]]] = []
            c = text[pos] if pos < n else None
            for pc, caps in current:
                steps += 1
                op, arg, _ = prog[pc]
                if op == _MATCH:
                    matched = caps
                    break  # threads after this one have lower priority
                if c is not None and arg(c):  # type: ignore[operator]
                    steps += add(following, gen, pc + 1, caps, pos + 1)
            if not limits.spend_regexp(steps):
                raise RegexpTooCostly(limits.REGEXP_TOO_COSTLY)
            steps = 0
            current = following
            if pos >= n:
                break
            pos += 1
        mark[-1] = gen
        return None if matched is None else Match(matched, text, self._names)

    def finditer(self, text: str) -> Iterator[Match]:
        """Successive matches as Go's `ReplaceAllString` visits them (an empty match right after a match is
        skipped)."""
        last_end = 0
        at = 0
        mark = [-1] * (len(self._prog) + 1)  # the last entry: the last thread list number used
        while at <= len(text):
            m = self.search(text, at, mark)
            if m is None:
                return
            if m.end() > last_end or m.start() == 0:
                yield m
            last_end = m.end()
            at = at + 1 if at + 1 > m.end() else m.end()

    def sub(self, repl: Callable[[Match], str], text: str) -> str:
        out: List[str] = []
        kept = 0
        for m in self.finditer(text):
            out.append(text[kept : m.start()])
            out.append(repl(m))
            kept = m.end()
        out.append(text[kept:])
        return "".join(out)


# Compiled programs, kept while small (Wolfi's largest has 34 instructions) and few: a long-lived process (pantsd)
# reads many YAMLs, and a hostile one must not fill its memory with programs.
_CACHE_SIZE = 1024
_CACHE_INSTRUCTIONS = 256
_cache: Dict[str, Regexp] = {}
_cache_lock = threading.Lock()


def compile(pattern: str) -> Regexp:  # noqa: A001 (the name re and Go's regexp use)
    """Compile an RE2 pattern (raises RegexpError). Every use counts its instructions against the caller's
    `limits.MAX_REGEXP_INSTRUCTIONS` budget, whether it was compiled now or remembered."""
    with _cache_lock:
        found = _cache.get(pattern)
    if found is None:
        found = Regexp(pattern)
        if len(found._prog) <= _CACHE_INSTRUCTIONS:
            with _cache_lock:
                if len(_cache) >= _CACHE_SIZE:
                    del _cache[next(iter(_cache))]  # the oldest
                _cache[pattern] = found
    if not limits.spend_regexp_program(len(found._prog)):
        raise RegexpTooCostly(limits.REGEXP_TOO_LARGE)
    return found
