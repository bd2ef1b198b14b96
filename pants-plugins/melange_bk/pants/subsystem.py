"""The `[melange]` options."""

from __future__ import annotations

from typing import List

from pants.option.option_types import BoolOption, SkipOption, StrListOption, StrOption
from pants.option.subsystem import Subsystem
from pants.util.strutil import help_text


class MelangeSubsystem(Subsystem):
    options_scope = "melange"
    name = "melange-bk"
    help = "Build melange packages with BuildKit."

    skip = SkipOption("test")

    buildkit_addr = StrOption(
        default=None,
        help=help_text(
            """
            The BuildKit daemon: `unix:///run/buildkit/buildkitd.sock`, `tcp://host:1234`, or `docker-unix:///path/docker.sock` for Docker Engine's embedded BuildKit. Unset: the
            `BUILDKIT_HOST` environment variable, as for buildctl (`eval "$(bin/buildkit up)"` sets it).
            """
        ),
    )
    signing_key = StrOption(
        default=None,
        help="Path of the RSA private key (PEM) that signs packages and indexes. It is never sent to the daemon.",
    )
    keyring = StrListOption(default=[], help="Public keys appended to every build's environment keyring.")
    repositories = StrListOption(
        default=[], help="APK repositories appended to every build's environment (paths or URLs)."
    )
    pipeline_dirs = StrListOption(
        default=[],
        help="Folders of pipeline YAMLs searched before the built-in pipelines (like melange's --pipeline-dir).",
    )
    environment_base = StrOption(
        default=None,
        help=help_text(
            """
            What build environments start from before packages are installed: a rootfs folder or tarball, or an
            OCI image reference pinned by digest (`image@sha256:...`). Unset: packages only.
            """
        ),
    )
    progress = StrOption(
        default="plain", help="Progress output of solves: `auto`, `plain`, `tty` or `rawjson`."
    )
    cache_mounts = BoolOption(
        default=True,
        help="Give build steps BuildKit cache mounts for language caches (go, pip, npm, cargo, ccache).",
    )
    allow_network = BoolOption(
        default=False,
        help=help_text(
            """
            Let the build steps that need it reach the network: git-checkout `cherry-picks` fetch the picked
            commits in the step. Off: such a package fails with a one-line error. The daemon must allow the
            `network.host` entitlement (`bin/buildkit up` does).
            """
        ),
    )
    allow_insecure = BoolOption(
        default=False,
        help=help_text(
            """
            Grant a YAML's `capabilities.add` beyond BuildKit's defaults, with insecure steps (every capability,
            no seccomp filter). Off: such a package fails with a one-line error. The daemon must allow the
            `security.insecure` entitlement.
            """
        ),
    )
    bootstrap_packages = StrListOption(
        default=[],
        help=help_text(
            """
            Packages (names, or YAML paths) whose in-tree YAML satisfies no other package's build or test needs:
            those needs come from the configured repositories instead, as a distribution's published packages
            do. This is how a tree with build cycles (a compiler needs itself, perl needs autoconf needs perl)
            is built: a cycle that remains is an error naming it and suggesting a set of packages that breaks
            every cycle. The packages themselves are still built from their YAMLs.
            """
        ),
    )
    graph_arch = StrOption(
        default="x86_64",
        help="The `${{build.arch}}` that vars may use when the build graph reads YAMLs.",
    )

    def permission_argv(self) -> List[str]:
        """melange-bk's flags for what the user allows (driver.permissions)."""
        return ["--allow-network"] * self.allow_network + ["--allow-insecure"] * self.allow_insecure
