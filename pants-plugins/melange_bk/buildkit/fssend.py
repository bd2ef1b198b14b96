"""The sending side of fsutil's DiffCopy: stream a local directory to the daemon (FileSync, local sources).

Protocol (tonistiigi/fsutil send.go): the sender streams one STAT packet per entry, depth first with siblings in
byte order (the receiver validates that order), then an empty STAT. The receiver asks for the content of regular
files with REQ packets whose id is the entry's index in the STAT sequence; the sender answers with DATA packets and
an empty DATA to end each file. A FIN from the receiver is answered with FIN, which ends the transfer.
Files are read in chunks: memory stays bounded whatever their size.

A `SourceTree` (the workspace) is sent as git would check it out: file / folder / symlink and the executable bit
only (`filehash.git_mode`), owned by root, without xattrs or hard links, so the umask, owner or file system of the
checkout never reaches the daemon (BuildKit's content hash of a local source covers modes and owners).
"""

from __future__ import annotations

import os
import queue
import stat as st
import threading
from dataclasses import dataclass
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

from melange_bk.buildkit.fsmode import go_mode, is_regular
from melange_bk.buildkit.patterns import Filter
from melange_bk.filehash import git_mode
from melange_bk.protos import fsutil_pb2

CHUNK = 128 * 1024
_QUEUE_DEPTH = 64  # packets in flight from us: bounds memory to ~8 MiB
Packet = fsutil_pb2.Packet


class SourceTree(str):
    """A local directory offered as a source tree: uploaded with git's modes only (see the module's docstring)."""


@dataclass(frozen=True)
class Entry:
    path: str  # relative, slash-separated
    abspath: str
    stat: fsutil_pb2.Stat


def _xattrs(path: str) -> Dict[str, bytes]:
    out: Dict[str, bytes] = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return out
    for name in sorted(names):
        try:
            out[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            pass
    return out


def source_tree_stat(rel: str, abspath: str, s: os.stat_result) -> Optional[fsutil_pb2.Stat]:
    """The Stat of an entry of a source tree (None: not something git keeps, not sent)."""
    mode = git_mode(s.st_mode)
    if mode is None:
        return None
    stat = fsutil_pb2.Stat(path=rel, mode=go_mode(mode), modTime=s.st_mtime_ns)
    if st.S_ISLNK(mode):
        stat.linkname = os.readlink(abspath)
        stat.size = len(os.fsencode(stat.linkname))
    elif st.S_ISREG(mode):
        stat.size = s.st_size
    return stat


def make_stat(
    rel: str, abspath: str, s: os.stat_result, links: Dict[Tuple[int, int], str]
) -> fsutil_pb2.Stat:
    stat = fsutil_pb2.Stat(
        path=rel, mode=go_mode(s.st_mode), uid=s.st_uid, gid=s.st_gid, modTime=s.st_mtime_ns
    )
    if not st.S_ISDIR(s.st_mode):
        stat.size = s.st_size
        if st.S_ISLNK(s.st_mode):
            stat.linkname = os.readlink(abspath)
        elif st.S_ISBLK(s.st_mode) or st.S_ISCHR(s.st_mode):
            stat.devmajor = os.major(s.st_rdev)
            stat.devminor = os.minor(s.st_rdev)
        elif s.st_nlink > 1:
            key = (s.st_dev, s.st_ino)
            first = links.get(key)
            if first is not None:
                stat.linkname = first
                stat.size = 0
            else:
                links[key] = rel
    for k, v in _xattrs(abspath).items():
        stat.xattrs[k] = v
    return stat


def walk(root: str, flt: Optional[Filter] = None) -> Iterator[Entry]:
    """Entries under `root` in fsutil's order, filtered like BuildKit's filter FS (parents of an included path
    are sent even when they do not match themselves). A `SourceTree` root gives `source_tree_stat`s."""
    include, exclude = (flt or Filter()).compiled()
    links: Dict[Tuple[int, int], str] = {}
    pending_dirs: List[Tuple[str, str, os.stat_result]] = []  # parents not yet sent (lazy, for filters)
    as_source = isinstance(root, SourceTree)

    def entry(rel: str, ab: str, s: os.stat_result) -> Iterator[Entry]:
        stat = source_tree_stat(rel, ab, s) if as_source else make_stat(rel, ab, s, links)
        if stat is not None:
            yield Entry(rel, ab, stat)

    def emit_pending() -> Iterator[Entry]:
        for rel, ab, s in pending_dirs:
            yield from entry(rel, ab, s)
        pending_dirs.clear()

    def rec(dir_abs: str, dir_rel: str, included_by_parent: bool) -> Iterator[Entry]:
        try:
            names = sorted(os.listdir(dir_abs), key=os.fsencode)
        except OSError as e:
            raise OSError(e.errno, f"cannot read directory {dir_abs}: {e.strerror}") from None
        for name in names:
            rel = f"{dir_rel}/{name}" if dir_rel else name
            ab = os.path.join(dir_abs, name)
            s = os.lstat(ab)
            is_dir = st.S_ISDIR(s.st_mode)
            selected = included_by_parent or include is None or include.matches(rel)
            excluded = exclude is not None and exclude.matches(rel)
            if selected and not excluded:
                yield from emit_pending()
                yield from entry(rel, ab, s)
                if is_dir:
                    yield from rec(ab, rel, True if include is not None else included_by_parent)
                continue
            if not is_dir:
                continue
            # Not selected itself: descend only if something below may be (re-)included.
            maybe_below = (not selected and include is not None and include.could_match_below(rel)) or (
                excluded and exclude is not None and exclude.has_exclusions and selected
            )
            if maybe_below:
                pending_dirs.append((rel, ab, s))
                depth = len(pending_dirs)
                yield from rec(ab, rel, False)
                del pending_dirs[depth - 1 :]

    yield from rec(root, "", False)


def send(root: str, incoming: Iterable[bytes], flt: Optional[Filter] = None) -> Iterator[bytes]:
    """Serve one DiffCopy call: `incoming` yields the daemon's packets (raw bytes); yields our packets."""
    out: queue.Queue[Optional[bytes]] = queue.Queue(maxsize=_QUEUE_DEPTH)
    files: Dict[int, str] = {}
    requests: queue.Queue[Optional[int]] = queue.Queue()
    lock = threading.Lock()
    failed = threading.Event()

    def put(p: fsutil_pb2.Packet) -> None:
        out.put(p.SerializeToString())

    def walker() -> None:
        try:
            for i, entry in enumerate(walk(root, flt)):
                if is_regular(entry.stat.mode) and not entry.stat.linkname:
                    with lock:
                        files[i] = entry.abspath
                put(Packet(type=Packet.PACKET_STAT, stat=entry.stat))
            put(Packet(type=Packet.PACKET_STAT))
        except OSError as e:
            failed.set()
            put(Packet(type=Packet.PACKET_ERR, data=str(e).encode()))
            out.put(None)

    def data_sender() -> None:
        while True:
            fid = requests.get()
            if fid is None:
                return
            with lock:
                path = files.pop(fid, None)
            if path is None:
                put(Packet(type=Packet.PACKET_ERR, data=f"invalid file id {fid}".encode()))
                out.put(None)
                return
            try:
                with open(path, "rb") as f:
                    while True:
                        chunk = f.read(CHUNK)
                        if not chunk:
                            break
                        put(Packet(type=Packet.PACKET_DATA, ID=fid, data=chunk))
            except OSError:
                pass  # like fsutil: an unreadable file is sent empty
            put(Packet(type=Packet.PACKET_DATA, ID=fid))

    def reader() -> None:
        try:
            for raw in incoming:
                p = Packet.FromString(raw)
                if p.type == Packet.PACKET_REQ:
                    requests.put(p.ID)
                elif p.type == Packet.PACKET_FIN:
                    requests.put(None)
                    sender.join()
                    put(Packet(type=Packet.PACKET_FIN))
                    break
                elif p.type == Packet.PACKET_ERR:
                    break
        except Exception:  # the daemon hung up: end our side
            pass
        finally:
            requests.put(None)
            out.put(None)

    sender = threading.Thread(target=data_sender, daemon=True, name="fssend-data")
    sender.start()
    threading.Thread(target=walker, daemon=True, name="fssend-walk").start()
    threading.Thread(target=reader, daemon=True, name="fssend-read").start()
    while True:
        item = out.get()
        if item is None:
            return
        yield item
