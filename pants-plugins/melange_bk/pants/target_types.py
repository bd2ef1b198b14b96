"""Target types: `melange_package`, `melange_packages` (one target per YAML) and `melange_repository`."""

from __future__ import annotations

import os
from typing import Optional

from pants.core.goals.package import OutputPathField
from pants.engine.addresses import Address
from pants.engine.target import (
    COMMON_TARGET_FIELDS,
    AsyncFieldMixin,
    BoolField,
    Dependencies,
    InvalidFieldException,
    MultipleSourcesField,
    OverridesField,
    SecondaryOwnerMixin,
    SingleSourceField,
    SpecialCasedDependencies,
    StringField,
    StringSequenceField,
    Target,
    TargetFilesGenerator,
)
from pants.source.filespec import Filespec
from pants.util.strutil import help_text


class MelangeSourceField(SingleSourceField):
    alias = "source"
    default = "melange.yaml"
    required = False
    expected_file_extensions = (".yaml", ".yml")
    help = "The melange YAML file that describes the package (and its subpackages)."


class MelangeGeneratorSourcesField(MultipleSourcesField):
    alias = "sources"
    default = ("*.yaml", "*.yml")
    expected_file_extensions = (".yaml", ".yml")
    help = "The melange YAML files; one `melange_package` target is generated per file."


class MelangeDependenciesField(Dependencies):
    help = help_text(
        """
        Explicit dependencies, added to the inferred ones. Build-time dependencies on other melange packages are
        inferred from `environment.contents.packages` and pipeline `needs.packages` (matched against every
        package's name, subpackages and `provides`); an explicit dependency also settles an ambiguous provider.
        Dependencies on `files`/`resources` targets make those files part of the package's source folder.
        """
    )


class MelangeWorkspaceField(StringField, AsyncFieldMixin, SecondaryOwnerMixin):
    """The files of the package's folder (not the YAML, which `source` owns): they are uploaded as
    `/home/build`, so a change to any of them must select the package (`--changed-since`, file arguments)."""

    alias = "workspace"
    default = None
    help = help_text(
        """
        Not to be set: the build's workspace is every file under this BUILD file's folder except the BUILD file
        (uploaded as `/home/build`). This field makes the target a (secondary) owner of those files, so that
        `--changed-since` and file arguments (`pants package pkg/main.c`) select the package when one changes.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value is not None:
            raise InvalidFieldException(
                f"{address}: `workspace` cannot be set (the workspace is the BUILD file's folder)"
            )
        return value

    @property
    def filespec(self) -> Filespec:
        base = self.address.spec_path
        excludes = ["BUILD"]
        if self.address.is_generated_target:
            # melange_packages: a flat folder of YAMLs (wolfi-dev/os); the other packages' YAMLs are not this
            # package's workspace, or touching one YAML would select every package of the folder.
            excludes += ["*.yaml", "*.yml"]
        return {
            "includes": [os.path.join(base, "**/*") if base else "**/*"],
            "excludes": [os.path.join(base, e) if base else e for e in excludes],
        }


class MelangeArchField(StringSequenceField):
    alias = "arch"
    default = None
    help = help_text(
        """
        Architectures to build for (`x86_64`, `aarch64`, ...); one BuildKit solve per architecture. Defaults to
        the host's architecture, restricted by the YAML's `package.target-architecture`.
        """
    )


class MelangeSkipTestField(BoolField):
    alias = "skip_test"
    default = False
    help = "If true, `pants test` does not run this package's `test:` sections."


class MelangePackageTarget(Target):
    alias = "melange_package"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        MelangeSourceField,
        MelangeWorkspaceField,
        MelangeDependenciesField,
        MelangeArchField,
        MelangeSkipTestField,
        OutputPathField,
    )
    help = help_text(
        """
        An Alpine-format package (and its subpackages) built by melange-on-BuildKit from a melange YAML.

        `pants package` builds the .apk files into `dist/`; `pants test` runs the YAML's `test:` sections.
        """
    )


class MelangePackagesOverridesField(OverridesField):
    help = help_text(
        """
        Fields of some generated targets, by YAML file name: e.g. an explicit dependency that settles a tie
        between providers, `overrides={"docker-cli.yaml": {"dependencies": ["./containerd-2.yaml"]}}`.
        """
    )


class MelangePackagesGenerator(TargetFilesGenerator):
    alias = "melange_packages"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        MelangeGeneratorSourcesField,
        MelangeWorkspaceField,
        MelangePackagesOverridesField,
    )
    generated_target_cls = MelangePackageTarget
    copied_fields = (*COMMON_TARGET_FIELDS, MelangeWorkspaceField)
    moved_fields = (MelangeDependenciesField, MelangeArchField, MelangeSkipTestField, OutputPathField)
    help = "Generate a `melange_package` target for each YAML file (for flat repositories like wolfi-dev/os)."


class MelangeRepositoryPackagesField(SpecialCasedDependencies):
    alias = "packages"
    help = "The `melange_package` targets (or generators) whose .apk files make up this repository."


class MelangeRepositoryTarget(Target):
    alias = "melange_repository"
    core_fields = (*COMMON_TARGET_FIELDS, MelangeRepositoryPackagesField, MelangeArchField, OutputPathField)
    help = help_text(
        """
        An APK repository: the .apk files of `packages` (and everything they need from this repository) plus
        one signed `APKINDEX.tar.gz` per architecture.
        """
    )
