"""Golden JSON plans for three corpus YAMLs (regenerate with MELANGE_BK_UPDATE_GOLDEN=1)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from melange_bk.plan.compile import compile_file

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / "tests" / "fixtures" / "wolfi"
GOLDEN = ROOT / "tests" / "fixtures" / "golden" / "plans"
CASES = ["lz4.yaml", "py3-docker-squash.yaml", "ingress-nginx-controller-1.15.yaml"]


@pytest.mark.parametrize("name", CASES)
def test_golden_plan(name: str) -> None:
    text = compile_file(str(CORPUS / name), pipeline_dirs=[str(CORPUS / "pipelines")]).to_json()
    golden = GOLDEN / (name[: -len(".yaml")] + ".json")
    if os.environ.get("MELANGE_BK_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_plan_does_not_depend_on_hash_seed() -> None:
    code = (
        "import sys; from melange_bk.plan.compile import compile_file; "
        "sys.stdout.write(compile_file(sys.argv[1], pipeline_dirs=[sys.argv[2]]).to_json())"
    )
    outs = set()
    for seed in ("0", "1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=os.pathsep.join(sys.path))
        outs.add(
            subprocess.run(
                [sys.executable, "-c", code, str(CORPUS / CASES[1]), str(CORPUS / "pipelines")],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
    assert len(outs) == 1
