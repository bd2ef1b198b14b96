"""SPDX 2.3 JSON SBOM for one package, stored inside it at `var/lib/db/sbom/<name>-<version>-r<epoch>.spdx.json`.

Shaped like the documents melange puts in its packages (document → one package → its regular files with SHA-1
and SHA-256 checksums, CONTAINS relationships, a package verification code). Everything in it derives from the
package metadata, the file contents and SOURCE_DATE_EPOCH, so it is reproducible.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from typing import Iterable, List, Tuple

from melange_bk import __version__
from melange_bk.apk.pkginfo import PkgInfo

SBOM_DIR = "var/lib/db/sbom"
NOASSERTION = "NOASSERTION"


@dataclass(frozen=True)
class SbomFile:
    path: str  # relative to the package root, no leading slash
    sha1: str
    sha256: str


@dataclass(frozen=True)
class SbomOptions:
    namespace: str = "unknown"  # the distribution namespace used in the purl (melange: `--namespace`)
    tool: str = f"melange-bk ({__version__})"
    cpe: str = ""  # the package's CPE 2.3 name (melange: from package.cpe), a SECURITY reference when set


def sbom_path(info: PkgInfo) -> str:
    return f"{SBOM_DIR}/{info.identity}.spdx.json"


def _spdx_id(kind: str, text: str) -> str:
    # SPDX identifiers allow letters, digits, '.' and '-'.
    return f"SPDXRef-{kind}-" + re.sub(r"[^A-Za-z0-9.\-]", "-", text)


def verification_code(files: Iterable[SbomFile]) -> str:
    """SPDX package verification code: SHA-1 over the sorted SHA-1 hex digests of the package's files."""
    return hashlib.sha1("".join(sorted(f.sha1 for f in files)).encode("ascii")).hexdigest()


def render(info: PkgInfo, files: Iterable[SbomFile], source_date_epoch: int, options: SbomOptions) -> bytes:
    files_sorted: List[SbomFile] = sorted(files, key=lambda f: f.path)
    pkg_id = _spdx_id("Package", info.identity)
    license_declared = " AND ".join(info.licenses) if info.licenses else NOASSERTION
    namespace_digest = hashlib.sha256(f"apk-{options.namespace}-{info.identity}".encode()).hexdigest()[:32]
    file_objs = []
    relationships = []
    file_ids: List[str] = []
    seen = set()
    for f in files_sorted:
        fid = _spdx_id("File", "/" + f.path)
        n = 1
        base = fid
        while fid in seen:  # distinct paths can sanitise to the same id
            n += 1
            fid = f"{base}-{n}"
        seen.add(fid)
        file_ids.append(fid)
        file_objs.append(
            {
                "SPDXID": fid,
                "fileName": "/" + f.path,
                "licenseConcluded": NOASSERTION,
                "checksums": [
                    {"algorithm": "SHA1", "checksumValue": f.sha1},
                    {"algorithm": "SHA256", "checksumValue": f.sha256},
                ],
            }
        )
        relationships.append(
            {"spdxElementId": pkg_id, "relationshipType": "CONTAINS", "relatedSpdxElement": fid}
        )
    package = {
        "SPDXID": pkg_id,
        "name": info.name,
        "versionInfo": info.pkgver,
        "filesAnalyzed": bool(file_ids),
        "hasFiles": file_ids,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": license_declared,
        "downloadLocation": NOASSERTION,
        "copyrightText": NOASSERTION,
        "supplier": NOASSERTION,
        "externalRefs": [
            {
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceLocator": f"pkg:apk/{options.namespace}/{info.name}@{info.pkgver}?arch={info.arch}",
                "referenceType": "purl",
            }
        ],
    }
    if options.cpe:
        package["externalRefs"].append(  # type: ignore[union-attr]
            {"referenceCategory": "SECURITY", "referenceLocator": options.cpe, "referenceType": "cpe23Type"}
        )
    if file_ids:
        package["packageVerificationCode"] = {"packageVerificationCodeValue": verification_code(files_sorted)}
    if info.description:
        package["description"] = info.description
    doc = {
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"apk-{info.identity}",
        "spdxVersion": "SPDX-2.3",
        "creationInfo": {
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(source_date_epoch)),
            "creators": [f"Tool: {options.tool}"],
            "licenseListVersion": "3.22",
        },
        "dataLicense": "CC0-1.0",
        "documentNamespace": f"https://spdx.org/spdxdocs/melange-bk/{namespace_digest}",
        "documentDescribes": [pkg_id],
        "files": file_objs,
        "packages": [package],
        "relationships": relationships,
    }
    # Compact (C-accelerated) encoding: a package can list tens of thousands of files.
    return (json.dumps(doc, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")


def files_of(doc: bytes) -> Tuple[str, ...]:
    """The file paths a rendered SBOM lists (for tests and inspection)."""
    return tuple(f["fileName"] for f in json.loads(doc)["files"])
