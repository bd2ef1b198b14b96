"""Decode a melange YAML strictly into `model.Configuration` (phase one of melange's two-phase substitution).

Phase one replaces only `package.*`, `vars.*` (after var-transforms) and, inside `range:` subpackages,
`range.key`/`range.value`; any other `${{...}}` is left for the pipeline compiler, which resolves everything and
rejects unknown names.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable, Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple

import yaml

from melange_bk.config import arch as arch_mod
from melange_bk.config import limits
from melange_bk.config import schema as sc
from melange_bk.config.goregexp import RegexpError, RegexpTooCostly
from melange_bk.config.model import (
    Capabilities,
    Configuration,
    DataRange,
    Package,
    Step,
    Subpackage,
    VarTransform,
)
from melange_bk.config.subst import SubstitutionError, substitute
from melange_bk.config.transforms import replace_all
from melange_bk.config.yamlsrc import Src, compose, line_of, one_line, quoted, scalar_content_line, to_plain
from melange_bk.errors import ConfigError

PACKAGE_NAME = re.compile(r"^[a-zA-Z\d][a-zA-Z\d+_.-]*$")
# The version is part of the .apk file names: never a path separator, `..` only inside a word, no whitespace.
PACKAGE_VERSION = re.compile(r"^[a-zA-Z\d][a-zA-Z\d+_.~-]*$")
WORKDIR = "/home/build"
OUTDIR = "/home/build/melange-out"

_INTEGER = re.compile(r"-?\d+")
# melange's CPE fields, in the order of the CPE 2.3 name after part:vendor:product:version:update.
_CPE_FIELDS = ("edition", "language", "sw_edition", "target_sw", "target_hw", "other")
_CPE_PARTS = ("a", "h", "o")
# Linux capability names (capability.h), without the CAP_ prefix.
LINUX_CAPABILITIES = frozenset(
    """CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE
    NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT
    SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE
    AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ
    PERFMON BPF CHECKPOINT_RESTORE""".split()
)
# `description:` documents a pipeline definition file; melange accepts it at any step there.
_PIPELINE_FILE_EXTRA: Dict[type, FrozenSet[str]] = {Step: frozenset(("description",))}


def base_substitutions(name: str, version: str, epoch: str, description: str, arch: str) -> Dict[str, str]:
    """Everything melange knows before vars: package.*, targets.*, context.name, build.*, triplets."""
    out = {
        "package.name": name,
        "package.version": version,
        "package.epoch": epoch,
        "package.full-version": f"{version}-r{epoch}",
        "package.description": description,
        "package.srcdir": WORKDIR,
        "targets.outdir": OUTDIR,
        "targets.destdir": f"{OUTDIR}/{name}",
        "targets.contextdir": f"{OUTDIR}/{name}",
        "context.name": name,
    }
    out.update(arch_mod.substitutions(arch))
    return out


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


class Decoder:
    """Reads mappings into the model's dataclasses as their fields declare (`config.schema`), substituting
    `ptmap` (phase one) into every field not declared raw."""

    def __init__(
        self, src: Src, ptmap: Mapping[str, str], extra: Optional[Mapping[type, FrozenSet[str]]] = None
    ) -> None:
        self.src = src
        self.ptmap = ptmap
        self.extra = extra or {}  # keys a class accepts beyond its fields (pipeline definition files)

    def sub(self, value: str, where: str, line: Optional[int]) -> str:
        if not self.ptmap:
            return value
        try:
            return substitute(value, self.ptmap, strict=False)
        except SubstitutionError as e:  # only ValueTooLong when not strict
            raise self.src.error(f"{where}: {e.message}", line=line) from None

    def s(self, node: Optional[yaml.Node], where: str, default: str = "") -> str:
        value = self.src.string(node, where, default)
        return self.sub(value, where, line_of(node) if node is not None else None)

    def strs(self, node: Optional[yaml.Node], where: str) -> Tuple[str, ...]:
        return tuple(self.sub(v, where, line) for v, line in self.src.strings(node, where))

    def pairs(self, node: Optional[yaml.Node], where: str) -> Tuple[Tuple[str, str], ...]:
        return tuple(
            (k, self.sub(v, f"{where}.{k}", line)) for k, v, line in self.src.string_map(node, where)
        )

    # -- the generic part: any dataclass of the model --------------------------------------------------------------
    def fields(self, cls: type, node: Optional[yaml.Node], where: str) -> Dict[str, yaml.Node]:
        """The nodes of a mapping by (dotted) key; every level is checked against the keys `cls` declares."""
        out: Dict[str, yaml.Node] = {}
        for level in sc.schema(cls).levels:
            if level.prefix:
                items = self.src.mapping(
                    out.get(level.prefix), _join(where, level.prefix), level.allowed, level.ignored
                )
                out.update((f"{level.prefix}.{k}", v) for k, v in items.items())
            else:
                allowed = level.allowed | self.extra.get(cls, frozenset())
                out.update(self.src.mapping(node, where, allowed, level.ignored))
        return out

    def decode(self, cls: type, node: Optional[yaml.Node], where: str, **given: Any) -> Any:
        if cls is Step:
            return self.step(node, where)
        return self.build(cls, node, where, self.fields(cls, node, where), **given)

    def build(
        self, cls: type, node: Optional[yaml.Node], where: str, f: Dict[str, yaml.Node], **given: Any
    ) -> Any:
        schema = sc.schema(cls)
        values = dict(given)
        for spec in schema.fields:
            if spec.name not in values:
                values[spec.name] = self.read(spec, f, where)
        if schema.line_field and node is not None:
            values[schema.line_field] = line_of(node)
        return cls(**values)

    def read(self, spec: sc.FieldSpec, f: Dict[str, yaml.Node], where: str) -> Any:
        """One field's value from the mapping's nodes `f`."""
        if spec.absent is not dataclasses.MISSING and all(k not in f for k in spec.keys):
            return spec.absent
        return self._readers[spec.kind](self, spec, f, where)

    def _str(self, spec: sc.FieldSpec, f: Dict[str, yaml.Node], where: str) -> str:
        w = _join(where, spec.keys[0])
        return self.src.string(f.get(spec.keys[0]), w) if spec.raw else self.s(f.get(spec.keys[0]), w)

    def _int_text(self, spec: sc.FieldSpec, f: Dict[str, yaml.Node], where: str) -> str:
        value = self._str(spec, f, where)
        if value and not _INTEGER.fullmatch(value):
            raise self.src.error(
                f"{_join(where, spec.keys[0])} must be an integer, not {quoted(value)}", f[spec.keys[0]]
            )
        return value

    def _bool(self, spec: sc.FieldSpec, f: Dict[str, yaml.Node], where: str) -> bool:
        return self.src.boolean(f.get(spec.keys[0]), _join(where, spec.keys[0]))

    def _int(self, spec: sc.FieldSpec, f: Dict[str, yaml.Node], where: str) -> int:
        return self.src.integer(f.get(spec.keys[0]), _join(where, spec.keys[0]))

    def _strs(self, spec: sc.FieldSpec, f: Dict[str, yaml.Node], where: str) -> Tuple[str, ...]:
        if spec.raw:
            return tuple(v for k in spec.keys for v, _ in self.src.strings(f.get(k), _join(where, k)))
        return tuple(v for k in spec.keys for v in self.strs(f.get(k), _join(where, k)))

    def _pairs(self, spec: sc.FieldSpec, f: Dict[str, yaml.Node], where: str) -> Tuple[Tuple[str, str], ...]:
        node, w = f.get(spec.keys[0]), _join(where, spec.keys[0])
        if spec.raw:
            return tuple((k, v) for k, v, _ in self.src.string_map(node, w))
        return self.pairs(node, w)

    def _obj(self, spec: sc.FieldSpec, f: Dict[str, yaml.Node], where: str) -> Any:
        return self.decode(spec.item, f.get(spec.keys[0]), _join(where, spec.keys[0]))

    def _objs(self, spec: sc.FieldSpec, f: Dict[str, yaml.Node], where: str) -> Tuple[Any, ...]:
        w = _join(where, spec.keys[0])
        nodes = self.src.sequence(f.get(spec.keys[0]), w)
        return tuple(self.decode(spec.item, n, f"{w}[{i}]") for i, n in enumerate(nodes))

    def _named(self, spec: sc.FieldSpec, f: Dict[str, yaml.Node], where: str) -> Tuple[Any, ...]:
        """A mapping of name to mapping (as `inputs:`): one dataclass each, its `name` the key."""
        node, w = f.get(spec.keys[0]), _join(where, spec.keys[0])
        if not isinstance(node, yaml.MappingNode):
            raise self.src.error(f"{w}: expected a mapping", node)
        out = []
        for k, v in node.value:
            name = self.src.string(k, w)
            out.append(self.decode(spec.item, v, f"{w}.{name}", name=name))
        return tuple(out)

    def _with(
        self, spec: sc.FieldSpec, f: Dict[str, yaml.Node], where: str
    ) -> Tuple[Tuple[str, str, int], ...]:
        """A step's `with:`: (input, value, line)."""
        return tuple(
            (k, self.sub(v, f"{_join(where, spec.keys[0])}.{k}", line), line)
            for k, v, line in self.src.string_map(f.get(spec.keys[0]), _join(where, spec.keys[0]))
        )

    _readers: Dict[str, Callable[..., Any]] = {
        sc.STR: _str,
        sc.INT_TEXT: _int_text,
        sc.BOOL: _bool,
        sc.INT: _int,
        sc.OPT_INT: _int,  # absent: None (above)
        sc.STRS: _strs,
        sc.PAIRS: _pairs,
        sc.OBJ: _obj,
        sc.OPT_OBJ: _obj,  # absent: None (above)
        sc.OBJS: _objs,
        sc.NAMED: _named,
        sc.WITH: _with,
    }

    # -- what the schema does not say ----------------------------------------------------------------------------
    def cpe(self, node: Optional[yaml.Node], where: str, version: str) -> str:
        """The CPE 2.3 name melange puts in the SBOM for `package.cpe` ("" when absent or empty): part (default
        "a") : vendor : product : the package version : * (update) : the optional fields, * when unset."""
        keys = ("part", "vendor", "product") + _CPE_FIELDS
        f = self.src.mapping(node, where, frozenset(keys))
        values = {k: self.s(f.get(k), f"{where}.{k}").strip() for k in keys}
        if not any(values.values()):
            return ""
        for k, v in values.items():
            if ":" in v or any(c.isspace() for c in v):
                raise self.src.error(
                    f"{where}.{k}: {quoted(v)} must not contain a colon or whitespace", f.get(k)
                )
        part = values["part"] or "a"
        if part not in _CPE_PARTS:
            raise self.src.error(
                f"{where}.part must be one of {', '.join(_CPE_PARTS)}, not {quoted(part)}", f["part"]
            )
        for k in ("vendor", "product"):
            if not values[k] or values[k] == "*":
                raise self.src.error(f"{where}.{k} must be given exactly", node)
        rest = [values[k] or "*" for k in _CPE_FIELDS]
        return ":".join(["cpe:2.3", part, values["vendor"], values["product"], version, "*"] + rest)

    def capabilities(self, node: Optional[yaml.Node], where: str) -> Capabilities:
        f = self.src.mapping(node, where, frozenset(("add", "drop")))
        out = {}
        for key in ("add", "drop"):
            names = set()
            for value, line in self.src.strings(f.get(key), f"{where}.{key}"):
                name = value.strip().upper()
                name = name[4:] if name.startswith("CAP_") else name
                if name not in LINUX_CAPABILITIES:
                    raise self.src.error(
                        f"{where}.{key}: {quoted(value)} is not a Linux capability", line=line
                    )
                names.add("CAP_" + name)
            out[key] = tuple(sorted(names))
        return Capabilities(**out)

    def step(self, node: Optional[yaml.Node], where: str) -> Step:
        f = self.fields(Step, node, where)
        runs_node = f.get("runs")
        step = self.build(
            Step,
            node,
            where,
            f,
            runs_line=scalar_content_line(runs_node) if runs_node is not None else line_of(node),
        )
        if "with" in f and not step.uses:
            raise self.src.error("pipeline step has `with:` but no `uses:`", node)
        if step.uses and "runs" in f:
            raise self.src.error(f"pipeline step cannot have both `uses: {step.uses}` and `runs:`", node)
        if step.with_ and "runs" in f:
            raise self.src.error("pipeline step cannot have both `with:` and `runs:`", node)
        return step

    def subpackage(self, node: yaml.Node, where: str, range_key: Optional[str]) -> Subpackage:
        sub = self.decode(Subpackage, node, where, range_key=range_key)
        if not sub.name:
            raise self.src.error(f"{where}: subpackage name is missing", node)
        return sub


def decode_step_fields(src: Src, node: yaml.Node, where: str) -> Step:
    """The top level of a pipeline definition file (`description:` is documentation, accepted anywhere)."""
    return Decoder(src, {}, _PIPELINE_FILE_EXTRA).step(node, where)


@limits.substitution_budget
def parse_config(
    path: str,
    text: str,
    *,
    arch: str = "x86_64",
    extra_vars: Sequence[Tuple[str, str]] = (),
) -> Configuration:
    """Parse and validate a melange YAML; `path` is the display path used in errors."""
    src = Src(path)
    root = compose(path, text)
    raw = Decoder(src, {})
    top = raw.fields(Configuration, root, "top level")

    pkg_node = top.get("package")
    if pkg_node is None:
        raise src.error("package is missing", line=1)
    pf = raw.fields(Package, pkg_node, "package")
    name = src.string(pf.get("name"), "package.name")
    version = src.string(pf.get("version"), "package.version")
    if not name:
        raise src.error("package.name is missing", pkg_node)
    if not version:
        raise src.error("package.version is missing", pkg_node)
    epoch = src.integer(pf.get("epoch"), "package.epoch")
    if epoch < 0:
        raise src.error("package.epoch must not be negative", pf.get("epoch"))
    description = src.string(pf.get("description"), "package.description")

    base = base_substitutions(name, version, str(epoch), description, arch)
    transforms = top_field(raw, top, "var_transforms")
    vars_ = resolve_vars(src, top, base, extra_vars, transforms)

    ptmap = {
        "package.name": name,
        "package.version": version,
        "package.epoch": str(epoch),
        "package.full-version": f"{version}-r{epoch}",
        "package.description": description,
    }
    ptmap.update((f"vars.{k}", v) for k, v in vars_)
    dec = Decoder(src, ptmap)

    cpe = dec.cpe(pf.get("cpe"), "package.cpe", dec.s(pf.get("version"), "package.version"))
    package: Package = dec.build(Package, pkg_node, "package", pf, epoch=epoch, cpe=cpe)
    if not PACKAGE_NAME.match(package.name):
        raise src.error(f"package.name {quoted(package.name)} is not a valid package name", pf.get("name"))
    if not PACKAGE_VERSION.match(package.version):
        raise src.error(
            f"package.version {quoted(package.version)} is not a valid package version (letters, digits and + _ . ~ -, "
            "starting with a letter or digit)",
            pf.get("version"),
        )

    data = data_ranges(src, top_field(raw, top, "data"))
    subpackages: List[Subpackage] = []
    seen: Dict[str, int] = {package.name: package.line}
    budget = limits.RangeBudget(path)
    for i, node in enumerate(src.sequence(top.get("subpackages"), "subpackages")):
        where = f"subpackages[{i}]"
        sf = raw.fields(Subpackage, node, where)
        range_name = src.string(sf.get("range"), f"{where}.range")
        if range_name:
            if range_name not in data:
                raise src.error(f"{where} uses undefined range {quoted(range_name)}", sf["range"])
            budget.add(line_of(node), len(data[range_name].items), node)
            expanded = []
            for key, value in sorted(data[range_name].items):
                rdec = Decoder(src, {**ptmap, "range.key": key, "range.value": value})
                expanded.append(rdec.subpackage(node, where, key))
        else:
            budget.add(line_of(node), 1, node)
            expanded = [dec.subpackage(node, where, None)]
        for sub in expanded:
            if not PACKAGE_NAME.match(sub.name):
                raise src.error(
                    f"subpackage name {quoted(sub.name)} is not a valid package name", line=sub.line
                )
            if sub.name in seen:
                what = (
                    "the main package"
                    if sub.name == package.name
                    else f"the subpackage at line {seen[sub.name]}"
                )
                raise src.error(f'duplicate subpackage name "{sub.name}" (same as {what})', line=sub.line)
            seen[sub.name] = sub.line
            subpackages.append(sub)

    build_options = tuple(sorted(k for k, _, _ in _option_names(src, top.get("options"))))
    return Configuration(
        path=path,
        package=package,
        environment=top_field(dec, top, "environment"),
        pipeline=top_field(dec, top, "pipeline"),
        subpackages=tuple(subpackages),
        vars=tuple(vars_),
        test=top_field(dec, top, "test"),
        build_options=build_options,
        var_transforms=transforms,
        data=tuple(data.values()),
        update=to_plain(top.get("update")),
        capabilities=dec.capabilities(top.get("capabilities"), "capabilities"),
    )


def top_field(dec: Decoder, top: Dict[str, yaml.Node], name: str) -> Any:
    """A top-level field of `Configuration` read as the schema declares it."""
    spec = next(s for s in sc.schema(Configuration).fields if s.name == name)
    return dec.read(spec, top, "")


def _option_names(src: Src, node: Optional[yaml.Node]):
    if node is None:
        return []
    if not isinstance(node, yaml.MappingNode):
        raise src.error("options: expected a mapping", node)
    from melange_bk.config.yamlsrc import warn_once

    warn_once("options", "melange-bk ignores the contents of build `options:` (all are disabled)")
    return [(src.string(k, "options"), "", line_of(k)) for k, _ in node.value]


def resolve_vars(
    src: Src,
    top: Dict[str, yaml.Node],
    base: Dict[str, str],
    extra_vars: Sequence[Tuple[str, str]],
    transforms: Sequence[VarTransform],
) -> List[Tuple[str, str]]:
    """vars (each may use package.*, build.* and earlier vars), overridden by --var, then var-transforms."""
    raw = src.string_map(top.get("vars"), "vars")
    overrides = dict(extra_vars)
    known = set()
    entries: List[Tuple[str, str, Optional[int]]] = []
    for k, v, line in raw:
        entries.append((k, overrides.get(k, v), None if k in overrides else line))
        known.add(k)
    entries.extend((k, v, None) for k, v in extra_vars if k not in known)

    scope = dict(base)
    out: List[Tuple[str, str]] = []
    for k, v, line in entries:
        try:
            value = substitute(v, scope, strict=True)
        except SubstitutionError as e:
            raise ConfigError(
                one_line(f"vars.{k}: {e.message}"), path=src.path if line else None, line=line
            ) from None
        scope[f"vars.{k}"] = value
        out.append((k, value))

    for i, vt in enumerate(transforms):
        where = f"var-transforms[{i}]"
        if not vt.to:
            raise src.error(f"{where}: `to` is missing", line=vt.line)
        try:
            source = substitute(vt.from_, scope, strict=True)
        except SubstitutionError as e:
            raise src.error(f"{where}.from: {e.message}", line=vt.line) from None
        try:
            value = replace_all(vt.match, source, vt.replace)
        except RegexpTooCostly as e:
            raise src.error(f"{where}: {e}", line=vt.line) from None
        except RegexpError as e:
            raise src.error(one_line(f"{where}.match: {quoted(vt.match)} {e}"), line=vt.line) from None
        except SubstitutionError as e:  # ValueTooLong
            raise src.error(f"{where}: {e.message}", line=vt.line) from None
        scope[f"vars.{vt.to}"] = value
        out = [(k, v) for k, v in out if k != vt.to]
        out.append((vt.to, value))
    return out


def data_ranges(src: Src, ranges: Sequence[DataRange]) -> Dict[str, DataRange]:
    out: Dict[str, DataRange] = {}
    for i, entry in enumerate(ranges):
        where = f"data[{i}]"
        if not entry.name:
            raise src.error(f"{where}: name is missing", line=entry.line)
        if entry.name in out:
            raise src.error(f"{where}: duplicate range name {quoted(entry.name)}", line=entry.line)
        out[entry.name] = entry
    return out
