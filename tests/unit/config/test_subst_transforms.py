from __future__ import annotations

import pytest

from melange_bk.config.subst import SubstitutionError, UndefinedVariable, references, substitute
from melange_bk.config.transforms import go_expand, to_python_template


def test_strict_and_partial() -> None:
    m = {"package.name": "foo", "vars.x": "1"}
    assert substitute("${{package.name}}-${{ vars.x }}", m, strict=True) == "foo-1"
    assert substitute("a ${{targets.destdir}} b", m, strict=False) == "a ${{targets.destdir}} b"
    with pytest.raises(UndefinedVariable) as e:
        substitute("x\n${{targets.nope}}", m, strict=True)
    assert e.value.name == "targets.nope" and e.value.offset == 2
    with pytest.raises(SubstitutionError):
        substitute("${{package.name", m, strict=True)
    assert substitute("no vars $HOME ${x}", m, strict=True) == "no vars $HOME ${x}"
    assert references("${{a}} ${{ b.c }} ${{") == ["a", "b.c"]


def test_python_template_translation() -> None:
    assert to_python_template("$1-${2}-$$") == r"\g<1>-\g<2>-$"
    import re

    m = re.match(r"(a)(b)", "ab")
    assert m is not None and go_expand("${2}$1", m) == "ba"
