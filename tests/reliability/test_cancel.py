"""Ctrl-C during `melange-bk build`: the client exits promptly (130, one clear line) and the daemon really stops the
running step -- its process goes away and the side effect it would have had after its sleep never happens."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import List

from melange_bk import llb
from melange_bk.buildkit.client import Client
from melange_bk.buildkit.progress import Progress
from melange_bk.buildkit.solve import CANCEL_GRACE, solve
from tests.reliability.processes import procs_with, start_build

CACHE_ID = "melange-bk-ccache"  # one of the builder's cache mounts (llbgen.CACHE_MOUNTS)
CACHE_DIR = "/var/cache/melange-bk/ccache"
SLEEP = 6

YAML = """
package:
  name: cancelme
  version: "1.0"
  epoch: 0
  description: a build that is interrupted
  copyright:
    - license: Apache-2.0
pipeline:
  - name: long step
    runs: |
      echo "long step {nonce} started"
      sleep {sleep}
      touch {cache}/cancel-marker-{nonce}
      mkdir -p ${{{{targets.destdir}}}}/usr/share
      echo done > ${{{{targets.destdir}}}}/usr/share/cancelme
"""


def _marker_exists(addr: str, root: str, nonce: str) -> bool:
    """Look into the shared cache mount with a fresh step."""
    state = llb.file(llb.scratch(), llb.copy(llb.local("rootfs"), "/", "/", copy_dir_contents=True))
    probe = llb.run(
        state,
        # (The answer is assembled by the shell: the command line itself shows up in the progress output too.)
        ["/bin/sh", "-c", f"r=NO; if [ -e /c/cancel-marker-{nonce} ]; then r=YES; fi; echo MARK-$r-{nonce}"],
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        mounts=[llb.cache("/c", CACHE_ID, sharing="shared")],
    )
    buf = io.StringIO()
    with Client.connect(addr) as bk:
        solve(bk, llb.marshal(probe.root), local_dirs={"rootfs": root}, progress=Progress("plain", out=buf))
    text = buf.getvalue()
    assert f"MARK-YES-{nonce}" in text or f"MARK-NO-{nonce}" in text, text
    return f"MARK-YES-{nonce}" in text


def test_ctrl_c_cancels_the_solve_on_the_daemon(
    tmp_path: Path, busybox_root: str, buildkit_addr: str
) -> None:
    nonce = uuid.uuid4().hex
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "melange.yaml").write_text(YAML.format(nonce=nonce, sleep=SLEEP, cache=CACHE_DIR))
    out = tmp_path / "out"
    proc = start_build(
        ws / "melange.yaml", out, busybox_root, buildkit_addr, progress="rawjson", stdout=subprocess.DEVNULL
    )
    lines: List[str] = []
    started = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if f"long step {nonce} started" in line or (
                line.startswith("{") and _step_started(json.loads(line))
            ):
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert started.wait(120), "the long step never started:\n" + "".join(lines[-20:])
        # The step's shell is running in a container on this host (local daemon): wait until we can see it.
        local = buildkit_addr.startswith(("docker-unix://", "unix://"))
        deadline = time.monotonic() + 10
        while local and not procs_with(f"long step {nonce} started") and time.monotonic() < deadline:
            time.sleep(0.1)
        seen = procs_with(f"long step {nonce} started") if local else []
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=15)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(5)
    err = "".join(lines)
    assert rc == 130, err[-2000:]
    # At most the grace period for the daemon's acknowledgement, plus the interpreter's exit (a loaded CI host).
    assert elapsed < CANCEL_GRACE + 3, f"the client took {elapsed:.1f}s to exit after Ctrl-C"
    last = [ln for ln in lines if not ln.startswith("{")]
    assert last and "cancelled" in last[-1], err[-2000:]
    assert "Traceback" not in err
    # Nothing was written: no APK, no staging folder left behind.
    leftovers = list(out.rglob("*")) if out.exists() else []
    assert [p for p in leftovers if p.name != "x86_64"] == [], leftovers
    if local:
        assert seen, "the step's process was never visible on this host"
        deadline = time.monotonic() + 10
        while procs_with(f"long step {nonce} started") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not procs_with(f"long step {nonce} started"), "the daemon kept running the cancelled step"
    # Had the daemon let the step run on, it would have touched the marker SLEEP seconds after it started.
    time.sleep(max(0.0, SLEEP + 2 - (time.monotonic() - t0)))
    assert not _marker_exists(buildkit_addr, busybox_root, nonce), "the cancelled step ran to completion"


def _step_started(status: dict) -> bool:
    for v in status.get("vertexes", []):
        if "step 1: long step" in v.get("name", "") and v.get("started") and not v.get("completed"):
            return True
    return False


def test_marker_probe_sees_a_completed_step(busybox_root: str, buildkit_addr: str) -> None:
    """The probe used above can fail: a step that does finish leaves its marker in the cache mount."""
    nonce = uuid.uuid4().hex
    state = llb.file(llb.scratch(), llb.copy(llb.local("rootfs"), "/", "/", copy_dir_contents=True))
    step = llb.run(
        state,
        ["/bin/sh", "-c", f"touch /c/cancel-marker-{nonce}"],
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        mounts=[llb.cache("/c", CACHE_ID, sharing="shared")],
    )
    with Client.connect(buildkit_addr) as bk:
        solve(bk, llb.marshal(step.root), local_dirs={"rootfs": busybox_root})
    assert _marker_exists(buildkit_addr, busybox_root, nonce)


def test_interrupted_solve_is_cancelled_while_the_client_lives(busybox_root: str, bk: Client) -> None:
    """In-process (a library caller, a Pants rule): KeyboardInterrupt inside solve() cancels the daemon's work
    before solve() returns -- not merely because a dying process drops its connection."""
    import _thread

    from melange_bk.buildkit.solve import Cancelled

    nonce = uuid.uuid4().hex
    state = llb.file(llb.scratch(), llb.copy(llb.local("rootfs"), "/", "/", copy_dir_contents=True))
    step = llb.run(
        state,
        ["/bin/sh", "-c", f"echo start-{nonce}; sleep 30; echo end-{nonce}"],
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )

    def interrupt_when_running() -> None:
        deadline = time.monotonic() + 60
        while not procs_with(f"start-{nonce}") and time.monotonic() < deadline:
            time.sleep(0.05)
        _thread.interrupt_main()

    threading.Thread(target=interrupt_when_running, daemon=True).start()
    t0 = time.monotonic()
    progress = Progress("quiet")
    try:
        solve(bk, llb.marshal(step.root), local_dirs={"rootfs": busybox_root}, progress=progress)
    except Cancelled as e:
        assert str(e) == f"build cancelled (Ctrl-C): the solve on {bk.address} was cancelled"
        assert e.exit_code == 130
        # Before solve() returned (the session still open), the daemon's Status stream reported the running
        # step interrupted: only the cancelled Solve call can have done that.
        failed = {name: error for name, error, _ in progress.failed()}
        assert "context canceled" in failed.get(
            f"/bin/sh -c echo start-{nonce}; sleep 30; echo end-{nonce}", ""
        ), failed
    else:
        raise AssertionError("solve() returned although it was interrupted")
    assert time.monotonic() - t0 < 30
    # The channel is still open (bk is alive): only the cancelled call can have stopped the step.
    deadline = time.monotonic() + 10
    while procs_with(f"start-{nonce}") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not procs_with(f"start-{nonce}"), "the daemon kept running the cancelled step"
    assert bk.ping()  # and the client still works
