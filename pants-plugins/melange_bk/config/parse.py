"""Decode a melange YAML strictly into `model.Configuration` (phase one of melange's two-phase substitution).

Phase one replaces only `package.*`, `vars.*` (after var-transforms) and, inside `range:` subpackages,
`range.key`/`range.value`; any other `${{...}}` is left for the pipeline compiler, which resolves everything and
rejects unknown names.
"""

from __future__ import annotations

import re
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

from melange_bk.config import arch as arch_mod
from melange_bk.config.model import (
    Accounts,
    Configuration,
    Copyright,
    Dependencies,
    Environment,
    Group,
    Input,
    Package,
    PackageOptions,
    Resources,
    Scriptlets,
    Step,
    Subpackage,
    Test,
    User,
    VarTransform,
)
from melange_bk.config.subst import SubstitutionError, substitute
from melange_bk.config.transforms import replace_all
from melange_bk.config.yamlsrc import Src, compose, line_of, one_line, scalar_content_line, to_plain
from melange_bk.errors import ConfigError

PACKAGE_NAME = re.compile(r"^[a-zA-Z\d][a-zA-Z\d+_.-]*$")
# The version is part of the .apk file names: never a path separator, `..` only inside a word, no whitespace.
PACKAGE_VERSION = re.compile(r"^[a-zA-Z\d][a-zA-Z\d+_.~-]*$")
WORKDIR = "/home/build"
OUTDIR = "/home/build/melange-out"

_TOP = frozenset(
    (
        "package",
        "environment",
        "pipeline",
        "subpackages",
        "data",
        "update",
        "vars",
        "var-transforms",
        "options",
        "test",
    )
)
_TOP_IGNORED = frozenset(("capabilities",))
_PACKAGE = frozenset(
    (
        "name",
        "version",
        "epoch",
        "description",
        "url",
        "commit",
        "copyright",
        "dependencies",
        "options",
        "scriptlets",
        "target-architecture",
        "timeout",
        "resources",
        "test-resources",
    )
)
_PACKAGE_IGNORED = frozenset(("annotations", "checks", "cpe", "setcap"))
_STEP = frozenset(
    (
        "name",
        "uses",
        "with",
        "runs",
        "if",
        "working-directory",
        "environment",
        "pipeline",
        "needs",
        "label",
        "assertions",
        "inputs",
    )
)
_PIPELINE_FILE_STEP = _STEP | {"description"}
_SUBPACKAGE = frozenset(
    (
        "if",
        "range",
        "name",
        "pipeline",
        "dependencies",
        "options",
        "scriptlets",
        "description",
        "url",
        "commit",
        "test",
    )
)
_SUBPACKAGE_IGNORED = frozenset(("annotations", "checks", "setcap"))
_DEPENDENCIES = frozenset(("runtime", "provides", "replaces", "provider-priority", "replaces-priority"))
_OPTIONS = frozenset(("no-provides", "no-depends", "no-commands", "no-versioned-shlib-deps"))
_SCRIPTLETS = frozenset(
    (
        "trigger",
        "pre-install",
        "post-install",
        "pre-deinstall",
        "post-deinstall",
        "pre-upgrade",
        "post-upgrade",
    )
)
_ENVIRONMENT = frozenset(("contents", "environment", "accounts"))
_ENVIRONMENT_IGNORED = frozenset(
    (
        "entrypoint",
        "cmd",
        "stop-signal",
        "work-dir",
        "archs",
        "paths",
        "vcs-url",
        "annotations",
        "include",
        "volumes",
    )
)
_CONTENTS = frozenset(("repositories", "build_repositories", "keyring", "packages"))
_CONTENTS_IGNORED = frozenset(("runtime_repositories", "baseimage"))


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


class _Decoder:
    def __init__(self, src: Src, ptmap: Mapping[str, str], step_keys: frozenset = _STEP) -> None:
        self.src = src
        self.ptmap = ptmap
        self.step_keys = step_keys

    def s(self, node: Optional[yaml.Node], where: str, default: str = "") -> str:
        value = self.src.string(node, where, default)
        return substitute(value, self.ptmap, strict=False) if self.ptmap else value

    def strs(self, node: Optional[yaml.Node], where: str) -> Tuple[str, ...]:
        values = self.src.strings(node, where)
        if self.ptmap:
            return tuple(substitute(v, self.ptmap, strict=False) for v, _ in values)
        return tuple(v for v, _ in values)

    def pairs(self, node: Optional[yaml.Node], where: str) -> Tuple[Tuple[str, str], ...]:
        return tuple(
            (k, substitute(v, self.ptmap, strict=False) if self.ptmap else v)
            for k, v, _ in self.src.string_map(node, where)
        )

    # -- pipeline steps ------------------------------------------------------------------------------------------
    def steps(self, node: Optional[yaml.Node], where: str) -> Tuple[Step, ...]:
        return tuple(self.step(n, f"{where}[{i}]") for i, n in enumerate(self.src.sequence(node, where)))

    def step(self, node: yaml.Node, where: str) -> Step:
        f = self.src.mapping(node, where, self.step_keys)
        needs = self.src.mapping(f.get("needs"), f"{where}.needs", frozenset(("packages",)))
        assertions = self.src.mapping(
            f.get("assertions"), f"{where}.assertions", frozenset(("required-steps",))
        )
        with_ = tuple(
            (k, substitute(v, self.ptmap, strict=False) if self.ptmap else v, line)
            for k, v, line in self.src.string_map(f.get("with"), f"{where}.with")
        )
        runs_node = f.get("runs")
        step = Step(
            line=line_of(node),
            name=self.s(f.get("name"), f"{where}.name"),
            uses=self.src.string(f.get("uses"), f"{where}.uses"),
            with_=with_,
            runs=self.s(runs_node, f"{where}.runs"),
            runs_line=scalar_content_line(runs_node) if runs_node is not None else line_of(node),
            if_=self.s(f.get("if"), f"{where}.if"),
            working_directory=self.s(f.get("working-directory"), f"{where}.working-directory"),
            environment=self.pairs(f.get("environment"), f"{where}.environment"),
            needs=self.strs(needs.get("packages"), f"{where}.needs.packages"),
            label=self.src.string(f.get("label"), f"{where}.label"),
            required_steps=(
                self.src.integer(assertions["required-steps"], f"{where}.assertions.required-steps")
                if "required-steps" in assertions
                else None
            ),
            pipeline=self.steps(f.get("pipeline"), f"{where}.pipeline"),
            inputs=self.inputs(f.get("inputs"), f"{where}.inputs"),
        )
        if "with" in f and not step.uses:
            raise self.src.error("pipeline step has `with:` but no `uses:`", node)
        if step.uses and "runs" in f:
            raise self.src.error(f"pipeline step cannot have both `uses: {step.uses}` and `runs:`", node)
        if with_ and "runs" in f:
            raise self.src.error("pipeline step cannot have both `with:` and `runs:`", node)
        return step

    def inputs(self, node: Optional[yaml.Node], where: str) -> Tuple[Input, ...]:
        if node is None:
            return ()
        out = []
        if not isinstance(node, yaml.MappingNode):
            raise self.src.error(f"{where}: expected a mapping", node)
        for k, v in node.value:
            name = self.src.string(k, where)
            f = self.src.mapping(v, f"{where}.{name}", frozenset(("description", "default", "required")))
            out.append(
                Input(
                    name=name,
                    default=self.src.string(f.get("default"), f"{where}.{name}.default"),
                    required=self.src.boolean(f.get("required"), f"{where}.{name}.required"),
                    description=self.src.string(f.get("description"), f"{where}.{name}.description"),
                )
            )
        return tuple(out)

    # -- package metadata ----------------------------------------------------------------------------------------
    def dependencies(self, node: Optional[yaml.Node], where: str) -> Dependencies:
        f = self.src.mapping(node, where, _DEPENDENCIES)
        deps = Dependencies(
            runtime=self.strs(f.get("runtime"), f"{where}.runtime"),
            provides=self.strs(f.get("provides"), f"{where}.provides"),
            replaces=self.strs(f.get("replaces"), f"{where}.replaces"),
            provider_priority=self.s(f.get("provider-priority"), f"{where}.provider-priority"),
            replaces_priority=self.s(f.get("replaces-priority"), f"{where}.replaces-priority"),
        )
        for key in ("provider-priority", "replaces-priority"):
            value = getattr(deps, key.replace("-", "_"))
            if value and not re.fullmatch(r"-?\d+", value):
                raise self.src.error(f"{where}.{key} must be an integer, not {value!r}", f[key])
        return deps

    def options(self, node: Optional[yaml.Node], where: str) -> PackageOptions:
        f = self.src.mapping(node, where, _OPTIONS)
        return PackageOptions(
            **{k.replace("-", "_"): self.src.boolean(f.get(k), f"{where}.{k}") for k in sorted(_OPTIONS)}
        )

    def scriptlets(self, node: Optional[yaml.Node], where: str) -> Scriptlets:
        f = self.src.mapping(node, where, _SCRIPTLETS)
        trigger = self.src.mapping(f.get("trigger"), f"{where}.trigger", frozenset(("script", "paths")))
        return Scriptlets(
            trigger_script=self.s(trigger.get("script"), f"{where}.trigger.script"),
            trigger_paths=self.strs(trigger.get("paths"), f"{where}.trigger.paths"),
            **{
                k.replace("-", "_"): self.s(f.get(k), f"{where}.{k}")
                for k in sorted(_SCRIPTLETS)
                if k != "trigger"
            },
        )

    def resources(self, node: Optional[yaml.Node], where: str) -> Resources:
        keys = ("cpu", "cpumodel", "memory", "disk")
        f = self.src.mapping(node, where, frozenset(keys))
        return Resources(**{k: self.src.string(f.get(k), f"{where}.{k}") for k in keys})

    def copyright(self, node: Optional[yaml.Node], where: str) -> Tuple[Copyright, ...]:
        out = []
        for i, item in enumerate(self.src.sequence(node, where)):
            w = f"{where}[{i}]"
            f = self.src.mapping(
                item,
                w,
                frozenset(("license", "paths", "attestation", "license-path")),
                frozenset(("detection-override",)),
            )
            out.append(
                Copyright(
                    license=self.s(f.get("license"), f"{w}.license"),
                    paths=self.strs(f.get("paths"), f"{w}.paths"),
                    attestation=self.s(f.get("attestation"), f"{w}.attestation"),
                    license_path=self.s(f.get("license-path"), f"{w}.license-path"),
                )
            )
        return tuple(out)

    # -- environments --------------------------------------------------------------------------------------------
    def environment(self, node: Optional[yaml.Node], where: str) -> Environment:
        f = self.src.mapping(node, where, _ENVIRONMENT, _ENVIRONMENT_IGNORED)
        contents = self.src.mapping(f.get("contents"), f"{where}.contents", _CONTENTS, _CONTENTS_IGNORED)
        repositories = self.strs(contents.get("repositories"), f"{where}.contents.repositories")
        repositories += self.strs(contents.get("build_repositories"), f"{where}.contents.build_repositories")
        return Environment(
            repositories=repositories,
            keyring=self.strs(contents.get("keyring"), f"{where}.contents.keyring"),
            packages=self.strs(contents.get("packages"), f"{where}.contents.packages"),
            environment=self.pairs(f.get("environment"), f"{where}.environment"),
            accounts=self.accounts(f.get("accounts"), f"{where}.accounts"),
        )

    def accounts(self, node: Optional[yaml.Node], where: str) -> Accounts:
        f = self.src.mapping(node, where, frozenset(("run-as", "users", "groups")))
        users = []
        for i, item in enumerate(self.src.sequence(f.get("users"), f"{where}.users")):
            w = f"{where}.users[{i}]"
            u = self.src.mapping(item, w, frozenset(("username", "uid", "gid", "shell", "homedir")))
            users.append(
                User(
                    username=self.src.string(u.get("username"), f"{w}.username"),
                    uid=self.src.integer(u["uid"], f"{w}.uid") if "uid" in u else None,
                    gid=self.src.integer(u["gid"], f"{w}.gid") if "gid" in u else None,
                    shell=self.src.string(u.get("shell"), f"{w}.shell"),
                    homedir=self.src.string(u.get("homedir"), f"{w}.homedir"),
                )
            )
        groups = []
        for i, item in enumerate(self.src.sequence(f.get("groups"), f"{where}.groups")):
            w = f"{where}.groups[{i}]"
            g = self.src.mapping(item, w, frozenset(("groupname", "gid", "members")))
            groups.append(
                Group(
                    groupname=self.src.string(g.get("groupname"), f"{w}.groupname"),
                    gid=self.src.integer(g["gid"], f"{w}.gid") if "gid" in g else None,
                    members=tuple(v for v, _ in self.src.strings(g.get("members"), f"{w}.members")),
                )
            )
        return Accounts(
            run_as=self.src.string(f.get("run-as"), f"{where}.run-as"),
            users=tuple(users),
            groups=tuple(groups),
        )

    def test(self, node: Optional[yaml.Node], where: str) -> Optional[Test]:
        if node is None:
            return None
        f = self.src.mapping(node, where, frozenset(("environment", "pipeline")))
        return Test(
            environment=self.environment(f.get("environment"), f"{where}.environment"),
            pipeline=self.steps(f.get("pipeline"), f"{where}.pipeline"),
            line=line_of(node),
        )

    def subpackage(self, node: yaml.Node, where: str, range_key: Optional[str]) -> Subpackage:
        f = self.src.mapping(node, where, _SUBPACKAGE, _SUBPACKAGE_IGNORED)
        name = self.s(f.get("name"), f"{where}.name")
        if not name:
            raise self.src.error(f"{where}: subpackage name is missing", node)
        return Subpackage(
            name=name,
            line=line_of(node),
            if_=self.s(f.get("if"), f"{where}.if"),
            description=self.s(f.get("description"), f"{where}.description"),
            url=self.s(f.get("url"), f"{where}.url"),
            commit=self.s(f.get("commit"), f"{where}.commit"),
            dependencies=self.dependencies(f.get("dependencies"), f"{where}.dependencies"),
            options=self.options(f.get("options"), f"{where}.options"),
            scriptlets=self.scriptlets(f.get("scriptlets"), f"{where}.scriptlets"),
            pipeline=self.steps(f.get("pipeline"), f"{where}.pipeline"),
            test=self.test(f.get("test"), f"{where}.test"),
            range_key=range_key,
        )


def decode_steps(src: Src, node: Optional[yaml.Node], where: str) -> Tuple[Step, ...]:
    """Steps of a pipeline definition file (no parse-time substitution)."""
    return _Decoder(src, {}, _PIPELINE_FILE_STEP).steps(node, where)


def decode_step_fields(src: Src, node: yaml.Node, where: str) -> Step:
    """The top level of a pipeline definition file (`description:` is documentation, accepted anywhere)."""
    return _Decoder(src, {}, _PIPELINE_FILE_STEP).step(node, where)


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
    top = src.mapping(root, "top level", _TOP, _TOP_IGNORED)

    pkg_node = top.get("package")
    if pkg_node is None:
        raise src.error("package is missing", line=1)
    pf = src.mapping(pkg_node, "package", _PACKAGE, _PACKAGE_IGNORED)
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
    vars_ = _resolve_vars(src, top, base, extra_vars)

    ptmap = {
        "package.name": name,
        "package.version": version,
        "package.epoch": str(epoch),
        "package.full-version": f"{version}-r{epoch}",
        "package.description": description,
    }
    ptmap.update((f"vars.{k}", v) for k, v in vars_)
    dec = _Decoder(src, ptmap)

    package = Package(
        name=dec.s(pf.get("name"), "package.name"),
        version=dec.s(pf.get("version"), "package.version"),
        epoch=epoch,
        line=line_of(pkg_node),
        description=dec.s(pf.get("description"), "package.description"),
        url=dec.s(pf.get("url"), "package.url"),
        commit=dec.s(pf.get("commit"), "package.commit"),
        copyright=dec.copyright(pf.get("copyright"), "package.copyright"),
        dependencies=dec.dependencies(pf.get("dependencies"), "package.dependencies"),
        options=dec.options(pf.get("options"), "package.options"),
        scriptlets=dec.scriptlets(pf.get("scriptlets"), "package.scriptlets"),
        target_architecture=dec.strs(pf.get("target-architecture"), "package.target-architecture"),
        timeout=src.string(pf.get("timeout"), "package.timeout"),
        resources=dec.resources(pf.get("resources"), "package.resources"),
        test_resources=dec.resources(pf.get("test-resources"), "package.test-resources"),
    )
    if not PACKAGE_NAME.match(package.name):
        raise src.error(f"package.name {package.name!r} is not a valid package name", pf.get("name"))
    if not PACKAGE_VERSION.match(package.version):
        raise src.error(
            f"package.version {package.version!r} is not a valid package version (letters, digits and + _ . ~ -, "
            "starting with a letter or digit)",
            pf.get("version"),
        )

    data = _data(src, top.get("data"))
    subpackages: List[Subpackage] = []
    seen: Dict[str, int] = {package.name: package.line}
    for i, node in enumerate(src.sequence(top.get("subpackages"), "subpackages")):
        where = f"subpackages[{i}]"
        sf = src.mapping(node, where, _SUBPACKAGE, _SUBPACKAGE_IGNORED)
        range_name = src.string(sf.get("range"), f"{where}.range")
        if range_name:
            if range_name not in data:
                raise src.error(f"{where} uses undefined range {range_name!r}", sf["range"])
            expanded = []
            for key, value in sorted(data[range_name]):
                rdec = _Decoder(src, {**ptmap, "range.key": key, "range.value": value})
                expanded.append(rdec.subpackage(node, where, key))
        else:
            expanded = [dec.subpackage(node, where, None)]
        for sub in expanded:
            if not PACKAGE_NAME.match(sub.name):
                raise src.error(f"subpackage name {sub.name!r} is not a valid package name", line=sub.line)
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
        environment=dec.environment(top.get("environment"), "environment"),
        pipeline=dec.steps(top.get("pipeline"), "pipeline"),
        subpackages=tuple(subpackages),
        vars=tuple(vars_),
        test=dec.test(top.get("test"), "test"),
        build_options=build_options,
        update=to_plain(top.get("update")),
    )


def _option_names(src: Src, node: Optional[yaml.Node]):
    if node is None:
        return []
    if not isinstance(node, yaml.MappingNode):
        raise src.error("options: expected a mapping", node)
    from melange_bk.config.yamlsrc import warn_once

    warn_once("options", "melange-bk ignores the contents of build `options:` (all are disabled)")
    return [(src.string(k, "options"), "", line_of(k)) for k, _ in node.value]


def _resolve_vars(
    src: Src, top: Dict[str, yaml.Node], base: Dict[str, str], extra_vars: Sequence[Tuple[str, str]]
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

    for i, node in enumerate(src.sequence(top.get("var-transforms"), "var-transforms")):
        where = f"var-transforms[{i}]"
        f = src.mapping(node, where, frozenset(("from", "match", "replace", "to")))
        vt = VarTransform(
            from_=src.string(f.get("from"), f"{where}.from"),
            match=src.string(f.get("match"), f"{where}.match"),
            replace=src.string(f.get("replace"), f"{where}.replace"),
            to=src.string(f.get("to"), f"{where}.to"),
            line=line_of(node),
        )
        if not vt.to:
            raise src.error(f"{where}: `to` is missing", node)
        try:
            source = substitute(vt.from_, scope, strict=True)
        except SubstitutionError as e:
            raise src.error(f"{where}.from: {e.message}", node) from None
        try:
            value = replace_all(vt.match, source, vt.replace)
        except re.error as e:
            raise src.error(
                f"{where}.match: {vt.match!r} is not a valid regular expression: {e}", node
            ) from None
        scope[f"vars.{vt.to}"] = value
        out = [(k, v) for k, v in out if k != vt.to]
        out.append((vt.to, value))
    return out


def _data(src: Src, node: Optional[yaml.Node]) -> Dict[str, List[Tuple[str, str]]]:
    out: Dict[str, List[Tuple[str, str]]] = {}
    for i, item in enumerate(src.sequence(node, "data")):
        where = f"data[{i}]"
        f = src.mapping(item, where, frozenset(("name", "items")))
        name = src.string(f.get("name"), f"{where}.name")
        if not name:
            raise src.error(f"{where}: name is missing", item)
        if name in out:
            raise src.error(f"{where}: duplicate range name {name!r}", item)
        out[name] = [(k, v) for k, v, _ in src.string_map(f.get("items"), f"{where}.items")]
    return out
