"""A YAML's `capabilities.add` beyond BuildKit's defaults: the step runs insecure (and has the capability) where
the daemon allows the security.insecure entitlement, and the solve fails with one line saying how to allow it
where it does not. Both outcomes are checked: which one happens depends on the daemon's configuration."""

from __future__ import annotations

import io
import uuid

from melange_bk import llb
from melange_bk.buildkit.client import Client
from melange_bk.buildkit.progress import Progress
from melange_bk.buildkit.solve import solve
from melange_bk.config.model import Capabilities
from melange_bk.driver.llbgen import run_steps
from melange_bk.errors import BuildKitError
from melange_bk.plan.model import Step

CAP_SYS_ADMIN = 21


def test_a_capability_beyond_the_defaults_is_granted_or_refused_in_one_line(
    bk: Client, busybox_root: str
) -> None:
    root = llb.file(llb.scratch(), llb.copy(llb.local("rootfs"), "/", "/", copy_dir_contents=True))
    step = Step(
        id="1",
        name="caps",
        uses="",
        line=1,
        runs=f"echo {uuid.uuid4().hex}; grep CapEff /proc/self/status",
        workdir="/",
        env=(),
        needs=(),
    )
    state = run_steps(
        root, "demo", (step,), {"PATH": "/bin"}, "root", [], capabilities=Capabilities(add=("CAP_SYS_ADMIN",))
    )
    definition = llb.marshal(state)
    assert llb.required_entitlements(definition) == ("security.insecure",)
    out = io.StringIO()
    try:
        solve(bk, definition, local_dirs={"rootfs": busybox_root}, progress=Progress("plain", out=out))
    except BuildKitError as e:
        assert "\n" not in str(e), str(e)
        assert "security.insecure" in str(e) and "capabilities.add" in str(e)
        return
    eff = [ln.split("CapEff:")[1].strip() for ln in out.getvalue().splitlines() if "CapEff:" in ln]
    assert eff, out.getvalue()
    assert int(eff[-1], 16) & (1 << CAP_SYS_ADMIN), f"CapEff {eff[-1]} lacks CAP_SYS_ADMIN"
