"""A dask array that, when it is itself what is computed, is read in one go.

Dask computes an array chunk by chunk: for a series over DICOMweb, one frame request per
chunk. When the array itself is computed (``.values``, ``.load()``, ``.compute()``,
``np.asarray``), every chunk is wanted and all are held at once anyway, so one read of
everything costs no more memory, and over DICOMweb it is one request instead of hundreds.
Anything built from the array (a frame, a slab, a reduction streaming over the frames) is
a plain dask array, computed chunk by chunk as before: reading one frame still reads one.
"""

from __future__ import annotations

from collections.abc import Callable

import dask.array as da
import numpy as np
from dask._task_spec import Task, TaskRef
from dask.array.core import finalize, slices_from_chunks
from dask.array.optimization import optimize
from dask.core import flatten
from dask.highlevelgraph import HighLevelGraph
from dask.utils import ensure_dict


class WholeReadArray(da.Array):
    """A dask array whose computing as a whole goes through one ``read`` of everything.

    Made with :meth:`of`. It pickles as a plain dask array (``dask.distributed`` workers
    compute chunks), and operations on it give plain dask arrays.
    """

    @classmethod
    def of(cls, array: da.Array, read: Callable[[], np.ndarray]) -> WholeReadArray:
        """``array`` (same graph, name and chunks), computed as a whole by ``read()``,
        which must give exactly the values of its chunks put together."""
        whole = cls(array.dask, array.name, array.chunks, meta=array._meta)
        whole._read_whole = read
        return whole

    def __dask_optimize__(self, dsk, keys, **kwargs):
        """One task reading everything, each chunk a view of its result, when every chunk
        is needed for ``keys`` (this array computed, persisted...); else dask's own
        optimization, chunk by chunk."""
        mine = list(flatten(self.__dask_keys__()))
        if len(mine) > 1:
            if not isinstance(dsk, HighLevelGraph):
                dsk = HighLevelGraph.from_collections(id(dsk), dsk, dependencies=())
            graph = dict(ensure_dict(dsk.cull(set(flatten(keys)))))
            if all(key in graph for key in mine):
                whole = "whole-" + self.name
                graph[whole] = Task(whole, self._read_whole)
                for key, where in zip(mine, slices_from_chunks(self.chunks), strict=True):
                    graph[key] = Task(key, _view, TaskRef(whole), where)
                return graph
        return optimize(dsk, keys, **kwargs)

    def __dask_postcompute__(self):
        return _put_together, (self.shape,)


def _view(values: np.ndarray, where: tuple[slice, ...]) -> np.ndarray:
    return values[where]


def _put_together(results, shape: tuple[int, ...]) -> np.ndarray:
    """The computed array from its chunks: when they are the views :meth:`__dask_optimize__`
    makes, the array they view (no copy of the whole); else as dask puts chunks together."""
    first = next(flatten(results), None) if isinstance(results, list) else results
    base = first.base if isinstance(first, np.ndarray) else None
    if isinstance(base, np.ndarray) and base.shape == shape and _are_views_of(base, results):
        return base
    return finalize(results)


def _are_views_of(base: np.ndarray, results) -> bool:
    """Whether each block of ``results`` (a nested list, in block order) is exactly the
    part of ``base`` it stands for."""
    chunks = _chunks_of(results, base.ndim)
    if chunks is None or tuple(map(sum, chunks)) != base.shape:
        return False
    for block, where in zip(flatten(results), slices_from_chunks(chunks), strict=True):
        expected = base[where]
        if not (
            isinstance(block, np.ndarray)
            and block.base is base
            and block.shape == expected.shape
            and block.strides == expected.strides
            and block.__array_interface__["data"][0] == expected.__array_interface__["data"][0]
        ):
            return False
    return True


def _chunks_of(results, ndim: int) -> tuple[tuple[int, ...], ...] | None:
    """The chunk sizes of a nested list of blocks along each axis, or ``None`` when the
    nesting does not match ``ndim``."""
    chunks = []
    level = results
    for axis in range(ndim):
        if not isinstance(level, list) or not level:
            return None
        sizes = []
        for item in level:
            first = item
            while isinstance(first, list):
                first = first[0]
            if not isinstance(first, np.ndarray) or first.ndim != ndim:
                return None
            sizes.append(first.shape[axis])
        chunks.append(tuple(sizes))
        level = level[0]
    return tuple(chunks)
