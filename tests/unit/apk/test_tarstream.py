from __future__ import annotations

import gzip
import hashlib
import io
import os
import random
import tarfile

from melange_bk.apk.tarstream import GzipWriter, TarHeader, TarWriter, pax_record


def _gz(data: bytes, threads: int, pieces: int = 7) -> bytes:
    buf = io.BytesIO()
    h = hashlib.sha256()
    gz = GzipWriter(buf, 6, [h], threads=threads)
    step = max(1, len(data) // pieces)
    for i in range(0, len(data), step):
        gz.write(data[i : i + step])
    gz.close()
    assert h.hexdigest() == hashlib.sha256(buf.getvalue()).hexdigest()
    return buf.getvalue()


def test_parallel_gzip_is_valid_and_independent_of_threads() -> None:
    rng = random.Random(1)
    text = b"".join(b"line %d of some text\n" % rng.randrange(10**6) for _ in range(200_000))  # ~4 MiB
    data = text + os.urandom(0) + bytes(rng.getrandbits(8) for _ in range(100_000)) + text[:123_457]
    one = _gz(data, threads=1)
    four = _gz(data, threads=4, pieces=3)
    assert one == four
    assert gzip.decompress(one) == data
    assert _gz(b"", threads=2) == _gz(b"", threads=1)
    assert gzip.decompress(_gz(b"", threads=2)) == b""


def test_pax_record_length_counts_itself() -> None:
    for n in range(1, 300):
        rec = pax_record("k", b"v" * n)
        length = int(rec.split(b" ", 1)[0])
        assert length == len(rec)


def test_long_names_links_and_big_ids_read_back_with_tarfile() -> None:
    buf = io.BytesIO()
    tw = TarWriter(buf)
    long_name = "a/" + "b" * 150 + "/ü" * 3
    tw.add_bytes(TarHeader(name=long_name, size=3, mtime=5, uid=10**8), b"abc")
    tw.add(TarHeader(name="l", typeflag=b"2", linkname="t" * 200))
    tw.finish(end_of_archive=True)
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as t:
        a, link = t.getmembers()
        assert a.name == long_name and a.uid == 10**8 and t.extractfile(a).read() == b"abc"  # type: ignore[union-attr]
        assert link.linkname == "t" * 200
