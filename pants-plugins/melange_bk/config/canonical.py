"""The configuration as a package embeds it (`.melange.yaml`): the parsed document re-encoded canonically.

melange embeds its parsed configuration re-encoded, never the file's bytes, so comments and formatting do not
change its packages. We do the same at the level of the YAML document: mapping keys sorted, block style
throughout, every scalar in the plainest style that keeps its type (`3.10` quoted stays the string "3.10", `0`
stays an integer), multi-line strings as literal blocks, comments, blank lines, quoting and indentation gone.
What the document *says* is kept whole: a changed value, a changed script (even a comment inside a `runs:`
block, which is part of the script) or an added key changes the bytes. See docs/EARLY-CUTOFF.md.
"""

from __future__ import annotations

import copy
from typing import Set

import yaml

from melange_bk.config.yamlsrc import compose

_NULL = "tag:yaml.org,2002:null"
_WIDTH = 1 << 30  # never fold long lines: folding would depend on the emitter's heuristics only


def _normalise(node: yaml.Node, seen: Set[int]) -> yaml.Node:
    """`node` in canonical form; an alias (a node met before) is expanded into a copy, so anchors never show."""
    if id(node) in seen:
        node = copy.deepcopy(node)
    seen.add(id(node))
    if isinstance(node, yaml.ScalarNode):
        if node.tag == _NULL:
            node.value = "null"  # `~`, `null` and nothing are one value
        # None: the emitter picks plain when plain text resolves to the node's tag, else quotes it.
        node.style = "|" if "\n" in node.value else None
    elif isinstance(node, yaml.SequenceNode):
        node.flow_style = False
        node.value = [_normalise(item, seen) for item in node.value]
    elif isinstance(node, yaml.MappingNode):
        node.flow_style = False
        pairs = [(_normalise(k, seen), _normalise(v, seen)) for k, v in node.value]
        node.value = sorted(pairs, key=lambda kv: str(kv[0].value))
    return node


def canonical_yaml(path: str, text: str) -> bytes:
    """The canonical encoding of the YAML document `text` (`path` for errors): equal for any two texts that
    differ only in comments, key order, quoting, flow/block style or indentation."""
    node = _normalise(compose(path, text), set())
    out = yaml.serialize(
        node,
        Dumper=yaml.SafeDumper,
        width=_WIDTH,
        indent=2,
        allow_unicode=True,
        line_break="\n",
    )
    return out.encode("utf-8")
