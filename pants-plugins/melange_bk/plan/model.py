"""The build plan: everything the LLB layer needs, fully substituted and validated, independent of any daemon.

`BuildPlan.to_json()` is stable: keys in a fixed order, environment variables sorted, no paths of this machine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Dict, Optional, Tuple, Union

from melange_bk.config.model import (
    Capabilities,
    Copyright,
    Dependencies,
    PackageOptions,
    Resources,
    Scriptlets,
)

Pairs = Tuple[Tuple[str, str], ...]

WORKDIR = "/home/build"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/bin:/usr/sbin:/sbin:/bin"
FETCH_CACHE_DIR = "/var/cache/melange"


@dataclass(frozen=True)
class HttpSource:
    """A `fetch` step's download: the daemon can fetch `uri` and check it against the expected digest."""

    uri: str
    sha256: str
    sha512: str
    filename: str
    directory: str
    extract: bool
    strip_components: int
    delete: bool
    kind: str = "http"

    @property
    def cache_path(self) -> str:
        """Where the fetch script looks for an already downloaded file (melange's fetch cache)."""
        if self.sha256:
            return f"{FETCH_CACHE_DIR}/sha256:{self.sha256}"
        return f"{FETCH_CACHE_DIR}/sha512:{self.sha512}"


@dataclass(frozen=True)
class GitSource:
    """A `git-checkout` step's repository at a pinned commit."""

    repository: str
    commit: str
    tag: str
    branch: str
    destination: str
    depth: str
    recurse_submodules: bool
    # (branch, commit) for each line of `cherry-picks`, in order: applied by the pipeline's steps, which fetch
    # them from `repository` and so need the network (`Step.network`)
    cherry_picks: Tuple[Tuple[str, str], ...] = ()
    kind: str = "git"


Source = Union[HttpSource, GitSource]


@dataclass(frozen=True)
class Step:
    """One shell step: `/bin/sh -c` with `set -e`, run in `workdir` (created first) with `env`."""

    id: str  # position in the YAML's step tree, e.g. "3" or "3.1"
    name: str
    uses: str  # the innermost `uses:` this step comes from ("" for an inline `runs:`)
    line: int  # line of the originating step in the melange YAML
    runs: str
    workdir: str
    env: Pairs  # sorted
    needs: Tuple[str, ...]
    source: Optional[Source] = None
    # The step reaches the network: only a git-checkout's steps with cherry-picks do (every other fetch is the
    # daemon's, before the step). Built only when the user allows the network (driver.permissions).
    network: bool = False

    def argv(self) -> Tuple[str, ...]:
        wd = "'" + self.workdir.replace("'", "'\\''") + "'"
        # pipefail where the shell has it (busybox ash, bash); Debian's dash does not, and must not fail on it.
        script = (
            f"set -e\n(set -o pipefail) 2>/dev/null && set -o pipefail\n"
            f"[ -d {wd} ] || mkdir -p {wd}\ncd {wd}\n{self.runs}\nexit 0"
        )
        return ("/bin/sh", "-c", script)


@dataclass(frozen=True)
class User:
    username: str
    uid: Optional[int]
    gid: Optional[int]
    shell: str = ""
    homedir: str = ""


@dataclass(frozen=True)
class Group:
    groupname: str
    gid: Optional[int]
    members: Tuple[str, ...] = ()


@dataclass(frozen=True)
class Accounts:
    run_as: str
    users: Tuple[User, ...]
    groups: Tuple[Group, ...]


@dataclass(frozen=True)
class Environment:
    repositories: Tuple[str, ...]
    keyring: Tuple[str, ...]
    packages: Tuple[str, ...]  # sorted, de-duplicated, including every step's needs
    env: Pairs  # sorted
    accounts: Accounts


@dataclass(frozen=True)
class Test:
    environment: Environment
    steps: Tuple[Step, ...]


@dataclass(frozen=True)
class PackageInfo:
    name: str
    version: str
    epoch: int
    full_version: str
    description: str
    url: str
    commit: str
    copyright: Tuple[Copyright, ...]
    dependencies: Dependencies
    options: PackageOptions
    scriptlets: Scriptlets
    target_architecture: Tuple[str, ...]
    timeout: str
    resources: Resources
    cpe: str = ""  # CPE 2.3 name for the SBOMs ("" when package.cpe is not given)


@dataclass(frozen=True)
class Subpackage:
    name: str
    description: str
    url: str
    commit: str
    dependencies: Dependencies
    options: PackageOptions
    scriptlets: Scriptlets
    steps: Tuple[Step, ...]
    test: Optional[Test]


@dataclass(frozen=True)
class BuildPlan:
    file: str  # the YAML's file name (no directory)
    arch: str
    package: PackageInfo
    vars: Pairs  # sorted
    environment: Environment
    steps: Tuple[Step, ...]
    subpackages: Tuple[Subpackage, ...]
    test: Optional[Test]
    capabilities: Capabilities = Capabilities()  # for every build and test step

    def to_dict(self) -> Dict[str, Any]:
        return _plain(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"


_PAIR_FIELDS = frozenset(("env", "vars"))


def _plain(value: Any, field: str = "") -> Any:
    if is_dataclass(value):
        out: Dict[str, Any] = {}
        for f in fields(value):
            out[f.name.rstrip("_").replace("_", "-")] = _plain(getattr(value, f.name), f.name)
        return out
    if isinstance(value, tuple):
        if field in _PAIR_FIELDS:
            return {k: v for k, v in sorted(value)}
        return [_plain(v) for v in value]
    return value
