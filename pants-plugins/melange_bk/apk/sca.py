"""Automatic dependencies (melange's "SCA"): what a package tree provides and needs, found by looking at it.

Following melange's pkg/sca rules:
- ELF files (pyelftools): `so:<DT_NEEDED>` depends for libraries whose name has `.so.`; `so:<interpreter base
  name>` depends (musl's `ld-musl-*` becomes `libc.musl-*`); `so:<SONAME>=<libver>` and `so-ver:<SONAME>=<pkg
  version>` provides for libraries in lib dirs (plus `/etc/ld.so.conf.d/*.conf` dirs), recorded as vendored
  elsewhere. A file with an interpreter is only taken as a library when its name looks like one (`.so`, `.so.`).
- Symlinks named `*.so*` whose target is a library (in this tree or a related package's tree): `so:<SONAME>`
  depends (how a -dev package pulls in its library).
- `cmd:<name>=<pkg version>` provides for executable regular files directly in bin/, sbin/, usr/bin/, usr/sbin/.
- pkg-config files in the usual dirs: `pc:<name>=<pkg version>` provides, `pc:<module>` depends for each
  Requires/Requires.private/Requires.internal module; elsewhere they are vendored.
- Options: no-commands drops every `cmd:`; no-depends drops all depends; no-provides drops all provides.
`merge_dependencies` combines the result with the declared dependencies as melange does (sorted, deduplicated,
dependencies the package satisfies itself removed).
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Set, Tuple

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

from melange_bk.apk.reader import secure_join

LIB_DIRS = ("lib/", "usr/lib/", "lib64/", "usr/lib64/")
BIN_DIRS = ("bin/", "sbin/", "usr/bin/", "usr/sbin/")
PC_DIRS = (
    "usr/local/lib/pkgconfig/",
    "usr/local/share/pkgconfig/",
    "usr/lib/pkgconfig/",
    "usr/lib64/pkgconfig/",
    "usr/share/pkgconfig/",
)
# Injected by the host at run time (GPU drivers); never provided or depended upon by packages.
HOST_PROVIDED = frozenset(
    [
        "libEGL_nvidia.so.1", "libGLESv1_CM_nvidia.so.1", "libGLESv2_nvidia.so.1", "libGLX_nvidia.so.1",
        "libcuda.so.1", "libcudadebugger.so.1", "libnvcuvid.so.1", "libnvidia-allocator.so.1",
        "libnvidia-cfg.so.1", "libnvidia-eglcore.so.1", "libnvidia-encode.so.1", "libnvidia-fbc.so.1",
        "libnvidia-glcore.so.1", "libnvidia-glsi.so.1", "libnvidia-glvkspirv.so.1", "libnvidia-gpucomp.so.1",
        "libnvidia-ml.so.1", "libnvidia-ngx.so.1", "libnvidia-nvvm.so.1", "libnvidia-opencl.so.1",
        "libnvidia-opticalflow.so.1", "libnvidia-pkcs11-openssl3.so.1", "libnvidia-pkcs11.so.1",
        "libnvidia-ptxjitcompiler.so.1", "libnvidia-rtcore.so.1", "libnvidia-tls.so.1", "libnvoptix.so.1",
    ]
)  # fmt: skip


@dataclass(frozen=True)
class ScaOptions:
    no_provides: bool = False
    no_depends: bool = False
    no_commands: bool = False


@dataclass(frozen=True)
class ScaResult:
    provides: Tuple[str, ...] = ()
    depends: Tuple[str, ...] = ()
    vendored: Tuple[str, ...] = ()


@dataclass(frozen=True)
class ElfInfo:
    interpreter: str
    needed: Tuple[str, ...]
    sonames: Tuple[str, ...]


def read_elf(path: str) -> Optional[ElfInfo]:
    """Interpreter, DT_NEEDED and DT_SONAME of an ELF file; None for anything that is not a readable ELF."""
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"\x7fELF":
                return None
            f.seek(0)
            elf = ELFFile(f)
            interpreter = ""
            for seg in elf.iter_segments():
                if seg["p_type"] == "PT_INTERP":
                    interpreter = seg.get_interp_name().rstrip("\0")
            needed: List[str] = []
            sonames: List[str] = []
            for section in elf.iter_sections():
                if not isinstance(section, DynamicSection):
                    continue
                for tag in section.iter_tags():
                    if tag.entry.d_tag == "DT_NEEDED":
                        needed.append(tag.needed)
                    elif tag.entry.d_tag == "DT_SONAME":
                        sonames.append(tag.soname)
            return ElfInfo(interpreter, tuple(needed), tuple(sonames))
    except (OSError, ELFError, ValueError, KeyError, AttributeError, UnicodeDecodeError):
        # Not an ELF we can read (truncated, exotic or corrupt): melange skips such files too.
        return None
    except (
        Exception
    ):  # noqa: BLE001 - pyelftools raises assorted errors (e.g. construct's) on malformed input
        return None


def _in_dir(path: str, dirs: Iterable[str]) -> bool:
    """Whether `path` sits directly in one of `dirs` (melange's isInDir; a `/...` suffix matches recursively)."""
    mydir = posixpath.dirname(path)
    for d in dirs:
        if d.endswith("/..."):
            prefix = d[: -len("/...")]
            if mydir == prefix or mydir.startswith(prefix + "/"):
                return True
        elif mydir == d.rstrip("/"):
            return True
    return False


def soname_libver(soname: str) -> str:
    """`libfoo.so.1.2` -> "1.2"; "0" when there is no numeric version after `.so.`."""
    parts = soname.split(".so.", 1)
    if len(parts) < 2 or not parts[1] or not re.fullmatch(r"[0-9.]+", parts[1]):
        return "0"
    return parts[1]


def _walk(root: str) -> List[Tuple[str, os.stat_result]]:
    out: List[Tuple[str, os.stat_result]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root)
        for name in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]):
            full = os.path.join(dirpath, name)
            rel = name if rel_dir == "." else f"{rel_dir}/{name}".replace(os.sep, "/")
            try:
                out.append((rel, os.lstat(full)))
            except OSError:
                continue
    return out


def _ld_so_conf_dirs(root: str) -> List[str]:
    conf_dir = os.path.join(root, "etc", "ld.so.conf.d")
    dirs: List[str] = []
    if not os.path.isdir(conf_dir) or os.path.islink(conf_dir):
        return dirs
    for name in sorted(os.listdir(conf_dir)):
        path = os.path.join(conf_dir, name)
        if not name.endswith(".conf") or os.path.islink(path) or not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.strip()
                if line.startswith("/"):
                    dirs.append(line[1:].rstrip("/") + "/")
    return dirs


_PC_VAR = re.compile(r"\$\{([A-Za-z0-9_.]+)\}")
_PC_OPS = {"=", "<", ">", "<=", ">=", "!="}


def parse_pc_requires(text: str) -> Tuple[str, ...]:
    """Module names in a .pc file's Requires, Requires.private and Requires.internal lines."""
    variables: Dict[str, str] = {}
    modules: List[str] = []

    def expand(value: str) -> str:
        for _ in range(16):
            new = _PC_VAR.sub(lambda m: variables.get(m.group(1), ""), value)
            if new == value:
                break
            value = new
        return value

    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.match(r"^([A-Za-z0-9_.]+)\s*([:=])\s*(.*)$", line)
        if not m:
            continue
        key, sep, value = m.groups()
        if sep == "=":
            variables[key] = expand(value)
            continue
        if key not in ("Requires", "Requires.private", "Requires.internal"):
            continue
        tokens = [t for t in re.split(r"[\s,]+", expand(value)) if t]
        # operators may be glued to names or versions: "foo>=1" -> "foo", ">=", "1"
        split: List[str] = []
        for t in tokens:
            split.extend(p for p in re.split(r"(<=|>=|!=|=|<|>)", t) if p)
        skip_next = False
        for t in split:
            if skip_next:
                skip_next = False
                continue
            if t in _PC_OPS:
                skip_next = True
                continue
            modules.append(t)
    return tuple(modules)


def _resolve(roots: Tuple[str, ...], rel: str) -> Optional[str]:
    """The regular file `rel` names in the first root where it (following symlinks inside the root) exists."""
    for root in roots:
        candidate = secure_join(root, rel, follow_last=True)
        if os.path.isfile(candidate) and not os.path.islink(candidate):
            return candidate
    return None


def _resolve_link(root: str, rel: str, roots: Tuple[str, ...]) -> Optional[str]:
    """The file a symlink of this tree points at, looked up in this tree and then in the related ones."""
    try:
        link = os.readlink(os.path.join(root, rel))
    except OSError:
        return None
    if link.startswith("/"):
        target = posixpath.normpath(link.lstrip("/"))
    else:
        target = posixpath.normpath(posixpath.join(posixpath.dirname(rel), link))
    if target == ".." or target.startswith("../"):
        return None
    return _resolve(roots, target)


def analyze(
    root: str,
    version: str,
    options: Optional[ScaOptions] = None,
    related_roots: Tuple[str, ...] = (),
) -> ScaResult:
    """Scans the tree at `root` for a package whose full version (`1.2.3-r0`) is `version`.

    `related_roots` are the trees of the other packages of the same build (symlinks may point into them).
    """
    options = options or ScaOptions()
    provides: Set[str] = set()
    depends: Set[str] = set()
    vendored: Set[str] = set()
    lib_dirs = LIB_DIRS + tuple(_ld_so_conf_dirs(root))
    roots = (root,) + tuple(related_roots)

    for rel, st in _walk(root):
        is_link = stat.S_ISLNK(st.st_mode)
        if not is_link and not stat.S_ISREG(st.st_mode):
            continue
        base = posixpath.basename(rel)
        full = os.path.join(root, rel)

        # commands: executable regular files in bin dirs
        if not is_link and (st.st_mode & 0o555) == 0o555 and _in_dir(rel, BIN_DIRS):
            provides.add(f"cmd:{base}={version}")

        # pkg-config
        if rel.endswith(".pc") and not is_link:
            name = base[: -len(".pc")]
            if _in_dir(rel, PC_DIRS):
                provides.add(f"pc:{name}={version}")
                with open(full, encoding="utf-8", errors="replace") as f:
                    for module in parse_pc_requires(f.read()):
                        depends.add(f"pc:{module}")
            else:
                vendored.add(f"pc:{name}={version}")
            continue

        target = _resolve_link(root, rel, roots) if is_link else full
        if target is None:
            continue
        elf = read_elf(target)
        if elf is None:
            continue

        if is_link:
            # a `libfoo.so` symlink (dev package) depends on the library it points at
            if ".so" in rel:
                for soname in elf.sonames:
                    if soname not in HOST_PROVIDED:
                        depends.add(f"so:{soname}")
            continue

        if elf.interpreter:
            interp = "so:" + posixpath.basename(elf.interpreter)
            depends.add(interp.replace("so:ld-musl", "so:libc.musl"))
        for lib in elf.needed:
            if lib not in HOST_PROVIDED and ".so." in lib:
                depends.add(f"so:{lib}")
        if not elf.interpreter or ".so." in base or base.endswith(".so"):
            for soname in elf.sonames:
                if soname in HOST_PROVIDED:
                    continue
                found = (f"so:{soname}={soname_libver(soname)}", f"so-ver:{soname}={version}")
                (provides if _in_dir(rel, lib_dirs) else vendored).update(found)

    if options.no_commands:
        provides = {p for p in provides if not p.startswith("cmd:")}
        depends = {d for d in depends if not d.startswith("cmd:")}
    if options.no_depends:
        depends = set()
    if options.no_provides:
        provides = set()
    return ScaResult(tuple(sorted(provides)), tuple(sorted(depends)), tuple(sorted(vendored)))


def remove_self_provided(depends: Iterable[str], provided: Iterable[str]) -> Tuple[str, ...]:
    names = {p.split("=", 1)[0] for p in provided}
    out = []
    for dep in depends:
        key = dep.split(">=", 1)[0] if dep.startswith("so-ver:") else dep
        if key not in names:
            out.append(dep)
    return tuple(out)


def merge_dependencies(
    runtime: Iterable[str], provides: Iterable[str], result: ScaResult
) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
    """(runtime depends, provides) for .PKGINFO: declared + generated, sorted, deduplicated, and without the
    dependencies the package itself (or a library it vendors) satisfies."""
    generated = remove_self_provided(result.depends, result.vendored)
    all_runtime = sorted(set(runtime) | set(generated))
    all_provides = tuple(sorted(set(provides) | set(result.provides)))
    return remove_self_provided(all_runtime, all_provides), all_provides
