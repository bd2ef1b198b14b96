"""Write-then-rename: a file is either its old self or completely new, never half written.

The temporary file sits next to the target (same folder, so the rename is atomic) under a name unique to this
process and thread; it is removed when anything fails. Standard library only: the host-config probe imports it
(see `melange_bk.pants.host.PROBE_SOURCES`).
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from typing import BinaryIO, Iterator, Optional


@contextmanager
def atomic_open(path: str, mode: Optional[int] = None) -> Iterator[BinaryIO]:
    """A binary file to write `path`'s new content into; renamed onto `path` (after `chmod mode`, when given)
    when the block ends without an exception, removed otherwise. OSError reaches the caller."""
    tmp = f"{path}.tmp-{os.getpid()}-{threading.get_ident()}"
    try:
        with open(tmp, "wb") as f:
            yield f
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def atomic_write(path: str, data: bytes, mode: Optional[int] = None) -> None:
    """Replace `path` by `data` in one rename (see `atomic_open`)."""
    with atomic_open(path, mode) as f:
        f.write(data)
