"""Several daemons in --buildkit-addr: the package goes to its rendezvous choice; a dead first choice falls back to
the next with one warning line; the same daemon under two spellings is two "daemons" that both work."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from melange_bk.buildkit.address import parse_address, parse_addresses
from melange_bk.buildkit.select import rendezvous_order
from melange_bk.cli.main import main

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "demo"


def _other_spelling(addr: str) -> str:
    """The same daemon, spelled differently (a `/./` in the socket path, or 127.0.0.1 vs localhost)."""
    a = parse_address(addr)
    if a.scheme == "tcp":
        host = "localhost" if a.host == "127.0.0.1" else a.host
        return f"tcp://{host}:{a.port}/" if host == a.host else f"tcp://{host}:{a.port}"
    head, _, tail = a.path.rpartition("/")
    return f"{a.scheme}://{head}/./{tail}"


def _build(tmp_path: Path, busybox_root: str, addrs: str) -> int:
    ws = tmp_path / "demo"
    if not ws.exists():
        shutil.copytree(FIXTURE, ws)
    return main(
        ["build", str(ws / "melange.yaml"), "--rootfs", busybox_root, "--out-dir", str(tmp_path / "out"),
         "--buildkit-addr", addrs, "--progress", "quiet"]
    )  # fmt: skip


def test_dead_first_choice_falls_back(
    tmp_path: Path, busybox_root: str, buildkit_addr: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # a dead address that rendezvous hashing ranks first for "demo"
    dead = next(
        d
        for d in (f"unix://{tmp_path}/dead-{i}.sock" for i in range(100))
        if rendezvous_order("demo", parse_addresses(f"{d},{buildkit_addr}"))[0].raw == d
    )
    assert _build(tmp_path, busybox_root, f"{dead},{buildkit_addr}") == 0
    err = capsys.readouterr().err
    warnings = [ln for ln in err.splitlines() if ln.startswith("melange-bk: warning:")]
    assert len(warnings) == 1, err
    assert dead in warnings[0] and f"using {buildkit_addr} for demo" in warnings[0]
    assert sorted(p.name for p in (tmp_path / "out" / "x86_64").glob("*.apk")) == [
        "demo-1.2.3-r4.apk",
        "demo-doc-1.2.3-r4.apk",
    ]


def test_same_daemon_under_two_spellings(
    tmp_path: Path, busybox_root: str, buildkit_addr: str, capsys: pytest.CaptureFixture[str]
) -> None:
    other = _other_spelling(buildkit_addr)
    assert other != buildkit_addr
    assert _build(tmp_path, busybox_root, f"{buildkit_addr}, {other}") == 0
    assert "warning" not in capsys.readouterr().err
    assert (tmp_path / "out" / "x86_64" / "demo-1.2.3-r4.apk").is_file()


def test_nothing_answers(tmp_path: Path, busybox_root: str, capsys: pytest.CaptureFixture[str]) -> None:
    dead = [f"unix://{tmp_path}/a.sock", "tcp://127.0.0.1:9"]
    assert _build(tmp_path, busybox_root, ",".join(dead)) == 1
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("melange-bk: error:")]
    assert len(lines) == 1 and "no BuildKit daemon answers for demo" in lines[0]
    assert not list((tmp_path / "out").rglob("*.apk"))
