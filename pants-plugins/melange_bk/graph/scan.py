"""Reduce a melange YAML to a `PackageNode`: fast enough to run in-process for every YAML of a repository.

Only what the graph needs is read: package name/version/provides/provider-priority, subpackage names (with `range:`
expansion), build needs and test needs with their line numbers. Every field is substituted as the compiler does it
(`melange_bk.config.parse`: `${{package.*}}`, `${{vars.*}}` after var-transforms, `${{range.*}}`), with the
compiler's own functions. Full validation is the compiler's job (`melange_bk.plan.compile`).
"""

from __future__ import annotations

import re
from typing import Dict, Iterator, List, Optional, Tuple

import yaml

from melange_bk.config import limits
from melange_bk.config.parse import Decoder, base_substitutions, data_ranges, resolve_vars, top_field
from melange_bk.config.subst import SubstitutionError, substitute
from melange_bk.config.yamlsrc import Src, compose, quoted
from melange_bk.errors import ConfigError
from melange_bk.graph.model import Offer, PackageNode, strip_constraint


def _get(node: Optional[yaml.Node], key: str) -> Optional[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return v
    return None


def _scalar(node: Optional[yaml.Node]) -> Optional[str]:
    return node.value if isinstance(node, yaml.ScalarNode) else None


def _scalars(node: Optional[yaml.Node]) -> Iterator[Tuple[str, int]]:
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            if isinstance(item, yaml.ScalarNode):
                yield item.value, item.start_mark.line + 1


def _steps(pipeline: Optional[yaml.Node]) -> Iterator[yaml.Node]:
    if isinstance(pipeline, yaml.SequenceNode):
        for step in pipeline.value:
            yield step
            yield from _steps(_get(step, "pipeline"))


def _subst(text: str, values: Dict[str, str], path: str = "", line: Optional[int] = None) -> str:
    """The compiler's substitution, leaving unknown names as written (bounded as the compiler's is)."""
    try:
        return substitute(text, values, strict=False)
    except SubstitutionError as e:  # only ValueTooLong when not strict
        raise ConfigError(e.message, path=path, line=line) from None


@limits.substitution_budget
def scan_yaml(path: str, text: str, arch: str = "x86_64") -> PackageNode:
    """`path` is the repository-relative path used in messages and as the node's identity; `arch` is the
    `${{build.arch}}` vars may use (the compiler's default)."""
    root = compose(path, text)  # the compiler's: same errors for the same YAML
    src = Src(path)
    package = _get(root, "package")
    name = _scalar(_get(package, "name"))
    if not name:
        raise ConfigError("package.name is missing", path=path, line=(package or root).start_mark.line + 1)
    version = _scalar(_get(package, "version")) or ""
    epoch = src.integer(_get(package, "epoch"), "package.epoch")
    top = {k.value: v for k, v in root.value if isinstance(k, yaml.ScalarNode)} if _is_map(root) else {}
    values: Dict[str, str] = {
        "package.name": name,
        "package.version": version,
        "package.epoch": str(epoch),
        "package.full-version": f"{version}-r{epoch}",
        "package.description": _scalar(_get(package, "description")) or "",
    }
    base = base_substitutions(name, version, str(epoch), values["package.description"], arch)
    raw = Decoder(src, {})  # the compiler's readers for var-transforms and data
    values.update(
        (f"vars.{k}", v) for k, v in resolve_vars(src, top, base, (), top_field(raw, top, "var_transforms"))
    )
    full_version = values["package.full-version"]
    data = {k: r.items for k, r in data_ranges(src, top_field(raw, top, "data")).items()}

    provides: List[str] = []
    offers: List[Offer] = []
    build: List[Tuple[str, int]] = []
    test: List[Tuple[str, int]] = []

    def add_package(pkg: Optional[yaml.Node], pkg_name: str, where: str, extra: Dict[str, str]) -> int:
        """Offers of one (sub)package: its name and its provides, at its provider-priority (returned)."""
        priority = _priority(path, _get(_get(pkg, "dependencies"), "provider-priority"), where, extra)
        provides.append(pkg_name)
        offers.append((pkg_name, full_version, True, priority))
        for dep, _line in _scalars(_get(_get(pkg, "dependencies"), "provides")):
            pname, sep, pversion = _subst(dep, extra, path, _line).strip().partition("=")
            if pname and not pname.startswith("!"):
                provides.append(pname)
                offers.append((pname, pversion if sep and pversion else None, False, priority))
        return priority

    def add_needs(section: Optional[yaml.Node], out: List[Tuple[str, int]], extra: Dict[str, str]) -> None:
        env = _get(_get(section, "environment"), "contents")
        out.extend((_subst(n, extra, path, line), line) for n, line in _scalars(_get(env, "packages")))
        for step in _steps(_get(section, "pipeline")):
            out.extend(
                (_subst(n, extra, path, line), line)
                for n, line in _scalars(_get(_get(step, "needs"), "packages"))
            )

    provider_priority = add_package(package, name, "package", values)
    add_needs(root, build, values)
    add_needs(_get(root, "test"), test, values)

    subpackages = _get(root, "subpackages")
    budget = limits.RangeBudget(path)
    if isinstance(subpackages, yaml.SequenceNode):
        for sub in subpackages.value:
            for extra in _range_values(data, sub, values, budget):
                sub_name = _scalar(_get(sub, "name"))
                if sub_name:
                    add_package(
                        sub,
                        _subst(sub_name, extra, path, sub.start_mark.line + 1),
                        "subpackage " + sub_name,
                        extra,
                    )
                # subpackage pipelines run in the same build: their needs are build needs
                for step in _steps(_get(sub, "pipeline")):
                    build.extend(
                        (_subst(n, extra, path, line), line)
                        for n, line in _scalars(_get(_get(step, "needs"), "packages"))
                    )
                add_needs(_get(sub, "test"), test, extra)

    return PackageNode(
        path=path,
        name=name,
        provides=tuple(sorted(set(provides))),
        build_needs=tuple(n for n, _ in build),
        test_needs=tuple(n for n, _ in test),
        provider_priority=provider_priority,
        need_lines=tuple((strip_constraint(n) or n, line) for n, line in (*build, *test)),
        offers=tuple(sorted(set(offers), key=lambda o: (o[0], o[1] or "", o[2], o[3]))),
        version=full_version,
    )


def _priority(path: str, node: Optional[yaml.Node], where: str, values: Dict[str, str]) -> int:
    line = node.start_mark.line + 1 if node is not None else None
    priority = (
        _subst(_scalar(node) or "", values, path, line).strip() or "0"
    )  # empty (a range value left blank): 0
    try:
        return int(priority)
    except ValueError:
        raise ConfigError(
            f"{where}.dependencies.provider-priority must be an integer, not {quoted(priority)}",
            path=path,
            line=line,
        ) from None


def _is_map(node: yaml.Node) -> bool:
    return isinstance(node, yaml.MappingNode)


def _range_values(
    data: Dict[str, Tuple[Tuple[str, str], ...]],
    sub: yaml.Node,
    values: Dict[str, str],
    budget: limits.RangeBudget,
) -> Iterator[Dict[str, str]]:
    """One substitution map per expanded subpackage (a single one when there is no `range:`), within the bounds
    of `limits.RangeBudget` (the compiler's)."""
    range_name = _scalar(_get(sub, "range"))
    if not range_name:
        budget.add(sub.start_mark.line + 1, 1, sub)
        yield values
        return
    items = data.get(range_name, ())
    budget.add(sub.start_mark.line + 1, len(items), sub)
    for key, value in sorted(items):
        yield {**values, "range.key": key, "range.value": value}


_TOP_KEY = re.compile(r"^([A-Za-z_-]+):")
_PACKAGE_NAME = re.compile(r"^  name:\s*[\"']?([^\s\"'#]+)")
_SUBPACKAGE_NAME = re.compile(r"^  - name:\s*[\"']?([^\s\"'#]+)")


def guess_names(path: str, text: str) -> Tuple[str, ...]:
    """The package and subpackage names of a YAML that cannot be read, as far as its lines show them (written in
    the usual layout, `${{package.name}}` replaced): a best guess, so that packages needing a broken YAML fail
    with it rather than silently taking the need from the repositories."""
    names: List[str] = []
    section = ""
    for line in text.splitlines():
        top = _TOP_KEY.match(line)
        if top:
            section = top.group(1)
            continue
        m = (_PACKAGE_NAME if section == "package" else _SUBPACKAGE_NAME).match(line)
        if m and section in ("package", "subpackages"):
            names.append(m.group(1))
    package = names[0] if names and section else ""
    out = {n.replace("${{package.name}}", package) for n in names}
    return tuple(sorted(n for n in out if "${{" not in n))
