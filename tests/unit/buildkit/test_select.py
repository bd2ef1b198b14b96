"""Several daemons: the rendezvous choice per package, and falling back when the chosen one does not answer.

The "daemons" that answer are in-process gRPC servers on unix sockets implementing ListWorkers (no BuildKit)."""

from __future__ import annotations

import collections
import hashlib
from concurrent import futures
from pathlib import Path
from typing import Iterator, List

import grpc
import pytest

from melange_bk.buildkit.address import addresses_from_env, parse_address, parse_addresses
from melange_bk.buildkit.select import connect_for, rendezvous_order
from melange_bk.errors import BuildKitError
from melange_bk.protos import control_pb2

A, B, C = "unix:///run/a.sock", "tcp://b.example:1234", "docker-unix:///run/c.sock"


def test_parse_addresses() -> None:
    assert [a.raw for a in parse_addresses(f" {A}, {B} ,,{A},{C}")] == [A, B, C]
    assert [a.raw for a in parse_addresses(A)] == [A]
    assert [a.raw for a in addresses_from_env(None, {"BUILDKIT_HOST": f"{A},{B}"})] == [A, B]
    assert [a.raw for a in addresses_from_env(C, {"BUILDKIT_HOST": f"{A},{B}"})] == [C]
    with pytest.raises(BuildKitError, match="no BuildKit address"):
        parse_addresses(" , ")
    with pytest.raises(BuildKitError, match="expected tcp://HOST:PORT"):
        parse_addresses(f"{A},tcp://nohost")
    with pytest.raises(BuildKitError, match="is a list of BuildKit addresses"):
        parse_address(f"{A},{B}")


def test_choice_is_stable_and_independent_of_the_order_given() -> None:
    addrs = parse_addresses(f"{A},{B},{C}")
    for name in ("hello", "libgreet", "zlib", "m4"):
        first = rendezvous_order(name, addrs)
        assert rendezvous_order(name, tuple(reversed(addrs))) == first
        assert rendezvous_order(name, addrs[1:] + addrs[:1]) == first
        assert sorted(a.raw for a in first) == sorted([A, B, C])
    # fixed values: the choice does not depend on PYTHONHASHSEED, the machine or the Python version
    assert [a.raw for a in rendezvous_order("hello", addrs)] == EXPECTED_HELLO
    by_hash = sorted([A, B, C], key=lambda a: hashlib.sha256(f"hello\0{a}".encode()).digest(), reverse=True)
    assert by_hash == EXPECTED_HELLO


EXPECTED_HELLO = [B, C, A]  # the addresses by sha256("hello\0" + address), highest first


def test_packages_spread_over_daemons_and_removing_one_moves_only_its_packages() -> None:
    three = parse_addresses(f"{A},{B},{C}")
    names = [f"pkg-{i}" for i in range(3000)]
    first = {n: rendezvous_order(n, three)[0].raw for n in names}
    counts = collections.Counter(first.values())
    assert set(counts) == {A, B, C}
    assert all(800 < c < 1200 for c in counts.values()), counts
    two = parse_addresses(f"{A},{B}")
    for n in names:
        now = rendezvous_order(n, two)[0].raw
        if first[n] != C:
            assert now == first[n]  # packages of the remaining daemons stay where their cache is
        else:
            assert now == rendezvous_order(n, three)[1].raw  # C's packages go to their second choice


class _Workers(grpc.GenericRpcHandler):
    def __init__(self) -> None:
        self.calls = 0

    def service(self, details):  # type: ignore[no-untyped-def]
        if details.method != "/moby.buildkit.v1.Control/ListWorkers":
            return None

        def list_workers(request, context):  # type: ignore[no-untyped-def]
            self.calls += 1
            return control_pb2.ListWorkersResponse()

        return grpc.unary_unary_rpc_method_handler(
            list_workers,
            request_deserializer=control_pb2.ListWorkersRequest.FromString,
            response_serializer=lambda m: m.SerializeToString(),
        )


@pytest.fixture()
def live(tmp_path: Path) -> Iterator[List[str]]:
    """Two answering fake daemons (unix:// addresses)."""
    servers = []
    addrs = []
    for name in ("one", "two"):
        sock = tmp_path / f"{name}.sock"
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        server.add_generic_rpc_handlers((_Workers(),))
        server.add_insecure_port(f"unix:{sock}")
        server.start()
        servers.append(server)
        addrs.append(f"unix://{sock}")
    yield addrs
    for s in servers:
        s.stop(None)


def test_chosen_daemon_answers(live: List[str]) -> None:
    warnings: List[str] = []
    joined = ",".join(live)
    for name in ("hello", "zlib", "m4", "gzip"):
        expected = rendezvous_order(name, parse_addresses(joined))[0]
        with connect_for(name, joined, warn=warnings.append) as client:
            assert client.address == expected
    assert warnings == []


def test_dead_daemon_falls_back_with_one_warning(live: List[str], tmp_path: Path) -> None:
    dead = f"unix://{tmp_path}/dead.sock"  # no socket at all
    gone = f"unix://{tmp_path}/gone.sock"  # a socket file nobody listens on
    (tmp_path / "gone.sock").touch()
    for name in [f"p{i}" for i in range(40)]:
        addrs = parse_addresses(",".join([dead, gone, live[0]]))
        order = rendezvous_order(name, addrs)
        warnings: List[str] = []
        with connect_for(
            name, ",".join([dead, gone, live[0]]), warn=warnings.append, probe_timeout=2
        ) as client:
            assert client.address.raw == live[0]
        # one warning per dead daemon ranked before the live one, each one line naming it and the next choice
        before = [a.raw for a in order[: [a.raw for a in order].index(live[0])]]
        assert len(warnings) == len(before)
        for w, addr in zip(warnings, before):
            assert addr in w and "\n" not in w and f"for {name}" in w


def test_none_answers(tmp_path: Path) -> None:
    dead = [f"unix://{tmp_path}/a.sock", f"unix://{tmp_path}/b.sock"]
    warnings: List[str] = []
    with pytest.raises(BuildKitError) as e:
        connect_for("hello", ",".join(dead), warn=warnings.append)
    assert "no BuildKit daemon answers for hello" in str(e.value)
    assert all(d in str(e.value) for d in dead) and "\n" not in str(e.value)
    assert len(warnings) == 1


def test_one_address_is_not_probed() -> None:
    """A single address behaves as before: no probe, no warning (errors come from the solve)."""
    warnings: List[str] = []
    with connect_for("hello", "tcp://127.0.0.1:9", warn=warnings.append) as client:
        assert client.address.raw == "tcp://127.0.0.1:9"
    assert warnings == []
