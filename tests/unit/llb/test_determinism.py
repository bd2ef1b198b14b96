"""Same graph ⇒ byte-identical Definition: in-process, across processes, PYTHONHASHSEED values and working
directories; plus a golden digest and golden dump-llb output for a fixed small graph.

Regenerate the golden files deliberately with `MELANGE_BK_REGEN_GOLDEN=1` (then review the diff).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from melange_bk import llb

GOLDEN = Path(__file__).resolve().parents[2] / "fixtures" / "golden" / "llb"
REGEN = os.environ.get("MELANGE_BK_REGEN_GOLDEN") == "1"
IMAGE_DIGEST = "sha256:" + "0123456789abcdef" * 4
COMMIT = "89abcdef" * 5


def golden_graph() -> llb.State:
    """A small graph touching every op kind and option family: keep it fixed (the golden files depend on it)."""
    rootfs = llb.local("rootfs", exclude=["*.pyc", "!keep.pyc"], shared_key="melange-rootfs")
    source = llb.local("source", include=["src/", "melange.yaml"], follow_paths=["src"])
    tool = llb.http(
        "https://example.org/tool.tar.gz", checksum="sha256:" + "ab" * 32, filename="tool.tgz", chmod=0o755
    )
    repo = llb.git("https://github.com/example/repo.git", COMMIT)
    base = llb.image(f"cgr.dev/chainguard/wolfi-base@{IMAGE_DIGEST}")
    root = llb.file(
        llb.scratch(),
        llb.copy(rootfs, "/", "/", copy_dir_contents=True, follow_symlinks=False)
        .mkdir("/home/build/melange-out", 0o755, make_parents=True, owner=(1000, 1000), timestamp=0)
        .mkfile("/etc/melange.env", 0o644, b"A=1\n", timestamp=0)
        .copy(tool, "/tool.tgz", "/opt/", create_dest_path=True, mode=0o755)
        .rm("/var/cache/apk/*", allow_not_found=True, allow_wildcard=True),
        custom_name="prepare rootfs",
    )
    step = llb.run(
        root,
        ["/bin/sh", "-c", "set -e\nmake install DESTDIR=/home/build/melange-out/pkg"],
        env={"PATH": "/usr/bin:/bin", "HOME": "/home/build", "SOURCE_DATE_EPOCH": "0", "CC": "gcc"},
        cwd="/home/build",
        user="1000:1000",
        mounts=[
            llb.bind("/home/build/src", source, selector="/src", readonly=True),
            llb.bind("/home/build/repo", repo, readonly=True),
            llb.bind("/home/build/melange-out", llb.scratch()),
            llb.bind("/base", base, readonly=True),
            llb.cache("/var/cache/melange", "melange-cache", sharing="locked"),
            llb.tmpfs("/tmp", size=64 << 20),
        ],
        custom_name="pipeline: make install",
    )
    return step.get_mount("/home/build/melange-out")


def golden_definition():
    return llb.marshal(golden_graph(), platform=llb.Platform("linux", "amd64"))


def _child_main(out_path: str) -> None:
    # Written to a file, not stdout: an interpreter wrapper (pex in Pants' sandbox) may print to stdout too.
    with open(out_path, "w") as f:
        f.write(
            llb.definition_digest(golden_definition()) + "\n" + llb.to_bytes(golden_definition()).hex() + "\n"
        )


def test_in_process_100_times_one_digest() -> None:
    blobs = {
        llb.to_bytes(llb.marshal(golden_graph(), platform=llb.Platform("linux", "amd64"))) for _ in range(100)
    }
    assert len(blobs) == 1


def test_subprocesses_with_different_hash_seeds_and_cwds(tmp_path: Path) -> None:
    here = llb.to_bytes(golden_definition())
    pythonpath = os.pathsep.join(os.path.abspath(p or os.getcwd()) for p in sys.path)
    seen = set()
    for i, seed in enumerate(("0", "1", "12345", "4294967295", "random")):
        cwd = tmp_path / f"cwd{i}"
        cwd.mkdir()
        env = dict(os.environ, PYTHONPATH=pythonpath, PYTHONHASHSEED=seed)
        result_file = tmp_path / f"out{i}.txt"
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from tests.unit.llb.test_determinism import _child_main; _child_main(sys.argv[1])",
                str(result_file),
            ],
            cwd=str(cwd),
            env=env,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
        out = result_file.read_text().split()
        assert bytes.fromhex(out[1]) == here, f"PYTHONHASHSEED={seed} gave a different Definition"
        seen.add(out[0])
    assert seen == {llb.definition_digest(golden_definition())}


def _check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if REGEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == actual, (
        f"{path} differs from the marshalled golden graph; if the change is intended, rerun with "
        "MELANGE_BK_REGEN_GOLDEN=1 and review the diff"
    )


def test_golden_digest() -> None:
    defn = golden_definition()
    _check_golden(
        "golden_graph.digest",
        f"definition {llb.definition_digest(defn)}\nhead {llb.head_digest(defn)}\n",
    )


def test_golden_dump() -> None:
    _check_golden("golden_graph.jsonl", llb.dump_json_lines(golden_definition()))


def test_golden_definition_bytes() -> None:
    path = GOLDEN / "golden_graph.pb"
    actual = llb.to_bytes(golden_definition())
    if REGEN:
        path.write_bytes(actual)
    assert path.read_bytes() == actual
