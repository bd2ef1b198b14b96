"""Integration tests talk to the real BuildKit daemon named by BUILDKIT_HOST (`eval "$(bin/buildkit up)"`).

They FAIL, never skip, when it is missing: a green run must mean the daemon was exercised.
"""

from __future__ import annotations

import os
from typing import Dict, Iterator, Tuple

import pytest

from melange_bk.buildkit.client import Client


@pytest.fixture(scope="session")
def buildkit_addr() -> str:
    addr = os.environ.get("BUILDKIT_HOST", "")
    if not addr:
        pytest.fail(
            'BUILDKIT_HOST is not set: start the daemon with eval "$(bin/buildkit up)" before running integration '
            "tests (or exclude them with --tag=-integration)",
            pytrace=False,
        )
    return addr


@pytest.fixture()
def bk(buildkit_addr: str) -> Iterator[Client]:
    with Client.connect(buildkit_addr) as client:
        yield client


@pytest.fixture(scope="session")
def busybox_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A busybox rootfs directory (Debian busybox-static, installed by .ci/run)."""
    from melange_bk.environment.rootfs import busybox_rootfs

    return busybox_rootfs(str(tmp_path_factory.mktemp("busybox-root")))


# --- which daemon: the suite runs once against dockerd (docker-unix://) and once against a standalone buildkitd
# (unix:// or tcp://, `eval "$(bin/buildkit up --daemon=buildkitd)"`). Tests that need a standalone buildkitd and
# its tools (buildctl, the TCP+TLS listener) use the fixtures below: they SKIP against dockerd, whose embedded
# BuildKit has neither, and FAIL against a standalone buildkitd when what they need is not configured.


def daemon_kind(addr: str) -> str:
    """'dockerd' for Docker's embedded BuildKit (docker-unix://), else 'buildkitd'."""
    return "dockerd" if addr.startswith("docker-unix://") else "buildkitd"


@pytest.fixture(scope="session")
def standalone_buildkitd(buildkit_addr: str) -> str:
    """BUILDKIT_HOST when it is a standalone buildkitd; skips in the dockerd run of the suite."""
    if daemon_kind(buildkit_addr) == "dockerd":
        pytest.skip(
            "needs a standalone buildkitd (BUILDKIT_HOST is dockerd's); runs in the buildkitd leg: "
            'eval "$(bin/buildkit up --daemon=buildkitd)"'
        )
    return buildkit_addr


@pytest.fixture(scope="session")
def buildctl(standalone_buildkitd: str) -> str:
    """The buildctl binary (MELANGE_BK_BUILDCTL, set by `bin/buildkit up --daemon=buildkitd`)."""
    path = os.environ.get("MELANGE_BK_BUILDCTL", "")
    if not path or not os.access(path, os.X_OK):
        pytest.fail(
            f"BUILDKIT_HOST={standalone_buildkitd} is a standalone buildkitd but buildctl is missing "
            f'(MELANGE_BK_BUILDCTL={path!r}): eval "$(bin/buildkit up --daemon=buildkitd)" sets it',
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def buildkitd_tls(standalone_buildkitd: str) -> Tuple[str, Dict[str, str]]:
    """(tcp:// address, {"ca": …, "cert": …, "key": …}) of buildkitd's TCP+TLS listener.

    From MELANGE_BK_BUILDKITD_TLS_ADDR/_DIR (bin/buildkit up --daemon=buildkitd), or from BUILDKIT_HOST itself
    when it is tcp:// with BUILDKIT_TLS_CA_CERT/CERT/KEY."""
    if standalone_buildkitd.startswith("tcp://") and os.environ.get("BUILDKIT_TLS_CA_CERT"):
        files = {
            "ca": os.environ["BUILDKIT_TLS_CA_CERT"],
            "cert": os.environ.get("BUILDKIT_TLS_CERT", ""),
            "key": os.environ.get("BUILDKIT_TLS_KEY", ""),
        }
        return standalone_buildkitd, files
    addr = os.environ.get("MELANGE_BK_BUILDKITD_TLS_ADDR", "")
    tls_dir = os.environ.get("MELANGE_BK_BUILDKITD_TLS_DIR", "")
    files = {
        "ca": os.path.join(tls_dir, "ca.pem"),
        "cert": os.path.join(tls_dir, "client.pem"),
        "key": os.path.join(tls_dir, "client-key.pem"),
    }
    if not addr or not tls_dir or not all(os.path.isfile(f) for f in files.values()):
        pytest.fail(
            f"BUILDKIT_HOST={standalone_buildkitd} is a standalone buildkitd but its TCP+TLS listener is not "
            f"configured (MELANGE_BK_BUILDKITD_TLS_ADDR={addr!r}, MELANGE_BK_BUILDKITD_TLS_DIR={tls_dir!r}): "
            'eval "$(bin/buildkit up --daemon=buildkitd)" sets them',
            pytrace=False,
        )
    return addr, files
