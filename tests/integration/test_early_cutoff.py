"""Early cutoff: an edit that changes no value of the YAML (comments, key order, quoting, indentation) gives
byte-identical .apk files and index, so nothing that depends on the package has a reason to rebuild."""

from __future__ import annotations

import shutil
from pathlib import Path

from melange_bk.apk import write_keypair

from .local import apk_files, build

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "demo"


def _build(ws: Path, out: Path, root: str, addr: str, key: Path) -> None:
    extra = ("--signing-key", str(key), "--generate-index", "--source-date-epoch", "1700000000")
    assert build(ws / "melange.yaml", out, root, addr, *extra) == 0


def _outputs(out: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted((out / "x86_64").iterdir())}


def test_comment_and_format_only_edit_gives_byte_identical_packages(
    tmp_path: Path, busybox_root: str, buildkit_addr: str
) -> None:
    write_keypair(str(tmp_path / "k.rsa"), bits=2048)
    ws = tmp_path / "demo"
    shutil.copytree(FIXTURE, ws)
    _build(ws, tmp_path / "before", busybox_root, buildkit_addr, tmp_path / "k.rsa")
    y = ws / "melange.yaml"
    text = y.read_text()
    edited = "# a new comment on top\n" + text.replace(
        'version: "1.2.3"', "version:   '1.2.3'   # quoted otherwise"
    )
    # Key order too: `vars` moved to the end of the document.
    vars_block = "vars:\n  greeting: hello from demo\n"
    assert vars_block in edited
    edited = edited.replace(vars_block, "") + "\n" + vars_block
    y.write_text(edited)
    _build(ws, tmp_path / "after", busybox_root, buildkit_addr, tmp_path / "k.rsa")
    before, after = _outputs(tmp_path / "before"), _outputs(tmp_path / "after")
    assert sorted(before) == ["APKINDEX.tar.gz", "demo-1.2.3-r4.apk", "demo-doc-1.2.3-r4.apk"]
    assert before == after
    embedded = apk_files(tmp_path / "after" / "x86_64" / "demo-1.2.3-r4.apk")[".melange.yaml"].decode()
    assert "#" not in embedded.split("pipeline:")[0] and "version: 1.2.3" in embedded
