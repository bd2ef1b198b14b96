"""melange_bk.filehash: a remembered digest is the file's, and a changed file is hashed again."""

from __future__ import annotations

import hashlib
import os

from melange_bk.filehash import sha256_file, sha256_file_remembered


def test_remembered_digest_follows_the_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "rootfs.tar"
    path.write_bytes(b"x" * 3_000_000)
    memo = str(tmp_path / "memo")
    want = hashlib.sha256(b"x" * 3_000_000).hexdigest()
    assert sha256_file(str(path)) == want
    assert sha256_file_remembered(str(path), memo) == want
    assert len(os.listdir(memo)) == 1
    assert sha256_file_remembered(str(path), memo) == want  # read back
    (entry,) = os.listdir(memo)
    with open(os.path.join(memo, entry), "w") as f:
        f.write("0" * 64 + "\n")
    assert sha256_file_remembered(str(path), memo) == "0" * 64  # (proof that it was read back, not rehashed)
    st = os.stat(path)
    path.write_bytes(b"y" * 3_000_000)  # same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # even with the old mtime: ctime and the rest differ
    assert sha256_file_remembered(str(path), memo) == hashlib.sha256(b"y" * 3_000_000).hexdigest()


def test_memo_garbage_and_unwritable_memo_are_harmless(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    memo = tmp_path / "memo"
    want = hashlib.sha256(b"abc").hexdigest()
    assert sha256_file_remembered(str(path), str(memo)) == want
    (entry,) = os.listdir(memo)
    (memo / entry).write_bytes(b"\xff not a digest")
    assert sha256_file_remembered(str(path), str(memo)) == want
    blocker = tmp_path / "file-not-dir"
    blocker.write_bytes(b"")
    assert sha256_file_remembered(str(path), str(blocker / "memo")) == want
