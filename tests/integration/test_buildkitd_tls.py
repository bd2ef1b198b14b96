"""buildkitd over tcp:// with TLS (client certificates required), the way a remote buildkitd is used.

A build succeeds through the TLS listener (control API, Control/Session stream, local export); a wrong CA fails
with one line that says TLS and names the address. Runs in the standalone-buildkitd leg (`eval "$(bin/buildkit up
--daemon=buildkitd)"` exports MELANGE_BK_BUILDKITD_TLS_ADDR/_DIR); skipped against dockerd, which has no TCP
listener here; FAILS when BUILDKIT_HOST is a standalone buildkitd but the TLS listener is not configured.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Dict, Tuple

import pytest

from melange_bk import llb
from melange_bk.apk import read_apk, write_keypair
from melange_bk.buildkit.address import TLSConfig
from melange_bk.buildkit.client import Client
from melange_bk.buildkit.session import ExportTarget
from melange_bk.buildkit.solve import solve
from melange_bk.cli.main import main
from melange_bk.errors import BuildKitError

DEMO = Path(__file__).resolve().parents[1] / "fixtures" / "demo"

TLS = Tuple[str, Dict[str, str]]


def _config(files: Dict[str, str], **override: str) -> TLSConfig:
    return TLSConfig(
        ca_cert=override.get("ca", files["ca"]),
        cert=override.get("cert", files["cert"]) or None,
        key=override.get("key", files["key"]) or None,
    )


@pytest.fixture(scope="module")
def wrong_ca(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A CA that did not sign the daemon's certificate (openssl CLI, as bin/buildkit makes its own)."""
    d = tmp_path_factory.mktemp("wrong-ca")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        + [
            "-keyout",
            str(d / "ca-key.pem"),
            "-out",
            str(d / "ca.pem"),
            "-days",
            "1",
            "-subj",
            "/CN=wrong CA",
        ],
        check=True,
        capture_output=True,
    )
    return str(d / "ca.pem")


def test_solve_with_export_over_tls(buildkitd_tls: TLS, busybox_root: str, tmp_path: Path) -> None:
    addr, files = buildkitd_tls
    nonce = uuid.uuid4().hex
    root = llb.file(llb.scratch(), llb.copy(llb.local("rootfs"), "/", "/", copy_dir_contents=True))
    ran = llb.run(root, ["/bin/sh", "-c", f"mkdir /out && echo {nonce} > /out/nonce"], env={"PATH": "/bin"})
    out = llb.file(llb.scratch(), llb.copy(ran.root, "/out", "/", copy_dir_contents=True))
    with Client.connect(addr, _config(files)) as bk:
        assert "worker(s)" in bk.ping()
        solve(
            bk,
            llb.marshal(out),
            local_dirs={"rootfs": busybox_root},
            export=ExportTarget("local", str(tmp_path / "out")),
        )
    assert (tmp_path / "out" / "nonce").read_text() == nonce + "\n"


def test_melange_bk_build_over_tls(
    buildkitd_tls: TLS, busybox_root: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    addr, files = buildkitd_tls
    # Only the flags name the daemon and its TLS files: nothing comes from BUILDKIT_HOST / BUILDKIT_TLS_*.
    for var in ("BUILDKIT_HOST", "BUILDKIT_TLS_CA_CERT", "BUILDKIT_TLS_CERT", "BUILDKIT_TLS_KEY"):
        monkeypatch.delenv(var, raising=False)
    ws = tmp_path / "demo"
    shutil.copytree(DEMO, ws)
    write_keypair(str(tmp_path / "test.rsa"), bits=2048)
    out = tmp_path / "out"
    code = main(
        ["build", str(ws / "melange.yaml"), "--rootfs", busybox_root, "--out-dir", str(out)]
        + [
            "--signing-key",
            str(tmp_path / "test.rsa"),
            "--progress",
            "quiet",
            "--source-date-epoch",
            "1700000000",
        ]
        + [
            "--buildkit-addr",
            addr,
            "--tlscacert",
            files["ca"],
            "--tlscert",
            files["cert"],
            "--tlskey",
            files["key"],
        ]
    )
    assert code == 0
    apk = out / "x86_64" / "demo-1.2.3-r4.apk"
    assert read_apk(str(apk)).info.name == "demo"


def test_wrong_ca_fails_with_one_line_naming_the_address(buildkitd_tls: TLS, wrong_ca: str) -> None:
    addr, files = buildkitd_tls
    with pytest.raises(BuildKitError) as info:
        with Client.connect(addr, _config(files, ca=wrong_ca)) as bk:
            bk.ping(timeout=10)
    message = str(info.value)
    assert "\n" not in message
    assert addr in message and "TLS" in message, message
    assert "not signed by the given CA" in message, message


def test_wrong_ca_on_the_command_line(
    buildkitd_tls: TLS, wrong_ca: str, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    addr, files = buildkitd_tls
    monkeypatch.delenv("BUILDKIT_TLS_CA_CERT", raising=False)
    capsys.readouterr()
    code = main(
        ["ping", "--buildkit-addr", addr, "--timeout", "10", "--tlscacert", wrong_ca]
        + ["--tlscert", files["cert"], "--tlskey", files["key"]]
    )
    err = capsys.readouterr().err
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("melange-bk: error: TLS handshake with BuildKit at " + addr), err


def test_missing_client_certificate_is_refused(buildkitd_tls: TLS) -> None:
    # bin/buildkit starts buildkitd with --tlscacert: it requires and verifies client certificates.
    addr, files = buildkitd_tls
    if os.environ.get("MELANGE_BK_BUILDKITD_TLS_DIR", "") == "":
        pytest.skip("only for the buildkitd that bin/buildkit started (it requires client certificates)")
    with pytest.raises(BuildKitError) as info:
        with Client.connect(addr, TLSConfig(ca_cert=files["ca"])) as bk:
            bk.ping(timeout=10)
    assert addr in str(info.value) and "\n" not in str(info.value)
