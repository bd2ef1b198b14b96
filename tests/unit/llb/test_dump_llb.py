from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from melange_bk import llb
from melange_bk.cli.main import main


def small_definition():
    res = llb.run(
        llb.file(llb.scratch(), llb.copy(llb.local("rootfs"), "/", "/")),
        ["/bin/echo", "hi"],
        mounts=[llb.bind("/out", llb.scratch())],
        custom_name="echo",
    )
    return llb.marshal(res.get_mount("/out"), platform=llb.Platform("linux", "amd64"))


def test_dump_llb_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    defn = small_definition()
    path = tmp_path / "def.pb"
    path.write_bytes(llb.to_bytes(defn))
    assert main(["dump-llb", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4
    ops = [json.loads(line) for line in lines]
    assert [o["Digest"] for o in ops] == [d for d, _ in llb.decode_ops(defn)]
    assert ops[0]["Op"]["Op"]["source"]["identifier"] == "local://rootfs"
    assert ops[1]["Op"]["Op"]["file"]["actions"][0] == {
        "input": -1,
        "secondaryInput": 0,
        "output": 0,
        "Action": {"copy": {"src": "/", "dest": "/", "mode": -1, "timestamp": -1}},
    }
    exec_ = ops[2]["Op"]
    assert exec_["inputs"] == [{"digest": ops[1]["Digest"]}]
    assert exec_["platform"] == {"Architecture": "amd64", "OS": "linux"}
    assert exec_["Op"]["exec"]["network"] == "NONE"
    assert exec_["Op"]["exec"]["mounts"][1] == {"input": -1, "output": 1, "dest": "/out"}
    assert ops[2]["OpMetadata"]["description"] == {"llb.customname": "echo"}
    assert ops[3]["Op"] == {"inputs": [{"digest": ops[2]["Digest"], "index": 1}]}
    assert ops[3]["OpMetadata"]["caps"] == {"constraints": True, "meta.description": True, "platform": True}


def test_dump_llb_stdin_and_dot(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    data = llb.to_bytes(small_definition())

    class Stdin:
        buffer = io.BytesIO(data)

    monkeypatch.setattr(sys, "stdin", Stdin)
    assert main(["dump-llb", "--dot"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("digraph {\n") and out.endswith("}\n")
    assert '[label="/bin/echo hi" shape="box"]' in out
    assert '[label="/out"]' not in out  # /out is not an input mount; the root is unlabelled
    assert '[label="local://rootfs" shape="ellipse"]' in out


def test_dump_llb_golden(capsys: pytest.CaptureFixture[str]) -> None:
    golden = Path(__file__).resolve().parents[2] / "fixtures" / "golden" / "llb"
    assert main(["dump-llb", str(golden / "golden_graph.pb")]) == 0
    assert capsys.readouterr().out == (golden / "golden_graph.jsonl").read_text(encoding="utf-8")


def test_dump_llb_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.pb"
    bad.write_bytes(b"\xff\xff\xff not protobuf")
    assert main(["dump-llb", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("melange-bk: error: " + str(bad)) and "Definition" in err
    assert main(["dump-llb", str(tmp_path / "missing.pb")]) == 2
    assert "cannot read" in capsys.readouterr().err
