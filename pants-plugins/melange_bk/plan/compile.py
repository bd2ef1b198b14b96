"""Phase two of reading a melange YAML (phase one is `melange_bk.config.parse`): resolve `uses:`, check `with:`
against declared inputs, substitute everything strictly, evaluate `if:`, and produce the `BuildPlan`.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import re
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from melange_bk.config import cond, limits
from melange_bk.config import model as m
from melange_bk.config.arch import normalize
from melange_bk.config.parse import OUTDIR, base_substitutions, parse_config
from melange_bk.config.pipelines import PipelineDef, Resolver
from melange_bk.config.subst import SubstitutionError, substitute
from melange_bk.config.yamlsrc import one_line, quoted, read_text
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


@dataclasses.dataclass(frozen=True)
class _Frame:
    """What a step inherits from where it sits: its pipeline list, or the step (or `uses:`) it is nested in."""

    label: str  # the list it belongs to, for messages: "pipeline", "test pipeline", 'subpackage "x" pipeline'
    scope: Mapping[str, str]  # the substitutions it sees (its parent's, with the parent's inputs)
    env: Mapping[str, str]
    workdir: str = ""  # "" until a step sets one (a script then runs in p.WORKDIR)
    needs: Tuple[str, ...] = ()  # sorted: the enclosing steps' needs
    user_line: Optional[int] = None  # inside a pipeline definition: the line of the user's step that used it
    uses: str = ""  # the innermost enclosing `uses:`
    name: str = ""  # the enclosing step's name


@dataclasses.dataclass(frozen=True)
class _Call:
    """One step being compiled, its `uses:` resolved: `body` is what runs (the definition's step, or the step)."""

    step: m.Step
    sid: str  # position in the step tree, e.g. "3.1"
    body: m.Step
    uses: str  # "" for an inline step
    defn: Optional[PipelineDef]
    what: str  # for messages: 'pipeline step 3.1 (in autoconf/make)'
    line: Optional[int]  # the line of the user's file every message about this step points at
    in_user_file: bool


class _Compiler:
    def __init__(self, cfg: m.Configuration, resolver: Resolver) -> None:
        self.cfg = cfg
        self.path = cfg.path
        self.resolver = resolver
        self.counter = limits.StepCounter()

    def err(self, message: str, line: Optional[int]) -> ConfigError:
        return ConfigError(one_line(message), path=self.path, line=line)

    # ---------------------------------------------------------------------------------------------------------
    def steps(
        self, steps: Sequence[m.Step], sm: Mapping[str, str], label: str, env: Mapping[str, str]
    ) -> Tuple[Tuple[p.Step, ...], List[str]]:
        out: List[p.Step] = []
        needs: List[str] = []
        frame = _Frame(label=label, scope=sm, env=env)
        for i, step in enumerate(steps, 1):
            self._step(step, str(i), frame, out, needs)
        return tuple(out), needs

    def _step(self, step: m.Step, sid: str, frame: _Frame, out: List[p.Step], needs_out: List[str]) -> bool:
        """Compile one step and its children into `out` (their needs into `needs_out`); False when its `if:` is
        false."""
        call = self._call(step, sid, frame)
        # A `uses:` step's own `if:` holds in the caller's scope (the definition's `if:` is checked below).
        if (
            call.defn is not None
            and step.if_
            and not self._condition(step.if_, frame.scope, call.what, call.line)
        ):
            return False
        scope = self._bind_inputs(call, frame)
        source = self._source(
            call.uses, call.defn is not None and call.defn.builtin, scope, call.what, call.line
        )
        if call.body.if_ and not self._condition(call.body.if_, scope, call.what, call.line):
            return False
        self._emit(call, frame, scope, source, out, needs_out)
        return True

    def _call(self, step: m.Step, sid: str, frame: _Frame) -> _Call:
        """The step with its `uses:` resolved to a pipeline definition."""
        in_user_file = frame.user_line is None
        line = step.line if in_user_file else frame.user_line
        what = f"{frame.label} step {sid}" if in_user_file else f"{frame.label} step {sid} (in {frame.uses})"
        too_much = self.counter.count(sid.count(".") + 1)
        if too_much:
            raise self.err(f"{what}: {too_much}", line)
        if not step.uses or step.pipeline:
            return _Call(step, sid, step, "", None, what, line, in_user_file)
        try:
            defn = self.resolver.resolve(step.uses)
        except ConfigError as e:
            if e.path:  # a broken pipeline definition: point at it
                raise
            raise self.err(f"{what}: {e.message}", line) from None
        if defn is None:
            raise self.err(f'{what} uses unknown pipeline "{step.uses}"', line)
        return _Call(step, sid, defn.step, step.uses, defn, what, line, in_user_file)

    def _bind_inputs(self, call: _Call, frame: _Frame) -> Dict[str, str]:
        """The step's scope: its parent's, plus `inputs.*` from `with:` checked against the declared `inputs:`
        (defaults filled in, required ones present, references between inputs resolved, digests checked)."""
        declared = {i.name: i for i in call.body.inputs}
        with_map: Dict[str, str] = {}
        for k, v, wline in call.step.with_:
            if call.defn is not None and k not in declared:
                known = ", ".join(sorted(declared)) or "none"
                raise self.err(
                    f'{call.what}: unknown input "{k}" for pipeline "{call.uses}" (inputs: {known})',
                    wline if call.in_user_file else call.line,
                )
            with_map[k] = v

        scope: Dict[str, str] = dict(frame.scope)
        raw: Dict[str, str] = {}
        for name in sorted(declared):
            decl = declared[name]
            value = with_map.get(name, "")
            if value == "":
                value = decl.default
            if decl.required and value == "":
                raise self.err(f'{call.what}: pipeline "{call.uses}" requires input "{name}"', call.line)
            raw[name] = self._lenient(value, scope, call.what, call.line)
        for name, value in raw.items():
            scope[f"inputs.{name}"] = value
        for name in raw:
            scope[f"inputs.{name}"] = self._resolve(scope, f"inputs.{name}", call.what, call.line)
        for name, length in _SHA_LENGTHS.items():
            value = scope.get(f"inputs.{name}", "") if name in raw else ""
            if value and (len(value) != length or not _HEX.match(value)):
                raise self.err(
                    f'{call.what}: input "{name}" must be {length} hexadecimal digits, not "{value}"',
                    call.line,
                )
        return scope

    def _condition(self, text: str, scope: Mapping[str, str], what: str, line: Optional[int]) -> bool:
        """An `if:` (of a step or a subpackage) evaluated in `scope`; an undefined variable is an error."""
        try:
            expr = cond.parse(text)
        except cond.ConditionError as e:
            raise self.err(f"{what}: bad if: condition {quoted(text)}: {e}", line) from None

        def lookup(name: str) -> str:
            value = scope.get(name)
            if value is None:
                raise self.err(f'{what}: undefined variable "{name}" in if:', line)
            return value

        try:
            return cond.evaluate(expr, lookup)
        except SubstitutionError as e:
            raise self.err(f"{what}: {e.message} in if:", line) from None

    def _subst(
        self, call: _Call, scope: Mapping[str, str], text: str, field: str, base_line: Optional[int] = None
    ) -> str:
        """`text` substituted strictly; an error points at the line of the reference when it is in the user's
        file."""
        try:
            return substitute(text, scope, strict=True)
        except SubstitutionError as e:
            at = call.line
            if call.in_user_file and base_line is not None:
                at = base_line + text[: e.offset].count("\n")
            raise self.err(f"{call.what}: {e.message} in {field}", at) from None

    def _inner_frame(
        self, call: _Call, frame: _Frame, scope: Mapping[str, str], needs_out: List[str]
    ) -> _Frame:
        """Where the step's own script and its children run: working directory, environment, needs, name."""
        body = call.body
        workdir = frame.workdir
        wd_raw = body.working_directory or (call.step.working_directory if call.defn is not None else "")
        if wd_raw:
            workdir = self._subst(call, scope, wd_raw, "working-directory")
            if not workdir.startswith("/"):
                workdir = posixpath.normpath(posixpath.join(p.WORKDIR, workdir))
        env = dict(frame.env)
        for k, v in call.step.environment if call.defn is not None else ():
            env[k] = self._subst(call, scope, v, f"environment.{k}")
        for k, v in body.environment:
            env[k] = self._subst(call, scope, v, f"environment.{k}")
        needs = tuple(self._subst(call, scope, n, "needs.packages") for n in body.needs)
        needs_out.extend(needs)
        return _Frame(
            label=frame.label,
            scope=scope,
            env=env,
            workdir=workdir,
            needs=tuple(sorted(set(frame.needs) | set(needs))),
            user_line=None if (call.in_user_file and call.defn is None) else call.line,
            uses=call.uses or frame.uses,
            name=self._lenient(call.step.name, scope, call.what, call.line) or call.uses or frame.name,
        )

    def _emit(
        self,
        call: _Call,
        frame: _Frame,
        scope: Mapping[str, str],
        source: Optional[p.Source],
        out: List[p.Step],
        needs_out: List[str],
    ) -> None:
        """The step's script (if any), then its children's; the source goes with the first script produced."""
        inner = self._inner_frame(call, frame, scope, needs_out)
        body = call.body
        fetches = isinstance(source, p.GitSource) and bool(source.cherry_picks)
        runs = self._subst(call, scope, body.runs, "runs", body.runs_line) if body.runs else ""
        start = len(out)
        if runs.strip():
            out.append(self._script(call, inner, runs, source))
            source = None
        ran = 0
        for j, child in enumerate(body.pipeline, 1):
            if self._step(child, f"{call.sid}.{j}", inner, out, needs_out):
                ran += 1
        if fetches:  # a git-checkout's steps fetch the picked commits
            out[start:] = [dataclasses.replace(s, network=True) for s in out[start:]]
        if source is not None and len(out) > start:  # the source belongs to the first script it produced
            out[start] = dataclasses.replace(out[start], source=source)
        elif source is not None:  # no script at all: a no-op step carries it
            out.append(self._script(call, inner, ":", source))
        if body.required_steps is not None and ran != body.required_steps:
            raise self.err(
                f"{call.what}: assertions.required-steps is {body.required_steps} but {ran} step(s) would run",
                call.line,
            )

    @staticmethod
    def _script(call: _Call, inner: _Frame, runs: str, source: Optional[p.Source]) -> p.Step:
        return p.Step(
            id=call.sid,
            name=inner.name,
            uses=inner.uses,
            line=call.line,
            runs=runs,
            workdir=inner.workdir or p.WORKDIR,
            env=tuple(sorted(inner.env.items())),
            needs=inner.needs,
            source=source,
        )

    def _lenient(self, text: str, scope: Mapping[str, str], what: str, line: Optional[int]) -> str:
        try:
            return substitute(text, scope, strict=False)
        except SubstitutionError as e:  # only ValueTooLong when not strict
            raise self.err(f"{what}: {e.message}", line) from None

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

    def _source(
        self, uses: str, builtin: bool, scope: Mapping[str, str], what: str, line: Optional[int]
    ) -> Optional[p.Source]:
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
            # The daemon checks out expected-commit (shallow, no remote): the pipeline's step fetches the picked
            # commits itself, so it needs the network, which the build grants only when the user allows it.
            picks = self._cherry_picks(get("cherry-picks"), what, line)
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
                cherry_picks=picks,
            )
        return None

    def _cherry_picks(self, text: str, what: str, line: Optional[int]) -> Tuple[Tuple[str, str], ...]:
        """melange's `cherry-picks` lines, `[branch/]commit: comment` (`#` starts a comment; blank lines are
        skipped), as (branch, commit); the commit must be a full 40-hex id, as expected-commit is."""
        out = []
        for n, raw in enumerate(text.splitlines(), 1):
            entry = raw.split("#", 1)[0].strip()
            if not entry:
                continue
            ref, sep, comment = entry.partition(":")
            branch, _, commit = ref.strip().rpartition("/")
            if not sep or not comment.strip():
                problem = "expected '[branch/]commit: comment'" if not sep else "the comment is empty"
                raise self.err(f"{what}: cherry-picks line {n}: {problem} in {quoted(entry)}", line)
            if len(commit) != 40 or not _HEX.match(commit):
                raise self.err(
                    f"{what}: cherry-picks line {n}: {quoted(commit)} is not a full 40-hex commit id", line
                )
            out.append((branch, commit.lower()))
        return tuple(out)

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
            if sub.if_ and not self._condition(sub.if_, ssm, f'subpackage "{sub.name}"', sub.line):
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
                cpe=pkg.cpe,
            ),
            vars=tuple(sorted(cfg.vars)),
            environment=self.environment(cfg.environment, needs, _DEFAULT_ENV),
            steps=steps,
            subpackages=tuple(subpackages),
            test=self.test(cfg.test, sm, "test pipeline", pkg.name),
            capabilities=cfg.capabilities,
        )


@limits.substitution_budget
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
