from __future__ import annotations

import json

from melange_bk.plan.compile import compile_text


def test_to_json_key_order_and_argv() -> None:
    plan = compile_text(
        "m.yaml",
        "package:\n  name: a\n  version: '1'\n  epoch: 0\nenvironment:\n  environment:\n    ZED: z\n    ALPHA: a\n"
        "pipeline:\n  - runs: echo hi\n    working-directory: it's\n",
    )
    data = json.loads(plan.to_json())
    assert list(data) == [
        "file",
        "arch",
        "package",
        "vars",
        "environment",
        "steps",
        "subpackages",
        "test",
        "capabilities",
    ]
    step = data["steps"][0]
    assert list(step) == [
        "id",
        "name",
        "uses",
        "line",
        "runs",
        "workdir",
        "env",
        "needs",
        "source",
        "network",
    ]
    assert list(step["env"]) == sorted(step["env"])
    assert step["env"]["ZED"] == "z" and step["env"]["PATH"].startswith("/usr/local/sbin")
    argv = plan.steps[0].argv()
    assert argv[:2] == ("/bin/sh", "-c")
    assert "cd '/home/build/it'\\''s'" in argv[2] and argv[2].startswith("set -e")
