"""The first real solves: a local rootfs loaded with scratch + copy, commands run in it, one directory exported.

Against the real daemon in BUILDKIT_HOST; nothing is mocked.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
import uuid
from pathlib import Path

import pytest

from melange_bk import llb
from melange_bk.buildkit.client import Client
from melange_bk.buildkit.progress import Progress
from melange_bk.buildkit.session import ExportTarget
from melange_bk.buildkit.solve import solve
from melange_bk.errors import BuildKitError

PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
OUT = "/home/build/melange-out"


def _root() -> llb.State:
    return llb.file(llb.scratch(), llb.copy(llb.local("rootfs"), "/", "/", copy_dir_contents=True))


def _run(script: str, root: llb.State | None = None) -> llb.ExecResult:
    return llb.run(root or _root(), ["/bin/sh", "-c", script], env={"PATH": PATH}, cwd="/home/build")


WRITE_TREE = f"""
set -e
mkdir -p {OUT}/pkg/usr/bin {OUT}/pkg/empty-dir {OUT}/pkg/usr/share
printf '#!/bin/sh\\necho hi\\n' > {OUT}/pkg/usr/bin/tool
chmod 0755 {OUT}/pkg/usr/bin/tool
echo data > {OUT}/pkg/usr/share/file.txt
chmod 0640 {OUT}/pkg/usr/share/file.txt
ln -s ../share/file.txt {OUT}/pkg/usr/bin/link
ln {OUT}/pkg/usr/share/file.txt {OUT}/pkg/usr/share/hard.txt
dd if=/dev/zero of={OUT}/pkg/big bs=1048576 count=64 2>/dev/null
echo outside > /home/build/not-exported
"""


def _export_only_out(nonce: str) -> llb.State:
    built = _run(f"echo {nonce} >/dev/null\n" + WRITE_TREE).root
    return llb.file(llb.scratch(), llb.copy(built, OUT, "/", copy_dir_contents=True))


def test_echo_hello_reaches_the_progress_stream(bk: Client, busybox_root: str) -> None:
    nonce = uuid.uuid4().hex  # a fresh vertex, so it really runs
    defn = llb.marshal(_run(f"echo hello-{nonce}").root)
    buf = io.StringIO()
    progress = Progress("plain", out=buf)
    solve(bk, defn, local_dirs={"rootfs": busybox_root}, progress=progress)
    assert f"hello-{nonce}" in buf.getvalue()
    assert any(v.name.startswith("/bin/sh -c echo hello-") for v in progress.summaries())


@pytest.mark.parametrize("via", ["auto", "stream"])
def test_local_export_of_the_output_dir(bk: Client, busybox_root: str, tmp_path: Path, via: str) -> None:
    # "auto" is dockerd's POST /session upgrade (or the stream on buildkitd); "stream" forces Control/Session,
    # the transport of a standalone buildkitd, which dockerd serves too.
    dest = tmp_path / "out"
    result = solve(
        bk,
        llb.marshal(_export_only_out(uuid.uuid4().hex)),
        local_dirs={"rootfs": busybox_root},
        export=ExportTarget("local", str(dest)),
        session_via=via,
    )
    pkg = dest / "pkg"
    assert sorted(os.listdir(dest)) == ["pkg"], "only melange-out is exported"
    tool = pkg / "usr/bin/tool"
    assert tool.read_text() == "#!/bin/sh\necho hi\n"
    assert stat.S_IMODE(tool.stat().st_mode) == 0o755
    assert stat.S_IMODE((pkg / "usr/share/file.txt").stat().st_mode) == 0o640
    link = pkg / "usr/bin/link"
    assert link.is_symlink() and os.readlink(link) == "../share/file.txt"
    assert (pkg / "usr/share/hard.txt").stat().st_ino == (pkg / "usr/share/file.txt").stat().st_ino
    assert (pkg / "empty-dir").is_dir() and not list((pkg / "empty-dir").iterdir())
    assert (pkg / "big").stat().st_size == 64 << 20
    with open(pkg / "big", "rb") as f:
        assert f.read(1 << 20) == bytes(1 << 20)
    assert result.bytes >= 64 << 20


def test_tar_export_of_the_output_dir(bk: Client, busybox_root: str, tmp_path: Path) -> None:
    out = tmp_path / "out.tar"
    solve(
        bk,
        llb.marshal(_export_only_out(uuid.uuid4().hex)),
        local_dirs={"rootfs": busybox_root},
        export=ExportTarget("tar", str(out)),
    )
    with tarfile.open(out) as tf:
        members = {m.name.rstrip("/"): m for m in tf.getmembers()}
    assert members["pkg/usr/bin/tool"].mode & 0o777 == 0o755
    assert members["pkg/usr/bin/link"].issym() and members["pkg/usr/bin/link"].linkname == "../share/file.txt"
    assert members["pkg/big"].size == 64 << 20
    assert members["pkg/empty-dir"].isdir()
    assert not any("not-exported" in name for name in members)


def test_failing_step_names_the_step_and_shows_its_log(bk: Client, busybox_root: str) -> None:
    nonce = uuid.uuid4().hex
    defn = llb.marshal(_run(f"echo 'about to fail {nonce}'; echo 'last words'; exit 3").root)
    with pytest.raises(BuildKitError) as e:
        solve(bk, defn, local_dirs={"rootfs": busybox_root})
    msg = str(e.value)
    assert msg.startswith("step \"/bin/sh -c echo 'about to fail")
    assert "exit code: 3" in msg
    assert "last words" in msg
    assert e.value.exit_code != 0


def test_second_identical_solve_is_all_cached(bk: Client, busybox_root: str) -> None:
    defn = llb.marshal(_run(f"echo cache-me-{uuid.uuid4().hex} > /home/build/x").root)
    first = solve(bk, defn, local_dirs={"rootfs": busybox_root})
    assert not first.all_cached
    second = solve(bk, defn, local_dirs={"rootfs": busybox_root})
    assert second.all_cached, [(v.name, v.cached) for v in second.vertices]
