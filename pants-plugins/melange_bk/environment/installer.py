"""Install resolved packages into a layer directory, as apk would, without running anything on the host.

- Each package's data segment is extracted with the apk reader's safe extraction (no `..`, absolute names,
  symlinks climbing out, device nodes or FIFOs; writes never follow a symlink out of the layer).
- Two packages may not ship the same non-directory path unless the later one `replaces` the earlier.
- apk's database is written: `lib/apk/db/installed` (apk-tools 2's format: the index record, then `F:` dirs
  with `M:` ACLs, `R:` files with `a:` ACLs and `Z:` SHA-1 checksums), `lib/apk/db/scripts.tar`,
  `lib/apk/db/triggers`, `etc/apk/world`, `etc/apk/repositories` (remote URLs only: paths of this machine would
  make the layer differ between checkouts), `etc/apk/arch`, `etc/apk/keys/<name>`.
- Scriptlets (`.pre-install`, `.post-install`) are recorded, not run: `loader` runs them inside BuildKit.
- Accounts: `etc/passwd` and `etc/group` (from the packages, else the base's, else root only) get the
  environment's users and groups appended when missing; each user's home is created (the build user melange
  uses: uid 1000, /home/build).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import os
import re
import shutil
import stat
import tarfile
import urllib.parse
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from melange_bk.apk.index import render_apkindex
from melange_bk.apk.reader import DataMember, extract, list_files, secure_join
from melange_bk.atomicfile import atomic_write
from melange_bk.environment.repository import FetchedPackage, KeyFile
from melange_bk.errors import ApkError, MelangeError

INSTALLED = "lib/apk/db/installed"
SCRIPTS_TAR = "lib/apk/db/scripts.tar"
TRIGGERS = "lib/apk/db/triggers"
RUN_SCRIPTLETS = (".pre-install", ".post-install")
ROOT_PASSWD = "root:x:0:0:root:/root:/bin/sh\n"
ROOT_GROUP = "root:x:0:\n"


class InstallError(MelangeError):
    """A package cannot be installed (hostile archive, file conflict)."""

    exit_code = 1


@dataclass(frozen=True)
class Scriptlet:
    package: str  # "<name>-<version>"
    kind: str  # ".pre-install" / ".post-install"
    content: bytes

    @property
    def file_name(self) -> str:
        return f"{self.package}{self.kind}"


@dataclass(frozen=True)
class UserAccount:
    name: str
    uid: int
    gid: int
    home: str = ""
    shell: str = "/bin/sh"


@dataclass(frozen=True)
class GroupAccount:
    name: str
    gid: int
    members: Tuple[str, ...] = ()


BUILD_USER = UserAccount("build", 1000, 1000, "/home/build")
BUILD_GROUP = GroupAccount("build", 1000, ("build",))


@dataclass(frozen=True)
class InstallOptions:
    world: Tuple[str, ...] = ()
    repositories: Tuple[str, ...] = ()
    keys: Tuple[KeyFile, ...] = ()
    arch: str = ""
    users: Tuple[UserAccount, ...] = (BUILD_USER,)
    groups: Tuple[GroupAccount, ...] = (BUILD_GROUP,)
    base_passwd: Optional[str] = None  # the base rootfs's etc/passwd, to extend instead of replacing
    base_group: Optional[str] = None


@dataclass(frozen=True)
class InstallResult:
    packages: Tuple[str, ...]  # "<name>-<version>" in install order
    scriptlets: Tuple[Scriptlet, ...]  # to run, in install order
    files: int


def _q1(data: bytes) -> str:
    return "Q1" + base64.b64encode(hashlib.sha1(data).digest()).decode("ascii")


def _q1_hex(sha1_hex: str) -> str:
    return "Q1" + base64.b64encode(bytes.fromhex(sha1_hex)).decode("ascii")


def _write(root: str, rel: str, data: bytes, mode: int = 0o644) -> None:
    dst = secure_join(root, rel)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    if os.path.lexists(dst) and (os.path.islink(dst) or not os.path.isfile(dst)):
        raise InstallError(f"cannot write {rel}: a package installed a non-file there")
    atomic_write(dst, data, mode)
    os.utime(dst, (0, 0))


def _read(root: str, rel: str) -> Optional[str]:
    path = secure_join(root, rel, follow_last=True)
    if not os.path.isfile(path):
        return None
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def _acl(letter: str, m: DataMember, default_mode: int) -> str:
    if m.uid == 0 and m.gid == 0 and m.mode == default_mode:
        return ""
    return f"{letter}:{m.uid}:{m.gid}:{m.mode:o}\n"


def installed_record(fetched: FetchedPackage, members: Sequence[DataMember]) -> str:
    """One package's block of lib/apk/db/installed."""
    head = render_apkindex([fetched.package.entry]).decode("utf-8").rstrip("\n") + "\n"
    info = fetched.contents.info
    if info.replaces:
        head += f"r:{' '.join(info.replaces)}\n"
    if info.replaces_priority:
        head += f"q:{info.replaces_priority}\n"
    dirs: Dict[str, Optional[DataMember]] = {}
    files: Dict[str, List[DataMember]] = {}
    for m in members:
        if m.kind == "dir":
            dirs[m.name] = m
            continue
        parent = m.name.rpartition("/")[0]
        parts = parent.split("/") if parent else []
        for i in range(len(parts) + 1):
            dirs.setdefault("/".join(parts[:i]), None)
        files.setdefault(parent, []).append(m)
    out = [head]
    for d in dirs:
        if d == "" and not files.get(""):
            continue
        out.append(f"F:{d}\n")
        dm = dirs[d]
        if dm is not None:
            out.append(_acl("M", dm, 0o755))
        for f in files.get(d, []):
            out.append(f"R:{f.name.rpartition('/')[2]}\n")
            out.append(_acl("a", f, 0o644 if f.kind != "symlink" else 0o777))
            if f.kind == "symlink":
                out.append(f"Z:{_q1(f.linkname.encode('utf-8'))}\n")
            elif f.sha1:
                out.append(f"Z:{_q1_hex(f.sha1)}\n")
    out.append("\n")
    return "".join(out)


def _scripts_tar(entries: Sequence[Tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            info.mtime = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _repository_lines(repositories: Sequence[str]) -> str:
    lines = []
    for r in repositories:
        scheme = urllib.parse.urlsplit(r).scheme.lower()
        if scheme in ("http", "https"):
            lines.append(r)
    return "".join(line + "\n" for line in lines)


def _merge_accounts(root: str, options: InstallOptions) -> None:
    passwd = _read(root, "etc/passwd") or options.base_passwd or ROOT_PASSWD
    group = _read(root, "etc/group") or options.base_group or ROOT_GROUP
    if not passwd.endswith("\n"):
        passwd += "\n"
    if not group.endswith("\n"):
        group += "\n"
    have_users = {line.split(":", 1)[0] for line in passwd.splitlines() if line}
    have_groups = {line.split(":", 1)[0] for line in group.splitlines() if line}
    for g in options.groups:
        if g.name not in have_groups:
            group += f"{g.name}:x:{g.gid}:{','.join(g.members)}\n"
            have_groups.add(g.name)
    for u in options.users:
        if u.name not in have_users:
            home = u.home or f"/home/{u.name}"
            passwd += f"{u.name}:x:{u.uid}:{u.gid}:{u.name}:{home}:{u.shell or '/bin/sh'}\n"
            have_users.add(u.name)
    _write(root, "etc/passwd", passwd.encode("utf-8"))
    _write(root, "etc/group", group.encode("utf-8"))
    for u in options.users:
        home = (u.home or f"/home/{u.name}").strip("/")
        if not home:
            continue
        path = secure_join(root, home)
        os.makedirs(path, exist_ok=True)
        os.chmod(path, 0o755)
        if os.geteuid() == 0:
            os.lchown(path, u.uid, u.gid)
        os.utime(path, (0, 0))


def _normalized(m: DataMember) -> DataMember:
    """`./usr/bin/x` and `usr/bin/x/` as `usr/bin/x` (extraction refuses anything worse)."""
    name = m.name
    while name.startswith("./"):
        name = name[2:]
    name = name.rstrip("/")
    return m if name == m.name else dataclasses.replace(m, name=name)


def install(packages: Sequence[FetchedPackage], dest: str, options: InstallOptions) -> InstallResult:
    """Extracts `packages` (in install order) into `dest` and writes apk's database and the accounts."""
    os.makedirs(dest, exist_ok=True)
    root = os.path.realpath(dest)
    owners: Dict[str, str] = {}
    records: List[str] = []
    scripts: List[Tuple[str, bytes]] = []
    to_run: List[Scriptlet] = []
    triggers: List[str] = []
    names: List[str] = []
    dir_times: Dict[str, int] = {}
    nfiles = 0
    preserve = os.geteuid() == 0
    for fp in packages:
        pkg = fp.package
        ident = str(pkg)
        try:
            members = [_normalized(m) for m in list_files(fp.path, fp.contents)]
            replaces = set(fp.contents.info.replaces)
            for m in members:
                if m.kind == "dir":
                    dir_times[m.name] = m.mtime
                    continue
                owner = owners.get(m.name)
                if owner is not None and owner != pkg.name and owner not in replaces:
                    raise InstallError(
                        f"{ident} and {owner} both contain /{m.name} (and {pkg.name} does not replace {owner})"
                    )
                owners[m.name] = pkg.name
            extract(fp.path, root, contents=fp.contents, preserve_owner=preserve)
        except ApkError as e:
            raise InstallError(f"cannot install {ident} from {pkg.url}: {e.message}") from None
        nfiles += len(members)
        records.append(installed_record(fp, members))
        control = dict(fp.contents.control_files)
        for cname in sorted(
            n for n in control if n.startswith(".") and n != ".PKGINFO" and n != ".melange.yaml"
        ):
            if cname.startswith(".SIGN."):
                continue
            scripts.append((f"{ident}.{pkg.checksum}{cname}", control[cname]))
        for kind in RUN_SCRIPTLETS:
            if kind in control:
                to_run.append(Scriptlet(ident, kind, control[kind]))
        if fp.contents.info.triggers:
            triggers.append(f"{pkg.checksum} {' '.join(fp.contents.info.triggers)}\n")
        names.append(ident)
    _write(root, INSTALLED, "".join(records).encode("utf-8"))
    _write(root, SCRIPTS_TAR, _scripts_tar(scripts))
    _write(root, TRIGGERS, "".join(triggers).encode("utf-8"))
    _write(root, "etc/apk/world", "".join(w + "\n" for w in sorted(set(options.world))).encode("utf-8"))
    _write(root, "etc/apk/repositories", _repository_lines(options.repositories).encode("utf-8"))
    if options.arch:
        _write(root, "etc/apk/arch", (options.arch + "\n").encode("utf-8"))
    for key in options.keys:
        if "/" in key.name or key.name in (".", ".."):
            raise InstallError(f"invalid key file name {key.name!r}")
        _write(root, f"etc/apk/keys/{key.name}", key.pem)
    _merge_accounts(root, options)
    _normalize_dirs(root, dir_times)
    return InstallResult(packages=tuple(names), scriptlets=tuple(to_run), files=nfiles)


def _normalize_dirs(root: str, times: Dict[str, int]) -> None:
    """Directory times as the (last) package giving the directory has them, else 0: installing later packages
    and writing the database must not leave the time of the installation in the layer."""
    for dirpath, dirnames, _ in os.walk(root):
        for d in dirnames:
            p = os.path.join(dirpath, d)
            if stat.S_ISDIR(os.lstat(p).st_mode):
                t = times.get(os.path.relpath(p, root), 0)
                os.utime(p, (t, t))
    os.utime(root, (0, 0))


# ------------------------------------------------------------------------------------- fitting onto a local base


def base_links(base_root: str) -> Tuple[Tuple[str, str], ...]:
    """Symlinks at the top of a base rootfs and in its usr/ (`bin -> usr/bin` on a merged-/usr system), sorted."""
    links = []
    for parent in ("", "usr"):
        d = os.path.join(base_root, parent)
        if os.path.islink(d) or not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            p = os.path.join(d, name)
            if os.path.islink(p):
                links.append((f"{parent}/{name}" if parent else name, os.readlink(p)))
    return tuple(links)


def _merge_into(src: str, dst: str) -> None:
    os.makedirs(dst, exist_ok=True)
    for name in sorted(os.listdir(src)):
        s, d = os.path.join(src, name), os.path.join(dst, name)
        if os.path.isdir(s) and not os.path.islink(s) and os.path.isdir(d) and not os.path.islink(d):
            _merge_into(s, d)
            continue
        if os.path.isdir(d) and not os.path.islink(d):
            shutil.rmtree(d)
        elif os.path.lexists(d):
            os.unlink(d)
        os.rename(s, d)
    st = os.lstat(src)
    os.rmdir(src)
    os.utime(dst, (st.st_mtime, st.st_mtime))


def fit_to_base(layer: str, links: Sequence[Tuple[str, str]]) -> Tuple[str, ...]:
    """Moves layer directories that the base has as symlinks to directories (merged /usr: `lib -> usr/lib`) to
    the symlinks' targets: BuildKit's copy cannot put a directory where the base has a symlink. Returns the
    relocated paths."""
    moved = []
    for rel, target in links:
        here = os.path.join(layer, rel)
        if os.path.islink(here) or not os.path.isdir(here):
            continue
        dest = (
            target.lstrip("/")
            if target.startswith("/")
            else os.path.normpath(os.path.join(os.path.dirname(rel), target))
        )
        if dest.startswith("..") or dest in ("", ".") or os.path.isabs(dest):
            continue
        _merge_into(here, secure_join(layer, dest, follow_last=True))
        moved.append(rel)
    return tuple(moved)


def shadowed_by_base(layer: str, base_root: str) -> Tuple[str, ...]:
    """Symlinks of an installed layer (already fitted with `fit_to_base`) where the local base has an entry of
    its own (file, directory or symlink), as exclude patterns (glob characters escaped), sorted: the environment
    keeps the base's. On the Debian build rootfs the bootstrap `busybox` package links every applet
    (`usr/bin/tar`, `usr/bin/sh`, …): Debian's GNU tools stand in for the Wolfi packages that replace those links,
    so busybox must not shadow them (its tar cannot read v7 tarballs; as /bin/sh it runs its own applets before
    PATH)."""
    real_root = os.path.realpath(base_root)
    out = []
    for dirpath, dirnames, filenames in os.walk(layer):
        for name in dirnames + filenames:
            here = os.path.join(dirpath, name)
            if not os.path.islink(here):
                continue
            rel = os.path.relpath(here, layer)
            there = os.path.join(base_root, rel)
            parent = os.path.realpath(os.path.dirname(there))
            if parent != real_root and not parent.startswith(real_root + os.sep):
                continue
            if os.path.lexists(there):
                out.append(re.sub(r"([*?\[\\])", r"\\\1", rel.replace(os.sep, "/")))
    return tuple(sorted(out))
