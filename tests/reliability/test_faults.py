"""Faults and load: the daemon killed mid-build, the network cut or gone silent, the output disk full, and 20
builds at once. Every failure must be one clear line naming what broke, within a bounded time, with nothing
half-written in the output directory; nothing may be lost or mixed up under load.

The killed daemon is a private one started here, of the same kind as BUILDKIT_HOST's (dockerd or buildkitd, same
binaries and flags as `bin/buildkit up`, its own data and socket under a temporary directory), so the shared daemon
in BUILDKIT_HOST is never touched. Network faults go through a proxy of our own in front of the shared daemon. The
full disk is a small tmpfs (the tests run as root).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import pytest

from melange_bk.buildkit.address import parse_address
from melange_bk.buildkit.client import Client
from melange_bk.errors import BuildKitError
from tests.integration.local import apk_files
from tests.reliability.processes import procs_with, start_build

PKG_YAML = """
package:
  name: {name}
  version: "1.0"
  epoch: 0
  description: fault-suite package {name}
  copyright:
    - license: Apache-2.0
pipeline:
  - name: make files
    runs: |
      echo "fault-step {nonce} started"
      if [ -e slow ]; then sleep 120; fi
      mkdir -p ${{{{targets.destdir}}}}/usr/share/{name}
      echo "{name} {nonce}" > ${{{{targets.destdir}}}}/usr/share/{name}/id
      {extra}
"""


# --- helpers ----------------------------------------------------------------------------------------------------


def _wait_for(pred, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


def _workspace(parent: Path, name: str, nonce: str, slow: bool = False, extra: str = "") -> Path:
    ws = parent / f"ws-{name}"
    ws.mkdir(parents=True)
    (ws / "melange.yaml").write_text(PKG_YAML.format(name=name, nonce=nonce, extra=extra))
    if slow:
        (ws / "slow").write_text("sleep in the step\n")
    return ws


def _finish(proc: subprocess.Popen, timeout: float) -> Tuple[int, str, float]:
    t0 = time.monotonic()
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"the client did not exit within {timeout:g}s:\n{err[-3000:]}") from None
    return proc.returncode, err, time.monotonic() - t0


def _fault_mid_build(
    ws: Path,
    out: Path,
    root: str,
    addr: str,
    nonce: str,
    fault: Callable[[], None],
    env: Optional[Dict[str, str]] = None,
    cleanup: Callable[[], None] = lambda: None,
) -> Tuple[int, str, float]:
    """Start the slow build of `ws`, call `fault()` once its step runs on this host, and wait for the client:
    (exit code, stderr, seconds from the end of `fault()` to the exit). `cleanup` runs however that ends."""
    proc = start_build(ws / "melange.yaml", out, root, addr, env=env)
    try:
        _wait_for(
            lambda: procs_with(f"fault-step {nonce} started") or proc.poll() is not None, 120, "the step"
        )
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        fault()
        return _finish(proc, 60)
    finally:
        if proc.poll() is None:
            proc.kill()
        cleanup()


def _error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("melange-bk: error:")]
    assert lines, err[-3000:]
    print(lines[-1])  # shown with -s: the message a user gets
    return lines[-1]


def _files_under(out: Path) -> List[str]:
    """Everything in the output dir but the (empty) arch folder the build creates first."""
    if not out.exists():
        return []
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.name != "x86_64")


def _kill_leftover_steps(nonce: str) -> None:
    """Steps of a daemon killed with SIGKILL may outlive it (runc's children): end those we caused."""
    for pid in procs_with(nonce):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# --- a private daemon -------------------------------------------------------------------------------------------


def _daemon_kind(shared_addr: str) -> Tuple[str, str]:
    """("dockerd", its tools folder) or ("buildkitd", its binary): the kind of daemon BUILDKIT_HOST is, from the
    binaries `bin/buildkit up` installed next to its socket (MELANGE_BK_FAULT_DOCKERD_TOOLS overrides)."""
    env = os.environ.get("MELANGE_BK_FAULT_DOCKERD_TOOLS", "")
    if env:
        return "dockerd", env
    addr = parse_address(shared_addr)
    home = os.path.dirname(os.path.dirname(addr.path)) if addr.path else ""
    if addr.scheme == "docker-unix" and os.path.exists(os.path.join(home, "tools", "bin", "dockerd")):
        return "dockerd", os.path.join(home, "tools")
    if addr.scheme == "unix" and os.path.exists(os.path.join(home, "bin", "buildkitd")):
        return "buildkitd", os.path.join(home, "bin", "buildkitd")
    pytest.fail(
        f"cannot start a private daemon like the one at {shared_addr} (no dockerd under {home}/tools, no "
        f"{home}/bin/buildkitd); set MELANGE_BK_FAULT_DOCKERD_TOOLS to bin/buildkit's .cache/buildkit/tools",
        pytrace=False,
    )


class PrivateDaemon:
    """A daemon of the same kind as the shared one, started as `bin/buildkit up` starts it (dockerd with its
    embedded BuildKit, or a standalone buildkitd with the OCI worker), in a directory of its own."""

    def __init__(self, kind: str, binary: str) -> None:
        self.kind = kind
        self.binary = binary
        # Short path: unix socket paths are limited to 108 bytes (containerd's live under exec/ too).
        self.dir = tempfile.mkdtemp(prefix="mbk-fault-", dir="/tmp")
        if kind == "dockerd":
            self.sock = os.path.join(self.dir, "run", "docker.sock")
            self.addr = "docker-unix://" + self.sock
        else:
            self.sock = os.path.join(self.dir, "run", "buildkitd.sock")
            self.addr = "unix://" + self.sock
        self.log = os.path.join(self.dir, "daemon.log")
        self.proc: Optional[subprocess.Popen] = None

    def _argv(self) -> Tuple[List[str], Dict[str, str]]:
        d = self.dir
        if self.kind == "dockerd":
            tools = self.binary
            argv = [
                os.path.join(tools, "bin", "dockerd"),
                "--host", "unix://" + self.sock,
                "--data-root", os.path.join(d, "data"),
                "--exec-root", os.path.join(d, "exec"),
                "--pidfile", os.path.join(d, "run", "dockerd.pid"),
                "--bridge=none", "--iptables=false", "--ip-masq=false", "--ip-forward=false",
                "--userland-proxy=false", "--storage-driver=overlay2",
            ]  # fmt: skip
            return argv, dict(os.environ, PATH=os.path.join(tools, "bin") + ":" + os.environ.get("PATH", ""))
        config = os.path.join(d, "buildkitd.toml")
        open(config, "w").close()
        runc = shutil.which("runc") or "runc"
        argv = [
            self.binary, "--config", config, "--root", os.path.join(d, "state"), "--addr", self.addr,
            "--oci-worker=true", "--containerd-worker=false", "--oci-worker-binary", runc,
            "--oci-worker-net=host",
        ]  # fmt: skip
        return argv, dict(os.environ)

    def start(self, timeout: float = 60) -> None:
        for sub in ("run", "data", "exec", "state"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        argv, env = self._argv()
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=open(self.log, "ab"),
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        why = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if os.path.exists(self.sock):
                try:
                    with Client.connect(self.addr) as c:
                        c.ping(timeout=2)
                    return
                except BuildKitError as e:
                    why = str(e)
            time.sleep(0.2)
        with open(self.log, errors="replace") as f:
            tail = f.read()[-3000:]
        pytest.fail(f"private {self.kind} did not start ({why}):\n{tail}", pytrace=False)

    def _children(self, pid: int) -> List[int]:
        out: List[int] = []
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    out.extend(int(x) for x in f.read().split())
        except OSError:
            pass
        return out

    def kill(self) -> None:
        """SIGKILL the daemon (and dockerd's containerd): a crash, no goodbye to anyone."""
        assert self.proc is not None
        children = self._children(self.proc.pid)
        self.proc.kill()
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            children = self._children(self.proc.pid)
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            for pid in children:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def cleanup(self) -> None:
        self.stop()
        with open("/proc/mounts") as f:
            mounts = [line.split()[1] for line in f]
        for m in reversed(mounts):
            if m == self.dir or m.startswith(self.dir + "/"):
                subprocess.run(["umount", "-l", m], check=False, capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture()
def private_daemon(buildkit_addr: str) -> Iterator[PrivateDaemon]:
    d = PrivateDaemon(*_daemon_kind(buildkit_addr))
    try:
        d.start()
        yield d
    finally:
        d.cleanup()


# --- a proxy we can cut -----------------------------------------------------------------------------------------


class Proxy:
    """A unix-socket relay in front of the daemon's socket. `cut()` closes every connection and refuses new ones
    (a reset link); `freeze()` keeps them open but stops carrying bytes (a silent drop: no error, no data)."""

    def __init__(self, target: str, listen: str) -> None:
        self.target = target
        self.listen = listen
        self.mode = "open"
        self._conns: List[socket.socket] = []
        self._lock = threading.Lock()
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(listen)
        self._server.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                self._conns.append(c)
                if self.mode == "cut":
                    c.close()
                    continue
                if self.mode == "frozen":
                    continue  # held open, never answered
                u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                u.connect(self.target)
                self._conns.append(u)
            threading.Thread(target=self._relay, args=(c, u), daemon=True).start()
            threading.Thread(target=self._relay, args=(u, c), daemon=True).start()

    def _relay(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(256 * 1024)
                if not data or self.mode == "cut":
                    break
                if self.mode == "frozen":
                    continue  # swallowed
                dst.sendall(data)
        except OSError:
            pass
        if self.mode == "open":
            for s, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
                try:
                    s.shutdown(how)
                except OSError:
                    pass

    def cut(self) -> None:
        with self._lock:
            self.mode = "cut"
            for s in self._conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def freeze(self) -> None:
        self.mode = "frozen"

    def close(self) -> None:
        self.cut()
        self._server.close()


@pytest.fixture()
def proxy(buildkit_addr: str) -> Iterator[Proxy]:
    addr = parse_address(buildkit_addr)
    if addr.scheme not in ("docker-unix", "unix"):
        pytest.fail(
            f"the network-fault tests relay a unix socket; BUILDKIT_HOST is {buildkit_addr}", pytrace=False
        )
    d = tempfile.mkdtemp(prefix="mbk-proxy-", dir="/tmp")
    p = Proxy(addr.path, os.path.join(d, "proxy.sock"))
    p.address = f"{addr.scheme}://{p.listen}"  # type: ignore[attr-defined]
    try:
        yield p
    finally:
        p.close()
        shutil.rmtree(d, ignore_errors=True)


# --- (a) the daemon dies mid-build --------------------------------------------------------------------------------


def test_daemon_killed_mid_build_then_rerun(
    private_daemon: PrivateDaemon, tmp_path: Path, busybox_root: str
) -> None:
    nonce = uuid.uuid4().hex
    ws = _workspace(tmp_path, "killed", nonce, slow=True)
    out = tmp_path / "out"
    rc, err, took = _fault_mid_build(
        ws,
        out,
        busybox_root,
        private_daemon.addr,
        nonce,
        private_daemon.kill,
        cleanup=lambda: _kill_leftover_steps(nonce),
    )
    line = _error_line(err)
    assert rc == 1, err[-3000:]
    assert f"lost the connection to BuildKit at {private_daemon.addr}" in line, line
    assert "Traceback" not in err
    assert took < 30, f"{took:.1f}s to notice the dead daemon"
    assert _files_under(out) == [], "partial files left behind"
    # The daemon comes back; the same build (minus the sleep) succeeds.
    private_daemon.start()
    (ws / "slow").unlink()
    rc, err, _ = _finish(start_build(ws / "melange.yaml", out, busybox_root, private_daemon.addr), 300)
    assert rc == 0, err[-3000:]
    assert _files_under(out) == ["x86_64/killed-1.0-r0.apk"]
    files = apk_files(out / "x86_64" / "killed-1.0-r0.apk")
    assert files["usr/share/killed/id"] == f"killed {nonce}\n".encode()


def test_daemon_down_before_the_build(
    private_daemon: PrivateDaemon, tmp_path: Path, busybox_root: str
) -> None:
    private_daemon.kill()
    ws = _workspace(tmp_path, "nodaemon", uuid.uuid4().hex)
    out = tmp_path / "out"
    rc, err, took = _finish(start_build(ws / "melange.yaml", out, busybox_root, private_daemon.addr), 60)
    assert rc == 1 and took < 30
    assert f"cannot reach BuildKit at {private_daemon.addr}" in _error_line(err)
    assert _files_under(out) == []


# --- (b) the network between client and daemon fails -------------------------------------------------------------


def test_connection_cut_mid_build(proxy: Proxy, tmp_path: Path, busybox_root: str) -> None:
    nonce = uuid.uuid4().hex
    ws = _workspace(tmp_path, "cut", nonce, slow=True)
    out = tmp_path / "out"
    addr = proxy.address  # type: ignore[attr-defined]
    rc, err, took = _fault_mid_build(ws, out, busybox_root, addr, nonce, proxy.cut)
    line = _error_line(err)
    assert rc == 1 and f"lost the connection to BuildKit at {addr}" in line, err[-3000:]
    assert took < 20, f"{took:.1f}s to notice the cut"
    assert "Traceback" not in err
    assert _files_under(out) == []
    # The daemon lost our session: it stops the step rather than finishing a build nobody will receive.
    _wait_for(
        lambda: not procs_with(f"fault-step {nonce} started"), 30, "the daemon to drop the orphaned step"
    )


def test_connection_goes_silent_mid_build(proxy: Proxy, tmp_path: Path, busybox_root: str) -> None:
    """No reset, no error: bytes simply stop flowing. The daemon health-checks the session every 5 s; while those
    arrive, a step that prints nothing for longer than the liveness timeout is fine. Once they stop, the client
    gives up after the liveness timeout instead of waiting forever."""
    nonce = uuid.uuid4().hex
    ws = _workspace(tmp_path, "silent", nonce, slow=True)
    out = tmp_path / "out"
    addr = proxy.address  # type: ignore[attr-defined]
    liveness, health_every = 12.0, 5.0

    def quiet_step_then_freeze() -> None:
        time.sleep(liveness + 3)  # a silent step outlives the timeout: the health checks keep the build going
        proxy.freeze()

    env = {"MELANGE_BK_LIVENESS_TIMEOUT": f"{liveness:g}"}
    rc, err, took = _fault_mid_build(ws, out, busybox_root, addr, nonce, quiet_step_then_freeze, env=env)
    line = _error_line(err)
    assert rc == 1, err[-3000:]
    assert f"lost the connection to BuildKit at {addr}: no word from the daemon" in line, line
    # The last health check came at most one interval (plus a little scheduling) before the freeze.
    assert liveness - health_every - 2 < took < liveness + 13, f"{took:.1f}s from the freeze to the exit"
    assert _files_under(out) == []
    proxy.cut()  # now the daemon sees the session go and drops the step
    _wait_for(
        lambda: not procs_with(f"fault-step {nonce} started"), 30, "the daemon to drop the orphaned step"
    )


# --- (c) the output disk fills up ------------------------------------------------------------------------------


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], capture_output=True, text=True
    )
    if r.returncode != 0:
        pytest.fail(
            f"cannot mount a tmpfs for the disk-full tests (need root): {r.stderr.strip()}", pytrace=False
        )
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _used(mnt: Path) -> int:
    s = os.statvfs(mnt)
    return (s.f_blocks - s.f_bfree) * s.f_frsize


@pytest.mark.parametrize(
    "mib,where",
    [
        (16, "export"),  # the exported tree alone does not fit
        (5, "apk"),  # the tree fits; the APK written next to it does not
    ],
)
def test_disk_full_in_the_output_dir(
    small_disk: Path, tmp_path: Path, busybox_root: str, buildkit_addr: str, mib: int, where: str
) -> None:
    nonce = uuid.uuid4().hex
    big = f"head -c {mib << 20} /dev/urandom > ${{{{targets.destdir}}}}/usr/share/full-{where}/blob"
    ws = _workspace(tmp_path, f"full-{where}", nonce, extra=big)
    out = small_disk / "out"
    before = _used(small_disk)
    rc, err, _ = _finish(start_build(ws / "melange.yaml", out, busybox_root, buildkit_addr), 300)
    line = _error_line(err)
    assert rc != 0 and "No space left on device" in line, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert _files_under(out) == [], "half-written files left behind"
    assert _used(small_disk) - before < 64 * 1024, "space still held by a partial output"


# --- (d) load: 20 builds at once on one daemon -------------------------------------------------------------------


def test_twenty_concurrent_builds(tmp_path: Path, busybox_root: str, buildkit_addr: str) -> None:
    from melange_bk.driver.buildenv import EnvironmentOptions
    from melange_bk.driver.builder import BuildRequest, build

    nonce = uuid.uuid4().hex
    names = [f"load{i:02d}" for i in range(20)]
    out = tmp_path / "out"  # one output folder shared by all: staging and renames must not collide
    # Each package also carries a payload of its own (size differs per package), to catch crossed streams.
    payload = 'i=0; while [ $i -lt {n} ]; do echo "{name} line $i"; i=$((i+1)); done > ${{{{targets.destdir}}}}/usr/share/{name}/lines'
    reqs = []
    for i, name in enumerate(names):
        ws = _workspace(tmp_path, name, nonce, extra=payload.format(n=200 + 37 * i, name=name))
        reqs.append(
            BuildRequest(
                config_file=str(ws / "melange.yaml"),
                out_dir=str(out),
                environment=EnvironmentOptions(base=busybox_root),
                buildkit_addr=buildkit_addr,
                progress="quiet",
            )
        )
    errors: List[str] = []

    def one(req: BuildRequest) -> Tuple[str, ...]:
        try:
            return build(req).apks
        except Exception as e:  # noqa: BLE001 - collected and reported below
            errors.append(f"{req.config_file}: {type(e).__name__}: {e}")
            return ()

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(reqs)) as pool:
        results = list(pool.map(one, reqs))
    took = time.monotonic() - t0
    assert errors == [], errors
    assert sorted(os.path.basename(a) for r in results for a in r) == [f"{n}-1.0-r0.apk" for n in names]
    assert _files_under(out) == sorted(f"x86_64/{n}-1.0-r0.apk" for n in names), "lost or stray files"
    for i, name in enumerate(names):
        files = apk_files(out / "x86_64" / f"{name}-1.0-r0.apk")
        assert files[f"usr/share/{name}/id"] == f"{name} {nonce}\n".encode()
        expected = "".join(f"{name} line {j}\n" for j in range(200 + 37 * i)).encode()
        assert files[f"usr/share/{name}/lines"] == expected, f"{name}: payload mixed up or truncated"
        data = sorted(n for n in files if not n.startswith("."))
        sbom = f"var/lib/db/sbom/{name}-1.0-r0.spdx.json"
        assert data == [f"usr/share/{name}/id", f"usr/share/{name}/lines", sbom], (name, data)
        assert name.encode() in files[sbom]
        assert b"pkgname = %s\n" % name.encode() in files[".PKGINFO"]
    print(f"20 concurrent builds in {took:.1f}s")
