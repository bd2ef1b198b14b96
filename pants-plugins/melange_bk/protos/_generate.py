"""Regenerate the checked-in protobuf/gRPC modules from the .proto files next to this file.

    python -m melange_bk.protos._generate          # rewrites melange_bk/protos/*_pb2*.py in place

Needs grpcio-tools (pinned in 3rdparty/python/requirements.txt; the generated code depends on its version).
A unit test runs `generate()` into a temporary folder and compares: the checked-in modules must be what the
pinned generator makes of the checked-in .proto files.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import List

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent  # the folder that holds `melange_bk/`: imports read `melange_bk/protos/x.proto`


def proto_files() -> List[str]:
    return sorted(p.name for p in HERE.glob("*.proto"))


def generated_names() -> List[str]:
    names = []
    for proto in proto_files():
        stem = proto[: -len(".proto")]
        names.append(f"{stem}_pb2.py")
        if "service " in (HERE / proto).read_text():
            names.append(f"{stem}_pb2_grpc.py")
    return sorted(names)


def generate(out_dir: Path) -> List[Path]:
    """Run protoc (from grpcio-tools) over our .proto files; write the modules into `out_dir`."""
    import grpc_tools
    from grpc_tools import protoc

    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    with tempfile.TemporaryDirectory() as tmp:
        args = ["protoc", f"-I{ROOT}", f"-I{well_known}", f"--python_out={tmp}", f"--grpc_python_out={tmp}"]
        args += [f"{ROOT}/melange_bk/protos/{name}" for name in proto_files()]
        if protoc.main(args) != 0:
            raise RuntimeError("protoc failed (see its output above)")
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for name in generated_names():
            src = Path(tmp) / "melange_bk" / "protos" / name
            shutil.copyfile(src, out_dir / name)
            written.append(out_dir / name)
    return written


if __name__ == "__main__":
    for path in generate(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(path)
