"""The failure a solve reports is the vertex that failed, not the ones BuildKit cancelled because of it."""

from __future__ import annotations

import io
from types import SimpleNamespace
from typing import List, Tuple

import grpc

from melange_bk.buildkit.progress import Progress, failed_command, is_cancellation
from melange_bk.buildkit.solve import _failure
from melange_bk.protos import control_pb2

# What _failure reads of the client: its address.
CLIENT = SimpleNamespace(address="unix:///x")
CANCELLED = "rpc error: code = Canceled desc = context canceled: context canceled"


class _SolveError(grpc.RpcError):
    def __init__(self, details: str) -> None:
        self._details = details

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNKNOWN

    def details(self) -> str:
        return self._details


def _progress(vertices: List[Tuple[str, str, str]]) -> Progress:
    """A Progress fed one StatusResponse per (digest, name, error), in that order, each with one log line."""
    progress = Progress("quiet")
    for digest, name, error in vertices:
        resp = control_pb2.StatusResponse()
        resp.vertexes.add(digest=digest, name=name, error=error)
        resp.logs.add(vertex=digest, msg=f"log of {name}\n".encode())
        progress.update(resp)
    return progress


def test_the_failed_source_is_reported_not_the_cancelled_sibling() -> None:
    # What dockerd's BuildKit reported for a git source at a commit the repository does not have: the git vertex
    # failed, then the local source loading beside it was cancelled (and came last).
    progress = _progress(
        [
            ("sha256:git", "git git://127.0.0.1:9418/hello.git@111111111111", "git error: exit status 128"),
            ("sha256:base", "local://melange-bk-base", CANCELLED),
        ]
    )
    err = _failure(CLIENT, _SolveError(CANCELLED), progress)  # type: ignore[arg-type]
    text = str(err)
    assert text.startswith(
        'step "git git://127.0.0.1:9418/hello.git@111111111111" failed: git error: exit'
    ), text
    assert "log of git" in text and "melange-bk-base" not in text


def test_only_cancelled_vertices_still_name_one() -> None:
    progress = _progress([("sha256:a", "step a", CANCELLED), ("sha256:b", "step b", CANCELLED)])
    err = _failure(CLIENT, _SolveError("canceled"), progress)  # type: ignore[arg-type]
    assert str(err).startswith('step "step b" failed: ' + CANCELLED), str(err)


def test_is_cancellation() -> None:
    assert is_cancellation(CANCELLED) and is_cancellation("context canceled\n")
    assert not is_cancellation('process "/bin/sh -c false" did not complete successfully: exit code: 1')
    assert not is_cancellation("")


def test_a_failed_command_is_reported_by_its_exit_code_then_the_command_unquoted() -> None:
    # As BuildKit words it: Go's %q of the arguments joined by spaces.
    error = r'process "/bin/sh -c set -e\necho \"about to fail\"\tnow\nexit 3" did not complete successfully: exit code: 3'
    progress = _progress([("sha256:s", "[hello] step 2: make", error)])
    err = _failure(CLIENT, _SolveError(error), progress)  # type: ignore[arg-type]
    assert str(err).splitlines() == [
        'step "[hello] step 2: make" failed: exit code: 3',
        "  command:",
        "    /bin/sh -c set -e",
        '    echo "about to fail"\tnow',
        "    exit 3",
        "  last log lines:",
        "    log of [hello] step 2: make",
    ]
    # Any other error is kept whole, with no command.
    other = _failure(CLIENT, _SolveError("x"), _progress([("sha256:o", "o", "no space left")]))  # type: ignore[arg-type]
    assert str(other).splitlines()[:2] == ['step "o" failed: no space left', "  last log lines:"]


def test_a_long_command_shows_its_last_lines() -> None:
    body = "\\n".join(f"echo {i}" for i in range(50))
    error = f'process "/bin/sh -c {body}" did not complete successfully: exit code: 1'
    assert failed_command(error).splitlines()[-1] == "echo 49"
    err = _failure(CLIENT, _SolveError(error), _progress([("sha256:l", "l", error)]))  # type: ignore[arg-type]
    lines = str(err).splitlines()
    assert lines[1] == "  command (its last 20 of 50 lines):" and lines[2] == "    echo 30", lines[:3]


def test_progress_prints_a_failed_command_by_its_exit_code() -> None:
    out = io.StringIO()
    progress = Progress("plain", out=out)
    resp = control_pb2.StatusResponse()
    v = resp.vertexes.add(digest="sha256:s", name="[hello] step 1: compile")
    v.started.seconds, v.completed.seconds = 1, 2
    v.error = 'process "/bin/sh -c set -e\\nmake" did not complete successfully: exit code: 2'
    progress.update(resp)
    assert out.getvalue().splitlines() == [
        "#1 [hello] step 1: compile",
        "#1 ERROR [hello] step 1: compile: exit code: 2",
    ]


def test_a_refused_security_insecure_entitlement_says_what_needs_it_and_how_to_allow_it() -> None:
    # What dockerd's BuildKit answers (no vertex ran) for steps that need capabilities beyond its defaults.
    err = _failure(
        CLIENT,  # type: ignore[arg-type]
        _SolveError("granting entitlement security.insecure is not allowed by build daemon configuration"),
        Progress("quiet"),
    )
    text = str(err)
    assert "\n" not in text and "capabilities.add" in text
    assert "--allow-insecure-entitlement security.insecure" in text
    assert "builder.entitlements.security-insecure" in text and "--allow-insecure)" in text


def test_a_refused_network_host_entitlement_names_cherry_picks_and_how_to_allow_it() -> None:
    err = _failure(
        CLIENT,  # type: ignore[arg-type]
        _SolveError("granting entitlement network.host is not allowed by build daemon configuration"),
        Progress("quiet"),
    )
    text = str(err)
    assert "\n" not in text and "cherry-picks" in text and "--allow-network" in text
    assert "--allow-insecure-entitlement network.host" in text
    assert "builder.entitlements.network-host" in text
