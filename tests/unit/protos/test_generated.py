"""The checked-in protobuf modules are exactly what the pinned grpcio-tools makes of the checked-in .proto files,
and the wire contract with BuildKit (packages, service paths, field numbers) holds."""

from __future__ import annotations

from pathlib import Path

from melange_bk.protos import _generate, control_pb2, filesync_pb2, fsutil_pb2, ops_pb2


def test_regenerating_changes_nothing(tmp_path: Path) -> None:
    written = _generate.generate(tmp_path)
    assert [p.name for p in written] == _generate.generated_names()
    for path in written:
        checked_in = _generate.HERE / path.name
        assert (
            checked_in.read_text() == path.read_text()
        ), f"{path.name} is stale: run python -m melange_bk.protos._generate"
    on_disk = sorted(p.name for p in _generate.HERE.glob("*_pb2*.py"))
    assert on_disk == _generate.generated_names(), "a generated module has no .proto source any more"


def test_service_paths_match_buildkit() -> None:
    control = control_pb2.DESCRIPTOR.services_by_name["Control"]
    assert control.full_name == "moby.buildkit.v1.Control"
    assert {"Solve", "Status", "Session", "ListWorkers", "Info"} <= set(control.methods_by_name)
    assert filesync_pb2.DESCRIPTOR.services_by_name["FileSync"].full_name == "moby.filesync.v1.FileSync"
    assert filesync_pb2.DESCRIPTOR.services_by_name["FileSend"].full_name == "moby.filesync.v1.FileSend"


def _numbers(message) -> dict:
    return {f.name: f.number for f in message.DESCRIPTOR.fields}


def test_field_numbers_of_the_wire_contract() -> None:
    # Spot checks against moby/buildkit's ops.proto/control.proto and fsutil's types (a wrong number would be
    # silently ignored by the daemon).
    assert _numbers(ops_pb2.Op) == {
        "inputs": 1, "exec": 2, "source": 3, "file": 4, "build": 5, "merge": 6, "diff": 7, "platform": 10,
        "constraints": 11,
    }  # fmt: skip
    assert _numbers(ops_pb2.Mount)["cacheOpt"] == 20 and _numbers(ops_pb2.Mount)["TmpfsOpt"] == 19
    assert (
        _numbers(ops_pb2.FileAction)["mkdir"] == 6
        and _numbers(ops_pb2.FileActionCopy)["exclude_patterns"] == 13
    )
    assert _numbers(ops_pb2.Definition) == {"def": 1, "metadata": 2, "Source": 3}
    assert _numbers(control_pb2.SolveRequest)["Exporters"] == 13
    assert _numbers(control_pb2.SolveRequest)["Entitlements"] == 9
    assert _numbers(fsutil_pb2.Stat)["xattrs"] == 10
    assert fsutil_pb2.Packet.PacketType.Value("PACKET_ERR") == 4
    assert ops_pb2.NetMode.Value("NONE") == 2
