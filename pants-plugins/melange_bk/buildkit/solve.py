"""Run one LLB Definition on the daemon: session, Status stream, Solve, export, and errors a user can act on."""

from __future__ import annotations

import os
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import grpc

from melange_bk import llb
from melange_bk.buildkit.client import CONTROL, Client
from melange_bk.buildkit.progress import (
    Progress,
    VertexSummary,
    failed_command,
    is_cancellation,
    short_error,
)
from melange_bk.buildkit.session import ExportTarget, Session, check_receivers
from melange_bk.errors import BuildKitError
from melange_bk.llb.exec import required_entitlements
from melange_bk.protos import control_pb2, ops_pb2

ENTITLEMENTS = ("network.host", "security.insecure")
# what asks for each (driver.permissions), and its key under dockerd's daemon.json builder.entitlements
_ENTITLEMENT_USES = {
    "network.host": ("the network (git-checkout cherry-picks, allowed by --allow-network)", "network-host"),
    "security.insecure": (
        "Linux capabilities beyond its defaults (the YAML's capabilities.add, allowed by --allow-insecure)",
        "security-insecure",
    ),
}
LOG_LINES_IN_ERROR = 20
# A solve gives up when the daemon has not called the session (health checks come every 5 s) for this long: the
# connection is gone even if no socket error says so. MELANGE_BK_LIVENESS_TIMEOUT overrides it (0: never).
LIVENESS_TIMEOUT = 60.0
CANCEL_GRACE = 5.0  # seconds to wait, after Ctrl-C, for the daemon to acknowledge the cancellation


class Cancelled(BuildKitError):
    """The user interrupted a solve (Ctrl-C); it was cancelled on the daemon. Exit code 130, like SIGINT."""

    exit_code = 130


@dataclass(frozen=True)
class SolveResult:
    ref: str
    exporter_response: Tuple[Tuple[str, str], ...]
    vertices: Tuple[VertexSummary, ...]
    seconds: float
    files: int = 0
    bytes: int = 0

    @property
    def all_cached(self) -> bool:
        """True when every vertex that did work was a cache hit (the second run of an unchanged graph). Local
        sources (synced every time) and stored images (read from the daemon's store: buildkit/store.py) do none.
        """
        work = [
            v
            for v in self.vertices
            if not v.name.startswith(("[internal]", "local://")) and llb.STORED_DOMAIN not in v.name
        ]
        return bool(work) and all(v.cached for v in work)


def _solve_request(
    ref: str,
    definition: ops_pb2.Definition,
    session_id: str,
    export: Optional[ExportTarget],
    entitlements: Sequence[str],
) -> control_pb2.SolveRequest:
    req = control_pb2.SolveRequest(Ref=ref, Definition=definition, Session=session_id)
    req.Entitlements.extend(sorted(entitlements))
    if export is not None:
        # Both the legacy single-exporter fields and the list, as the Go client sends them.
        req.ExporterDeprecated = export.kind
        exporter = req.Exporters.add(Type=export.kind)
        for key, value in export.attrs:
            req.ExporterAttrsDeprecated[key] = value
            exporter.Attrs[key] = value
    return req


def _failure(client: Client, err: grpc.RpcError, progress: Progress) -> BuildKitError:
    code = err.code() if hasattr(err, "code") else None
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) and not progress.failed():
        if code == grpc.StatusCode.UNAVAILABLE and progress.summaries():
            # The daemon had started on the graph: the connection broke (daemon killed, network cut).
            details = (err.details() if hasattr(err, "details") else "") or "connection closed"
            return BuildKitError(
                f"lost the connection to BuildKit at {client.address} during the build: {details.strip()} "
                "(daemon stopped or network down?)"
            )
        return client.error(err)
    if code == grpc.StatusCode.CANCELLED:
        return BuildKitError(f"solve on {client.address} was cancelled")
    details = (err.details() if hasattr(err, "details") else str(err)) or "unknown error"
    for entitlement, (why, dockerd_key) in _ENTITLEMENT_USES.items():
        if f"entitlement {entitlement} is not allowed" in details:
            return BuildKitError(
                f"BuildKit at {client.address} does not allow the {entitlement} entitlement, which steps need "
                f"for {why}: start buildkitd with --allow-insecure-entitlement {entitlement}, or set "
                f"builder.entitlements.{dockerd_key} in dockerd's daemon.json"
            )
    failed = progress.failed()
    if not failed:
        return BuildKitError(f"solve on {client.address} failed: {details.strip()}")
    # When one vertex fails, BuildKit cancels the others running beside it ("context canceled"): the failure to
    # report is the one that was not cancelled.
    name, error, lines = ([f for f in failed if not is_cancellation(f[1])] or failed)[-1]
    text = f'step "{name}" failed: {short_error(error) or details.strip()}'
    command = failed_command(error).splitlines()
    if command:
        shown = command[-LOG_LINES_IN_ERROR:]
        more = f" (its last {len(shown)} of {len(command)} lines)" if len(shown) < len(command) else ""
        text += f"\n  command{more}:\n" + "\n".join("    " + ln for ln in shown)
    tail = [ln for ln in lines if ln.strip()][-LOG_LINES_IN_ERROR:]
    if tail:
        text += "\n  last log lines:\n" + "\n".join("    " + ln for ln in tail)
    return BuildKitError(text)


def solve(
    client: Client,
    definition: ops_pb2.Definition,
    *,
    local_dirs: Optional[Dict[str, str]] = None,
    export: Optional[ExportTarget] = None,
    progress: Optional[Progress] = None,
    entitlements: Sequence[str] = (),
    timeout: Optional[float] = None,
    session_via: str = "auto",
    liveness_timeout: Optional[float] = None,
) -> SolveResult:
    """Solve `definition`, offering `local_dirs` to `local://` sources and receiving `export`.

    Ctrl-C cancels the solve on the daemon (and raises `Cancelled`). A failed step raises BuildKitError naming
    it, with its last log lines. A connection that goes silent for `liveness_timeout` seconds (default
    LIVENESS_TIMEOUT, or $MELANGE_BK_LIVENESS_TIMEOUT) raises BuildKitError naming the address.
    """
    for e in entitlements:
        if e not in ENTITLEMENTS:
            raise BuildKitError(f"unknown entitlement {e!r}: one of {', '.join(ENTITLEMENTS)}")
    entitlements = sorted(set(entitlements) | set(required_entitlements(definition)))
    progress = progress or Progress("quiet")
    if liveness_timeout is None:
        try:
            liveness_timeout = float(os.environ.get("MELANGE_BK_LIVENESS_TIMEOUT", "") or LIVENESS_TIMEOUT)
        except ValueError:
            raise BuildKitError("MELANGE_BK_LIVENESS_TIMEOUT must be a number of seconds") from None
    ref = uuid.uuid4().hex
    start = time.monotonic()
    with Session(local_dirs=local_dirs, exports=(export,) if export and export.to_client else ()) as session:
        session.attach(client, via=session_via)
        status_call = client.channel.unary_stream(
            CONTROL + "Status",
            request_serializer=control_pb2.StatusRequest.SerializeToString,
            response_deserializer=control_pb2.StatusResponse.FromString,
        )(control_pb2.StatusRequest(Ref=ref))

        def follow() -> None:
            try:
                for resp in status_call:
                    progress.update(resp)  # type: ignore[union-attr]
            except grpc.RpcError:
                pass

        follower = threading.Thread(target=follow, daemon=True, name="bk-status")
        follower.start()
        solve_call = client.channel.unary_unary(
            CONTROL + "Solve",
            request_serializer=control_pb2.SolveRequest.SerializeToString,
            response_deserializer=control_pb2.SolveResponse.FromString,
        )
        future = solve_call.future(
            _solve_request(ref, definition, session.id, export, entitlements), timeout=timeout
        )
        try:
            while True:
                try:
                    resp = future.result(timeout=0.5)
                    break
                except grpc.FutureTimeoutError:
                    silent = time.monotonic() - session.last_contact
                    if liveness_timeout and silent > liveness_timeout:
                        future.cancel()
                        status_call.cancel()
                        raise BuildKitError(
                            f"lost the connection to BuildKit at {client.address}: no word from the daemon for "
                            f"{silent:.0f}s (network down, or the daemon hung?)"
                        ) from None
                    continue
        except KeyboardInterrupt:
            # Cancelling the Solve call resets its HTTP/2 stream: the daemon cancels the job's context, which
            # kills the running steps. The session closes on the way out (the daemon then drops its side).
            # The Status stream stays open until the daemon has stopped the job: it reports the interrupted
            # vertices (error "context canceled") and ends. That is our acknowledgement, within a grace period.
            future.cancel()
            follower.join(timeout=CANCEL_GRACE)
            acknowledged = not follower.is_alive()
            status_call.cancel()
            raise Cancelled(
                f"build cancelled (Ctrl-C): the solve on {client.address} "
                + (
                    "was cancelled"
                    if acknowledged
                    else f"did not confirm the cancellation within {CANCEL_GRACE:g}s"
                )
            ) from None
        except grpc.RpcError as e:
            follower.join(timeout=5)
            # When our side of an export broke (disk full...), the daemon only sees the stream end ("EOF"):
            # the receiver's error is the cause.
            ours = list(session.errors) + [r.error for r in session.receivers if r.error and r.local_failure]
            if ours:
                raise BuildKitError("export failed: " + "; ".join(ours)) from None
            raise _failure(client, e, progress) from None
        follower.join(timeout=10)
        status_call.cancel()
        check_receivers(session)
        files = sum(r.files for r in session.receivers)
        nbytes = sum(r.bytes for r in session.receivers)
    return SolveResult(
        ref=ref,
        exporter_response=tuple(sorted(resp.ExporterResponse.items())),
        vertices=tuple(progress.summaries()),
        seconds=time.monotonic() - start,
        files=files,
        bytes=nbytes,
    )
