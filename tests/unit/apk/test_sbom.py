from __future__ import annotations

import hashlib
import json
from pathlib import Path

from melange_bk.apk.pkginfo import PkgInfo
from melange_bk.apk.reader import extract
from melange_bk.apk.sbom import SbomFile, SbomOptions, render, sbom_path, verification_code
from melange_bk.apk.writer import WriteOptions, write_apk

INFO = PkgInfo(name="hello", version="2.12", epoch=1, arch="x86_64", licenses=("MIT", "GPL-2.0-only"))


def test_sbom_inside_package_lists_files_with_checksums(tmp_path: Path, tree) -> None:  # type: ignore[no-untyped-def]
    apk = tmp_path / "p.apk"
    opts = WriteOptions(source_date_epoch=1700000000, sbom=SbomOptions(namespace="wolfi"))
    write_apk(str(tree), str(apk), INFO, options=opts)
    out = tmp_path / "out"
    extract(str(apk), str(out))
    rel = "var/lib/db/sbom/hello-2.12-r1.spdx.json"
    assert sbom_path(INFO) == rel
    doc = json.loads((out / rel).read_text())
    assert doc["spdxVersion"] == "SPDX-2.3" and doc["dataLicense"] == "CC0-1.0"
    assert doc["creationInfo"]["created"] == "2023-11-14T22:13:20Z"
    (pkg,) = doc["packages"]
    assert pkg["name"] == "hello" and pkg["versionInfo"] == "2.12-r1"
    assert pkg["licenseDeclared"] == "MIT AND GPL-2.0-only"
    assert pkg["externalRefs"][0]["referenceLocator"] == "pkg:apk/wolfi/hello@2.12-r1?arch=x86_64"
    files = {f["fileName"]: f for f in doc["files"]}
    # every regular file of the tree (hardlinks and symlinks excluded), not the SBOM itself
    expected = sorted(
        "/" + str(p.relative_to(tree)) for p in tree.rglob("*") if p.is_file() and not p.is_symlink()
    )
    expected.remove("/usr/share/doc/hello/hello.conf")  # a hardlink to /etc/hello.conf
    assert sorted(files) == expected
    for name, f in files.items():
        content = (out / name.lstrip("/")).read_bytes()
        sums = {c["algorithm"]: c["checksumValue"] for c in f["checksums"]}
        assert sums == {
            "SHA1": hashlib.sha1(content).hexdigest(),
            "SHA256": hashlib.sha256(content).hexdigest(),
        }
    assert sorted(pkg["hasFiles"]) == sorted(f["SPDXID"] for f in doc["files"])
    assert len(doc["relationships"]) == len(files)
    sha1s = sorted(
        c["checksumValue"] for f in doc["files"] for c in f["checksums"] if c["algorithm"] == "SHA1"
    )
    assert (
        pkg["packageVerificationCode"]["packageVerificationCodeValue"]
        == hashlib.sha1("".join(sha1s).encode()).hexdigest()
    )


def test_sbom_is_deterministic_and_ids_unique() -> None:
    files = [SbomFile("a/b c", "1" * 40, "2" * 64), SbomFile("a/b_c", "3" * 40, "4" * 64)]
    one = render(INFO, files, 0, SbomOptions())
    two = render(INFO, list(reversed(files)), 0, SbomOptions())
    assert one == two
    ids = [f["SPDXID"] for f in json.loads(one)["files"]]
    assert len(set(ids)) == 2
    assert verification_code(files) == verification_code(reversed(files))
