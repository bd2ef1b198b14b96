"""`melange-bk test`: run a package's and its subpackages' `test:` sections on BuildKit.

Each test runs in its own environment: the base (`--rootfs`), the test's `environment.contents.packages` and the
package under test, resolved from the test's repositories, the `--repository-append` ones and a local repository
made of the packages under test (`--apk` files, or `OUT-DIR/ARCH/*.apk` from a previous build). Their signatures
are checked against the keyring (test keyring + `--keyring-append`) unless `allow_untrusted`; the local repository
then gets an index of its own, signed with a key kept in the cache directory (so that an unchanged test reuses its
cached environment layer).

LLB per test: environment → the source directory copied to /home/build (without the YAML) → one ExecOp per test
step (network none), named `[<package>] test <n>: <step name>` so that a failure names the step (BuildKitError
carries its log tail). One solve per test, nothing exported.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Tuple

from melange_bk import llb
from melange_bk.apk import load_signing_key, verify_apk, write_keypair
from melange_bk.apk.index import Index, entry_from_contents, write_index
from melange_bk.apk.reader import ApkContents
from melange_bk.buildkit.address import TLSConfig
from melange_bk.buildkit.fssend import SourceTree
from melange_bk.buildkit.progress import Progress
from melange_bk.buildkit.select import connect_for
from melange_bk.buildkit.solve import SolveResult
from melange_bk.buildkit.store import solve_stored
from melange_bk.config.model import Capabilities
from melange_bk.driver.buildenv import EnvironmentOptions
from melange_bk.driver.llbgen import WORKSPACE, platform_for, run_steps, workspace_copy, workspace_dir
from melange_bk.driver.permissions import Permissions
from melange_bk.driver.permissions import check as check_permissions
from melange_bk.environment.base import parse_base
from melange_bk.environment.prepare import PreparedEnvironment, prepare_environment
from melange_bk.environment.repository import cache_dir, fetch_keys, make_keyring
from melange_bk.errors import ApkError, MelangeError
from melange_bk.plan.compile import compile_file
from melange_bk.plan.model import PATH, WORKDIR, BuildPlan, Test

LOCAL_KEY_NAME = "melange-bk-test-local.rsa"


class TestError(MelangeError):
    """The packages under test cannot be found or trusted (exit code 2: bad input)."""

    __test__ = False  # not a pytest class
    exit_code = 2


@dataclass(frozen=True)
class TestRequest:
    __test__ = False

    config_file: str
    arch: str = "x86_64"
    apks: Tuple[str, ...] = ()  # packages under test; empty → OUT-DIR/ARCH/*.apk
    out_dir: str = "packages"
    source_dir: str = ""  # default: the YAML's folder
    pipeline_dirs: Tuple[str, ...] = ()
    vars: Tuple[Tuple[str, str], ...] = ()
    environment: EnvironmentOptions = field(default_factory=EnvironmentOptions)
    buildkit_addr: Optional[str] = None
    tls: Optional[TLSConfig] = None
    progress: str = "auto"
    source_date_epoch: int = 0
    extra_env: Tuple[Tuple[str, str], ...] = ()
    permissions: Permissions = Permissions()  # what the YAML may ask beyond the defaults (driver.permissions)


@dataclass(frozen=True)
class TestTarget:
    """One `test:` section: the package it tests and its environment and steps."""

    __test__ = False

    package: str
    version: str  # full version, e.g. 1.0.0-r0
    test: Test
    capabilities: Capabilities = Capabilities()  # the YAML's top-level capabilities


@dataclass(frozen=True)
class TestOutcome:
    __test__ = False

    package: str
    steps: int
    solve: Optional[SolveResult]


@dataclass(frozen=True)
class TestResult:
    __test__ = False

    plan: BuildPlan
    outcomes: Tuple[TestOutcome, ...]


@dataclass(frozen=True)
class LocalRepository:
    path: str  # a repository root: <path>/<arch>/APKINDEX.tar.gz + the packages
    public_key: str  # the key its index is signed with
    packages: Tuple[str, ...]  # name-version, sorted


def targets(plan: BuildPlan) -> Tuple[TestTarget, ...]:
    """The main package's test, then each subpackage's, in the YAML's order."""
    version = plan.package.full_version
    out: List[TestTarget] = []
    if plan.test is not None and plan.test.steps:
        out.append(TestTarget(plan.package.name, version, plan.test, plan.capabilities))
    for sub in plan.subpackages:
        if sub.test is not None and sub.test.steps:
            out.append(TestTarget(sub.name, version, sub.test, plan.capabilities))
    return tuple(out)


_APK_NAME = re.compile(r"^(?P<name>.+)-(?P<version>[^-]+-r\d+)\.apk$")


def find_apks(plan: BuildPlan, out_dir: str) -> Tuple[str, ...]:
    """`OUT-DIR/ARCH/*.apk`: of the plan's own packages only the plan's version, every other package as well (they
    may be runtime dependencies built alongside)."""
    arch_dir = os.path.join(out_dir, plan.arch)
    try:
        names = sorted(os.listdir(arch_dir))
    except OSError as e:
        raise TestError(
            f"no packages to test: cannot read {arch_dir}: {e.strerror} (build first, or give --apk FILE)"
        ) from None
    own = {plan.package.name} | {s.name for s in plan.subpackages}
    out = []
    for name in names:
        m = _APK_NAME.match(name)
        if not m:
            continue
        if m.group("name") in own and m.group("version") != plan.package.full_version:
            continue
        out.append(os.path.join(arch_dir, name))
    return tuple(out)


def _local_key(cache: Optional[str]) -> str:
    """The key that signs the indexes of local test repositories, made once per cache directory."""
    d = os.path.join(cache_dir(cache), "keys")
    path = os.path.join(d, LOCAL_KEY_NAME)
    if not os.path.exists(path):
        os.makedirs(d, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".key-", dir=d)
        try:
            write_keypair(os.path.join(tmp, LOCAL_KEY_NAME))
            if not os.path.exists(path):  # another process may have made it meanwhile: keep theirs
                os.replace(os.path.join(tmp, LOCAL_KEY_NAME + ".pub"), path + ".pub")
                os.replace(os.path.join(tmp, LOCAL_KEY_NAME), path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def local_repository(
    apks: Tuple[str, ...],
    dest: str,
    *,
    arch: str,
    keyring: Tuple[str, ...],
    allow_untrusted: bool,
    cache: Optional[str] = None,
) -> LocalRepository:
    """Copies `apks` into the repository `dest/<arch>/` (signatures checked first) and indexes them."""
    ring = make_keyring(fetch_keys(keyring)) if keyring else None
    arch_dir = os.path.join(dest, arch)
    os.makedirs(arch_dir, exist_ok=True)
    chosen: Dict[str, Tuple[str, ApkContents]] = {}
    for path in apks:
        try:
            if allow_untrusted:
                contents = verify_apk(path, make_keyring(()), require_signature=False)
            elif ring is None or not ring.keys:
                raise TestError(
                    f"{path}: cannot check its signature: no keyring (give the signer's public key with "
                    "--keyring-append, or --allow-untrusted)"
                )
            else:
                contents = verify_apk(path, ring)
        except ApkError as e:
            hint = "" if allow_untrusted else " (--keyring-append its signer's key, or --allow-untrusted)"
            raise TestError(f"{e}{hint}") from None
        info = contents.info
        if info.arch not in (arch, "noarch"):
            raise TestError(f"{path}: package {info.identity} is for {info.arch}, not {arch}")
        ident = f"{info.name}-{info.pkgver}"
        if ident in chosen and chosen[ident][1].control_sha1 != contents.control_sha1:
            raise TestError(f"two different packages {ident}: {chosen[ident][0]} and {path}")
        chosen[ident] = (path, contents)
    entries = []
    for ident in sorted(chosen):
        path, contents = chosen[ident]
        shutil.copyfile(path, os.path.join(arch_dir, ident + ".apk"))
        entries.append(entry_from_contents(contents))
    key_path = _local_key(cache)
    write_index(
        os.path.join(arch_dir, "APKINDEX.tar.gz"),
        Index(description="melange-bk test: packages under test", entries=tuple(entries)),
        signing_key=load_signing_key(key_path),
    )
    return LocalRepository(path=dest, public_key=key_path + ".pub", packages=tuple(sorted(chosen)))


def test_state(
    target: TestTarget,
    environment: llb.State,
    *,
    source_date_epoch: int = 0,
    extra_env: Tuple[Tuple[str, str], ...] = (),
    workspace_exclude: Tuple[str, ...] = (),
) -> llb.State:
    """environment → workspace at /home/build → one ExecOp per test step."""
    test = target.test
    user = test.environment.accounts.run_as or "root"
    root = llb.file(
        environment, workspace_copy(workspace_exclude), custom_name=f"[{target.package}] test workspace"
    )
    env = {"PATH": PATH, "HOME": WORKDIR, "SOURCE_DATE_EPOCH": str(source_date_epoch)}
    env.update(dict(test.environment.env))
    env.update(dict(extra_env))
    return run_steps(
        root, target.package, test.steps, env, user, [], kind="test", capabilities=target.capabilities
    )


test_state.__test__ = False  # type: ignore[attr-defined]


def _compile(req: TestRequest) -> BuildPlan:
    plan = compile_file(req.config_file, arch=req.arch, pipeline_dirs=req.pipeline_dirs, extra_vars=req.vars)
    check_permissions(plan, req.config_file, req.permissions)
    return plan


def prepare_target(
    req: TestRequest, plan: BuildPlan, target: TestTarget, repo: LocalRepository
) -> Tuple[llb.ops_pb2.Definition, Dict[str, str], PreparedEnvironment]:  # type: ignore[name-defined]
    """The Definition of one test, the local directories its session must offer and its environment (whose
    stored trees the solve loads when the daemon lacks them)."""
    opts = req.environment
    env = target.test.environment
    # the package under test at exactly the version under test, whatever other repositories hold
    packages = set(p for p in env.packages if p != target.package)
    packages |= set(opts.packages_append)
    packages.add(f"{target.package}={target.version}")
    env = replace(env, packages=tuple(sorted(packages)))
    prepared = prepare_environment(
        env,
        base=parse_base(opts.base or "none"),
        arch=plan.arch,
        extra_repositories=(repo.path,) + tuple(opts.repositories_append),
        extra_keyring=(repo.public_key,) + tuple(opts.keyring_append),
        cache=opts.cache_dir or None,
        allow_untrusted=opts.allow_untrusted,
    )
    source_dir, exclude = workspace_dir(req.config_file, req.source_dir)
    state = test_state(
        target,
        prepared.state,
        source_date_epoch=req.source_date_epoch,
        extra_env=req.extra_env,
        workspace_exclude=exclude,
    )
    local_dirs = prepared.local_dirs_dict()
    local_dirs[WORKSPACE] = SourceTree(source_dir)
    return llb.marshal(state, platform=platform_for(plan.arch)), local_dirs, prepared


def run_tests(req: TestRequest) -> TestResult:
    """Runs every test of the YAML; the first failing step raises BuildKitError (its name and log tail)."""
    plan = _compile(req)
    todo = targets(plan)
    if not todo:
        return TestResult(plan=plan, outcomes=())
    apks = tuple(os.path.abspath(a) for a in req.apks) or find_apks(plan, req.out_dir)
    with tempfile.TemporaryDirectory(prefix="melange-bk-test-") as tmp:
        repo = local_repository(
            apks,
            os.path.join(tmp, "repo"),
            arch=plan.arch,
            keyring=tuple(sorted(set(req.environment.keyring_append) | _test_keyrings(plan))),
            allow_untrusted=req.environment.allow_untrusted,
            cache=req.environment.cache_dir or None,
        )
        have = {p.rsplit("-", 2)[0]: p for p in repo.packages}
        for t in todo:
            if f"{t.package}-{t.version}" not in repo.packages:
                found = f" (found {have[t.package]})" if t.package in have else ""
                raise TestError(
                    f"no package {t.package}-{t.version} to test{found}: give it with --apk FILE, or build it "
                    f"into {os.path.join(req.out_dir, plan.arch)}"
                )
        prepared = [(t,) + tuple(prepare_target(req, plan, t, repo)) for t in todo]
    outcomes = []
    with connect_for(plan.package.name, req.buildkit_addr, req.tls) as client:
        for target, definition, local_dirs, env in prepared:
            result = solve_stored(
                client,
                llb.isolate_locals(definition, uuid.uuid4().hex),  # no sharing with concurrent solves
                env.stored,
                local_dirs=local_dirs,
                memo_dir=env.memo_dir,
                progress=Progress(req.progress),
            )
            outcomes.append(TestOutcome(target.package, len(target.test.steps), result))
    return TestResult(plan=plan, outcomes=tuple(outcomes))


def _test_keyrings(plan: BuildPlan) -> set:  # type: ignore[type-arg]
    keys = set()
    for t in targets(plan):
        keys |= set(t.test.environment.keyring)
    return keys
