"""The DICOMweb frame cache on disk: bounded, shared by concurrent writers."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

from workbench.io.framecache import ABANDONED_AFTER, FrameCache

SYNTAX = "1.2.840.10008.1.2.1"


def test_concurrent_writers_stay_within_the_bound(tmp_path):
    # Trimming by one writer once removed another's file before its rename: put raised.
    cache = FrameCache(tmp_path / "frames", max_bytes=40_000)
    frame = bytes(10_000)

    def put(n: int) -> None:
        cache.put(f"http://pacs/frames/{n}", "application/octet-stream", frame, SYNTAX)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(400)))
    assert 0 < cache.size() <= 40_000
    assert cache.get("http://pacs/frames/399", "application/octet-stream") in (
        None,  # trimmed by a later writer
        (frame, SYNTAX),
    )


def test_trimming_spares_a_file_being_written_but_not_an_abandoned_one(tmp_path):
    cache = FrameCache(tmp_path / "frames", max_bytes=15_000)
    cache.put("http://pacs/frames/1", "*/*", bytes(10_000), SYNTAX)
    folder = next(p for p in (tmp_path / "frames").iterdir())
    writing, abandoned = folder / "a.part", folder / "b.part"
    writing.write_bytes(bytes(10_000))
    abandoned.write_bytes(bytes(10_000))
    old = time.time() - ABANDONED_AFTER - 60
    os.utime(abandoned, (old, old))
    cache.put("http://pacs/frames/2", "*/*", bytes(10_000), SYNTAX)
    assert writing.exists() and not abandoned.exists()
    assert cache.get("http://pacs/frames/2", "*/*") == (bytes(10_000), SYNTAX)
    assert cache.get("http://pacs/frames/1", "*/*") is None  # least recently used
