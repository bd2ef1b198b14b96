"""Cross-check against BuildKit's own Go client: our LLB for a fixed graph is accepted by `buildctl build` (the
Definition on stdin, a local directory offered by buildctl's session, a local export), and `buildctl debug
dump-llb` of it agrees with our `melange-bk dump-llb` on every op's type, inputs and digest.

Runs only in the standalone-buildkitd leg of the suite (`eval "$(bin/buildkit up --daemon=buildkitd)"`, which sets
MELANGE_BK_BUILDCTL): skipped against dockerd (buildctl cannot reach dockerd's embedded BuildKit), and it FAILS
when BUILDKIT_HOST is a standalone buildkitd but buildctl is missing (fixtures in conftest.py).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from melange_bk import llb
from melange_bk.cli.main import main

PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def _fixed_graph() -> llb.State:
    """Every op kind we emit for builds: local + scratch sources, file copy/mkdir/mkfile, exec with a mount."""
    root = llb.file(
        llb.scratch(), llb.copy(llb.local("rootfs"), "/", "/", copy_dir_contents=True), custom_name="rootfs"
    )
    work = llb.file(
        llb.scratch(),
        llb.mkdir("/src", 0o755).mkfile("/src/input.txt", 0o644, b"crosscheck input\n"),
    )
    ran = llb.run(
        root,
        ["/bin/sh", "-c", "mkdir -p /out && cat /work/src/input.txt > /out/copied && echo ran > /out/ran"],
        env={"PATH": PATH},
        cwd="/",
        mounts=[llb.bind("/work", work, readonly=True)],
    )
    return llb.file(llb.scratch(), llb.copy(ran.root, "/out", "/", copy_dir_contents=True))


@pytest.fixture(scope="module")
def definition(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("llb") / "def.pb"
    path.write_bytes(llb.to_bytes(llb.marshal(_fixed_graph())))
    return path


def _shape(entries: List[Dict[str, Any]]) -> List[Tuple[str, str, Tuple[Tuple[str, int], ...]]]:
    """(digest, op type, ((input digest, index), …)) per op, in Definition order.

    Go's JSON leaves out a zero input index (omitempty); ours writes it: both read as 0 here."""
    shape = []
    for e in entries:
        op = e["Op"]
        kinds = sorted(op.get("Op") or {})
        kind = kinds[0] if len(kinds) == 1 else "none" if not kinds else "?" + ",".join(kinds)
        inputs = tuple((i["digest"], int(i.get("index", 0))) for i in op.get("inputs", []))
        shape.append((e["Digest"], kind, inputs))
    return shape


def _json_lines(text: str) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_buildctl_dump_llb_matches_ours(
    buildctl: str, definition: Path, capsys: pytest.CaptureFixture
) -> None:
    go = subprocess.run(
        [buildctl, "debug", "dump-llb"], stdin=definition.open("rb"), capture_output=True, timeout=60
    )
    assert go.returncode == 0, go.stderr.decode(errors="replace")
    capsys.readouterr()
    assert main(["dump-llb", str(definition)]) == 0
    ours = _json_lines(capsys.readouterr().out)
    theirs = _json_lines(go.stdout.decode())
    assert _shape(ours) == _shape(theirs)
    assert sorted(k for _, k, _ in _shape(ours)) == ["exec", "file", "file", "file", "none", "source"]
    # The same exec, seen by both: argv, cwd, env, network mode and mounts.
    (ours_exec,) = (e["Op"]["Op"]["exec"] for e in ours if "exec" in (e["Op"].get("Op") or {}))
    (go_exec,) = (e["Op"]["Op"]["exec"] for e in theirs if "exec" in (e["Op"].get("Op") or {}))
    assert go_exec["meta"]["args"] == ours_exec["meta"]["args"]
    assert go_exec["meta"]["env"] == ours_exec["meta"]["env"]
    assert go_exec["meta"].get("cwd") == ours_exec["meta"].get("cwd") == "/"
    assert go_exec.get("network") == 2  # pb.NetMode_NONE, which Go's JSON writes as a number
    assert ours_exec.get("network") == "NONE"
    assert (
        [m["dest"] for m in go_exec["mounts"]] == [m["dest"] for m in ours_exec["mounts"]] == ["/", "/work"]
    )


def test_buildctl_build_accepts_our_definition(
    buildctl: str, standalone_buildkitd: str, definition: Path, busybox_root: str, tmp_path: Path
) -> None:
    dest = tmp_path / "out"
    go = subprocess.run(
        [
            buildctl,
            "--addr",
            standalone_buildkitd,
            *_tls_args(),
            "build",
            "--progress=plain",
            "--local",
            f"rootfs={busybox_root}",
            "--output",
            f"type=local,dest={dest}",
        ],
        stdin=definition.open("rb"),
        capture_output=True,
        timeout=600,
    )
    log = go.stderr.decode(errors="replace")
    assert go.returncode == 0, log
    assert sorted(os.listdir(dest)) == ["copied", "ran"]
    assert (dest / "copied").read_text() == "crosscheck input\n"
    assert (dest / "ran").read_text() == "ran\n"


def _tls_args() -> List[str]:
    """buildctl's TLS flags when BUILDKIT_HOST is tcp:// with BUILDKIT_TLS_* (the --tls form of bin/buildkit)."""
    if not os.environ.get("BUILDKIT_HOST", "").startswith("tcp://"):
        return []
    args = []
    for flag, var in (
        ("--tlscacert", "BUILDKIT_TLS_CA_CERT"),
        ("--tlscert", "BUILDKIT_TLS_CERT"),
        ("--tlskey", "BUILDKIT_TLS_KEY"),
        ("--tlsservername", "BUILDKIT_TLS_SERVER_NAME"),
    ):
        if os.environ.get(var):
            args += [flag, os.environ[var]]
    return args
