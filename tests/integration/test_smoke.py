"""The daemon answers through the project's own transport (docker-unix:// upgrade, unix:// or tcp://)."""

from __future__ import annotations

import platform

from melange_bk.buildkit.client import Client


def _host_platform() -> str:
    machine = platform.machine()
    return "linux/" + {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def test_list_workers_reports_the_host_platform(bk: Client) -> None:
    workers = bk.workers()
    assert workers, "the daemon reported no workers"
    platforms = {p for w in workers for p in w.platforms}
    assert _host_platform() in platforms


def test_info_names_buildkit(bk: Client) -> None:
    info = bk.info()
    assert info.package == "github.com/moby/buildkit"


def test_ping_line(bk: Client) -> None:
    line = bk.ping()
    assert "worker(s)" in line and _host_platform() in line


def test_many_calls_share_one_channel(bk: Client) -> None:
    # Each grpcio connection through the docker-unix bridge is its own upgraded dockerd connection: many calls
    # in a row must keep working.
    for _ in range(20):
        assert bk.workers()
