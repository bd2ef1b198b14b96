"""Integration tests talk to the real BuildKit daemon named by BUILDKIT_HOST (`eval "$(bin/buildkit up)"`).

They FAIL, never skip, when it is missing: a green run must mean the daemon was exercised.
"""

from __future__ import annotations

import os
from typing import Iterator

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
