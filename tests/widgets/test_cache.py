"""The frame cache stays within its byte budget and prefetches in the background."""

from __future__ import annotations

import numpy as np

from workbench.widgets.cache import FrameCache, neighbours


def test_cache_is_bounded_and_least_recently_used_goes_first(ct_stack) -> None:
    frame_bytes = 512 * 512 * ct_stack.dtype.itemsize
    cache = FrameCache(max_bytes=3 * frame_bytes)
    try:
        for i in range(5):
            cache.get(ct_stack, i)
        assert len(cache) == 3 and cache.nbytes == 3 * frame_bytes
        cache.get(ct_stack, 2)  # a hit refreshes frame 2
        cache.get(ct_stack, 5)  # evicts frame 3, the oldest
        keys = {k[1] for k in cache._frames}
        assert keys == {2, 4, 5}
        assert cache.hits == 1
        np.testing.assert_array_equal(cache.get(ct_stack, 4), ct_stack[4].values)
    finally:
        cache.close()


def test_prefetch_decodes_neighbours_in_the_background(ct_stack) -> None:
    cache = FrameCache()
    try:
        futures = cache.prefetch(ct_stack, neighbours(10, 28))
        for f in futures:
            f.result(timeout=30)
        misses = cache.misses
        for i in (11, 12, 13, 14, 9, 8):
            cache.get(ct_stack, i)
        assert cache.misses == misses  # all were already there
        assert cache.prefetch(ct_stack, [11]) == []  # nothing to do twice
    finally:
        cache.close()


def test_neighbours_favour_the_direction_of_travel() -> None:
    assert neighbours(10, 28) == [11, 9, 12, 8, 13, 14]
    assert neighbours(10, 28, direction=-1) == [9, 11, 8, 12, 7, 6]
    assert neighbours(27, 28) == [26, 25]
