"""The typed melange configuration, after parse-time substitution and `range:` expansion.

Frozen dataclasses with tuples (maps are tuples of (key, value) pairs in document order). Every element that can be
the subject of an error keeps the line it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

Pairs = Tuple[Tuple[str, str], ...]


@dataclass(frozen=True)
class Input:
    name: str
    default: str = ""
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class Step:
    """One `pipeline:` entry (in a melange YAML or in a pipeline definition)."""

    line: int
    name: str = ""
    uses: str = ""
    with_: Tuple[Tuple[str, str, int], ...] = ()  # (input, value, line)
    runs: str = ""
    runs_line: int = 0  # line where the script text starts
    if_: str = ""
    working_directory: str = ""
    environment: Pairs = ()
    needs: Tuple[str, ...] = ()
    label: str = ""
    required_steps: Optional[int] = None  # assertions.required-steps
    pipeline: Tuple[Step, ...] = ()
    inputs: Tuple[Input, ...] = ()


@dataclass(frozen=True)
class Dependencies:
    runtime: Tuple[str, ...] = ()
    provides: Tuple[str, ...] = ()
    replaces: Tuple[str, ...] = ()
    provider_priority: str = ""
    replaces_priority: str = ""


@dataclass(frozen=True)
class PackageOptions:
    no_provides: bool = False
    no_depends: bool = False
    no_commands: bool = False
    no_versioned_shlib_deps: bool = False


@dataclass(frozen=True)
class Scriptlets:
    trigger_script: str = ""
    trigger_paths: Tuple[str, ...] = ()
    pre_install: str = ""
    post_install: str = ""
    pre_deinstall: str = ""
    post_deinstall: str = ""
    pre_upgrade: str = ""
    post_upgrade: str = ""


@dataclass(frozen=True)
class Copyright:
    license: str = ""
    paths: Tuple[str, ...] = ()
    attestation: str = ""
    license_path: str = ""


@dataclass(frozen=True)
class Resources:
    cpu: str = ""
    cpumodel: str = ""
    memory: str = ""
    disk: str = ""


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    epoch: int
    line: int
    description: str = ""
    url: str = ""
    commit: str = ""
    copyright: Tuple[Copyright, ...] = ()
    dependencies: Dependencies = Dependencies()
    options: PackageOptions = PackageOptions()
    scriptlets: Scriptlets = Scriptlets()
    target_architecture: Tuple[str, ...] = ()
    timeout: str = ""
    resources: Resources = Resources()
    test_resources: Resources = Resources()

    @property
    def full_version(self) -> str:
        return f"{self.version}-r{self.epoch}"


@dataclass(frozen=True)
class User:
    username: str
    uid: Optional[int] = None
    gid: Optional[int] = None
    shell: str = ""
    homedir: str = ""


@dataclass(frozen=True)
class Group:
    groupname: str
    gid: Optional[int] = None
    members: Tuple[str, ...] = ()


@dataclass(frozen=True)
class Accounts:
    run_as: str = ""
    users: Tuple[User, ...] = ()
    groups: Tuple[Group, ...] = ()


@dataclass(frozen=True)
class Environment:
    repositories: Tuple[str, ...] = ()
    keyring: Tuple[str, ...] = ()
    packages: Tuple[str, ...] = ()
    environment: Pairs = ()
    accounts: Accounts = Accounts()


@dataclass(frozen=True)
class Test:
    environment: Environment
    pipeline: Tuple[Step, ...]
    line: int


@dataclass(frozen=True)
class Subpackage:
    name: str
    line: int
    if_: str = ""
    description: str = ""
    url: str = ""
    commit: str = ""
    dependencies: Dependencies = Dependencies()
    options: PackageOptions = PackageOptions()
    scriptlets: Scriptlets = Scriptlets()
    pipeline: Tuple[Step, ...] = ()
    test: Optional[Test] = None
    range_key: Optional[str] = None  # set when expanded from `range:`


@dataclass(frozen=True)
class VarTransform:
    from_: str
    match: str
    replace: str
    to: str
    line: int


@dataclass(frozen=True)
class Configuration:
    path: str
    package: Package
    environment: Environment
    pipeline: Tuple[Step, ...]
    subpackages: Tuple[Subpackage, ...]
    vars: Pairs  # resolved, including var-transforms, in definition order
    test: Optional[Test]
    build_options: Tuple[str, ...]  # names under `options:` (all disabled)
    update: Any = None  # kept as plain data, unused
