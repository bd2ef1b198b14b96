"""APK v2 packages: write, sign, index, SBOM, automatic dependencies, read/verify.

The public surface; everything else in the modules is an implementation detail.
"""

from __future__ import annotations

from melange_bk.apk.pkginfo import PkgInfo
from melange_bk.apk.reader import ApkContents, DataMember, extract, list_files, read_apk, verify_apk
from melange_bk.apk.sign import (
    Keyring,
    SigningKey,
    load_keyring,
    load_signing_key,
    write_keypair,
)
from melange_bk.apk.writer import ExtraFile, WriteOptions, WrittenApk, write_apk

__all__ = [
    "ApkContents",
    "DataMember",
    "ExtraFile",
    "Keyring",
    "PkgInfo",
    "SigningKey",
    "WriteOptions",
    "WrittenApk",
    "extract",
    "list_files",
    "load_keyring",
    "load_signing_key",
    "read_apk",
    "verify_apk",
    "write_apk",
    "write_keypair",
]
