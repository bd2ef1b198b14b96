"""Phase two of reading a melange YAML (phase one is `melange_bk.config.parse`): resolve `uses:`, check `with:`
against declared inputs, substitute everything strictly, evaluate `if:`, and produce the `BuildPlan`.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import re
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from melange_bk.config import cond
from melange_bk.config import model as m
from melange_bk.config.arch import normalize
from melange_bk.config.parse import OUTDIR, base_substitutions, parse_config
from melange_bk.config.pipelines import Resolver
from melange_bk.config.subst import SubstitutionError, substitute
from melange_bk.config.yamlsrc import one_line, read_text
from melange_bk.errors import ConfigError
from melange_bk.plan import model as p

_DEFAULT_ENV = (
    ("HOME", "/home/build"),
    ("GOPATH", "/home/build/.cache/go"),
    ("GOMODCACHE", "/var/cache/melange/gomodcache"),
    ("UV_CACHE_DIR", "/var/cache/melange/uv"),
    ("PIP_CACHE_DIR", "/var/cache/melange/pip"),
    ("COMPOSER_CACHE_DIR", "/var/cache/melange/composer"),
    ("npm_config_cache", "/var/cache/melange/npm"),
)
_HEX = re.compile(r"^[0-9a-fA-F]*$")
_SHA_LENGTHS = {"expected-sha256": 64, "expected-sha512": 128, "expected-commit": 40}


class _Compiler:
    def __init__(self, cfg: m.Configuration, resolver: Resolver) -> None:
        self.cfg = cfg
        self.path = cfg.path
        self.resolver = resolver

    def err(self, message: str, line: Optional[int]) -> ConfigError:
        return ConfigError(one_line(message), path=self.path, line=line)

    # ---------------------------------------------------------------------------------------------------------
    def steps(
        self, steps: Sequence[m.Step], sm: Mapping[str, str], label: str, env: Mapping[str, str]
    ) -> Tuple[Tuple[p.Step, ...], List[str]]:
        out: List[p.Step] = []
        needs: List[str] = []
        for i, step in enumerate(steps, 1):
            self._step(step, str(i), label, sm, None, "", dict(env), (), None, "", out, needs)
        return tuple(out), needs

    def _step(
        self,
        step: m.Step,
        sid: str,
        label: str,
        sm: Mapping[str, str],
        parent_scope: Optional[Mapping[str, str]],
        parent_workdir: str,
        env: Dict[str, str],
        inherited_needs: Tuple[str, ...],
        user_line: Optional[int],
        parent_uses: str,
        out: List[p.Step],
        needs_out: List[str],
        parent_name: str = "",
    ) -> bool:
        """Compile one step and its children into `out`; False when its `if:` is false."""
        in_user_file = user_line is None
        line = step.line if in_user_file else user_line
        what = f"{label} step {sid}"
        if not in_user_file:
            what += f" (in {parent_uses})"

        body = step
        uses = ""
        defn = None
        if step.uses and not step.pipeline:
            uses = step.uses
            try:
                defn = self.resolver.resolve(uses)
            except ConfigError as e:
                if e.path:  # a broken pipeline definition: point at it
                    raise
                raise self.err(f"{what}: {e.message}", line) from None
            if defn is None:
                raise self.err(f'{what} uses unknown pipeline "{uses}"', line)
            body = defn.step
        declared = {i.name: i for i in body.inputs}
        with_map: Dict[str, str] = {}
        for k, v, wline in step.with_:
            if defn is not None and k not in declared:
                known = ", ".join(sorted(declared)) or "none"
                raise self.err(
                    f'{what}: unknown input "{k}" for pipeline "{uses}" (inputs: {known})',
                    wline if in_user_file else line,
                )
            with_map[k] = v

        scope: Dict[str, str] = dict(parent_scope if parent_scope is not None else sm)
        raw: Dict[str, str] = {}
        for name in sorted(declared):
            decl = declared[name]
            value = with_map.get(name, "")
            if value == "":
                value = decl.default
            if decl.required and value == "":
                raise self.err(f'{what}: pipeline "{uses}" requires input "{name}"', line)
            raw[name] = substitute(value, scope, strict=False)
        for name, value in raw.items():
            scope[f"inputs.{name}"] = value
        for name in raw:
            scope[f"inputs.{name}"] = self._resolve(scope, f"inputs.{name}", what, line)
        for name, length in _SHA_LENGTHS.items():
            value = scope.get(f"inputs.{name}", "") if name in raw else ""
            if value and (len(value) != length or not _HEX.match(value)):
                raise self.err(
                    f'{what}: input "{name}" must be {length} hexadecimal digits, not "{value}"', line
                )
        source = self._source(uses, defn is not None and defn.builtin, scope, what, line)

        def subst(text: str, field: str, base_line: Optional[int] = None) -> str:
            try:
                return substitute(text, scope, strict=True)
            except SubstitutionError as e:
                at = line
                if in_user_file and base_line is not None:
                    at = base_line + text[: e.offset].count("\n")
                raise self.err(f"{what}: {e.message} in {field}", at) from None

        if body.if_:
            try:
                expr = cond.parse(body.if_)
            except cond.ConditionError as e:
                raise self.err(f"{what}: bad if: condition {body.if_!r}: {e}", line) from None

            def lookup(name: str) -> str:
                value = scope.get(name)
                if value is None:
                    raise self.err(f'{what}: undefined variable "{name}" in if:', line)
                return value

            try:
                if not cond.evaluate(expr, lookup):
                    return False
            except SubstitutionError as e:
                raise self.err(f"{what}: {e.message} in if:", line) from None

        workdir = parent_workdir
        wd_raw = body.working_directory or (step.working_directory if defn is not None else "")
        if wd_raw:
            workdir = subst(wd_raw, "working-directory")
            if not workdir.startswith("/"):
                workdir = posixpath.normpath(posixpath.join(p.WORKDIR, workdir))
        step_env = dict(env)
        for k, v in step.environment if defn is not None else ():
            step_env[k] = subst(v, f"environment.{k}")
        for k, v in body.environment:
            step_env[k] = subst(v, f"environment.{k}")
        needs = tuple(subst(n, "needs.packages") for n in body.needs)
        needs_out.extend(needs)
        all_needs = tuple(sorted(set(inherited_needs) | set(needs)))
        runs = subst(body.runs, "runs", body.runs_line) if body.runs else ""
        name = substitute(step.name, scope, strict=False) or uses or parent_name
        this_uses = uses or parent_uses
        start = len(out)
        if runs.strip():
            out.append(
                p.Step(
                    id=sid,
                    name=name,
                    uses=this_uses,
                    line=line,
                    runs=runs,
                    workdir=workdir or p.WORKDIR,
                    env=tuple(sorted(step_env.items())),
                    needs=all_needs,
                    source=source,
                )
            )
            source = None
        ran = 0
        child_line = None if (in_user_file and defn is None) else line
        for j, child in enumerate(body.pipeline, 1):
            if self._step(
                child,
                f"{sid}.{j}",
                label,
                sm,
                scope,
                workdir,
                step_env,
                all_needs,
                child_line,
                this_uses,
                out,
                needs_out,
                name,
            ):
                ran += 1
        if source is not None and len(out) > start:  # the source belongs to the first script it produced
            out[start] = dataclasses.replace(out[start], source=source)
        elif source is not None:  # no script at all: a no-op step carries it
            out.append(
                p.Step(
                    sid,
                    name,
                    this_uses,
                    line,
                    ":",
                    workdir or p.WORKDIR,
                    tuple(sorted(step_env.items())),
                    all_needs,
                    source,
                )
            )
        if body.required_steps is not None and ran != body.required_steps:
            raise self.err(
                f"{what}: assertions.required-steps is {body.required_steps} but {ran} step(s) would run",
                line,
            )
        return True

    def _resolve(
        self, scope: Dict[str, str], key: str, what: str, line: Optional[int], depth: int = 0
    ) -> str:
        value = scope[key]
        if "${{" not in value:
            return value
        if depth > 16:
            raise self.err(f'{what}: input "{key}" refers to itself', line)

        def fallback(name: str) -> Optional[str]:
            return None

        try:
            result = substitute(value, scope, strict=True, fallback=fallback)
        except SubstitutionError as e:
            raise self.err(f"{what}: {e.message} in with: {key[len('inputs.'):]}", line) from None
        scope[key] = result
        return self._resolve(scope, key, what, line, depth + 1) if "${{" in result else result

    def _source(self, uses: str, builtin: bool, scope: Mapping[str, str], what: str, line: Optional[int]):
        def get(name: str) -> str:
            return scope.get(f"inputs.{name}", "")

        if uses == "fetch":
            if not get("expected-sha256") and not get("expected-sha512"):
                raise self.err(
                    f"{what}: fetch needs expected-sha256 or expected-sha512 (checksums are required)", line
                )
            if not builtin:
                return None
            uri = get("uri")
            try:
                strip = int(get("strip-components") or "0")
            except ValueError:
                raise self.err(f"{what}: strip-components must be an integer", line) from None
            return p.HttpSource(
                uri=uri,
                sha256=get("expected-sha256"),
                sha512=get("expected-sha512"),
                filename=posixpath.basename(uri.split("?", 1)[0]),
                directory=get("directory"),
                extract=get("extract").lower() == "true",
                strip_components=strip,
                delete=get("delete").lower() == "true",
            )
        if uses == "git-checkout":
            if not get("expected-commit"):
                raise self.err(
                    f"{what}: git-checkout needs expected-commit (a pinned commit is required)", line
                )
            if not builtin:
                return None
            # The built-in pipeline's step runs with the network off, like every step: what needs the remote
            # after the daemon-side checkout cannot work there, so it is refused here rather than failing there.
            if get("cherry-picks").strip():
                raise self.err(
                    f"{what}: git-checkout cherry-picks are not supported (build steps have no network to fetch "
                    "the picked commits): apply them as patches with uses: patch",
                    line,
                )
            if get("expected-commit-is-branch-tip").lower() == "true":
                raise self.err(
                    f"{what}: git-checkout expected-commit-is-branch-tip is not supported (build steps have no "
                    "network to ask the remote for the branch tip)",
                    line,
                )
            return p.GitSource(
                repository=get("repository"),
                commit=get("expected-commit"),
                tag=get("tag"),
                branch=get("branch"),
                destination=get("destination"),
                depth=get("depth"),
                recurse_submodules=get("recurse-submodules").lower() == "true",
            )
        return None

    # ---------------------------------------------------------------------------------------------------------
    def environment(
        self, env: m.Environment, extra_packages: Sequence[str], defaults: Sequence[Tuple[str, str]]
    ) -> p.Environment:
        variables = dict(defaults)
        variables.update(env.environment)
        users = [p.User(u.username, u.uid, u.gid, u.shell, u.homedir) for u in env.accounts.users]
        groups = [p.Group(g.groupname, g.gid, g.members) for g in env.accounts.groups]
        if not any(g.groupname == "build" for g in groups):
            groups.append(p.Group("build", 1000, ("build",)))
        if not any(u.username == "build" for u in users):
            users.append(p.User("build", 1000, 1000))
        return p.Environment(
            repositories=env.repositories,
            keyring=env.keyring,
            packages=tuple(sorted(set(env.packages) | set(extra_packages))),
            env=tuple(sorted(variables.items())),
            accounts=p.Accounts(env.accounts.run_as, tuple(users), tuple(groups)),
        )

    def test(
        self, test: Optional[m.Test], sm: Mapping[str, str], label: str, package: str
    ) -> Optional[p.Test]:
        if test is None:
            return None
        env = dict(test.environment.environment)
        env["PATH"] = p.PATH
        steps, needs = self.steps(test.pipeline, sm, label, env)
        return p.Test(self.environment(test.environment, [*needs, package], ()), steps)

    def plan(self, arch: str) -> p.BuildPlan:
        cfg = self.cfg
        pkg = cfg.package
        sm = base_substitutions(pkg.name, pkg.version, str(pkg.epoch), pkg.description, arch)
        sm.update((f"vars.{k}", v) for k, v in cfg.vars)
        for name in [pkg.name, *(s.name for s in cfg.subpackages)]:
            sm[f"targets.package.{name}"] = f"{OUTDIR}/{name}"
        for opt in cfg.build_options:
            sm[f"options.{opt}.enabled"] = "false"

        build_env = dict(_DEFAULT_ENV)
        build_env.update(cfg.environment.environment)
        build_env["PATH"] = p.PATH
        steps, needs = self.steps(cfg.pipeline, sm, "pipeline", build_env)

        subpackages = []
        for sub in cfg.subpackages:
            ssm = dict(sm)
            ssm.update(
                {
                    "subpkg.name": sub.name,
                    "context.name": sub.name,
                    "targets.subpkgdir": f"{OUTDIR}/{sub.name}",
                    "targets.contextdir": f"{OUTDIR}/{sub.name}",
                }
            )
            label = f'subpackage "{sub.name}" pipeline'
            if sub.if_:
                try:
                    expr = cond.parse(substitute(sub.if_, {}, strict=False))

                    def lookup(name: str, _s: Mapping[str, str] = ssm, _sub: m.Subpackage = sub) -> str:
                        if name not in _s:
                            raise self.err(
                                f'subpackage "{_sub.name}": undefined variable "{name}" in if:', _sub.line
                            )
                        return _s[name]

                    enabled = cond.evaluate(expr, lookup)
                except cond.ConditionError as e:
                    raise self.err(
                        f'subpackage "{sub.name}": bad if: condition {sub.if_!r}: {e}', sub.line
                    ) from None
                if not enabled:
                    continue
            ssteps, sneeds = self.steps(sub.pipeline, ssm, label, build_env)
            needs.extend(sneeds)
            subpackages.append(
                p.Subpackage(
                    name=sub.name,
                    description=sub.description,
                    url=sub.url,
                    commit=sub.commit,
                    dependencies=sub.dependencies,
                    options=sub.options,
                    scriptlets=sub.scriptlets,
                    steps=ssteps,
                    test=self.test(sub.test, ssm, f'subpackage "{sub.name}" test pipeline', sub.name),
                )
            )

        return p.BuildPlan(
            file=os.path.basename(cfg.path),
            arch=sm["build.arch"],
            package=p.PackageInfo(
                name=pkg.name,
                version=pkg.version,
                epoch=pkg.epoch,
                full_version=pkg.full_version,
                description=pkg.description,
                url=pkg.url,
                commit=pkg.commit,
                copyright=pkg.copyright,
                dependencies=pkg.dependencies,
                options=pkg.options,
                scriptlets=pkg.scriptlets,
                target_architecture=pkg.target_architecture,
                timeout=pkg.timeout,
                resources=pkg.resources,
            ),
            vars=tuple(sorted(cfg.vars)),
            environment=self.environment(cfg.environment, needs, _DEFAULT_ENV),
            steps=steps,
            subpackages=tuple(subpackages),
            test=self.test(cfg.test, sm, "test pipeline", pkg.name),
        )


def compile_config(
    cfg: m.Configuration, *, arch: str = "x86_64", resolver: Optional[Resolver] = None
) -> p.BuildPlan:
    return _Compiler(cfg, resolver or Resolver()).plan(normalize(arch))


def compile_text(
    path: str,
    text: str,
    *,
    arch: str = "x86_64",
    pipeline_dirs: Sequence[str] = (),
    extra_vars: Sequence[Tuple[str, str]] = (),
    resolver: Optional[Resolver] = None,
) -> p.BuildPlan:
    """Parse and compile one melange YAML (`path` is used in messages; only its base name enters the plan)."""
    arch = normalize(arch)
    cfg = parse_config(path, text, arch=arch, extra_vars=extra_vars)
    return compile_config(cfg, arch=arch, resolver=resolver or Resolver(pipeline_dirs))


def compile_file(
    path: str,
    *,
    arch: str = "x86_64",
    pipeline_dirs: Sequence[str] = (),
    extra_vars: Sequence[Tuple[str, str]] = (),
    resolver: Optional[Resolver] = None,
) -> p.BuildPlan:
    return compile_text(
        path,
        read_text(path),
        arch=arch,
        pipeline_dirs=pipeline_dirs,
        extra_vars=extra_vars,
        resolver=resolver,
    )
