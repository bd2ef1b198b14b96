"""The typed melange configuration, after parse-time substitution and `range:` expansion.

Frozen dataclasses with tuples (maps are tuples of (key, value) pairs in document order). Every element that can be
the subject of an error keeps the line it came from. This is also the YAML schema: each field read from a YAML key
declares it (`yaml_key`), and the decoder derives the keys each mapping accepts from these declarations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Optional, Tuple

from melange_bk.config.schema import CUSTOM, INT_TEXT, NAMED, WITH, node_line, yaml_key

Pairs = Tuple[Tuple[str, str], ...]


@dataclass(frozen=True)
class Input:
    """A pipeline's declared input (`inputs: {name: {...}}`)."""

    name: str
    default: str = yaml_key("default", raw=True, default="")
    required: bool = yaml_key("required", default=False)
    description: str = yaml_key("description", raw=True, default="")


@dataclass(frozen=True)
class Step:
    """One `pipeline:` entry (in a melange YAML or in a pipeline definition)."""

    line: int = node_line()
    name: str = yaml_key("name", default="")
    uses: str = yaml_key("uses", raw=True, default="")
    with_: Tuple[Tuple[str, str, int], ...] = yaml_key("with", kind=WITH, default=())  # (input, value, line)
    runs: str = yaml_key("runs", default="")
    runs_line: int = 0  # line where the script text starts
    if_: str = yaml_key("if", default="")
    working_directory: str = yaml_key("working-directory", default="")
    environment: Pairs = yaml_key("environment", default=())
    needs: Tuple[str, ...] = yaml_key("needs.packages", default=())
    label: str = yaml_key("label", raw=True, default="")
    required_steps: Optional[int] = yaml_key("assertions.required-steps", default=None)
    pipeline: Tuple[Step, ...] = yaml_key("pipeline", default=())
    inputs: Tuple[Input, ...] = yaml_key("inputs", kind=NAMED, default=())


@dataclass(frozen=True)
class Dependencies:
    runtime: Tuple[str, ...] = yaml_key("runtime", default=())
    provides: Tuple[str, ...] = yaml_key("provides", default=())
    replaces: Tuple[str, ...] = yaml_key("replaces", default=())
    # integers once substituted (melange substitutes vars there: `provider-priority: ${{vars.major-version}}`)
    provider_priority: str = yaml_key("provider-priority", kind=INT_TEXT, default="")
    replaces_priority: str = yaml_key("replaces-priority", kind=INT_TEXT, default="")


@dataclass(frozen=True)
class PackageOptions:
    no_provides: bool = yaml_key("no-provides", default=False)
    no_depends: bool = yaml_key("no-depends", default=False)
    no_commands: bool = yaml_key("no-commands", default=False)
    no_versioned_shlib_deps: bool = yaml_key("no-versioned-shlib-deps", default=False)


@dataclass(frozen=True)
class Scriptlets:
    trigger_script: str = yaml_key("trigger.script", default="")
    trigger_paths: Tuple[str, ...] = yaml_key("trigger.paths", default=())
    pre_install: str = yaml_key("pre-install", default="")
    post_install: str = yaml_key("post-install", default="")
    pre_deinstall: str = yaml_key("pre-deinstall", default="")
    post_deinstall: str = yaml_key("post-deinstall", default="")
    pre_upgrade: str = yaml_key("pre-upgrade", default="")
    post_upgrade: str = yaml_key("post-upgrade", default="")


@dataclass(frozen=True)
class Copyright:
    YAML_IGNORED: ClassVar[Tuple[str, ...]] = ("detection-override",)

    license: str = yaml_key("license", default="")
    paths: Tuple[str, ...] = yaml_key("paths", default=())
    attestation: str = yaml_key("attestation", default="")
    license_path: str = yaml_key("license-path", default="")


@dataclass(frozen=True)
class Resources:
    cpu: str = yaml_key("cpu", raw=True, default="")
    cpumodel: str = yaml_key("cpumodel", raw=True, default="")
    memory: str = yaml_key("memory", raw=True, default="")
    disk: str = yaml_key("disk", raw=True, default="")


@dataclass(frozen=True)
class Package:
    YAML_IGNORED: ClassVar[Tuple[str, ...]] = ("annotations", "checks", "setcap")

    name: str = yaml_key("name")
    version: str = yaml_key("version")
    epoch: int = yaml_key("epoch")
    line: int = node_line()
    description: str = yaml_key("description", default="")
    url: str = yaml_key("url", default="")
    commit: str = yaml_key("commit", default="")
    copyright: Tuple[Copyright, ...] = yaml_key("copyright", default=())
    dependencies: Dependencies = yaml_key("dependencies", default=Dependencies())
    options: PackageOptions = yaml_key("options", default=PackageOptions())
    scriptlets: Scriptlets = yaml_key("scriptlets", default=Scriptlets())
    target_architecture: Tuple[str, ...] = yaml_key("target-architecture", default=())
    timeout: str = yaml_key("timeout", raw=True, default="")
    resources: Resources = yaml_key("resources", default=Resources())
    test_resources: Resources = yaml_key("test-resources", default=Resources())
    # the CPE 2.3 name melange derives from `package.cpe` ("" when none is given)
    cpe: str = yaml_key("cpe", kind=CUSTOM, default="")

    @property
    def full_version(self) -> str:
        return f"{self.version}-r{self.epoch}"


@dataclass(frozen=True)
class User:
    username: str = yaml_key("username", raw=True)
    uid: Optional[int] = yaml_key("uid", default=None)
    gid: Optional[int] = yaml_key("gid", default=None)
    shell: str = yaml_key("shell", raw=True, default="")
    homedir: str = yaml_key("homedir", raw=True, default="")


@dataclass(frozen=True)
class Group:
    groupname: str = yaml_key("groupname", raw=True)
    gid: Optional[int] = yaml_key("gid", default=None)
    members: Tuple[str, ...] = yaml_key("members", raw=True, default=())


@dataclass(frozen=True)
class Accounts:
    run_as: str = yaml_key("run-as", raw=True, default="")
    users: Tuple[User, ...] = yaml_key("users", default=())
    groups: Tuple[Group, ...] = yaml_key("groups", default=())


@dataclass(frozen=True)
class Environment:
    YAML_IGNORED: ClassVar[Tuple[str, ...]] = (
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
        "contents.runtime_repositories",
        "contents.baseimage",
    )

    repositories: Tuple[str, ...] = yaml_key(
        ("contents.repositories", "contents.build_repositories"), default=()
    )
    keyring: Tuple[str, ...] = yaml_key("contents.keyring", default=())
    packages: Tuple[str, ...] = yaml_key("contents.packages", default=())
    environment: Pairs = yaml_key("environment", default=())
    accounts: Accounts = yaml_key("accounts", default=Accounts())


@dataclass(frozen=True)
class Test:
    environment: Environment = yaml_key("environment")
    pipeline: Tuple[Step, ...] = yaml_key("pipeline")
    line: int = node_line()


@dataclass(frozen=True)
class Subpackage:
    YAML_IGNORED: ClassVar[Tuple[str, ...]] = ("annotations", "checks", "setcap")

    name: str = yaml_key("name")
    line: int = node_line()
    if_: str = yaml_key("if", default="")
    description: str = yaml_key("description", default="")
    url: str = yaml_key("url", default="")
    commit: str = yaml_key("commit", default="")
    dependencies: Dependencies = yaml_key("dependencies", default=Dependencies())
    options: PackageOptions = yaml_key("options", default=PackageOptions())
    scriptlets: Scriptlets = yaml_key("scriptlets", default=Scriptlets())
    pipeline: Tuple[Step, ...] = yaml_key("pipeline", default=())
    test: Optional[Test] = yaml_key("test", default=None)
    range_: str = yaml_key(
        "range", raw=True, default=""
    )  # the `data:` entry this subpackage is expanded over
    range_key: Optional[str] = None  # set when expanded from `range:`


@dataclass(frozen=True)
class VarTransform:
    from_: str = yaml_key("from", raw=True)
    match: str = yaml_key("match", raw=True)
    replace: str = yaml_key("replace", raw=True)
    to: str = yaml_key("to", raw=True)
    line: int = node_line()


@dataclass(frozen=True)
class DataRange:
    """A `data:` entry: the items a `range:` subpackage is expanded over."""

    name: str = yaml_key("name", raw=True)
    items: Pairs = yaml_key("items", raw=True)
    line: int = node_line()


@dataclass(frozen=True)
class Capabilities:
    """Top-level `capabilities`: Linux capabilities (CAP_* names, sorted) the build and test steps add or drop."""

    add: Tuple[str, ...] = yaml_key("add", raw=True, default=())
    drop: Tuple[str, ...] = yaml_key("drop", raw=True, default=())


@dataclass(frozen=True)
class Configuration:
    path: str
    package: Package = yaml_key("package", kind=CUSTOM)  # read first: its name and version are substituted
    environment: Environment = yaml_key("environment")
    pipeline: Tuple[Step, ...] = yaml_key("pipeline")
    subpackages: Tuple[Subpackage, ...] = yaml_key("subpackages", kind=CUSTOM)  # `range:` expanded
    vars: Pairs = yaml_key("vars", kind=CUSTOM)  # resolved, including var-transforms, in definition order
    test: Optional[Test] = yaml_key("test")
    build_options: Tuple[str, ...] = yaml_key("options", kind=CUSTOM)  # names under `options:` (all disabled)
    var_transforms: Tuple[VarTransform, ...] = yaml_key("var-transforms", default=())
    data: Tuple[DataRange, ...] = yaml_key("data", default=())
    update: Any = yaml_key("update", kind=CUSTOM, default=None)  # kept as plain data, unused
    capabilities: Capabilities = yaml_key("capabilities", kind=CUSTOM, default=Capabilities())
