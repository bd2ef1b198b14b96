"""Strict access to composed YAML nodes, with line numbers for every error.

melange decodes its YAML strictly (an unknown key is an error). We compose the document into PyYAML nodes (no
Python objects, so `3.10` stays the string "3.10" as in Go) and read them through these helpers.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Dict, FrozenSet, Iterable, List, Optional, Set, Tuple

import yaml

from melange_bk.config import limits
from melange_bk.errors import ConfigError

try:  # libyaml's parser (its events are composed by `_compose`) is ~10x faster; fall back to pure Python
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader

log = logging.getLogger("melange_bk.config")

_warned: Set[str] = set()


def warn_once(key: str, message: str) -> None:
    """Warn about a field we knowingly ignore, once per process."""
    if key in _warned:
        return
    _warned.add(key)
    log.warning("%s", message)


_CONTROL = {c: f"\\x{c:02x}" for c in range(32)}
_CONTROL.update(
    {
        ord("\n"): "\\n",
        ord("\r"): "\\r",
        ord("\t"): "\\t",
        0x7F: "\\x7f",
        0x2028: "\\u2028",
        0x2029: "\\u2029",
    }
)


def one_line(message: str) -> str:
    """`message` with control characters (from the user's values) escaped: an error is always one line."""
    return message.translate(_CONTROL)


def quoted(value: str, limit: int = 80) -> str:
    """`value` quoted for an error message (repr), its first `limit` characters only when it is longer: a hostile
    value must not turn a one-line error into a megabyte."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}... ({len(value):,} characters)"


def read_text(path: str, what: str = "") -> str:
    """A YAML file's text; an unreadable or non-UTF-8 file is a ConfigError naming it (and `what` it is)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(limits.MAX_YAML_CHARS + 1)  # never more: compose refuses a longer one
    except OSError as e:
        raise ConfigError(f"cannot read{' ' + what if what else ''}: {e.strerror}", path=path) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what + ' is ' if what else ''}not UTF-8 text", path=path) from None
    limits.check_yaml_size(path, text)
    return text


def compose(path: str, text: str) -> yaml.Node:
    """The document's node tree, within the bounds of `limits` (size, nesting, alias expansion)."""
    limits.check_yaml_size(path, text)
    try:
        node = _compose(path, _Loader(text))
    except yaml.reader.ReaderError as e:  # a character YAML does not allow (NUL, other control characters)
        raise ConfigError(
            (
                f"invalid YAML: unacceptable character #x{e.character:04x} at character {e.position + 1}"
                if isinstance(e.character, int)
                else f"invalid YAML: {e.reason}"
            ),
            path=path,
        ) from None
    except UnicodeError:  # a lone surrogate (only possible when text did not come from a UTF-8 file)
        raise ConfigError("not valid Unicode text", path=path) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise ConfigError(
            one_line(f"invalid YAML: {e.problem or e.context}"),
            path=path,
            line=mark.line + 1 if mark else None,
            col=mark.column + 1 if mark else None,
        ) from None
    except yaml.YAMLError as e:  # pragma: no cover - any other YAML error
        raise ConfigError(one_line(f"invalid YAML: {e}"), path=path) from None
    if node is None:
        raise ConfigError("empty document: expected a mapping", path=path, line=1)
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError("expected a mapping at the top of the document", path=path, line=line_of(node))
    return node


def _compose(path: str, loader: Any) -> Optional[yaml.Node]:
    """PyYAML's `Composer.get_single_node` over the (C) parser's events, without recursion (libyaml's own
    composer recurses in C and crashes on deep nesting) and counting what aliases expand to.

    An anchor is defined once its node is complete, so an alias cannot refer to the node that contains it."""
    ev = yaml.events
    loader.get_event()  # StreamStart
    if loader.check_event(ev.StreamEndEvent):
        loader.get_event()
        return None
    loader.get_event()  # DocumentStart
    anchors: Dict[str, Tuple[yaml.Node, int, int]] = {}  # anchor -> (node, expanded nodes, nesting)
    # per open collection: [node, anchor, `total` before it, nesting below it, pending mapping key]
    stack: List[List[Any]] = []
    total = 0
    aliased = False
    while True:
        event = loader.get_event()
        kind = type(event)
        if kind is ev.AliasEvent:
            if event.anchor not in anchors:
                raise yaml.composer.ComposerError(
                    None, None, f"found undefined alias {quoted(event.anchor)}", event.start_mark
                )
            node, size, height = anchors[event.anchor]
            aliased = True
            if len(stack) + height > limits.MAX_YAML_DEPTH:
                raise limits.too_deep(path, event.start_mark.line + 1)
        elif kind is ev.SequenceEndEvent or kind is ev.MappingEndEvent:
            node, anchor, before, height, _ = stack.pop()
            node.end_mark = event.end_mark
            height += 1
            if anchor is not None:
                anchors[anchor] = (node, total - before, height)
            size = 0  # counted as it was composed
        else:
            anchor = event.anchor
            if anchor is not None and anchor in anchors:
                raise yaml.composer.ComposerError(
                    f"found duplicate anchor {quoted(anchor)}; first occurrence",
                    anchors[anchor][0].start_mark,
                    "second occurrence",
                    event.start_mark,
                )
            tag = event.tag
            if kind is ev.ScalarEvent:
                if tag is None or tag == "!":
                    tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
                node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
                size, height = 1, 0
                if anchor is not None:
                    anchors[anchor] = (node, 1, 0)
            else:  # a collection starts
                cls = yaml.SequenceNode if kind is ev.SequenceStartEvent else yaml.MappingNode
                if tag is None or tag == "!":
                    tag = loader.resolve(cls, None, event.implicit)
                node = cls(tag, [], event.start_mark, None, flow_style=event.flow_style)
                if len(stack) >= limits.MAX_YAML_DEPTH:
                    raise limits.too_deep(path, event.start_mark.line + 1)
                stack.append([node, anchor, total, 0, None])
                total += 1
                continue
        total += size
        if total > limits.MAX_YAML_NODES:
            raise limits.too_many_nodes(path, event.start_mark.line + 1, aliased)
        if not stack:
            break
        parent = stack[-1]
        parent[3] = max(parent[3], height)
        if parent[0].__class__ is yaml.SequenceNode:
            parent[0].value.append(node)
        elif parent[4] is None:
            parent[4] = node
        else:
            parent[0].value.append((parent[4], node))
            parent[4] = None
    loader.get_event()  # DocumentEnd
    if not loader.check_event(ev.StreamEndEvent):
        event = loader.get_event()
        raise yaml.composer.ComposerError(
            "expected a single document in the stream",
            node.start_mark,
            "but found another document",
            event.start_mark,
        )
    loader.get_event()
    return node


def line_of(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


class Src:
    """The file being decoded: its display path, for errors."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path

    def error(
        self, message: str, node: Optional[yaml.Node] = None, line: Optional[int] = None
    ) -> ConfigError:
        if node is not None and line is None:
            line = line_of(node)
        return ConfigError(one_line(message), path=self.path, line=line)

    def mapping(
        self,
        node: Optional[yaml.Node],
        where: str,
        allowed: FrozenSet[str],
        ignored: FrozenSet[str] = frozenset(),
    ) -> Dict[str, yaml.Node]:
        """The keys of a mapping node; unknown keys are errors, `ignored` ones warn once and are dropped."""
        if node is None or _is_null(node):
            return {}
        if not isinstance(node, yaml.MappingNode):
            raise self.error(f"{where}: expected a mapping", node)
        out: Dict[str, yaml.Node] = {}
        for k, v in node.value:
            if not isinstance(k, yaml.ScalarNode):
                raise self.error(f"{where}: keys must be strings", k)
            key = k.value
            if key in out:
                raise self.error(f"{where}: duplicate key {quoted(key)}", k)
            if key in allowed:
                out[key] = v
            elif key in ignored:
                warn_once(f"{where}.{key}", f"melange-bk ignores {where}.{key} (not supported yet)")
            else:
                raise self.error(f"{where}: unknown field {quoted(key)}", k)
        return out

    def string(self, node: Optional[yaml.Node], where: str, default: str = "") -> str:
        if node is None or _is_null(node):
            return default
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(f"{where}: expected a string", node)
        return str(node.value)

    def boolean(self, node: Optional[yaml.Node], where: str) -> bool:
        value = self.string(node, where, "false").lower()
        if value in ("true", "yes", "on"):
            return True
        if value in ("false", "no", "off", ""):
            return False
        raise self.error(f"{where}: expected true or false, not {quoted(value)}", node)

    def integer(self, node: Optional[yaml.Node], where: str, default: int = 0) -> int:
        value = self.string(node, where, "")
        if value == "":
            return default
        try:
            return int(value, 0) if value.lower().startswith(("0x", "0o")) else int(value)
        except ValueError:
            raise self.error(f"{where}: expected an integer, not {quoted(value)}", node) from None

    def strings(self, node: Optional[yaml.Node], where: str) -> List[Tuple[str, int]]:
        """A sequence of scalars, each with its line."""
        if node is None or _is_null(node):
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(f"{where}: expected a list", node)
        out = []
        for item in node.value:
            out.append((self.string(item, where + "[]"), line_of(item)))
        return out

    def sequence(self, node: Optional[yaml.Node], where: str) -> List[yaml.Node]:
        if node is None or _is_null(node):
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(f"{where}: expected a list", node)
        return list(node.value)

    def string_map(self, node: Optional[yaml.Node], where: str) -> List[Tuple[str, str, int]]:
        """A mapping of scalar to scalar (as `with:`, `vars:`, `environment:`), in document order."""
        if node is None or _is_null(node):
            return []
        if not isinstance(node, yaml.MappingNode):
            raise self.error(f"{where}: expected a mapping", node)
        out: List[Tuple[str, str, int]] = []
        seen: Set[str] = set()
        for k, v in node.value:
            key = self.string(k, where)
            if key in seen:
                raise self.error(f"{where}: duplicate key {quoted(key)}", k)
            seen.add(key)
            out.append((key, self.string(v, f"{where}.{key}"), line_of(k)))
        return out


def _is_null(node: yaml.Node) -> bool:
    return (
        isinstance(node, yaml.ScalarNode)
        and node.tag == "tag:yaml.org,2002:null"
        and node.value in ("", "~", "null")
    )


def to_plain(node: Optional[yaml.Node]) -> Any:
    """A node as plain Python data with every scalar a string (for sections we keep but do not interpret)."""
    if node is None:
        return None
    if isinstance(node, yaml.ScalarNode):
        return None if _is_null(node) else str(node.value)
    if isinstance(node, yaml.SequenceNode):
        return [to_plain(n) for n in node.value]
    return {str(k.value): to_plain(v) for k, v in node.value}


def scalar_content_line(node: yaml.Node) -> int:
    """The line where a scalar's text starts (block scalars start on the line after `|`/`>`)."""
    line = line_of(node)
    if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
        return line + 1
    return line


def iter_pairs(items: Iterable[Tuple[str, str, int]]) -> Iterable[Tuple[str, str]]:
    for k, v, _ in items:
        yield k, v


__all__ = ["Src", "compose", "line_of", "to_plain", "warn_once", "scalar_content_line", "iter_pairs", "sys"]
