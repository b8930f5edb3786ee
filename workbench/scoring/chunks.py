"""Whole store chunks of a lazily opened array, read through Dask without extra copies.

Scoring from a zarr store visits every chunk once. Reading a block as ``da.isel(...).values`` costs,
beyond the read and decompression itself, a copy in Dask's ``finalize`` (a one-chunk result) or a
``concatenate`` (several), and list-indexing along time goes through Dask's shuffle ``getitem``,
one more copy: together more than the read. :class:`StoreChunks` asks Dask for the chunk arrays
themselves (``Array.to_delayed``), so the scorer works on the decompressed buffers as they come from
the codec pipeline, and the chunking is the store's own.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["StoreChunks"]


class StoreChunks:
    """The chunks of a Dask-backed array along its ``n_lead`` leading dimensions.

    The other dimensions must be one chunk each (a field is never split), which :meth:`supports`
    checks; a chunk then holds whole fields.

    Parameters
    ----------
    da : xarray.DataArray
        Dask-backed, e.g. from ``xarray.open_zarr``.
    n_lead : int
        Leading dimensions that may be chunked: 1 for ``(time, ...)``, 2 for
        ``(init_time, lead_time, ...)``.
    """

    def __init__(self, da: xr.DataArray, n_lead: int = 1):
        data = da.data
        self.n_lead = n_lead
        self.bounds = [np.concatenate([[0], np.cumsum(c)]).astype(np.int64) for c in data.chunks[:n_lead]]
        shape = tuple(len(c) for c in data.chunks[:n_lead])
        # one graph optimisation for the whole array, not one per read
        self._delayed = data.to_delayed().reshape(shape)

    @staticmethod
    def supports(da: xr.DataArray, n_lead: int = 1) -> bool:
        """Whether ``da`` is Dask-backed with whole fields in each chunk."""
        chunks = getattr(da.data, "chunks", None)
        if chunks is None or not hasattr(da.data, "to_delayed"):
            return False
        return all(len(c) == 1 for c in chunks[n_lead:])

    def chunk_of(self, pos: int, axis: int = 0) -> int:
        """The chunk index holding position ``pos`` along leading ``axis``."""
        return int(np.searchsorted(self.bounds[axis], pos, side="right") - 1)

    def start(self, index: int, axis: int = 0) -> int:
        """First position of chunk ``index`` along leading ``axis``."""
        return int(self.bounds[axis][index])

    def read(self, indices) -> list[np.ndarray]:
        """The chunk arrays at ``indices`` (each a tuple of ``n_lead`` chunk indices), read together.

        Read on Dask's local threads: the caller's scoring pass runs in this process, and a default
        distributed client that happens to exist must not receive (and send back) every chunk.
        """
        import dask

        indices = [tuple(np.atleast_1d(i)) for i in indices]
        if not indices:
            return []
        return list(dask.compute(*(self._delayed[i] for i in indices), scheduler="threads"))

    def delayed(self, index) -> object:
        """The chunk at ``index`` as a ``dask.delayed`` object: a task input that is the chunk itself."""
        return self._delayed[tuple(np.atleast_1d(index))]

    def delayed_block(self, slices: tuple[slice, ...]):
        """The block ``slices`` as a ``dask.delayed`` chunk when it is exactly one chunk, else None."""
        index = self._index(slices)
        return None if index is None else self._delayed[index]

    def _index(self, slices: tuple[slice, ...]) -> tuple[int, ...] | None:
        index = []
        for axis, s in enumerate(slices):
            k = self.chunk_of(s.start, axis)
            if self.bounds[axis][k] != s.start or self.bounds[axis][k + 1] != s.stop:
                return None
            index.append(k)
        return tuple(index)

    def block(self, slices: tuple[slice, ...]) -> np.ndarray | None:
        """The values of the block ``slices`` (one per leading dim) when it is exactly one chunk, else
        None (the caller then reads it another way)."""
        index = self._index(slices)
        return None if index is None else self.read([index])[0]
