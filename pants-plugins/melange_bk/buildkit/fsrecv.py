"""The receiving side of fsutil's DiffCopy: the daemon's local exporter writes a tree into a directory of ours.

The daemon sends STAT packets (depth first, siblings in byte order) and an empty STAT; we create directories,
symlinks and hardlinks as they come, create each regular file and ask for its content with a REQ whose id is the
entry's index in the STAT sequence; DATA packets (interleaved between files) are written straight to disk. When
all stats and contents have arrived we send FIN and wait for the daemon's FIN.

Nothing is written outside the destination: paths must be clean and relative, every parent must be a directory
this transfer created, and files are opened with O_NOFOLLOW. Device nodes and FIFOs are refused.
"""

from __future__ import annotations

import os
import posixpath
import queue
import threading
from typing import Dict, Iterable, Iterator, List, Optional, Set, Tuple

from melange_bk.buildkit.fsmode import is_dir, is_regular, is_symlink, unix_perm
from melange_bk.protos import fsutil_pb2

Packet = fsutil_pb2.Packet


class ReceiveError(Exception):
    pass


class Receiver:
    """One DiffCopy transfer into `dest` (which must exist and should be empty)."""

    def __init__(self, dest: str) -> None:
        self.dest = os.path.abspath(dest)
        self.files = 0
        self.bytes = 0
        self.error: Optional[str] = None
        self.local_failure = False  # the error is ours (disk full, unsafe entry), not a broken stream
        self.done = threading.Event()
        self._dirs: Set[str] = {""}
        self._dir_meta: List[Tuple[str, fsutil_pb2.Stat]] = []
        self._pending: Dict[int, Tuple[str, fsutil_pb2.Stat]] = {}
        self._open: Dict[int, int] = {}
        self._as_root = hasattr(os, "geteuid") and os.geteuid() == 0

    def _full(self, rel: str) -> str:
        clean = posixpath.normpath(rel)
        if not rel or clean != rel or rel.startswith("/") or clean == ".." or clean.startswith("../"):
            raise ReceiveError(f"refusing unsafe path {rel!r} from the daemon")
        parent = posixpath.dirname(rel)
        if parent not in self._dirs:
            raise ReceiveError(f"refusing {rel!r}: its parent is not a directory of this transfer")
        return os.path.join(self.dest, *rel.split("/"))

    def _owner(self, full: str, s: fsutil_pb2.Stat) -> None:
        if self._as_root:
            try:
                os.lchown(full, s.uid, s.gid)
            except OSError:
                pass

    def on_stat(self, fid: int, s: fsutil_pb2.Stat) -> Optional[int]:
        """Create the entry; return the id to REQ for a regular file, else None."""
        full = self._full(s.path)
        if is_dir(s.mode):
            if not os.path.isdir(full) or os.path.islink(full):
                os.mkdir(full, 0o700)
            self._dirs.add(s.path)
            self._dir_meta.append((full, s))
            return None
        if is_symlink(s.mode):
            os.symlink(s.linkname, full)
            self._owner(full, s)
            os.utime(full, ns=(s.modTime, s.modTime), follow_symlinks=False)
            return None
        if not is_regular(s.mode):
            raise ReceiveError(f"refusing special file {s.path!r} (device, FIFO or socket) from the daemon")
        if s.linkname:
            target = self._full(s.linkname) if s.linkname else ""
            os.link(target, full, follow_symlinks=False)
            return None
        fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        if s.size == 0:
            os.close(fd)
            self._finish_file(full, s)
            return None  # nothing to ask for (fsutil still allows it; skipping saves a round trip)
        self._open[fid] = fd
        self._pending[fid] = (full, s)
        return fid

    def _finish_file(self, full: str, s: fsutil_pb2.Stat) -> None:
        self._owner(full, s)
        os.chmod(full, unix_perm(s.mode))
        os.utime(full, ns=(s.modTime, s.modTime))
        self.files += 1

    def on_data(self, fid: int, data: bytes) -> None:
        fd = self._open.get(fid)
        if fd is None:
            raise ReceiveError(f"daemon sent data for unknown file id {fid}")
        if data:
            view = memoryview(data)
            try:
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
            except OSError as e:  # ENOSPC, EDQUOT, EIO: name the file and the reason
                raise ReceiveError(f"cannot write {self._pending[fid][0]}: {e.strerror or e}") from None
            self.bytes += len(data)
            return
        os.close(fd)
        del self._open[fid]
        full, s = self._pending.pop(fid)
        self._finish_file(full, s)

    def finish_dirs(self) -> None:
        for full, s in reversed(self._dir_meta):  # children before parents: mtimes stay put
            self._owner(full, s)
            os.chmod(full, unix_perm(s.mode))
            os.utime(full, ns=(s.modTime, s.modTime))

    def close_all(self) -> None:
        for fd in self._open.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self._open.clear()

    @property
    def waiting(self) -> bool:
        return bool(self._pending)

    def serve(self, incoming: Iterable[bytes]) -> Iterator[bytes]:
        """Serve FileSend/DiffCopy: `incoming` yields the daemon's packets (raw bytes); yields ours."""
        out: queue.Queue[Optional[bytes]] = queue.Queue()
        state = {"stats_done": False, "fin_sent": False}

        def maybe_fin() -> None:
            if state["stats_done"] and not self.waiting and not state["fin_sent"]:
                state["fin_sent"] = True
                self.finish_dirs()
                out.put(Packet(type=Packet.PACKET_FIN).SerializeToString())

        def reader() -> None:
            fid = 0
            try:
                for raw in incoming:
                    p = Packet.FromString(raw)
                    if p.type == Packet.PACKET_STAT:
                        if not p.HasField("stat"):
                            state["stats_done"] = True
                            maybe_fin()
                            continue
                        req = self.on_stat(fid, p.stat)
                        fid += 1
                        if req is not None:
                            out.put(Packet(type=Packet.PACKET_REQ, ID=req).SerializeToString())
                    elif p.type == Packet.PACKET_DATA:
                        self.on_data(p.ID, p.data)
                        maybe_fin()
                    elif p.type == Packet.PACKET_FIN:
                        break
                    elif p.type == Packet.PACKET_ERR:
                        self.error = "daemon: " + p.data.decode("utf-8", "replace")
                        break
                if self.error is None and not state["fin_sent"]:
                    self.error = "the daemon ended the export before sending every file"
            except (OSError, ReceiveError) as e:
                self.local_failure = True
                if isinstance(e, OSError) and e.strerror:
                    where = f" {e.filename}" if e.filename else f" into {self.dest}"
                    self.error = f"cannot write{where}: {e.strerror}"
                else:
                    self.error = str(e)
                out.put(Packet(type=Packet.PACKET_ERR, data=str(e).encode()).SerializeToString())
            except Exception as e:  # the stream ended abruptly
                # Once our FIN is out, everything has arrived: the daemon answers FIN and returns, and grpc-go
                # may cancel the call before its FIN reaches us. Only an earlier break loses data.
                if not state["fin_sent"]:
                    self.error = f"export interrupted: {type(e).__name__} {e}".strip()
            finally:
                self.close_all()
                out.put(None)
                self.done.set()

        threading.Thread(target=reader, daemon=True, name="fsrecv").start()
        while True:
            item = out.get()
            if item is None:
                return
            yield item
