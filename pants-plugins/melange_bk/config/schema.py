"""The YAML schema, declared once on the model: each dataclass field read from a YAML key says so in its metadata
(`yaml_key("provider-priority")`), and `schema(cls)` derives from the dataclass the keys each mapping level
accepts, the keys it ignores (`YAML_IGNORED`) and how each field is read (from its type). `parse` decodes with it.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Dict, FrozenSet, Optional, Tuple, Union

_KEY = "yaml"
_RAW = "yaml_raw"
_KIND = "yaml_kind"
_LINE = "yaml_line"

# How a field is read; derived from its type unless `yaml_key(kind=...)` says otherwise.
STR = "str"  # a scalar (substituted at parse time unless raw)
BOOL = "bool"
INT = "int"  # an integer scalar; absent: the field's default
OPT_INT = "opt_int"  # an integer scalar; absent: None
INT_TEXT = "int_text"  # a scalar that must be an integer once substituted, kept as text
STRS = "strs"  # a list of scalars (several keys: concatenated)
PAIRS = "pairs"  # a mapping of scalar to scalar, in document order
OBJ = "obj"  # a mapping decoded into a nested dataclass
OPT_OBJ = "opt_obj"  # the same, None when the key is absent
OBJS = "objs"  # a list of mappings, each a nested dataclass
NAMED = "named"  # a mapping of name to mapping, each a nested dataclass with `name` set from its key
WITH = "with"  # a step's `with:`: (input, value, line) triples
CUSTOM = "custom"  # read by the decoder's own code (the top level's package, vars, subpackages, ...)


def yaml_key(
    key: Union[str, Tuple[str, ...]],
    *,
    raw: bool = False,
    kind: str = "",
    default: Any = dataclasses.MISSING,
) -> Any:
    """A field read from YAML `key`: a dotted path reaches into nested mappings (`needs.packages`); several keys
    are read into one field, in order. raw: no parse-time substitution. kind: a reader other than the type's.
    """
    keys = (key,) if isinstance(key, str) else tuple(key)
    return dataclasses.field(default=default, metadata={_KEY: keys, _RAW: raw, _KIND: kind})


def node_line() -> Any:
    """A field holding the line of the mapping the dataclass was decoded from."""
    return dataclasses.field(metadata={_LINE: True})


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    name: str  # the attribute
    keys: Tuple[str, ...]  # dotted YAML paths
    kind: str
    raw: bool
    item: Optional[type]  # the nested dataclass of OBJ/OPT_OBJ/OBJS/NAMED
    absent: Any  # the value when none of its keys is there (MISSING: read anyway)


@dataclasses.dataclass(frozen=True)
class Level:
    """One mapping of the YAML (`prefix` "" is the dataclass' own; "needs" is the mapping under `needs:`)."""

    prefix: str
    allowed: FrozenSet[str]
    ignored: FrozenSet[str]


@dataclasses.dataclass(frozen=True)
class Schema:
    cls: type
    fields: Tuple[FieldSpec, ...]  # in declaration order
    levels: Tuple[Level, ...]  # parents before children
    line_field: Optional[str]


_cache: Dict[type, Schema] = {}


def schema(cls: type) -> Schema:
    found = _cache.get(cls)
    if found is None:
        found = _cache[cls] = _derive(cls)
    return found


def _derive(cls: type) -> Schema:
    hints = typing.get_type_hints(cls)
    specs = []
    line_field = None
    allowed: Dict[str, set] = {"": set()}
    ignored: Dict[str, set] = {"": set()}
    for f in dataclasses.fields(cls):
        if f.metadata.get(_LINE):
            line_field = f.name
        if _KEY not in f.metadata:
            continue
        kind, item = _kind(hints[f.name])
        kind = f.metadata[_KIND] or kind
        specs.append(
            FieldSpec(
                name=f.name,
                keys=f.metadata[_KEY],
                kind=kind,
                raw=f.metadata[_RAW],
                item=item,
                absent=_absent(kind, item),
            )
        )
        for key in f.metadata[_KEY]:
            _add(allowed, ignored, key, allowed)
    for key in getattr(cls, "YAML_IGNORED", ()):
        _add(allowed, ignored, key, ignored)
    levels = tuple(
        Level(prefix, frozenset(allowed[prefix]), frozenset(ignored.get(prefix, ())))
        for prefix in sorted(allowed, key=lambda p: (p.count("."), p))
    )
    return Schema(cls=cls, fields=tuple(specs), levels=levels, line_field=line_field)


def _add(allowed: Dict[str, set], ignored: Dict[str, set], key: str, into: Dict[str, set]) -> None:
    parts = key.split(".")
    for i in range(1, len(parts)):  # every enclosing mapping is a key of its parent
        allowed.setdefault(".".join(parts[: i - 1]), set()).add(parts[i - 1])
        allowed.setdefault(".".join(parts[:i]), set())
        ignored.setdefault(".".join(parts[:i]), set())
    into.setdefault(".".join(parts[:-1]), set()).add(parts[-1])


_ABSENT = {STR: "", INT_TEXT: "", BOOL: False, INT: 0, OPT_INT: None, STRS: (), PAIRS: (), OPT_OBJ: None}
_ABSENT.update({OBJS: (), NAMED: (), WITH: ()})


def _absent(kind: str, item: Optional[type]) -> Any:
    if kind == OBJ and item is not None:
        try:
            return item()  # a nested mapping that is not there: every field at its absent value
        except TypeError:  # a field without a default
            return dataclasses.MISSING
    return _ABSENT.get(kind, dataclasses.MISSING)


def _kind(t: Any) -> Tuple[str, Optional[type]]:
    if t is str:
        return STR, None
    if t is bool:
        return BOOL, None
    if t is int:
        return INT, None
    if dataclasses.is_dataclass(t):
        return OBJ, t
    origin, args = typing.get_origin(t), typing.get_args(t)
    if origin is Union and len(args) == 2 and args[1] is type(None):
        if args[0] is int:
            return OPT_INT, None
        if dataclasses.is_dataclass(args[0]):
            return OPT_OBJ, args[0]
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        if args[0] is str:
            return STRS, None
        if args[0] == Tuple[str, str]:
            return PAIRS, None
        if dataclasses.is_dataclass(args[0]):
            return OBJS, args[0]
    return CUSTOM, None
