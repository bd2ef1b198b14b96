"""melange's `if:` expression language: a tokenizer and a recursive-descent parser (never `eval`).

    expr       := atom (('&&' | '||') atom)*      -- equal precedence, left to right, as melange
    atom       := '(' expr ')' | value ('==' | '!=') value
    value      := 'single' | "double" | ${{name}}

String literals understand `\\`, `\'`, `\"`, `\n`, `\t`; other escapes are kept as written. `${{name}}` outside
quotes is a variable; inside quotes it is substituted as text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Tuple, Union

from melange_bk.config import limits
from melange_bk.config.subst import _VAR_CHARS, substitute
from melange_bk.config.yamlsrc import quoted


class ConditionError(Exception):
    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} at position {position}")
        self.position = position


@dataclass(frozen=True)
class Literal:
    text: str


@dataclass(frozen=True)
class Var:
    name: str


Value = Union[Literal, Var]


@dataclass(frozen=True)
class Compare:
    op: str  # "==" or "!="
    left: Value
    right: Value


@dataclass(frozen=True)
class Chain:
    first: Expr
    rest: Tuple[Tuple[str, Expr], ...]  # (op, expr) with op "&&" or "||"


Expr = Union[Compare, Chain]

_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t"}


def tokenize(text: str) -> List[Tuple[str, str, int]]:
    """Tokens (kind, value, position); kinds: str, var, op, (, )."""
    tokens: List[Tuple[str, str, int]] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            i += 1
        elif c in "'\"":
            start = i
            i += 1
            buf = []
            while i < n and text[i] != c:
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                    buf.append(_ESCAPES.get(text[i], "\\" + text[i]))
                else:
                    buf.append(text[i])
                i += 1
            if i >= n:
                raise ConditionError("unterminated string literal", start)
            i += 1
            tokens.append(("str", "".join(buf), start))
        elif text.startswith("${{", i):
            start = i
            i += 3
            while i < n and text[i] in " \t":
                i += 1
            name_start = i
            while i < n and text[i] in _VAR_CHARS:
                i += 1
            name = text[name_start:i]
            while i < n and text[i] in " \t":
                i += 1
            if not name:
                raise ConditionError("empty variable name", start)
            if not text.startswith("}}", i):
                raise ConditionError(f"unterminated variable reference {quoted(name)}", start)
            i += 2
            tokens.append(("var", name, start))
        elif text.startswith(("==", "!=", "&&", "||"), i):
            tokens.append(("op", text[i : i + 2], i))
            i += 2
        elif c in "()":
            tokens.append((c, c, i))
            i += 1
        else:
            raise ConditionError(f"unexpected character {c!r}", i)
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0  # parentheses open at this point

    def _peek(self) -> Tuple[str, str, int]:
        if self.i < len(self.tokens):
            return self.tokens[self.i]
        return ("end", "", len(self.text))

    def _next(self) -> Tuple[str, str, int]:
        tok = self._peek()
        self.i += 1
        return tok

    def parse(self) -> Expr:
        expr = self._expr()
        kind, value, pos = self._peek()
        if kind != "end":
            raise ConditionError(f"unexpected {quoted(value)}", pos)
        return expr

    def _expr(self) -> Expr:
        first = self._atom()
        rest = []
        while True:
            kind, value, _ = self._peek()
            if kind == "op" and value in ("&&", "||"):
                self._next()
                rest.append((value, self._atom()))
            else:
                break
        return Chain(first, tuple(rest)) if rest else first

    def _atom(self) -> Expr:
        kind, _, pos = self._peek()
        if kind == "(":
            self._next()
            self.depth += 1
            if self.depth > limits.MAX_CONDITION_DEPTH:
                raise ConditionError(
                    f"parentheses nested deeper than {limits.MAX_CONDITION_DEPTH} levels", pos
                )
            inner = self._expr()
            kind, value, pos = self._next()
            if kind != ")":
                raise ConditionError("expected ')'", pos)
            self.depth -= 1
            return inner
        left = self._value()
        kind, op, pos = self._next()
        if kind != "op" or op not in ("==", "!="):
            raise ConditionError("expected '==' or '!='", pos)
        return Compare(op, left, self._value())

    def _value(self) -> Value:
        kind, value, pos = self._next()
        if kind == "str":
            return Literal(value)
        if kind == "var":
            return Var(value)
        if kind == "end":
            raise ConditionError("unexpected end of condition", pos)
        raise ConditionError(f"expected a quoted string or ${{{{...}}}}, got {quoted(value)}", pos)


def parse(text: str) -> Expr:
    """Parse a condition; raises ConditionError (with the position) for bad syntax."""
    return _Parser(text).parse()


def evaluate(expr: Expr, lookup: Callable[[str], str]) -> bool:
    """`lookup(name)` resolves variables (it may raise for an undefined one)."""
    if isinstance(expr, Compare):
        left = _value(expr.left, lookup)
        right = _value(expr.right, lookup)
        return (left == right) if expr.op == "==" else (left != right)
    result = evaluate(expr.first, lookup)
    for op, rhs in expr.rest:
        # melange evaluates both sides and folds left to right, with no precedence between && and ||
        value = evaluate(rhs, lookup)
        result = (result and value) if op == "&&" else (result or value)
    return result


def _value(value: Value, lookup: Callable[[str], str]) -> str:
    if isinstance(value, Var):
        return lookup(value.name)
    if "${{" in value.text:
        return substitute(value.text, {}, strict=True, fallback=lookup)
    return value.text
