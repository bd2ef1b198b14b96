from __future__ import annotations

import pytest

from melange_bk.config import cond

VARS = {"build.arch": "x86_64", "inputs.flag": "true", "empty": ""}


def ev(text: str) -> bool:
    return cond.evaluate(cond.parse(text), VARS.__getitem__)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("'a' == 'a'", True),
        ('"a" != "a"', False),
        ("${{build.arch}} == 'x86_64'", True),
        ("${{ build.arch }} != 'aarch64'", True),
        ("'x' == 'y' || 'a' == 'a'", True),
        ("('a' == 'a') && ('b' == 'c')", False),
        ("${{empty}} == ''", True),
        ("'it\\'s' == \"it's\"", True),
        ("'${{build.arch}}-1' == 'x86_64-1'", True),
    ],
)
def test_evaluate(text: str, expected: bool) -> None:
    assert ev(text) is expected


def test_and_or_have_equal_precedence_left_to_right() -> None:
    # With C precedence this is T || (F && F) = True; melange folds left to right: (T || F) && F = False.
    assert ev("'a' == 'a' || 'a' == 'b' && 'a' == 'b'") is False
    # and (F && F) || T = True either way
    assert ev("'a' == 'b' && 'a' == 'b' || 'a' == 'a'") is True
    assert ev("'a' == 'a' || ('a' == 'b' && 'a' == 'b')") is True


@pytest.mark.parametrize(
    "text",
    [
        "'a' = 'a'",
        "'a' == ",
        "('a' == 'a'",
        "'a' == 'a')",
        "a == 'a'",
        "'a == 'a'",
        "${{}} == 'a'",
        "'a' == 'a' &&",
    ],
)
def test_syntax_errors(text: str) -> None:
    with pytest.raises(cond.ConditionError):
        cond.parse(text)


def test_undefined_variable_is_reported_by_lookup() -> None:
    with pytest.raises(KeyError):
        ev("${{nope}} == 'a'")


def test_nesting_bound() -> None:
    """MAX_CONDITION_DEPTH parentheses are fine, one more is an error (not a RecursionError further on)."""
    from melange_bk.config import limits

    depth = limits.MAX_CONDITION_DEPTH
    assert ev("(" * depth + "'a' == 'a'" + ")" * depth)
    with pytest.raises(cond.ConditionError, match=f"nested deeper than {depth} levels"):
        cond.parse("(" * (depth + 1) + "'a' == 'a'" + ")" * (depth + 1))
