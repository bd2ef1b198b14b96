"""Hostile YAML (issue 19): one `file:line: message` line, exit 2, no traceback, in bounded time and memory -- in
the compiler (`melange-bk compile`, with `--pipeline-dir`) and in the graph scan behind Pants' dependency
inference. Each case runs in a child process under an address-space limit (RLIMIT_AS) and a timeout, so a
regression fails the test (MemoryError, timeout) instead of exhausting the machine. The bounds themselves are in
`melange_bk.config.limits`.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
from pathlib import Path
from typing import Dict, Optional

import pytest

from melange_bk.config import limits

REPO = Path(__file__).resolve().parents[3]
MEMORY = 768 * 1024 * 1024  # address space of the child: Python and PyYAML need ~150 MiB of it
TIMEOUT = 30  # seconds, generous for a loaded 2-core machine: each case takes well under 1 s of CPU alone
HEAD = "package:\n  name: hostile\n  version: '1'\n  epoch: 0\n"  # 4 lines
SCAN = """
import sys
from melange_bk.errors import MelangeError
from melange_bk.graph.scan import scan_yaml
try:
    scan_yaml(sys.argv[1], open(sys.argv[1], encoding="utf-8").read())
except MelangeError as e:
    print(e, file=sys.stderr)
    sys.exit(e.exit_code)
"""


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def _exec(cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """python ARGS in `cwd`, under the address-space limit and the timeout."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "pants-plugins"))
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        timeout=TIMEOUT,
        preexec_fn=_limit,
        check=False,
    )


def _run(cwd: Path, *args: str) -> str:
    """Run python ARGS in `cwd` (bounded); assert exit 2 and one line on stderr; return that line."""
    proc = _exec(cwd, *args)
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 2, err[-3000:]
    assert "Traceback" not in err and proc.stdout == b"", err[-3000:]
    lines = err.splitlines()
    assert len(lines) == 1, err[-3000:]
    return lines[0]


def _tree(tmp_path: Path, yaml: str, pipelines: Optional[Dict[str, str]] = None) -> Path:
    (tmp_path / "melange.yaml").write_text(yaml, encoding="utf-8")
    for name, body in (pipelines or {}).items():
        (tmp_path / "pipelines").mkdir(exist_ok=True)
        (tmp_path / "pipelines" / f"{name}.yaml").write_text(body, encoding="utf-8")
    return tmp_path


def compile_error(tmp_path: Path) -> str:
    pipeline_dir = ["--pipeline-dir", "pipelines"] if (tmp_path / "pipelines").is_dir() else []
    line = _run(tmp_path, "-m", "melange_bk.cli", "compile", "melange.yaml", *pipeline_dir)
    assert line.startswith("melange-bk: error: "), line
    return line[len("melange-bk: error: ") :]


def scan_error(tmp_path: Path) -> str:
    return _run(tmp_path, "-c", SCAN, "melange.yaml")


def _n(value: int) -> str:
    return f"{value:,}"


# -- the rows -------------------------------------------------------------------------------------------------

VAR_CHAIN = (
    HEAD
    + "vars:\n  v0: ab\n"
    + "".join(f"  v{i}: ${{{{vars.v{i - 1}}}}}${{{{vars.v{i - 1}}}}}\n" for i in range(1, 41))
    + "pipeline:\n  - runs: echo ${{vars.v40}}\n"
)


def test_var_chain(tmp_path: Path) -> None:
    """40 vars each twice the one before (2^40 characters): v19 is 2^20 + ... past the bound, at its line."""
    _tree(tmp_path, VAR_CHAIN)
    too_long = f"substituted value is longer than {_n(limits.MAX_VALUE_CHARS)} characters"
    assert compile_error(tmp_path) == f"melange.yaml:26: vars.v20: {too_long}"
    assert (
        scan_error(tmp_path) == f"melange.yaml:26: vars.v20: {too_long}"
    )  # the scan resolves vars as the compiler does


ALIAS_BOMB = (
    HEAD
    + "pipeline:\n  - &p0 {runs: echo}\n"
    + "".join(f"  - &p{i} {{pipeline: [{', '.join([f'*p{i - 1}'] * 10)}]}}\n" for i in range(1, 9))
)


def test_alias_bomb(tmp_path: Path) -> None:
    """8 levels of 10 aliases in the pipeline (10^8 steps): refused while composing, where the count is crossed."""
    _tree(tmp_path, ALIAS_BOMB)
    message = (
        f"melange.yaml:11: YAML aliases expand the document to more than {_n(limits.MAX_YAML_NODES)} nodes"
    )
    assert compile_error(tmp_path) == message
    assert scan_error(tmp_path) == message


def test_uses_itself(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        HEAD + "pipeline:\n  - uses: loop\n",
        {"loop": "pipeline:\n  - runs: echo\n  - uses: loop\n"},
    )
    assert compile_error(tmp_path) == "pipelines/loop.yaml:3: uses: cycle loop -> loop"


def test_uses_cycle_through_three_pipelines(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        HEAD + "pipeline:\n  - uses: a\n",
        {"a": "pipeline:\n  - uses: b\n", "b": "pipeline:\n  - uses: c\n", "c": "pipeline:\n  - uses: b\n"},
    )
    assert compile_error(tmp_path) == "pipelines/c.yaml:2: uses: cycle b -> c -> b"


def _range(items: int, per_line: bool = False) -> str:
    body = "".join(f"      {i}: x\n" for i in range(items)) if per_line else ""
    flow = "" if per_line else " {" + ", ".join(f"{i}: x" for i in range(items)) + "}"
    return (
        HEAD
        + f"data:\n  - name: r\n    items:{flow}\n{body}"
        + "subpackages:\n  - range: r\n    name: ${{package.name}}-${{range.key}}\n"
        + "    pipeline:\n      - runs: echo ${{range.value}}\n"
    )


def test_range_over_200000_items(tmp_path: Path) -> None:
    """The issue's row: 200,000 items do not fit in a YAML file within the size bound (nor 400,000 nodes in the node
    bound: see the next test)."""
    _tree(tmp_path, _range(200_000))
    message = f"melange.yaml:7: YAML file is larger than {_n(limits.MAX_YAML_CHARS)} characters"
    assert compile_error(tmp_path) == message
    assert scan_error(tmp_path) == message


def test_range_data_block_with_too_many_nodes(tmp_path: Path) -> None:
    _tree(tmp_path, _range(limits.MAX_YAML_NODES // 2))
    message = f"melange.yaml:7: YAML document has more than {_n(limits.MAX_YAML_NODES)} nodes"
    assert compile_error(tmp_path) == message
    assert scan_error(tmp_path) == message


def test_range_makes_too_many_subpackages(tmp_path: Path) -> None:
    items = limits.MAX_SUBPACKAGES + 1
    _tree(tmp_path, _range(items))
    message = f"melange.yaml:9: range: makes more than {_n(limits.MAX_SUBPACKAGES)} subpackages ({_n(items)} items here)"
    assert compile_error(tmp_path) == message
    assert scan_error(tmp_path) == message


def test_range_expands_a_large_subpackage(tmp_path: Path) -> None:
    """Few items, each a copy of a subpackage of many nodes."""
    steps = "".join(f"      - runs: echo {i}\n" for i in range(limits.MAX_YAML_NODES // 250))
    _tree(
        tmp_path, _range(limits.MAX_SUBPACKAGES // 2).replace("      - runs: echo ${{range.value}}\n", steps)
    )
    message = f"melange.yaml:9: range: expands the document to more than {_n(limits.MAX_YAML_NODES)} nodes"
    assert compile_error(tmp_path).startswith(message)
    assert scan_error(tmp_path).startswith(message)


# -- the next ones: deep nesting, huge scalars, many tiny files, many values -----------------------------------------


def test_deep_flow_nesting(tmp_path: Path) -> None:
    """100,000 nested flow mappings (libyaml's composer, recursive in C, crashed the process on this)."""
    _tree(tmp_path, HEAD + "update:\n  x: " + "{a: " * 100_000 + "1" + "}" * 100_000 + "\n")
    message = f"melange.yaml:6: YAML nested deeper than {limits.MAX_YAML_DEPTH} levels"
    assert compile_error(tmp_path) == message
    assert scan_error(tmp_path) == message


def test_deep_block_nesting(tmp_path: Path) -> None:
    """1,000 nested block mappings (a RecursionError in the compiler)."""
    _tree(
        tmp_path,
        HEAD + "update:\n" + "".join(" " * (i + 1) + "a:\n" for i in range(1000)) + " " * 1001 + "b: 1\n",
    )
    message = (
        f"melange.yaml:{5 + limits.MAX_YAML_DEPTH}: YAML nested deeper than {limits.MAX_YAML_DEPTH} levels"
    )
    assert compile_error(tmp_path) == message
    assert scan_error(tmp_path) == message


def test_deep_nesting_through_an_alias(tmp_path: Path) -> None:
    """Each level shallow, the alias puts one deep structure inside another."""
    half = limits.MAX_YAML_DEPTH // 2 + 1
    deep = "[" * half + "]" * half
    _tree(tmp_path, HEAD + f"update:\n  a: &d {deep}\n  b: {'[' * half}*d{']' * half}\n")
    message = f"melange.yaml:7: YAML nested deeper than {limits.MAX_YAML_DEPTH} levels"
    assert compile_error(tmp_path) == message


def test_huge_scalar(tmp_path: Path) -> None:
    """A 64 MiB script: refused by size, read no further than the bound."""
    text = HEAD + "pipeline:\n  - runs: |\n" + "      echo x\n" * (64 * 1024 * 1024 // 13)
    _tree(tmp_path, text)
    line = text[: limits.MAX_YAML_CHARS].count("\n") + 1  # the line that goes past the bound
    message = f"melange.yaml:{line}: YAML file is larger than {_n(limits.MAX_YAML_CHARS)} characters"
    assert compile_error(tmp_path) == message
    assert scan_error(tmp_path) == message


def test_many_tiny_pipeline_files_in_a_chain(tmp_path: Path) -> None:
    """10,000 pipeline files, each using the next (a RecursionError in the compiler)."""
    pipelines = {f"c{i}": f"pipeline:\n  - uses: c{i + 1}\n" for i in range(10_000)}
    _tree(tmp_path, HEAD + "pipeline:\n  - uses: c0\n", {**pipelines, "c10000": "runs: echo\n"})
    depth = limits.MAX_USES_DEPTH
    assert compile_error(tmp_path) == (
        f"pipelines/c{depth - 1}.yaml:2: uses: pipelines nested deeper than {depth} levels (c0 -> ... -> c{depth})"
    )


def test_many_tiny_pipeline_files_fanning_out(tmp_path: Path) -> None:
    """8 tiny pipeline files, each using the one before 10 times (10^8 steps, no alias)."""
    pipelines = {f"f{i}": "pipeline:\n" + f"  - uses: f{i - 1}\n" * 10 for i in range(1, 9)}
    _tree(tmp_path, HEAD + "pipeline:\n  - uses: f8\n", {**pipelines, "f0": "runs: echo\n"})
    assert compile_error(tmp_path) == (
        f"pipelines/f5.yaml:2: uses: pipeline f4 expands to more than {_n(limits.MAX_STEPS)} steps"
    )


def test_many_steps_in_the_file(tmp_path: Path) -> None:
    """Each step's pipeline within the bound, all of them together not."""
    per = limits.MAX_STEPS // 10
    _tree(
        tmp_path,
        HEAD + "pipeline:\n" + "  - uses: big\n" * 11,
        {"big": "pipeline:\n" + "  - runs: echo\n" * (per - 1)},
    )
    assert compile_error(tmp_path) == (
        f"melange.yaml:16: pipeline step 11: the pipelines expand to more than {_n(limits.MAX_STEPS)} steps"
    )


def test_var_transform_that_multiplies(tmp_path: Path) -> None:
    """An empty match at each of 1,000 characters, each replaced by 2,000 characters: 2 MB from a short file."""
    _tree(
        tmp_path,
        HEAD
        + "vars:\n  v: '"
        + "x" * 1000
        + "'\nvar-transforms:\n  - from: ${{vars.v}}\n    match: ''\n    replace: '"
        + "y" * 2000
        + "'\n    to: w\n",
    )
    assert compile_error(tmp_path) == (
        f"melange.yaml:8: var-transforms[0]: substituted value is longer than {_n(limits.MAX_VALUE_CHARS)} characters"
    )


def _var_transform(value: str, match: str) -> str:
    return (
        HEAD
        + f"vars:\n  v: '{value}'\nvar-transforms:\n  - from: ${{{{vars.v}}}}\n    match: '{match}'\n"
        + ("    replace: x\n    to: w\npipeline:\n  - runs: echo ${{vars.w}}\n")
    )


def test_var_transform_that_backtracks(tmp_path: Path) -> None:
    """`^(a+)+$` against 40 a's and a b: 2^40 steps of Python's backtracking `re` (the compiler and the graph scan
    ran for hours); Go's regexp, and ours, never backtrack: no match, the value is kept, exit 0 at once."""
    _tree(tmp_path, _var_transform("a" * 40 + "b", "^(a+)+$"))
    scanned = _exec(tmp_path, "-c", SCAN, "melange.yaml")
    assert scanned.returncode == 0, scanned.stderr.decode()[-3000:]
    compiled = _exec(tmp_path, "-m", "melange_bk.cli", "compile", "melange.yaml")
    assert compiled.returncode == 0, compiled.stderr.decode()[-3000:]
    assert b'"w": "' + b"a" * 40 + b'b"' in compiled.stdout


def test_var_transform_that_takes_too_many_steps(tmp_path: Path) -> None:
    """Linear time is still a long value times a long program: the regexp machine's steps are bounded per file."""
    _tree(tmp_path, _var_transform("1" * 500_000, r"\d+\d+\d+\d+z"))
    message = f"melange.yaml:8: var-transforms[0]: {limits.REGEXP_TOO_COSTLY}"
    assert compile_error(tmp_path) == message
    assert scan_error(tmp_path) == message


def test_var_transforms_with_many_large_programs(tmp_path: Path) -> None:
    """Each pattern is within the bound; the programs of all of them are not (time to compile them, memory)."""
    body = "".join(
        f"  - from: ${{{{vars.v}}}}\n    match: '{i}([a-z][a-z][a-z][a-z][a-z][a-z][a-z]){{600}}'\n"
        f"    replace: x\n    to: w{i}\n"
        for i in range(50)
    )
    _tree(tmp_path, HEAD + "vars:\n  v: a\nvar-transforms:\n" + body)
    message = f"melange.yaml:12: var-transforms[1]: {limits.REGEXP_TOO_LARGE}"
    assert compile_error(tmp_path) == message
    assert scan_error(tmp_path) == message


def test_var_transform_that_go_refuses(tmp_path: Path) -> None:
    _tree(tmp_path, _var_transform("aa", r"(a)\1"))
    message = "melange.yaml:8: var-transforms[0].match: '(a)\\\\1' " + (
        "uses a backreference, which Go's regexp (RE2) does not have"
    )
    assert compile_error(tmp_path) == message
    assert scan_error(tmp_path) == message


def test_deeply_nested_condition(tmp_path: Path) -> None:
    """10,000 parentheses in an `if:` (the recursive-descent parser hit Python's recursion limit: a traceback)."""
    depth = 5000
    _tree(
        tmp_path,
        HEAD + "pipeline:\n  - if: " + "(" * depth + "'a' == 'a'" + ")" * depth + "\n    runs: echo\n",
    )
    message = compile_error(tmp_path)
    assert message == (
        "melange.yaml:6: pipeline step 1: bad if: condition "
        + repr("(" * 80)
        + f"... (10,010 characters): parentheses nested deeper than {limits.MAX_CONDITION_DEPTH} levels"
        + f" at position {limits.MAX_CONDITION_DEPTH}"
    )


def test_a_huge_value_is_quoted_short(tmp_path: Path) -> None:
    """An error that quotes a 500,000-character value quotes its first 80 characters and says how long it is."""
    _tree(tmp_path, "package:\n  name: '" + "x" * 500_000 + "/'\n  version: '1'\n  epoch: 0\n")
    assert compile_error(tmp_path) == (
        "melange.yaml:2: package.name "
        + repr("x" * 80)
        + "... (500,001 characters) is not a valid package name"
    )


def test_many_values_each_within_the_bound(tmp_path: Path) -> None:
    """A 512 KiB var used by 200 steps: each value is allowed, their sum is not."""
    chain = "".join(f"  v{i}: ${{{{vars.v{i - 1}}}}}${{{{vars.v{i - 1}}}}}\n" for i in range(1, 20))
    steps = "  - runs: ${{vars.v19}}\n" * 200
    _tree(tmp_path, HEAD + "vars:\n  v0: a\n" + chain + "pipeline:\n" + steps)
    message = compile_error(tmp_path)
    found = re.fullmatch(r"melange\.yaml:(\d+): pipeline\[(\d+)\]\.runs: (.*)", message)
    assert found and int(found[1]) == 27 + int(found[2]), message  # pipeline[0] is on line 27
    # the vars (1 MiB in all) and the steps before this one: 64 MiB
    assert int(found[2]) == (limits.MAX_SUBSTITUTED_CHARS - 1024 * 1024) // (512 * 1024), message
    assert (
        found[3] == f"substitutions in this file make more than {_n(limits.MAX_SUBSTITUTED_CHARS)} characters"
    )


def test_many_names_each_within_the_bound_in_the_graph_scan(tmp_path: Path) -> None:
    chain = "".join(f"  v{i}: ${{{{vars.v{i - 1}}}}}${{{{vars.v{i - 1}}}}}\n" for i in range(1, 20))
    text = _range(500).replace("${{package.name}}-${{range.key}}", "${{vars.v19}}${{range.key}}")
    _tree(tmp_path, text.replace("data:\n", "vars:\n  v0: a\n" + chain + "data:\n"))
    assert scan_error(tmp_path) == (
        f"melange.yaml:30: substitutions in this file make more than {_n(limits.MAX_SUBSTITUTED_CHARS)} characters"
    )


@pytest.mark.parametrize("cut", [0, 1])
def test_bounds_are_not_off_by_one(tmp_path: Path, cut: int) -> None:
    """At the bound a document is fine; one more and it is refused (the checks count what the bound says)."""
    from melange_bk.config.yamlsrc import compose
    from melange_bk.errors import ConfigError

    depth = limits.MAX_YAML_DEPTH - 1 + cut  # the top-level mapping is one level
    text = "a: " + "[" * depth + "]" * depth + "\n"
    if cut:
        with pytest.raises(ConfigError, match="nested deeper"):
            compose("x.yaml", text)
    else:
        compose("x.yaml", text)
