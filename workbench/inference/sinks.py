"""Where a forecast goes, block by block: a resumable zarr store or memory.

The run loop (:func:`workbench.inference.run_forecast`) knows nothing of files. It hands every block of
initial times to a :class:`ForecastSink`, which

1. ``open(layout, signature, source)``: gets ready for the forecast of that layout and says which blocks
   it holds already (a zarr store resumed after a killed run; nothing for memory); a sink that resumes
   fingerprints the initial states of ``source`` so that a resume on changed input is refused;
2. ``write(block, data)``: keeps one block, per variable an array ``(b, lead[, members], y, x)``;
   called from the run loop's writer thread, one block at a time;
3. ``close()``: returns the whole forecast as an :class:`xarray.Dataset`; ``abort()`` instead, when the
   run failed: a store releases its lock and keeps its finished blocks for a resume.

:class:`ZarrSink` writes through :class:`~workbench.inference.store.ForecastStore` (atomic blocks, a run
signature, resumption); :class:`MemorySink` fills numpy arrays. A sink serves one run.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import xarray as xr

from workbench.errors import DataError
from workbench.inference.store import (
    ForecastStore,
    StoreLayout,
    layout_dataset,
    open_forecast,
    source_fingerprint,
)

__all__ = ["ForecastSink", "MemorySink", "ZarrSink"]


@runtime_checkable
class ForecastSink(Protocol):
    """What the run loop writes a forecast into."""

    def open(self, layout: StoreLayout, signature: dict[str, Any], source: xr.Dataset) -> set[int]:
        """Prepare for a forecast of ``layout`` made by the run ``signature`` from the initial states of
        ``source``; return the finished blocks."""
        ...

    def write(self, block: int, data: dict[str, np.ndarray]) -> None:
        """Keep block ``block``: per variable ``(b, lead[, members], y, x)`` (views the sink must copy)."""
        ...

    def close(self) -> xr.Dataset:
        """The whole forecast, after every block is written."""
        ...

    def abort(self) -> None:
        """The run failed: give up whatever the sink holds (locks), keeping what a resume can use."""
        ...


class ZarrSink:
    """A resumable zarr store at ``path`` (see :mod:`workbench.inference.store`).

    Parameters
    ----------
    path : path-like
        The store. Rerunning the same forecast into it resumes: finished blocks are skipped.
    overwrite : bool
        Replace an existing store (of any run) instead of resuming it.
    """

    def __init__(self, path: str | os.PathLike, *, overwrite: bool = False) -> None:
        if not isinstance(path, (str, os.PathLike)) or not str(path):
            raise DataError(f"A zarr sink needs a store path; got {path!r}.")
        self.path = Path(path)
        self.overwrite = bool(overwrite)
        self._store: ForecastStore | None = None

    @classmethod
    def catalog(cls, model: str, *, overwrite: bool = False) -> ZarrSink:
        """The catalog's store of ``model`` (``<cache>/forecasts/<model>.zarr``), which
        ``open_catalog()["forecasts"](model=model)`` reads."""
        from workbench.catalog import forecast_store_path

        return cls(forecast_store_path(model), overwrite=overwrite)

    def __repr__(self) -> str:
        return f"ZarrSink({str(self.path)!r}, overwrite={self.overwrite})"

    def open(self, layout: StoreLayout, signature: dict[str, Any], source: xr.Dataset) -> set[int]:
        # The input is part of the run: resuming on changed initial data would mix two forecasts.
        signature = {**signature, "source": source_fingerprint(source, layout.init_times, layout.variables)}
        self._store = ForecastStore.open_or_create(self.path, layout, signature, overwrite=self.overwrite)
        return self._store.done_blocks()

    def handoff(self) -> dict[str, Any]:
        """What the other processes of a multi-process run need to :meth:`join` this open store."""
        return self._opened().handoff()

    def join(self, layout: StoreLayout, handoff: dict[str, Any]) -> None:
        """Open the store another process of this run holds, as a cooperating writer of its blocks
        (instead of :meth:`open`; see :mod:`workbench.inference.store`)."""
        self._store = ForecastStore.join(layout, handoff)

    def write(self, block: int, data: dict[str, np.ndarray]) -> None:
        self._opened().write_block(block, data)

    def close(self) -> xr.Dataset:
        store = self._opened()
        store.finish()
        return open_forecast(store.path)

    def abort(self) -> None:
        if self._store is not None:
            self._store.release()

    def _opened(self) -> ForecastStore:
        if self._store is None:
            raise DataError(f"{self!r} is not open; the run loop opens it with the forecast's layout first.")
        return self._store


class MemorySink:
    """The forecast in memory: numpy arrays filled block by block.

    The arrays are allocated empty, not filled with NaN first (filling a 2 GB forecast took longer than
    copying the blocks into it); :meth:`close` sets to NaN only blocks that were never written. A block
    is copied in by several threads, slab by slab: the copy into fresh memory is bound by the kernel
    mapping its pages (2 GB took 0.65 s on one thread), which parallelises, and numpy releases the GIL
    while it copies.
    """

    #: Bytes per slab a copying thread takes at a time.
    SLAB = 64 * 2**20

    def __init__(self) -> None:
        self._layout: StoreLayout | None = None
        self._arrays: dict[str, np.ndarray] = {}
        self._written: set[int] = set()
        self._model = ""

    def open(self, layout: StoreLayout, signature: dict[str, Any], source: xr.Dataset) -> set[int]:
        shape = (len(layout.init_times), len(layout.lead_times), *layout.member_dims.values(), *layout.grid_shape)
        self._layout = layout
        self._arrays = {v: np.empty(shape, dtype=np.float32) for v in layout.variables}
        self._written = set()
        self._model = "+".join(str(m) for m in signature.get("model", ()))
        return set()

    def write(self, block: int, data: dict[str, np.ndarray]) -> None:
        layout = self._opened()
        if len(layout.member_parts) > 1:
            # A part of the members: a strided region of the arrays, copied as is.
            region = layout.block_region(block)
            for v, arr in data.items():
                np.copyto(self._arrays[v][region], arr)
            self._written.add(block)
            return
        sl = layout.block_slice(block)
        jobs = []
        for v, arr in data.items():
            dest = self._arrays[v][sl]
            # Slabs along the first two axes (init, lead): each a contiguous run of both arrays.
            rows = dest.reshape(-1, *dest.shape[2:]) if dest.ndim > 2 else dest
            src = np.asarray(arr).reshape(rows.shape)
            step = max(1, self.SLAB // max(rows[0].nbytes, 1))
            jobs += [(rows[i : i + step], src[i : i + step]) for i in range(0, len(rows), step)]
        if len(jobs) == 1:
            np.copyto(*jobs[0])
        else:
            with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1, len(jobs))) as pool:
                list(pool.map(lambda job: np.copyto(*job), jobs))
        self._written.add(block)

    def close(self) -> xr.Dataset:
        layout = self._opened()
        for k in set(range(layout.n_blocks)) - self._written:
            for arr in self._arrays.values():
                arr[layout.block_region(k)] = np.nan
        ds = layout_dataset(layout, self._arrays)
        ds.attrs["model"] = self._model
        return ds

    def abort(self) -> None:
        """Nothing to release: the arrays go with the sink."""

    def _opened(self) -> StoreLayout:
        if self._layout is None:
            raise DataError("This memory sink is not open; the run loop opens it with the forecast's layout first.")
        return self._layout
