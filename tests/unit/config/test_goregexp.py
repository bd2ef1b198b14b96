"""config/goregexp.py: Go's regexp semantics for var-transforms, in linear time, within the bounds of `limits`."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from melange_bk.config import goregexp, limits
from melange_bk.config.transforms import replace_all


@pytest.mark.parametrize(
    "pattern, source, template, expected",
    [
        # templates: $1, ${1}, $name, ${name}, $$; `$1x` is the (missing) group named "1x"
        (r"^(\d+\.\d+)\.\d+$", "1.15.3", "$1", "1.15"),
        (r"^(\d+\.\d+)\.\d+$", "1.15.3", "${1}x", "1.15x"),
        (r"^(\d+)\.(\d+)$", "3.12", "$2$1", "123"),
        (r"^(\d+)\.(\d+)$", "3.12", "$1x", ""),
        (r"(?P<maj>\d+)\.(\d+)", "3.12", "${maj}-$$", "3-$"),
        (r"\.", "1.2.3", "_", "1_2_3"),
        (r"^ruby(\d\.\d+)-.*", "ruby3.3-sigdump", "$1", "3.3"),
        (r"a", "a", "$", "$"),
        # the examples of Go's regexp.ReplaceAllString documentation
        (r"a(x*)b", "-ab-axxb-", "T", "-T-T-"),
        (r"a(x*)b", "-ab-axxb-", "$1", "--xx-"),
        (r"a(x*)b", "-ab-axxb-", "$1W", "---"),
        (r"a(x*)b", "-ab-axxb-", "${1}W", "-W-xxW-"),
        (r"a(?P<X>x*)b", "-ab-axxb-", "${X}W", "-W-xxW-"),
        # an empty match right after a match is skipped (Python's re.sub replaces it too: 3.14tt)
        (r"(.*)", "3.14", "${1}t", "3.14t"),
        (r"x*", "abxd", "-", "-a-b-d-"),
        # `$` is the end of the text, not also before a final newline; (?m) makes it a line end
        (r"a$", "a\n", "X", "a\n"),
        (r"(?m)a$", "a\nba", "X", "X\nbX"),
        # \d, \s, \w and \b are ASCII
        (r"\d+", "1\u0662\u0663", "#", "#\u0662\u0663"),
        (r"\w+", "é-ab", "W", "é-W"),
        (r"\bab\b", "ab abc", "X", "X abc"),
        # RE2 spellings: named groups, \z, POSIX classes
        (r"(?<maj>\d+)\.\d+\z", "3.12", "$maj", "3"),
        (r"[[:digit:]]+", "v10", "N", "vN"),
        # leftmost-first, like Go (and Perl), not leftmost-longest
        (r"a|ab", "ab", "[$0]", "[a]b"),
        (r"(a|ab)(c|bcd)(d*)", "abcd", "$1,$2,$3", "a,bcd,"),
        # lazy repeats, counted repeats, case folding, dot and newline
        (r"a+?", "aaa", "x", "xxx"),
        (r"(a{1,2}){2}", "aaaaa", "<$1>", "<aa>a"),
        (r"(?i)ab", "xaBy", "_", "x_y"),
        (r".", "a\nb", "_", "_\n_"),
        (r"(?s).", "a\nb", "_", "___"),
        # an empty iteration of a star records its group, as Go's (x+)? compilation does
        (r"(a*)*", "b", "<$1>", "<>b<>"),
    ],
)
def test_go_semantics(pattern: str, source: str, template: str, expected: str) -> None:
    assert replace_all(pattern, source, template) == expected


@pytest.mark.parametrize(
    "pattern, message",
    [
        (r"(a)\1", "uses a backreference, which Go's regexp (RE2) does not have"),
        (r"a(?=b)", "uses a look-ahead or look-behind, which Go's regexp (RE2) does not have"),
        (r"(?<!a)b", "uses a negative look-ahead or look-behind, which Go's regexp (RE2) does not have"),
        (r"a{1001}", "repeat count 1,001 is larger than 1,000"),
        (r"(?x)a b", "uses a flag other than i, m and s"),
        (r"(?a:\d)", "uses a flag other than i, m and s"),
        ("(" * 33 + ")" * 33, f"nests groups deeper than {limits.MAX_REGEXP_DEPTH} levels"),
        (r"((a{1000}){1000})", f"compiles to more than {limits.MAX_REGEXP_INSTRUCTIONS:,} instructions"),
        ("a" * (limits.MAX_REGEXP_CHARS + 1), f"is longer than {limits.MAX_REGEXP_CHARS:,} characters"),
        (r"(a", "is not a valid regular expression: missing ), unterminated subpattern at position 0"),
    ],
)
def test_refused(pattern: str, message: str) -> None:
    with pytest.raises(goregexp.RegexpError) as e:
        goregexp.compile(pattern)
    assert str(e.value) == message


@limits.substitution_budget
def _steps(pattern: str, source: str) -> int:
    """The regexp machine's steps for one replace_all (read from the file's budget)."""
    replace_all(pattern, source, "x")
    return limits._substituted.get()[1]  # type: ignore[index]


@pytest.mark.parametrize("pattern, text", [(r"^(a+)+$", "a" * 40 + "b"), (r"(x+x+)+y", "x" * 5000)])
def test_no_backtracking_blowup(pattern: str, text: str) -> None:
    """`^(a+)+$` against 40 a's and a b backtracks 2^40 times in Python's re; here every position of the text
    costs at most every instruction once per thread list (linear), counted, not timed."""
    program = goregexp.compile(pattern)
    assert replace_all(pattern, text, "x") == text  # no match: the value is kept
    assert 0 < _steps(pattern, text) <= 2 * (len(text) + 1) * len(program._prog)


@limits.substitution_budget
def _within_budget(pattern: str, source: str) -> str:
    return replace_all(pattern, source, "")


def test_step_budget() -> None:
    """Linear is still a large value times a large program: the steps of one file's var-transforms are bounded."""
    with pytest.raises(goregexp.RegexpTooCostly) as e:
        _within_budget(r"\d+\d+\d+\d+z", "1" * 300_000)
    assert str(e.value) == limits.REGEXP_TOO_COSTLY
    assert _within_budget(r"^(\d+)\.", "1" * 100_000 + ".") == ""  # an anchored pattern starts once


# -- the same first match as Python's re where Go and Python agree: no empty iterations, no `$`, ASCII text -----

_ATOM = st.sampled_from(["a", "b", "[ab]", "[^a]", ".", r"\d", "ab"])


def _pattern(depth: int = 2) -> st.SearchStrategy[str]:
    atom = _ATOM if depth == 0 else st.one_of(_ATOM, _pattern(depth - 1).map(lambda p: f"({p})"))
    piece = st.tuples(atom, st.sampled_from(["", "*", "+", "?", "*?", "+?", "{1,2}", "{2}"])).map("".join)
    branch = st.lists(piece, min_size=1, max_size=3).map("".join)
    return st.lists(branch, min_size=1, max_size=2).map("|".join)


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(_pattern(), st.text(alphabet="ab1", max_size=8))
def test_first_match_agrees_with_python(pattern: str, text: str) -> None:
    ours = goregexp.compile(pattern)
    theirs = re.compile(pattern)
    m, n = ours.search(text), theirs.search(text)
    assert (m is None) == (n is None), (pattern, text)
    if m is not None and n is not None:
        assert (m.start(), m.end()) == n.span(), (pattern, text)
        assert m.group(0) == n.group(0)


@settings(max_examples=1000, deadline=None, derandomize=True, database=None)
@given(
    st.text(alphabet="ab1()[]|*+?{}^$\\.,-:=<>!?PdswbzAiBmsx", max_size=24),
    st.text(alphabet="ab1 \n", max_size=12),
)
def test_any_pattern_compiles_or_is_refused(pattern: str, text: str) -> None:
    """Whatever the pattern: a RegexpError, or a program whose matches are within the text."""
    try:
        program = goregexp.compile(pattern)
    except goregexp.RegexpError:
        return
    for m in program.finditer(text):
        assert 0 <= m.start() <= m.end() <= len(text)
        assert m.group(0) == text[m.start() : m.end()]
