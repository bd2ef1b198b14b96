"""The build graph of a repository of melange packages (networkx).

Who provides which name (a package, its subpackages, their `provides`), and who needs which name at build time
(`environment.contents.packages`, pipeline `needs.packages`) and at test time (`test.environment.contents.packages`).
Edges point from a package to the packages it needs; names nobody in the repository provides are left to the
configured APK repositories. This is the same rule wolfi-dev/os' Makefile uses: a package never satisfies its own
build dependency, `!name` conflicts are not edges, a subpackage stands for its origin package.
"""

from melange_bk.graph.model import PackageNode, strip_constraint
from melange_bk.graph.repo import Need, RepoGraph

__all__ = ["Need", "PackageNode", "RepoGraph", "strip_constraint"]
