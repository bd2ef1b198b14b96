"""Fuzzing the YAML compiler: whatever the document, `compile_text` returns a plan or raises a `MelangeError`
(never anything else), and `melange-bk compile` exits 0 with a plan or 2 with exactly one line on stderr (never a
traceback).

Documents are generated three ways: structured (mappings with melange's keys at the levels where melange expects
them, and random values of every YAML type, including `${{…}}` fragments, `..` paths, control characters and
built-in and missing pipeline names), random text, and structured documents with random text spliced in. Runs are
derandomized (the same examples on every run and machine, no example database), with bounded example counts.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any, Dict

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from melange_bk.cli.main import main
from melange_bk.config.pipelines import builtin_names
from melange_bk.errors import MelangeError
from melange_bk.graph.scan import scan_yaml
from melange_bk.plan.compile import compile_text

FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

# --- building blocks ---------------------------------------------------------------------------------------------

TRICKY = st.sampled_from(
    [
        "",
        " ",
        "..",
        "../../etc",
        "/etc/passwd",
        "a/../../b",
        "${{",
        "}}",
        "${{package.name}}",
        "${{package.version}}",
        "${{vars.x}}",
        "${{vars.${{vars.x}}}}",
        "${{inputs.missing}}",
        "${{range.key}}",
        "${{targets.destdir}}",
        "${{build.arch}} == 'x86_64'",
        "${{build.arch}} == 'x86_64' && (",
        "1.0",
        "0",
        "-1",
        "true",
        "x\ny",
        "\t",
        "a\0b",
        "\x1b[31m",
        "é",
        "\u2028",
        "a" * 300,
    ]
)
SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    TRICKY,
)
ANY = st.recursive(
    SCALAR,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=8), TRICKY), children, max_size=4),
    ),
    max_leaves=12,
)
PIPELINE_NAMES = st.one_of(
    st.sampled_from(
        builtin_names() + ("fetch", "git-checkout", "patch", "mine", "broken", "notutf8", "isdir")
    ),
    st.sampled_from(["../mine", "/etc/passwd", "a/../../mine", "autoconf/../mine", "a\\b", "a\0b", "x\ny"]),
    st.text(max_size=12),
)
INPUT_NAMES = st.sampled_from(
    [
        "uri",
        "expected-sha256",
        "expected-sha512",
        "expected-commit",
        "repository",
        "tag",
        "strip-components",
        "patches",
        "series",
        "package",
        "opts",
        "dir",
        "destination",
        "bogus",
    ]
)


def maybe(d: Dict[str, st.SearchStrategy]) -> st.SearchStrategy:  # type: ignore[type-arg]
    """A mapping with a random subset of `d`'s keys, sometimes with a random extra key."""
    return st.fixed_dictionaries({}, optional=d).flatmap(
        lambda m: st.one_of(
            st.just(m), st.dictionaries(st.text(max_size=6), ANY, max_size=1).map(lambda x: {**m, **x})
        )
    )


def value_or(strategy: st.SearchStrategy) -> st.SearchStrategy:  # type: ignore[type-arg]
    """Mostly the right shape, sometimes anything."""
    return st.one_of(strategy, strategy, strategy, ANY)


STEP = st.deferred(
    lambda: value_or(
        maybe(
            {
                "name": value_or(st.text(max_size=10)),
                "uses": value_or(PIPELINE_NAMES),
                "with": value_or(
                    st.dictionaries(
                        INPUT_NAMES, value_or(st.one_of(TRICKY, st.text(max_size=10))), max_size=4
                    )
                ),
                "runs": value_or(st.one_of(TRICKY, st.text(max_size=30))),
                "if": value_or(st.one_of(TRICKY, st.text(max_size=20))),
                "working-directory": value_or(TRICKY),
                "environment": value_or(st.dictionaries(st.text(max_size=6), SCALAR, max_size=3)),
                "needs": value_or(
                    maybe(
                        {"packages": value_or(st.lists(st.one_of(TRICKY, st.text(max_size=8)), max_size=3))}
                    )
                ),
                "pipeline": value_or(st.lists(STEP, max_size=2)),
                "assertions": value_or(maybe({"required-steps": value_or(st.integers(-2, 5))})),
            }
        )
    )
)
PIPELINE = value_or(st.lists(STEP, max_size=4))
NAME = value_or(
    st.one_of(st.sampled_from(["hello", "a", "x-dev", "${{package.name}}-doc", "../x", "a/b"]), TRICKY)
)
PACKAGE = value_or(
    maybe(
        {
            "name": NAME,
            "version": value_or(
                st.one_of(st.sampled_from(["1.0", "2.4.1", "1.0/../../x", "1 0", "${{vars.x}}"]), TRICKY)
            ),
            "epoch": value_or(st.integers(-3, 2**66)),
            "description": value_or(st.text(max_size=20)),
            "copyright": value_or(st.lists(maybe({"license": value_or(st.text(max_size=10))}), max_size=2)),
            "dependencies": value_or(
                maybe({"runtime": value_or(st.lists(st.text(max_size=8), max_size=3)), "provides": ANY})
            ),
            "options": ANY,
            "scriptlets": value_or(maybe({"post-install": value_or(st.text(max_size=10)), "trigger": ANY})),
            "target-architecture": value_or(
                st.lists(st.sampled_from(["all", "x86_64", "aarch64", "mips"]), max_size=2)
            ),
            "timeout": ANY,
            "resources": ANY,
        }
    )
)
DOCUMENT = st.fixed_dictionaries(
    {"package": PACKAGE},
    optional={
        "environment": value_or(
            maybe(
                {
                    "contents": value_or(
                        maybe(
                            {
                                "packages": value_or(st.lists(st.text(max_size=8), max_size=3)),
                                "repositories": value_or(st.lists(TRICKY, max_size=2)),
                                "keyring": value_or(st.lists(TRICKY, max_size=2)),
                            }
                        )
                    ),
                    "environment": value_or(st.dictionaries(st.text(max_size=6), SCALAR, max_size=3)),
                    "accounts": ANY,
                }
            )
        ),
        "pipeline": PIPELINE,
        "subpackages": value_or(
            st.lists(
                maybe(
                    {
                        "name": NAME,
                        "range": value_or(st.sampled_from(["r", "nope"])),
                        "pipeline": PIPELINE,
                        "description": ANY,
                    }
                ),
                max_size=3,
            )
        ),
        "vars": value_or(
            st.dictionaries(st.sampled_from(["x", "y", "${{x}}", ""]), value_or(TRICKY), max_size=3)
        ),
        "var-transforms": value_or(
            st.lists(
                maybe(
                    {
                        "from": TRICKY,
                        "match": value_or(st.sampled_from(["(", "a+", "[", "\\", "x"])),
                        "replace": TRICKY,
                        "to": TRICKY,
                    }
                ),
                max_size=2,
            )
        ),
        "data": value_or(st.lists(maybe({"name": value_or(st.just("r")), "items": ANY}), max_size=2)),
        "test": value_or(maybe({"environment": ANY, "pipeline": PIPELINE})),
        "update": ANY,
    },
)


def dump(doc: Any) -> str:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


# --- the pipeline dirs the compiler may read (a good one, a broken one, one not UTF-8, a directory) --------------


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    d = tmp_path_factory.mktemp("pipelines")
    (d / "mine.yaml").write_text("inputs:\n  dir:\n    default: .\nruns: make -C ${{inputs.dir}}\n")
    (d / "broken.yaml").write_text("runs: [unclosed\n")
    (d / "notutf8.yaml").write_bytes(b"runs: \xff\xfe\n")
    (d / "isdir.yaml").mkdir()
    return str(d)


def check_compile(text: str, pipeline_dir: str) -> None:
    for arch in ("x86_64", "aarch64"):
        try:
            compile_text("fuzz.yaml", text, arch=arch, pipeline_dirs=(pipeline_dir,))
        except MelangeError as e:
            assert "\n" not in str(e) and "\r" not in str(e), repr(str(e))


# --- the properties ------------------------------------------------------------------------------------------------


@FUZZ
@given(doc=DOCUMENT)
def test_structured_documents(pipeline_dir: str, doc: Dict[str, Any]) -> None:
    check_compile(dump(doc), pipeline_dir)


@FUZZ
@given(text=st.text(max_size=300))
def test_random_text(pipeline_dir: str, text: str) -> None:
    check_compile(text, pipeline_dir)


@FUZZ
@given(doc=DOCUMENT, data=st.data())
def test_spliced_documents(pipeline_dir: str, doc: Dict[str, Any], data: st.DataObject) -> None:
    """A generated document with random characters or YAML syntax spliced in, or a line cut out."""
    text = dump(doc)
    at = data.draw(st.integers(0, len(text)))
    piece = data.draw(
        st.one_of(
            st.text(max_size=10),
            st.sampled_from(
                [
                    "&a ",
                    "*a",
                    "*b",
                    "!!python/object:os.system ",
                    "!tag ",
                    "<<: ",
                    "? ",
                    "- ",
                    ": ",
                    "\t",
                    "'",
                    '"',
                    "{",
                    "[",
                    "|",
                    ">-",
                ]
            ),
        )
    )
    cut = data.draw(st.booleans())
    check_compile(text[:at] + ("" if cut else piece) + text[at + (len(piece) if cut else 0) :], pipeline_dir)


@settings(FUZZ, max_examples=100)
@given(doc=DOCUMENT)
def test_cli_never_prints_a_traceback(pipeline_dir: str, doc: Dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "melange.yaml")
        Path(path).write_text(dump(doc), encoding="utf-8")
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main(["compile", path, "--pipeline-dir", pipeline_dir])
    if code == 0:
        assert err.getvalue() == "" and out.getvalue().startswith("{")
    else:
        assert code == 2, err.getvalue()
        lines = err.getvalue().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"melange-bk: error: {path}"), err.getvalue()
        assert out.getvalue() == ""


# --- the worst cases, each once --------------------------------------------------------------------------------------

HEAD = "package:\n  name: a\n  version: '1'\n  epoch: 0\n"
LAUGHS = "".join(
    f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9 if i else ["lol"] * 9) + "]\n" for i in range(9)
)


@pytest.mark.parametrize(
    "text, message",
    [
        pytest.param("[" * 5000 + "]" * 5000, ":1: YAML nested deeper than 64 levels", id="deep-nesting"),
        pytest.param(
            HEAD + "vars:\n  x: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n",
            ":6: YAML nested deeper than 64 levels",
            id="deep-vars",
        ),
        pytest.param(LAUGHS + HEAD, "YAML aliases expand the document to more than", id="billion-laughs"),
        pytest.param(HEAD + "vars:\n  x: *nope\n", "invalid YAML", id="undefined-alias"),
        pytest.param(
            "!!python/object/apply:os.system ['touch /tmp/pwned']\n", "expected a mapping", id="python-tag"
        ),
        pytest.param(
            HEAD + 'pipeline:\n  - uses: "a\\nb"\n', 'invalid pipeline name "a\\nb"', id="newline-in-name"
        ),
        pytest.param(HEAD + 'pipeline:\n  - uses: "a\\0b"\n', "invalid pipeline name", id="nul-in-name"),
        pytest.param(HEAD + "pipeline:\n  - uses: notutf8\n", "not UTF-8", id="pipeline-not-utf8"),
        pytest.param(HEAD + "pipeline:\n  - uses: isdir\n", "cannot read", id="pipeline-is-a-directory"),
        pytest.param(HEAD + 'x: "\\x00"\n', "unknown field 'x'", id="nul-value"),
        pytest.param("package: \x00\n", "invalid YAML", id="nul-character"),
        pytest.param("package: \udcff\n", "not valid Unicode", id="lone-surrogate"),
        pytest.param(
            "package:\n  name: a\n  version: 1.0/../../../tmp/x\n  epoch: 0\n",
            "not a valid package version",
            id="version-path",
        ),
    ],
)
def test_worst_cases(pipeline_dir: str, text: str, message: str) -> None:
    with pytest.raises(MelangeError) as e:
        compile_text("fuzz.yaml", text, pipeline_dirs=(pipeline_dir,))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_fuzz_reaches_plans(pipeline_dir: str) -> None:
    """The structured strategy is not all errors: a minimal valid document compiles (guards the generators)."""
    plan = compile_text(
        "fuzz.yaml",
        dump({"package": {"name": "a", "version": "1.0", "epoch": 0}, "pipeline": [{"uses": "mine"}]}),
        pipeline_dirs=(pipeline_dir,),
    )
    assert plan.steps[0].runs == "make -C ."


# --- structure-aware hostile documents (issue 19): aliases, nested pipelines, var chains, ranges ---------------------
# Sized around the bounds of melange_bk.config.limits, so that examples fall on both sides of each. Whatever they
# are, the compiler and the graph scan return or raise a one-line MelangeError, within a time bound (the memory
# bound of each worst case is enforced in test_hostile.py, in a child process).

HOSTILE = settings(FUZZ, max_examples=40)
PER_EXAMPLE = 60.0  # seconds, for a loaded 2-core machine (a within-bounds example takes a few)


def check_bounded(text: str, pipeline_dir: str) -> None:
    start = time.monotonic()
    check_compile(text, pipeline_dir)
    try:
        scan_yaml("fuzz.yaml", text)
    except MelangeError as e:
        assert "\n" not in str(e), repr(str(e))
    assert time.monotonic() - start < PER_EXAMPLE


@st.composite
def alias_documents(draw: st.DrawFn) -> str:
    """Anchors that alias the level before, `fan` times, `levels` deep: in the pipeline, in a subpackage, in a
    kept-but-unread section, or in vars (where a collection is not allowed)."""
    levels, fan = draw(st.integers(1, 9)), draw(st.integers(1, 12))
    where = draw(st.sampled_from(["pipeline", "subpackage", "update", "vars"]))
    refs = [", ".join([f"*a{i - 1}"] * fan) for i in range(1, levels + 1)]
    if where in ("pipeline", "subpackage"):
        items = ["&a0 {runs: echo}"] + [f"&a{i + 1} {{pipeline: [{r}]}}" for i, r in enumerate(refs)]
        body = "".join(f"  - {item}\n" for item in items)
        if where == "subpackage":
            body = "subpackages:\n  - name: sub\n    pipeline:\n" + body.replace("  - ", "      - ")
        else:
            body = "pipeline:\n" + body
    elif where == "update":
        body = "update:\n  x0: &a0 [v]\n" + "".join(
            f"  x{i + 1}: &a{i + 1} [{r}]\n" for i, r in enumerate(refs)
        )
    else:
        body = "vars:\n  x0: &a0 v\n  x1: *a0\n  x2: &a1 [*a0]\n"
    return HEAD + body


@st.composite
def var_chains(draw: st.DrawFn) -> str:
    """Vars each made of references to earlier ones (sometimes to itself or a later one), used in a script."""
    n = draw(st.integers(1, 45))
    lines = ["vars:", "  v0: " + draw(st.sampled_from(["ab", "x" * 1000, "${{package.name}}"]))]
    for i in range(1, n):
        refs = draw(st.lists(st.integers(0, i + 1), min_size=1, max_size=3))
        lines.append(f"  v{i}: '" + "".join(f"${{{{vars.v{r}}}}}" for r in refs) + "'")
    uses = draw(st.integers(1, 300))
    return HEAD + "\n".join(lines) + "\npipeline:\n" + f"  - runs: echo ${{{{vars.v{n - 1}}}}}\n" * uses


@st.composite
def ranges(draw: st.DrawFn) -> str:
    items = draw(st.one_of(st.integers(0, 20), st.integers(990, 1_010)))
    subs = draw(st.integers(1, 3))
    steps = draw(st.integers(1, 60))
    name = draw(
        st.sampled_from(["${{package.name}}-${{range.key}}", "same", "${{range.value}}", "x${{vars.v}}"])
    )
    data = "data:\n  - name: r\n    items: {" + ", ".join(f"k{i}: v{i}" for i in range(items)) + "}\n"
    sub = f"  - range: r\n    name: {name}\n    pipeline:\n" + "      - runs: echo ${{range.key}}\n" * steps
    return (
        HEAD
        + "vars:\n  v: '"
        + "y" * draw(st.integers(0, 4000))
        + "'\n"
        + data
        + "subpackages:\n"
        + sub * subs
    )


@st.composite
def pipeline_graphs(draw: st.DrawFn) -> Dict[str, str]:
    """Pipeline files p0..pN whose steps use each other (cycles, chains and fan-outs, some behind `if:`)."""
    n = draw(st.integers(1, 40))
    files = {}
    for i in range(n):
        targets = draw(st.lists(st.integers(0, n), max_size=12))
        steps = [
            f"  - uses: p{t}\n" + ("    if: ${{build.arch}} == 'nope'\n" if t % 3 == 0 else "")
            for t in targets
        ]
        nested = draw(st.booleans())
        body = "".join(steps) or "  - runs: echo\n"
        files[f"p{i}"] = "pipeline:\n" + (
            "  - pipeline:\n" + body.replace("  - ", "      - ").replace("    if:", "        if:")
            if nested
            else body
        )
    return files


@HOSTILE
@given(text=alias_documents())
def test_alias_structures(pipeline_dir: str, text: str) -> None:
    check_bounded(text, pipeline_dir)


@HOSTILE
@given(text=var_chains())
def test_var_chains(pipeline_dir: str, text: str) -> None:
    check_bounded(text, pipeline_dir)


@settings(HOSTILE, max_examples=10)
@given(text=ranges())
def test_ranges(pipeline_dir: str, text: str) -> None:
    check_bounded(text, pipeline_dir)


@HOSTILE
@given(files=pipeline_graphs(), fan=st.integers(1, 5))
def test_nested_pipelines(files: Dict[str, str], fan: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name, body in files.items():
            Path(tmp, f"{name}.yaml").write_text(body, encoding="utf-8")
        check_bounded(HEAD + "pipeline:\n" + "  - uses: p0\n" * fan, tmp)
