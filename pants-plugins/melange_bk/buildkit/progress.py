"""BuildKit's Status stream → what the user sees, and what an error report needs.

Modes (as buildctl): `plain` prints every vertex start, log line and completion, numbered like buildctl;
`tty` prints one line per finished vertex (and the logs of failed ones); `rawjson` prints each StatusResponse as
one JSON line; `quiet` prints nothing; `auto` is `tty` on a terminal, `plain` otherwise. Whatever the mode, the
last log lines of every vertex are kept so that a failure can show them.
"""

from __future__ import annotations

import collections
import json
import re
import sys
import threading
from dataclasses import dataclass
from typing import IO, Deque, Dict, List, Optional, Tuple

from google.protobuf import json_format

MODES = ("auto", "plain", "tty", "rawjson", "quiet")
KEEP_LINES = 40


@dataclass(frozen=True)
class VertexSummary:
    digest: str
    name: str
    cached: bool
    error: str
    seconds: Optional[float]


class _Vertex:
    def __init__(self, number: int, digest: str) -> None:
        self.number = number
        self.digest = digest
        self.name = ""
        self.cached = False
        self.error = ""
        self.started: Optional[float] = None
        self.completed: Optional[float] = None
        self.announced = False
        self.finished = False
        self.lines: Deque[str] = collections.deque(maxlen=KEEP_LINES)
        self.partial = ""


# BuildKit's error for a step whose command failed quotes the whole command line (Go's %q of the arguments joined by
# spaces): shown as it is, a step's whole script on one line with \n escapes. We show the exit status in its place
# and the command, unquoted, on lines of its own (`failed_command`).
_PROCESS_FAILED = re.compile(r'process "(.*)" did not complete successfully: (exit code: -?\d+)', re.DOTALL)
_GO_ESCAPE = re.compile(r'\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[abfnrtv\\"\'])')
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _go_unquote(body: str) -> str:
    def one(m: re.Match[str]) -> str:
        e = m.group(1)
        if e[0] in "xuU":
            return chr(int(e[1:], 16))
        return _SIMPLE_ESCAPES.get(e, e)

    return _GO_ESCAPE.sub(one, body)


def short_error(error: str) -> str:
    """A vertex's error as we show it: `exit code: N` for a failed command, anything else as it is."""
    m = _PROCESS_FAILED.fullmatch(error.strip())
    return m.group(2) if m else error


def failed_command(error: str) -> str:
    """The command line a failed-command error quotes, unquoted ("" for any other error)."""
    m = _PROCESS_FAILED.fullmatch(error.strip())
    return _go_unquote(m.group(1)) if m else ""


def is_cancellation(error: str) -> bool:
    """True for the error of a vertex BuildKit stopped because the solve was cancelled (by another vertex's
    failure or by the client), not because it failed itself."""
    return error.rstrip().endswith("context canceled")


def _ts(t) -> Optional[float]:  # type: ignore[no-untyped-def]
    if t is None or (t.seconds == 0 and t.nanos == 0):
        return None
    return t.seconds + t.nanos / 1e9


class Progress:
    def __init__(self, mode: str = "auto", out: Optional[IO[str]] = None) -> None:
        self.out = out if out is not None else sys.stderr
        if mode == "auto":
            mode = "tty" if hasattr(self.out, "isatty") and self.out.isatty() else "plain"
        if mode not in MODES:
            raise ValueError(f"unknown progress mode {mode!r}: one of {', '.join(MODES)}")
        self.mode = mode
        self._vertices: Dict[str, _Vertex] = {}
        self._lock = threading.Lock()

    def _print(self, line: str) -> None:
        if self.mode in ("plain", "tty"):
            print(line, file=self.out, flush=True)

    def _vertex(self, digest: str) -> _Vertex:
        v = self._vertices.get(digest)
        if v is None:
            v = _Vertex(len(self._vertices) + 1, digest)
            self._vertices[digest] = v
        return v

    def update(self, resp) -> None:  # type: ignore[no-untyped-def]
        """Consume one StatusResponse."""
        with self._lock:
            if self.mode == "rawjson":
                msg = json_format.MessageToDict(resp, preserving_proto_field_name=True)
                print(json.dumps(msg, sort_keys=True), file=self.out, flush=True)
            for pv in resp.vertexes:
                v = self._vertex(pv.digest)
                v.name = pv.name or v.name
                v.cached = v.cached or pv.cached
                v.started = _ts(pv.started) if pv.HasField("started") else v.started
                if pv.HasField("completed"):
                    v.completed = _ts(pv.completed)
                if pv.error:
                    v.error = pv.error
                if self.mode == "plain" and not v.announced and (v.started or v.cached):
                    v.announced = True
                    self._print(f"#{v.number} {v.name}")
                if v.completed is not None and not v.finished:
                    v.finished = True
                    self._report_done(v)
            for log in resp.logs:
                v = self._vertex(log.vertex)
                text = v.partial + log.msg.decode("utf-8", "replace")
                *complete, v.partial = text.split("\n")
                for line in complete:
                    v.lines.append(line)
                    if self.mode == "plain":
                        self._print(f"#{v.number} {line}")

    def _report_done(self, v: _Vertex) -> None:
        if v.partial:
            v.lines.append(v.partial)
            if self.mode == "plain":
                self._print(f"#{v.number} {v.partial}")
            v.partial = ""
        if v.error:
            self._print(f"#{v.number} ERROR {v.name}: {short_error(v.error)}")
            if self.mode == "tty":
                for line in v.lines:
                    self._print(f"#{v.number}   {line}")
        elif v.cached:
            self._print(f"#{v.number} CACHED {v.name}" if self.mode == "tty" else f"#{v.number} CACHED")
        else:
            took = (v.completed - v.started) if (v.completed and v.started) else None
            t = f" {took:.1f}s" if took is not None else ""
            self._print(f"#{v.number} DONE{t} {v.name}" if self.mode == "tty" else f"#{v.number} DONE{t}")

    def summaries(self) -> List[VertexSummary]:
        with self._lock:
            out = []
            for v in self._vertices.values():
                took = (v.completed - v.started) if (v.completed and v.started) else None
                out.append(VertexSummary(v.digest, v.name, v.cached, v.error, took))
            return out

    def failed(self) -> List[Tuple[str, str, List[str]]]:
        """(vertex name, error, last log lines) of every failed vertex."""
        with self._lock:
            return [
                (v.name, v.error, list(v.lines) + ([v.partial] if v.partial else []))
                for v in self._vertices.values()
                if v.error
            ]
