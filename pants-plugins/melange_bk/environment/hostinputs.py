"""Machine-local inputs of a build, kept out of a cache key by location but in it by content (`--host-config`).

A Pants `Process` is cached (locally and in a remote REAPI cache) under the digest of its argv, env and input
files. Things that live only on this machine - the daemon address, TLS files, a rootfs tarball or APK repository
under a git-ignored folder, the signing key - must not reach that digest by *path* (two clones, two machines would
never share a cache entry), yet what they contain must (a different rootfs makes different packages).

So the Pants backend first runs `melange-bk host-config` (never in a persistent cache), which records where each of
them is in a small JSON file in a Pants named cache (mounted in every sandbox as `__host/`; named caches are outside
the key) and prints what each one *is* (its identity: sha256 of a file, of a repository's indexes, the public key of
a signing key, with the file name where it shows in outputs). Builds then get `--host-config __host/host.json`,
`--host-input NAME=IDENTITY` (in the key) and `@host:NAME` in place of a path; `resolve_host_args` swaps each
`@host:NAME` for the recorded path after checking that the file still has that identity (a stat match with the
recorded measurement, else measured again). The daemon address and TLS files come from the same file: a package
built on daemon A is the same package on daemon B.

Standard library only (with `errors`, `filehash`, `atomicfile` and `buildkit.address`): the host-config probe imports it (see
`melange_bk.pants.host.PROBE_SOURCES`). The command-line options are `melange_bk.cli.common.add_host_args`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from typing import Dict, Iterable, List, Optional, Tuple

from melange_bk.atomicfile import atomic_write
from melange_bk.buildkit.address import TLS_ENV
from melange_bk.errors import ConfigError
from melange_bk.filehash import sha256_file, walk_sorted

PREFIX = "@host:"
KINDS = ("path", "file", "dir", "repository", "signing-key")
# The kinds of `--rootfs` that name a path after the prefix (`tar:@host:NAME`); a bare path needs none.
BASE_PREFIXES = ("tar:", "dir:")
# The daemon options recorded in the host configuration (argparse dests of --buildkit-addr and the TLS options).
BUILDKIT_KEYS = ("buildkit_addr",) + tuple(option for option, _var in TLS_ENV)
FORMAT = 1
# The options of build/test/index that may hold `@host:NAME`.
PATH_FIELDS = ("rootfs", "repository_append", "keyring_append", "signing_key", "pipeline_dir")


def _tree_hash(root: str, only: Optional[Tuple[str, ...]] = None) -> str:
    """sha256 over the sorted (path, type, mode, content or link target) of a folder; `only`: file names kept."""
    h = hashlib.sha256()
    entries: List[str] = []
    for rel, full in walk_sorted(root):
        if only is not None and os.path.basename(rel) not in only:
            continue
        if os.path.islink(full):
            entries.append(f"{rel}\0l\0{os.readlink(full)}")
        elif not os.path.isdir(full):
            entries.append(f"{rel}\0f\0{os.lstat(full).st_mode & 0o7777:o}\0{sha256_file(full)}")
    for e in sorted(entries):
        h.update(e.encode("utf-8", "surrogateescape") + b"\n")
    return h.hexdigest()


def _der_read(data: bytes, pos: int) -> Tuple[int, bytes, int]:
    """One DER TLV at `pos`: (tag, value, next position)."""
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4:
            raise ValueError("unsupported DER length")
        length = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    if pos + length > len(data):
        raise ValueError("truncated DER")
    return tag, data[pos : pos + length], pos + length


def _der_items(value: bytes) -> List[Tuple[int, bytes]]:
    items, pos = [], 0
    while pos < len(value):
        tag, v, pos = _der_read(value, pos)
        items.append((tag, v))
    return items


def _der(tag: int, value: bytes) -> bytes:
    n = len(value)
    if n < 0x80:
        return bytes([tag, n]) + value
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + value


_RSA_ALGORITHM = _der(0x30, _der(0x06, bytes.fromhex("2a864886f70d010101")) + _der(0x05, b""))


def _pem_blocks(text: bytes) -> List[Tuple[str, bytes]]:
    import base64
    import re

    out = []
    for m in re.finditer(rb"-----BEGIN ([A-Z ]+)-----(.*?)-----END \1-----", text, re.S):
        out.append((m.group(1).decode(), base64.b64decode(b"".join(m.group(2).split()))))
    return out


def _spki_sha256(path: str) -> str:
    """sha256 of the DER SubjectPublicKeyInfo of an RSA key file (private PKCS#1/PKCS#8 or public), computed with
    the standard library only: this runs in the host-config probe, which has no third-party packages."""
    with open(path, "rb") as f:
        blocks = _pem_blocks(f.read())
    if not blocks:
        raise ValueError("no PEM block")
    label, der = blocks[0]
    if label == "PUBLIC KEY":
        return hashlib.sha256(der).hexdigest()
    if label == "RSA PUBLIC KEY":
        return hashlib.sha256(_der(0x30, _RSA_ALGORITHM + _der(0x03, b"\0" + der))).hexdigest()
    if label == "PRIVATE KEY":  # PKCS#8: version, algorithm, OCTET STRING(PKCS#1)
        items = _der_items(_der_read(der, 0)[1])
        if len(items) < 3 or items[2][0] != 0x04:
            raise ValueError("not a PKCS#8 private key")
        der = items[2][1]
    elif label != "RSA PRIVATE KEY":
        raise ValueError(f"unsupported PEM block {label!r} (an RSA key is expected)")
    fields = _der_items(_der_read(der, 0)[1])  # version, n, e, d, ...
    if len(fields) < 3 or fields[1][0] != 0x02 or fields[2][0] != 0x02:
        raise ValueError("not an RSA private key")
    rsa_public = _der(0x30, _der(0x02, fields[1][1]) + _der(0x02, fields[2][1]))
    return hashlib.sha256(_der(0x30, _RSA_ALGORITHM + _der(0x03, b"\0" + rsa_public))).hexdigest()


def measure(kind: str, path: str) -> str:
    """The identity of a machine-local input: what about it can change the packages built with it.

    file: name + sha256 (key files are installed under their name); path: a file as `file`, a folder as `dir`;
    dir: sha256 of the tree; repository: sha256 of its APKINDEX.tar.gz files (they carry every package's
    checksum; the whole tree when it has none); signing-key: name (signatures are named after it) + sha256 of
    the public key, never of the private key.
    """
    if kind not in KINDS:
        raise ConfigError(f"unknown kind of machine-local input {kind!r} (one of {', '.join(KINDS)})")
    try:
        if kind == "path":
            kind = "dir" if os.path.isdir(path) else "file"
        if kind == "file":
            return f"{os.path.basename(path)}:sha256:{sha256_file(path)}"
        if kind == "dir":
            if not os.path.isdir(path):
                raise ConfigError("not a folder", path=path)
            return f"tree-sha256:{_tree_hash(path)}"
        if kind == "repository":
            if not os.path.isdir(path):
                raise ConfigError("not a folder (an APK repository)", path=path)
            idx = _tree_hash(path, only=("APKINDEX.tar.gz",))
            empty = hashlib.sha256(b"").hexdigest()
            return f"index-sha256:{idx}" if idx != empty else f"tree-sha256:{_tree_hash(path)}"
        return f"{os.path.basename(path)}:spki-sha256:{_spki_sha256(path)}"
    except OSError as e:
        raise ConfigError(f"cannot read machine-local input: {e.strerror}", path=path) from None
    except ValueError as e:
        raise ConfigError(f"not a PEM key: {e}", path=path) from None


def _stat_key(path: str) -> Optional[List[int]]:
    """What must not change for a recorded measurement to stand (files only; folders are always measured)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not os.path.isfile(path):
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev]


def stat_stamp(paths: Iterable[str]) -> str:
    """sha256 of what `lstat` says of each path and, for a folder, of every entry under it (type, mode, size,
    mtime, ctime, inode, device), and what `stat` says of each path (a symlinked input is measured through its
    link); a missing path counts as such. Cheap next to measuring (no file is read): it decides whether the
    host-config probe must run again."""
    h = hashlib.sha256()

    def add(path: str, follow: bool = False) -> None:
        try:
            st = os.stat(path) if follow else os.lstat(path)
        except OSError as e:
            h.update(f"{path}\0{follow}\0missing:{e.errno}\n".encode("utf-8", "surrogateescape"))
            return
        fields = (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
        h.update(f"{path}\0{follow}\0{fields}\n".encode("utf-8", "surrogateescape"))

    for root in sorted(set(paths)):
        add(root)
        add(root, follow=True)
        if os.path.isdir(root):  # (a symlink to a folder is followed here, as the probe does)
            for _rel, full in walk_sorted(root):
                add(full)
    return h.hexdigest()


def load(path: str) -> Dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise ConfigError(f"cannot read the host configuration: {e.strerror}", path=path) from None
    except ValueError as e:
        raise ConfigError(f"the host configuration is not JSON: {e}", path=path) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ConfigError(f"not a format-{FORMAT} host configuration (rerun)", path=path)
    return data


def write(out: str, inputs: Dict[str, Tuple[str, str]], buildkit: Dict[str, str]) -> Dict[str, str]:
    """Measure `inputs` (NAME -> (KIND, absolute PATH)), write `out` atomically, return NAME -> identity.

    A measurement in an existing `out` is reused when the file's size, mtime, inode and device are unchanged;
    `out` is not rewritten when it would not change.
    """
    old: Dict = {}
    if os.path.exists(out):
        try:
            old = load(out).get("inputs", {})
        except ConfigError:
            old = {}
    entries: Dict[str, Dict] = {}
    for name, (kind, path) in sorted(inputs.items()):
        if not os.path.isabs(path):
            raise ConfigError(f"machine-local input {name}: {path!r} is not an absolute path")
        stat = _stat_key(path)
        prev = old.get(name) or {}
        if (
            stat is not None
            and prev.get("stat") == stat
            and prev.get("path") == path
            and prev.get("kind") == kind
        ):
            ident = prev["id"]
        else:
            ident = measure(kind, path)
        entries[name] = {"kind": kind, "path": path, "id": ident, "stat": stat}
    data = {
        "format": FORMAT,
        "buildkit": {k: v for k, v in sorted(buildkit.items()) if k in BUILDKIT_KEYS and v},
        "inputs": entries,
    }
    text = json.dumps(data, indent=1, sort_keys=True)
    try:
        with open(out, encoding="utf-8") as f:
            unchanged = f.read() == text
    except OSError:
        unchanged = False
    # An unchanged file is left as it is: the Pants backend decides from its stat whether to run the probe again.
    if not unchanged:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        atomic_write(out, text.encode("utf-8"))
    return {name: e["id"] for name, e in entries.items()}


def _verified_path(name: str, entry: Dict, want: str, config: str) -> str:
    path = entry.get("path", "")
    if entry.get("id") == want and entry.get("stat") is not None and _stat_key(path) == entry["stat"]:
        return path
    got = measure(entry.get("kind", "path"), path)
    if got != want:
        raise ConfigError(
            f"machine-local input {name} ({path}) is {got}, but this build is keyed on {want}: it changed "
            "since Pants measured it; run again",
            path=config,
        )
    return path


def resolve_host_args(args: argparse.Namespace, fields: Tuple[str, ...] = PATH_FIELDS) -> None:
    """Replace `@host:NAME` in `args.<field>` (strings or lists, optionally after `tar:`/`dir:`) by the path
    recorded in `--host-config`, verified against `--host-input NAME=ID`; fill the daemon address and TLS
    options that were not given from the same file."""
    expected: Dict[str, str] = {}
    for item in getattr(args, "host_input", []) or []:
        name, sep, ident = item.partition("=")
        if not sep or not name or not ident:
            raise ConfigError(f"--host-input {item!r}: expected NAME=ID")
        expected[name] = ident
    config = getattr(args, "host_config", "") or ""
    data: Dict = load(config) if config else {}
    inputs = data.get("inputs", {})

    def resolve(value: str) -> str:
        if not isinstance(value, str) or PREFIX not in value:
            return value
        head = next((p for p in BASE_PREFIXES if value.startswith(p + PREFIX)), "")
        if not value.startswith(head + PREFIX):
            return value
        name = value[len(head) + len(PREFIX) :]
        if not config:
            raise ConfigError(f"{value!r} needs --host-config")
        if name not in expected:
            raise ConfigError(
                f"{value!r} has no --host-input {name}=ID: its content would not be in the cache key"
            )
        if name not in inputs:
            raise ConfigError(f"the host configuration has no input {name!r} (rerun)", path=config)
        return head + _verified_path(name, inputs[name], expected[name], config)

    for field in fields:
        if not hasattr(args, field):
            continue
        value = getattr(args, field)
        if isinstance(value, list):
            setattr(args, field, [resolve(v) for v in value])
        else:
            setattr(args, field, resolve(value))
    for key, value in sorted(data.get("buildkit", {}).items()):
        if key in BUILDKIT_KEYS and hasattr(args, key) and not getattr(args, key):
            setattr(args, key, value)
