"""config/canonical.py: what a package embeds as `.melange.yaml` ignores comments, key order and formatting, keeps
every value (and its type), and reads back as the same document."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from melange_bk.config.canonical import canonical_yaml
from melange_bk.errors import ConfigError

LIBGREET = Path(__file__).resolve().parents[3] / "packages" / "libgreet" / "melange.yaml"

ORIGINAL = """\
package:
  name: demo
  version: "3.10"
  epoch: 0
  description: a demo
environment:
  contents:
    packages: [build-base, busybox]
pipeline:
  - name: build
    runs: |
      # a comment inside the script is part of the script
      make
  - uses: strip
"""

REFORMATTED = """\
# a comment at the top
pipeline:
- runs: "# a comment inside the script is part of the script\\nmake\\n"
  name: 'build'      # trailing comment
-   uses: strip

environment: {contents: {packages: [build-base, busybox]}}
package:
    epoch: 0
    version: '3.10'
    description: >-
      a demo
    name: demo
"""


def test_comments_order_and_formatting_do_not_change_the_bytes() -> None:
    assert canonical_yaml("a.yaml", ORIGINAL) == canonical_yaml("b.yaml", REFORMATTED)


def test_it_reads_back_as_the_same_document_with_types_kept() -> None:
    out = canonical_yaml("a.yaml", ORIGINAL)
    assert yaml.safe_load(out) == yaml.safe_load(ORIGINAL)
    text = out.decode()
    assert "version: '3.10'" in text  # still a string, not the number 3.1
    assert "epoch: 0\n" in text
    assert "#" in text and "make" in text  # the script's own comment is content
    assert canonical_yaml("a.yaml", text) == out  # a fixed point


@pytest.mark.parametrize(
    "edit",
    [
        lambda t: t.replace("make\n", "make install\n"),
        lambda t: t.replace("epoch: 0", "epoch: 1"),
        lambda t: t.replace("a comment inside", "another comment inside"),
        lambda t: t.replace('"3.10"', "3.10"),  # now a number: another document
        lambda t: t.replace("busybox]", "busybox, grep]"),
    ],
)
def test_what_the_document_says_changes_the_bytes(edit) -> None:  # type: ignore[no-untyped-def]
    assert canonical_yaml("a.yaml", edit(ORIGINAL)) != canonical_yaml("a.yaml", ORIGINAL)


def test_aliases_nulls_and_real_packages() -> None:
    anchored = "a: &x {k: [v]}\nb: *x\nc: ~\n"
    spelled = "b:\n  k: [v]\na:\n  k:\n  - v\nc:\n"
    assert canonical_yaml("a.yaml", anchored) == canonical_yaml("a.yaml", spelled)
    assert b"&" not in canonical_yaml("a.yaml", anchored)
    text = LIBGREET.read_text()
    commented = "# a new comment\n" + text.replace("\n", "  # eol\n", 3)
    assert canonical_yaml(str(LIBGREET), commented) == canonical_yaml(str(LIBGREET), text)


def test_bad_yaml_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as e:
        canonical_yaml("bad.yaml", "a: [\n")
    assert str(e.value).startswith("bad.yaml:")
