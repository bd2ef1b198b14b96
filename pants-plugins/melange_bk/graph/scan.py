"""Reduce a melange YAML to a `PackageNode`: fast enough to run in-process for every YAML of a repository.

Only what the graph needs is read: package name/provides/provider-priority, subpackage names (with `range:`
expansion and `${{package.name}}`/`${{vars.*}}`/`${{range.*}}` in names), build needs and test needs with their
line numbers. Full validation is the compiler's job (`melange_bk.plan.compile`).
"""

from __future__ import annotations

from typing import Dict, Iterator, List, Optional, Tuple

import yaml

from melange_bk.config import limits
from melange_bk.config.subst import SubstitutionError, substitute
from melange_bk.config.yamlsrc import compose
from melange_bk.errors import ConfigError
from melange_bk.graph.model import PackageNode, strip_constraint


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


def _subst(text: str, values: Dict[str, str], path: str, line: int) -> str:
    """The compiler's substitution, leaving unknown names as written."""
    try:
        return substitute(text, values, strict=False)
    except SubstitutionError as e:  # only ValueTooLong when not strict
        raise ConfigError(e.message, path=path, line=line) from None


@limits.substitution_budget
def scan_yaml(path: str, text: str) -> PackageNode:
    """`path` is the repository-relative path used in messages and as the node's identity."""
    root = compose(path, text)  # the compiler's: same errors for the same YAML
    package = _get(root, "package")
    name = _scalar(_get(package, "name"))
    if not name:
        raise ConfigError("package.name is missing", path=path, line=(package or root).start_mark.line + 1)
    values: Dict[str, str] = {"package.name": name}
    version = _scalar(_get(package, "version"))
    if version:
        values["package.version"] = version
    vars_node = _get(root, "vars")
    if isinstance(vars_node, yaml.MappingNode):
        for k, v in vars_node.value:
            if isinstance(k, yaml.ScalarNode) and isinstance(v, yaml.ScalarNode):
                values[f"vars.{k.value}"] = _subst(v.value, values, path, k.start_mark.line + 1)

    provides: List[str] = [name]
    build: List[Tuple[str, int]] = []
    test: List[Tuple[str, int]] = []

    def add_provides(pkg: Optional[yaml.Node], extra: Dict[str, str]) -> None:
        for dep, line in _scalars(_get(_get(pkg, "dependencies"), "provides")):
            stripped = strip_constraint(_subst(dep, extra, path, line))
            if stripped:
                provides.append(stripped)

    def add_needs(section: Optional[yaml.Node], out: List[Tuple[str, int]], extra: Dict[str, str]) -> None:
        env = _get(_get(section, "environment"), "contents")
        out.extend((_subst(n, extra, path, line), line) for n, line in _scalars(_get(env, "packages")))
        for step in _steps(_get(section, "pipeline")):
            out.extend(
                (_subst(n, extra, path, line), line)
                for n, line in _scalars(_get(_get(step, "needs"), "packages"))
            )

    add_provides(package, values)
    add_needs(root, build, values)
    add_needs(_get(root, "test"), test, values)

    subpackages = _get(root, "subpackages")
    budget = limits.RangeBudget(path)
    if isinstance(subpackages, yaml.SequenceNode):
        for sub in subpackages.value:
            for extra in _range_values(root, sub, values, budget):
                sub_name = _scalar(_get(sub, "name"))
                if sub_name:
                    provides.append(_subst(sub_name, extra, path, sub.start_mark.line + 1))
                add_provides(sub, extra)
                # subpackage pipelines run in the same build: their needs are build needs
                for step in _steps(_get(sub, "pipeline")):
                    build.extend(
                        (_subst(n, extra, path, line), line)
                        for n, line in _scalars(_get(_get(step, "needs"), "packages"))
                    )
                add_needs(_get(sub, "test"), test, extra)

    priority = _scalar(_get(_get(package, "dependencies"), "provider-priority")) or "0"
    try:
        provider_priority = int(priority)
    except ValueError:
        raise ConfigError(
            f"package.dependencies.provider-priority must be an integer, not {priority!r}", path=path
        ) from None
    return PackageNode(
        path=path,
        name=name,
        provides=tuple(sorted(set(provides))),
        build_needs=tuple(n for n, _ in build),
        test_needs=tuple(n for n, _ in test),
        provider_priority=provider_priority,
        need_lines=tuple((strip_constraint(n) or n, line) for n, line in (*build, *test)),
    )


def _range_values(
    root: yaml.Node, sub: yaml.Node, values: Dict[str, str], budget: limits.RangeBudget
) -> Iterator[Dict[str, str]]:
    """One substitution map per expanded subpackage (a single one when there is no `range:`)."""
    range_name = _scalar(_get(sub, "range"))
    if not range_name:
        budget.add(sub.start_mark.line + 1, 1, sub)
        yield values
        return
    data = _get(root, "data")
    if isinstance(data, yaml.SequenceNode):
        for entry in data.value:
            if _scalar(_get(entry, "name")) == range_name:
                items = _get(entry, "items")
                if isinstance(items, yaml.MappingNode):
                    budget.add(sub.start_mark.line + 1, len(items.value), sub)
                    for k, v in sorted(((k.value, _scalar(v) or "") for k, v in items.value)):
                        yield {**values, "range.key": k, "range.value": v}
                return
