"""`pants package` for `melange_repository`: every listed package and the melange packages it needs, merged into
one `ARCH/` folder per architecture with a single signed `APKINDEX.tar.gz` (written by `melange-bk index`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List

from pants.core.goals.package import BuiltPackage, BuiltPackageArtifact, OutputPathField, PackageFieldSet
from pants.engine.addresses import Addresses, UnparsedAddressInputs
from pants.engine.fs import AddPrefix, Digest, DigestSubset, MergeDigests, PathGlobs, Snapshot
from pants.engine.process import ProcessResult
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import TransitiveTargets, TransitiveTargetsRequest
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel

from melange_bk.pants.builder import MelangeProcess
from melange_bk.pants.host import MelangeInputs
from melange_bk.pants.package import BuiltApks, MelangePackageFieldSet
from melange_bk.pants.target_types import MelangeRepositoryPackagesField


@dataclass(frozen=True)
class MelangeRepositoryFieldSet(PackageFieldSet):
    required_fields = (MelangeRepositoryPackagesField,)

    packages: MelangeRepositoryPackagesField
    output_path: OutputPathField


@rule(desc="Assembling a melange repository", level=LogLevel.DEBUG)
async def package_repository(
    field_set: MelangeRepositoryFieldSet,
    inputs: MelangeInputs,
) -> BuiltPackage:
    roots = await Get(Addresses, UnparsedAddressInputs, field_set.packages.to_unparsed_address_inputs())
    closure = await Get(TransitiveTargets, TransitiveTargetsRequest(roots))
    sets = sorted(
        (
            MelangePackageFieldSet.create(t)
            for t in closure.closure
            if MelangePackageFieldSet.is_applicable(t)
        ),
        key=lambda fs: fs.address.spec,
    )
    built = await MultiGet(Get(BuiltApks, MelangePackageFieldSet, fs) for fs in sets)
    # Keep each package's ARCH/*.apk (not its own APKINDEX.tar.gz), merged.
    apks = await MultiGet(Get(Digest, DigestSubset(b.digest, PathGlobs(["*/*.apk"]))) for b in built)
    merged = await Get(Digest, MergeDigests(apks))
    snapshot = await Get(Snapshot, Digest, merged)
    by_arch: Dict[str, List[str]] = {}
    for f in snapshot.files:
        by_arch.setdefault(f.split("/", 1)[0], []).append(f)
    input_digest = await Get(Digest, MergeDigests([merged, inputs.digest]))
    results = []
    for arch, files in sorted(by_arch.items()):
        argv = ["index", "-o", f"{arch}/APKINDEX.tar.gz", "--arch", arch]
        if inputs.signing_key:
            argv += ["--signing-key", inputs.signing_key]
        argv += inputs.host_argv
        argv += sorted(files)
        results.append(
            Get(
                ProcessResult,
                MelangeProcess(
                    tuple(argv),
                    description=f"melange-bk index {arch} ({len(files)} packages) for {field_set.address}",
                    input_digest=input_digest,
                    append_only_caches=inputs.append_only_caches,
                    output_files=(f"{arch}/APKINDEX.tar.gz",),
                ),
            )
        )
    indexes = await MultiGet(results)
    out = await Get(Digest, MergeDigests([merged, *(r.output_digest for r in indexes)]))
    out = await Get(Digest, AddPrefix(out, field_set.output_path.value_or_default(file_ending=None)))
    final = await Get(Snapshot, Digest, out)
    return BuiltPackage(out, tuple(BuiltPackageArtifact(f) for f in final.files))


def rules():
    return [*collect_rules(), UnionRule(PackageFieldSet, MelangeRepositoryFieldSet)]
