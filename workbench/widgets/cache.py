"""A bounded LRU cache of decoded frames, filled ahead of the user while they scroll.

Stacks are lazy (dask, one chunk per frame): a frame is decoded the first time it is shown.
Keeping recently shown frames, and decoding the neighbours of the current frame in background
threads, makes scrolling and cine smooth once the neighbours are in, while the byte budget
keeps memory bounded whatever the series length.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import xarray as xr

#: Default budget: about 32 CT slices of 512² float64, or 8 full CR frames.
DEFAULT_MAX_BYTES = 256 * 1024 * 1024


def stack_key(stack: xr.DataArray) -> Hashable:
    """A key identifying a stack's pixel data for the cache.

    Dask arrays carry a unique, content-derived name; in-memory arrays are keyed by identity
    (their frames are not decoded, so the cache only saves an indexing step for them).
    """
    data = stack.data
    name = getattr(data, "name", None)
    if isinstance(name, str):
        return ("dask", name)
    return ("memory", id(data))


def load_frame(stack: xr.DataArray, index: int) -> np.ndarray:
    """Decode one frame of a stack into memory (synchronously, in the calling thread)."""
    data = stack.data[index]
    if hasattr(data, "compute"):
        # Our own threads do the parallelism; a nested thread pool per frame only adds cost.
        data = data.compute(scheduler="synchronous")
    return np.asarray(data)


class FrameCache:
    """Decoded frames keyed by ``(stack, index)``, least recently used evicted first.

    Parameters
    ----------
    max_bytes
        Memory budget for cached frames. A single frame larger than the budget is still
        returned, just not kept.
    workers
        Background threads decoding prefetched frames.
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES, workers: int = 2) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, not {max_bytes}")
        self.max_bytes = int(max_bytes)
        self._frames: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._pending: dict[tuple, Future] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="frame-prefetch")
        self.nbytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._frames)

    def __contains__(self, key: tuple) -> bool:
        return key in self._frames

    def _store(self, key: tuple, frame: np.ndarray) -> None:
        with self._lock:
            if key in self._frames:
                return
            if frame.nbytes > self.max_bytes:
                return
            self._frames[key] = frame
            self.nbytes += frame.nbytes
            while self.nbytes > self.max_bytes:
                _, evicted = self._frames.popitem(last=False)
                self.nbytes -= evicted.nbytes

    def get(self, stack: xr.DataArray, index: int) -> np.ndarray:
        """The decoded frame ``index`` of ``stack``, from the cache or decoded now."""
        key = (stack_key(stack), int(index))
        with self._lock:
            frame = self._frames.get(key)
            if frame is not None:
                self._frames.move_to_end(key)
                self.hits += 1
                return frame
            pending = self._pending.get(key)
            self.misses += 1
            if pending is None:
                # Others asking for this frame meanwhile wait for this load rather than
                # decoding (or, over DICOMweb, fetching) it a second time.
                loading = self._pending[key] = Future()
        if pending is not None:
            return pending.result()
        try:
            frame = self._load_pending(key, stack, int(index))
        except BaseException as exc:
            loading.set_exception(exc)
            raise
        loading.set_result(frame)
        return frame

    def prefetch(self, stack: xr.DataArray, indices: Iterable[int]) -> list[Future]:
        """Decode frames in the background unless already cached or on their way."""
        token = stack_key(stack)
        futures = []
        for index in indices:
            key = (token, int(index))
            with self._lock:
                if key in self._frames or key in self._pending:
                    continue
                future = self._pool.submit(self._load_pending, key, stack, int(index))
                self._pending[key] = future
            futures.append(future)
        return futures

    def _load_pending(self, key: tuple, stack: xr.DataArray, index: int) -> np.ndarray:
        try:
            frame = load_frame(stack, index)
            self._store(key, frame)
            return frame
        finally:
            with self._lock:
                self._pending.pop(key, None)

    def clear(self) -> None:
        """Forget every cached frame."""
        with self._lock:
            self._frames.clear()
            self.nbytes = 0

    def close(self) -> None:
        """Stop the background threads (pending prefetches are abandoned)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def neighbours(
    index: int, count: int, *, ahead: int = 4, behind: int = 2, direction: int = 1
) -> list[int]:
    """Frames to prefetch around ``index``: more in the direction of travel, nearest first."""
    step = 1 if direction >= 0 else -1
    forward = [index + step * k for k in range(1, ahead + 1)]
    backward = [index - step * k for k in range(1, behind + 1)]
    order = []
    for i in range(max(ahead, behind)):
        order.extend(side[i] for side in (forward, backward) if i < len(side))
    return [i for i in order if 0 <= i < count]
