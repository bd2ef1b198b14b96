"""Installer: files and apk's database in the layer, scriptlets recorded (not run), accounts, conflicts, and
hostile packages (path traversal, absolute paths, symlink escapes, device nodes) refused with a clear error."""

from __future__ import annotations

import base64
import hashlib
import os
import tarfile
from pathlib import Path
from typing import List, Sequence, Tuple

import pytest

from melange_bk.apk import reader
from melange_bk.apk.index import Index, entry_from_apk, write_index
from melange_bk.environment.installer import (
    BUILD_GROUP,
    BUILD_USER,
    InstallError,
    InstallOptions,
    UserAccount,
    base_links,
    fit_to_base,
    install,
)
from melange_bk.environment.repository import fetch_keys, fetch_packages, load_index, make_keyring
from melange_bk.environment.resolver import resolve
from melange_bk.errors import MelangeError
from tests.unit.hostile import entry, hostile_apk

from .conftest import ARCH, Key, Pkg, RepoFactory


def _install(repo: Path, key: Key, world: Sequence[str], dest: Path, cache: str, **kw):  # type: ignore[no-untyped-def]
    keys = fetch_keys([key.public])
    index = load_index(str(repo), ARCH, make_keyring(keys))
    res = resolve(world, [index])
    fetched = fetch_packages(res.packages, cache)
    opts = InstallOptions(
        world=tuple(world), repositories=(str(repo), "https://example.org/os"), keys=keys, arch=ARCH, **kw
    )
    return install(fetched, str(dest), opts)


HELLO = Pkg(
    "hello",
    "1.0-r0",
    depends=["libgreet"],
    files={"usr/bin/hello": b"#!/bin/sh\necho hello\n", "etc/hello.conf": b"x=1\n"},
    symlinks={"usr/bin/hi": "hello"},
    scriptlets=(
        (".post-install", b"#!/bin/sh\ntouch /post-install-ran\n"),
        (".pre-install", b"#!/bin/sh\n:\n"),
    ),
)
LIB = Pkg(
    "libgreet",
    "2.0-r1",
    files={"usr/lib/libgreet.so.2": b"\x7fELF not really"},
    provides=["so:libgreet.so.2=2"],
)


def test_files_database_world_keys(make_repo: RepoFactory, key: Key, tmp_path: Path, cache: str) -> None:
    repo = make_repo([HELLO, LIB])
    dest = tmp_path / "layer"
    result = _install(repo, key, ["hello"], dest, cache)
    assert result.packages == ("libgreet-2.0-r1", "hello-1.0-r0")
    assert (dest / "usr/bin/hello").read_bytes() == b"#!/bin/sh\necho hello\n"
    assert os.stat(dest / "usr/bin/hello").st_mode & 0o777 == 0o755
    assert os.readlink(dest / "usr/bin/hi") == "hello"
    assert (dest / "etc/apk/world").read_text() == "hello\n"
    assert (
        dest / "etc/apk/repositories"
    ).read_text() == "https://example.org/os\n", "no paths of this machine"
    assert (dest / "etc/apk/arch").read_text() == "x86_64\n"
    assert (dest / "etc/apk/keys/test.rsa.pub").read_bytes() == Path(key.public).read_bytes()

    db = (dest / "lib/apk/db/installed").read_text()
    blocks = [b for b in db.split("\n\n") if b]
    assert [b.splitlines()[1] for b in blocks] == ["P:libgreet", "P:hello"]
    hello = blocks[1].splitlines()
    assert hello[0].startswith("C:Q1") and "V:1.0-r0" in hello and "D:libgreet" in hello
    sha1 = base64.b64encode(hashlib.sha1(b"#!/bin/sh\necho hello\n").digest()).decode()
    i = hello.index("F:usr/bin")
    assert hello[i + 1 : i + 6] == [
        "R:hello",
        "a:0:0:755",
        f"Z:Q1{sha1}",
        "R:hi",
        f"Z:Q1{base64.b64encode(hashlib.sha1(b'hello').digest()).decode()}",
    ]
    assert "F:etc" in hello and "R:hello.conf" in hello
    lib = blocks[0].splitlines()
    assert "p:so:libgreet.so.2=2" in lib and "F:usr/lib" in lib and "R:libgreet.so.2" in lib


def test_scriptlets_are_recorded_not_run(
    make_repo: RepoFactory, key: Key, tmp_path: Path, cache: str
) -> None:
    repo = make_repo([HELLO, LIB])
    dest = tmp_path / "layer"
    result = _install(repo, key, ["hello"], dest, cache)
    assert not (dest / "post-install-ran").exists()
    assert [(s.package, s.kind) for s in result.scriptlets] == [
        ("hello-1.0-r0", ".pre-install"),
        ("hello-1.0-r0", ".post-install"),
    ]
    with tarfile.open(dest / "lib/apk/db/scripts.tar") as t:
        names = t.getnames()
    assert len(names) == 2
    assert all(n.startswith("hello-1.0-r0.Q1") for n in names)
    assert sorted(n.rsplit(".", 1)[1] for n in names) == ["post-install", "pre-install"]


def test_build_user(make_repo: RepoFactory, key: Key, tmp_path: Path, cache: str) -> None:
    repo = make_repo([LIB])
    dest = tmp_path / "layer"
    _install(repo, key, ["libgreet"], dest, cache)
    passwd = (dest / "etc/passwd").read_text()
    assert passwd.splitlines() == [
        "root:x:0:0:root:/root:/bin/sh",
        "build:x:1000:1000:build:/home/build:/bin/sh",
    ]
    assert (dest / "etc/group").read_text().splitlines() == ["root:x:0:", "build:x:1000:build"]
    home = os.stat(dest / "home/build")
    if os.geteuid() == 0:
        assert (home.st_uid, home.st_gid) == (1000, 1000)


def test_accounts_extend_the_packaged_or_base_passwd(
    make_repo: RepoFactory, key: Key, tmp_path: Path, cache: str
) -> None:
    base = Pkg(
        "baselayout",
        files={"etc/passwd": b"root:x:0:0:root:/root:/bin/ash\nnobody:x:65534:65534::/:/sbin/nologin\n"},
    )
    repo = make_repo([base])
    dest = tmp_path / "layer"
    _install(
        repo,
        key,
        ["baselayout"],
        dest,
        cache,
        users=(BUILD_USER, UserAccount("extra", 2000, 2000)),
        groups=(BUILD_GROUP,),
    )
    assert (dest / "etc/passwd").read_text().splitlines() == [
        "root:x:0:0:root:/root:/bin/ash",
        "nobody:x:65534:65534::/:/sbin/nologin",
        "build:x:1000:1000:build:/home/build:/bin/sh",
        "extra:x:2000:2000:extra:/home/extra:/bin/sh",
    ]
    assert (dest / "home/extra").is_dir()
    dest2 = tmp_path / "layer2"
    _install(
        make_repo([LIB]),
        key,
        ["libgreet"],
        dest2,
        cache,
        base_passwd="root:x:0:0::/root:/bin/bash\nbuild:x:1000:1000::/home/build:/bin/bash\n",
    )
    assert (
        dest2 / "etc/passwd"
    ).read_text() == "root:x:0:0::/root:/bin/bash\nbuild:x:1000:1000::/home/build:/bin/bash\n"


def test_file_conflict_between_packages(make_repo: RepoFactory, key: Key, tmp_path: Path, cache: str) -> None:
    a = Pkg("a", files={"usr/bin/tool": b"a"})
    b = Pkg("b", files={"usr/bin/tool": b"b"}, depends=["a"])
    with pytest.raises(InstallError, match=r"b-1.0-r0 and a both contain /usr/bin/tool"):
        _install(make_repo([a, b]), key, ["b"], tmp_path / "l1", cache)
    b2 = Pkg("b", files={"usr/bin/tool": b"b"}, depends=["a"], replaces=["a"])
    _install(make_repo([a, b2]), key, ["b"], tmp_path / "l2", cache)
    assert (tmp_path / "l2/usr/bin/tool").read_bytes() == b"b"


def test_layer_is_reproducible(make_repo: RepoFactory, key: Key, tmp_path: Path, cache: str) -> None:
    repo = make_repo([HELLO, LIB])

    def snapshot(root: Path) -> List[Tuple[str, int, int, bytes]]:
        out = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for n in sorted(dirnames + filenames):
                p = os.path.join(dirpath, n)
                st = os.lstat(p)
                data = b"" if not os.path.isfile(p) or os.path.islink(p) else Path(p).read_bytes()
                out.append((os.path.relpath(p, root), st.st_mode, int(st.st_mtime), data))
        return out

    _install(repo, key, ["hello"], tmp_path / "one", cache)
    _install(repo, key, ["hello"], tmp_path / "two", cache)
    assert snapshot(tmp_path / "one") == snapshot(tmp_path / "two")


# ------------------------------------------------------------------------------------------- hostile packages


def _pax(e: tuple, headers: dict) -> tuple:  # type: ignore[type-arg]
    e[0].pax_headers = headers
    return e


def _hostile_repo(root: Path, key: Key, packages: Sequence[Tuple[str, list]]) -> Path:
    arch = root / ARCH
    arch.mkdir(parents=True)
    paths = [hostile_apk(arch / f"{name}-1-r0.apk", members, name) for name, members in packages]
    write_index(
        str(arch / "APKINDEX.tar.gz"),
        Index("", tuple(entry_from_apk(str(p)) for p in paths)),
        key.signing_key(),
    )
    return root


@pytest.mark.parametrize(
    "members,message",
    [
        ([entry("../escape", content=b"x")], "climbs out of the package root"),
        ([entry("usr/../../escape", content=b"x")], "climbs out of the package root"),
        ([entry("/etc/passwd", content=b"x")], "absolute entry name '/etc/passwd'"),
        (
            [entry("usr", tarfile.DIRTYPE), entry("usr/up", tarfile.SYMTYPE, "../../../etc")],
            "points outside",
        ),
        ([entry("dev/null", tarfile.CHRTYPE)], "device node"),
        ([entry("dev/sda", tarfile.BLKTYPE)], "device node"),
        ([entry("fifo", tarfile.FIFOTYPE)], "device node"),
        ([entry("h", tarfile.LNKTYPE, "../../escape")], "climbs out of the package root"),
        ([entry("h", tarfile.LNKTYPE, "/etc/passwd")], "absolute entry name"),
        ([entry("d/" + "n" * 5000, content=b"x")], "longer than 4096 bytes"),
        ([_pax(entry("f", content=b"x"), {"comment": "A" * (2 << 20)})], "larger than 1048576 bytes"),
    ],
)
def test_hostile_package_refused(tmp_path: Path, key: Key, cache: str, members: list, message: str) -> None:
    repo = _hostile_repo(tmp_path / "repo", key, [("evil", members)])
    with pytest.raises(InstallError) as e:
        _install(repo, key, ["evil"], tmp_path / "root" / "layer", cache)
    assert str(e.value).startswith("cannot install evil-1-r0 from file://")
    assert message in str(e.value)
    assert not (tmp_path / "root" / "escape").exists()
    assert not list((tmp_path / "root").glob("escape*"))


def test_zip_bomb_package_refused(
    tmp_path: Path, key: Key, cache: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fetching and installing go through the reader's limits (here a 1 MiB floor: 8 MiB of zeros expand ~1000:1):
    the package is refused when its download is checked, before anything is extracted."""
    repo = _hostile_repo(tmp_path / "repo", key, [("bomb", [entry("zeros", content=bytes(8 << 20))])])
    monkeypatch.setattr(reader, "RATIO_FLOOR", 1 << 20)
    with pytest.raises(MelangeError) as e:
        _install(repo, key, ["bomb"], tmp_path / "root" / "layer", cache)
    assert "bomb-1-r0.apk: data segment expands more than 200 times" in str(e.value)
    assert "refused as a zip bomb" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "root" / "layer" / "zeros").exists()


def test_absolute_symlink_from_one_package_cannot_redirect_another(
    tmp_path: Path, key: Key, cache: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    repo = _hostile_repo(
        tmp_path / "repo",
        key,
        [
            ("a-link", [entry("usr", tarfile.DIRTYPE), entry("usr/lib", tarfile.SYMTYPE, str(outside))]),
            ("b-file", [entry("usr", tarfile.DIRTYPE), entry("usr/lib/planted", content=b"x")]),
        ],
    )
    dest = tmp_path / "layer"
    _install(repo, key, ["a-link", "b-file"], dest, cache)
    assert not (outside / "planted").exists()
    assert (dest / str(outside).lstrip("/") / "planted").read_bytes() == b"x", "resolved inside the layer"


def test_fit_to_a_merged_usr_base(tmp_path: Path) -> None:
    base = tmp_path / "base"
    (base / "usr/lib").mkdir(parents=True)
    (base / "usr/bin").mkdir()
    os.symlink("usr/lib", base / "lib")
    os.symlink("/usr/bin", base / "bin")
    os.symlink("../etc", base / "usr/etc-link")
    links = base_links(str(base))
    assert links == (("bin", "/usr/bin"), ("lib", "usr/lib"), ("usr/etc-link", "../etc"))
    layer = tmp_path / "layer"
    (layer / "lib/apk/db").mkdir(parents=True)
    (layer / "lib/apk/db/installed").write_text("db")
    (layer / "usr/lib").mkdir(parents=True)
    (layer / "usr/lib/libx.so").write_text("x")
    (layer / "bin").mkdir()
    (layer / "bin/tool").write_text("t")
    assert fit_to_base(str(layer), links) == ("bin", "lib")
    assert not (layer / "lib").exists() and not (layer / "bin").exists()
    assert (layer / "usr/lib/apk/db/installed").read_text() == "db"
    assert (layer / "usr/lib/libx.so").read_text() == "x"
    assert (layer / "usr/bin/tool").read_text() == "t"


def test_foreign_dot_slash_names_are_recorded_plainly(tmp_path: Path, key: Key, cache: str) -> None:
    members = [entry("./usr/", tarfile.DIRTYPE), entry("./usr/bin/", tarfile.DIRTYPE),
               entry("./usr/bin/tool", content=b"t")]  # fmt: skip
    repo = _hostile_repo(tmp_path / "repo", key, [("foreign", members)])
    dest = tmp_path / "layer"
    _install(repo, key, ["foreign"], dest, cache)
    assert (dest / "usr/bin/tool").read_bytes() == b"t"
    db = (dest / "lib/apk/db/installed").read_text().splitlines()
    assert "F:usr/bin" in db and "R:tool" in db and not any(line.startswith("F:.") for line in db)
