"""The forecast store: a zarr store written chunk by chunk, atomically, and resumable.

Layout. The store is an ordinary zarr group that xarray opens with ``xr.open_zarr``: one float32 array per
variable with dims ``(init_time, lead_time[, member dims], y, x)`` plus the coordinates (``init_time``,
``lead_time``, the 2-D ``valid_time``, ``y``, ``x``, and ``latitude``/``longitude`` when the source has
them). The unit of work and of atomicity is a *block*: a run of consecutive initial times (one batch of
the engine) with all their members, or, for a run with a ``member_batch``, with one weight member and
a batch of noise members (so that the members of a single initial time can be written by several
processes). Zarr chunks never straddle two blocks, so writing a block touches only that block's chunk
files.

Atomicity, at three levels:

1. the store itself is created in a temporary directory beside the target (metadata, coordinates and the
   run signature) and renamed into place, so a store either exists whole or not at all;
2. every chunk file of a block is written through zarr's local-file store, which writes each file to a
   temporary name and renames it (zarr 2's ``DirectoryStore`` and zarr 3's ``LocalStore`` both do), so no
   reader ever sees a half-written chunk file;
3. after all of a block's files are in place, a completion record ``_progress/<block>.json`` is written
   (again temporary name, then rename). A block without its record is treated as not written: a rerun
   recomputes it and overwrites whatever part of it a killed run had left. A block with its record is
   skipped.

The run signature (model, weights, variables, times, members, precision, seed, and the input: source
name and a SHA-256 of the initial-condition arrays actually read, :func:`source_fingerprint`) is kept in
the root attributes; a rerun with a different signature refuses to touch the store instead of mixing two
runs (or two versions of the input data) in one, and the message names both values of every difference.

Writers and readers. A writer holds an exclusive lock (``.<store>.lock`` beside the store, with its pid
and host; :class:`workbench._io.ExclusiveLock`) from opening to :meth:`ForecastStore.finish`, so a second
writer is refused with a message naming the first. ``overwrite=True`` never deletes the finished store
first: the new run is written into a hidden folder beside it and swapped in by
:func:`workbench._io.swap_dir` only when complete, so a failing or killed rerun leaves the old store
intact. :func:`open_forecast` shows only the blocks whose completion record exists; the others read as
NaN even where a killed writer had left some of their chunks.

Cooperating writers. The processes of one multi-process run (:mod:`workbench.inference.distributed`)
share the lock of their coordinator (rank 0) instead of each taking it: rank 0 opens the store as above
and hands :meth:`ForecastStore.handoff` to the others, which :meth:`ForecastStore.join` it. A joined
writer takes no lock and never creates, swaps or finishes the store; it writes whole blocks only (no
chunk is shared by two blocks, so two writers never touch one file) and checks before each block that the
lock file still names its coordinator, so a writer whose coordinator died stops instead of writing into
a store that another run may hold by now.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from workbench._io import (
    ExclusiveLock,
    fault_point,
    lock_holder,
    recover_dir,
    swap_dir,
    temp_name,
    write_text,
)
from workbench.errors import DataError, LockError

PROGRESS_DIR = "_progress"
SIGNATURE_ATTR = "workbench_run"
COMPLETE_RECORD = "complete.json"


@dataclass(frozen=True)
class StoreLayout:
    """What a forecast store holds: coordinates, member dims and the block (batch) size.

    Parameters
    ----------
    variables
        Canonical names of the forecast variables.
    init_times, lead_times
        1-D arrays of ``datetime64[ns]`` and ``timedelta64[ns]``.
    member_dims
        Names and sizes of the member dims, in order (``{}`` for a deterministic forecast).
    spatial
        Coordinates of the grid as ``(dims, values)`` tuples: at least the two spatial dims (1-D) and
        optionally 2-D ``latitude``/``longitude``.
    block_size
        Initial times per block (the unit of atomic writes).
    attrs
        Per-variable attributes (units, long names).
    member_batch
        ``None``: a block holds every member of its initial times. A number: a block holds one weight
        member and this many noise members of its initial times (a *member part*), so that the members
        of few initial times can be shared out over several processes. Blocks are numbered initial
        block first: block ``k`` is member part ``k % n_parts`` of the initial times of
        ``k // n_parts``, parts ordered weight member first, then noise members.
    """

    variables: tuple[str, ...]
    init_times: np.ndarray
    lead_times: np.ndarray
    member_dims: dict[str, int]
    spatial: dict[str, Any]
    block_size: int
    attrs: dict[str, dict[str, Any]]
    spatial_dims: tuple[str, str] = ("y", "x")
    member_batch: int | None = None

    @property
    def n_init_blocks(self) -> int:
        """Blocks of initial times (each split into :attr:`member_parts`)."""
        return -(-len(self.init_times) // self.block_size)

    @property
    def member_parts(self) -> list[tuple[slice, slice]]:
        """The (weight member, noise member) ranges of one block of initial times, in block order."""
        return member_parts(self.member_dims, self.member_batch)

    @property
    def n_blocks(self) -> int:
        return self.n_init_blocks * len(self.member_parts)

    def block_slice(self, block: int) -> slice:
        """The initial times of ``block``."""
        start = (block // len(self.member_parts)) * self.block_size
        return slice(start, min(start + self.block_size, len(self.init_times)))

    def block_members(self, block: int) -> tuple[slice, slice]:
        """The weight and noise members of ``block`` (each ``slice(0, 1)`` where the dim is absent)."""
        return self.member_parts[block % len(self.member_parts)]

    def block_region(self, block: int) -> tuple[slice, ...]:
        """Where ``block`` lies in the forecast's arrays: slices over ``(init_time, lead_time, *members)``."""
        weights, noise = self.block_members(block)
        members = [weights if d == "weight_member" else noise for d in self.member_dims]
        return (self.block_slice(block), slice(None), *members)

    @property
    def dims(self) -> tuple[str, ...]:
        return ("init_time", "lead_time", *self.member_dims, *self.spatial_dims)

    @property
    def grid_shape(self) -> tuple[int, int]:
        return (_size(self.spatial[self.spatial_dims[0]]), _size(self.spatial[self.spatial_dims[1]]))

    def block_shape(self, block: int) -> tuple[int, ...]:
        region = self.block_region(block)
        sizes = (len(self.init_times), len(self.lead_times), *self.member_dims.values())
        return (*(len(range(*r.indices(n))) for r, n in zip(region, sizes, strict=True)), *self.grid_shape)

    def zarr_chunks(self, max_chunk_bytes: int = 64 * 2**20) -> tuple[int, ...]:
        """Zarr chunk shape: whole blocks along ``init_time`` and the member dims, split along
        ``lead_time`` if too big. No chunk is shared by two blocks, so two writers never touch one file."""
        members = tuple(self.member_dims.values())
        if self.member_batch is not None:
            members = tuple(1 if d == "weight_member" else min(self.member_batch, n)
                            for d, n in self.member_dims.items())
        per_lead = self.block_size * int(np.prod(members, dtype=np.int64)) * int(np.prod(self.grid_shape)) * 4
        n_lead = len(self.lead_times)
        lead_chunk = max(1, min(n_lead, max_chunk_bytes // max(per_lead, 1)))
        return (self.block_size, lead_chunk, *members, *self.grid_shape)


def member_parts(member_dims: dict[str, int], member_batch: int | None) -> list[tuple[slice, slice]]:
    """The (weight member, noise member) ranges a block of initial times is split into.

    ``member_dims`` are a layout's member dims (``{}``, ``{"member": n}`` or ``{"weight_member": w,
    "noise_member": n}``); ``member_batch`` is :attr:`StoreLayout.member_batch`.
    """
    n_weight = member_dims.get("weight_member", 1)
    n_noise = member_dims.get("noise_member", member_dims.get("member", 1))
    if member_batch is None:
        return [(slice(0, n_weight), slice(0, n_noise))]
    return [(slice(w, w + 1), slice(j, min(j + member_batch, n_noise)))
            for w in range(n_weight) for j in range(0, n_noise, member_batch)]


def _size(coord: Any) -> int:
    values = coord[1] if isinstance(coord, tuple) else coord
    return len(np.asarray(values))


def _atomic_write_text(path: Path, text: str) -> None:
    write_text(path, text)


def lock_path(path: str | os.PathLike) -> Path:
    """The lock file of the forecast store at ``path``."""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


def source_fingerprint(source: xr.Dataset, init_times: Sequence, variables: Sequence[str]) -> dict[str, Any]:
    """Identify the input of a forecast run: the source's name and a SHA-256 of its initial states.

    The hash covers the float32 values of every model variable the source holds at every initial time
    (the arrays the engine reads), one time at a time so the memory stays that of one state. Variables
    the source lacks (a baseline reading its own data) are listed as such.

    Returns
    -------
    dict
        ``{"name": ..., "sha256": ..., "variables": [...]}``.
    """
    name = source.attrs.get("source") or source.encoding.get("source") or source.attrs.get("title") or ""
    h = hashlib.sha256()
    present = [v for v in variables if v in source.data_vars]
    if present and "time" in source.dims:
        sub = source[present]
        for t in np.asarray(init_times, dtype="datetime64[ns]"):
            try:
                state = sub.sel(time=t).load()
            except KeyError:
                h.update(b"missing:" + str(t).encode())
                continue
            for v in present:
                h.update(v.encode())
                h.update(np.ascontiguousarray(state[v].values, dtype=np.float32).tobytes())
    return {"name": str(name), "sha256": h.hexdigest(), "variables": present}


def _signature_diff(existing: dict[str, Any], new: dict[str, Any]) -> str:
    def short(value: Any) -> str:
        text = json.dumps(value, sort_keys=True)
        return text if len(text) <= 90 else text[:87] + "..."

    keys = sorted(k for k in set(existing) | set(new) if existing.get(k) != new.get(k))
    return "; ".join(f"{k}: store {short(existing.get(k))} vs this run {short(new.get(k))}" for k in keys)


def layout_dataset(layout: StoreLayout, data: dict[str, Any], signature: dict[str, Any] | None = None) -> xr.Dataset:
    """The forecast Dataset of ``layout`` holding ``data`` (numpy or dask arrays of the full shape)."""
    coords: dict[str, Any] = {
        "init_time": ("init_time", np.asarray(layout.init_times, dtype="datetime64[ns]")),
        "lead_time": ("lead_time", np.asarray(layout.lead_times, dtype="timedelta64[ns]")),
    }
    for name, size in layout.member_dims.items():
        coords[name] = (name, np.arange(size))
    for name, value in layout.spatial.items():
        coords[name] = value
    valid = coords["init_time"][1][:, None] + coords["lead_time"][1][None, :]
    coords["valid_time"] = (("init_time", "lead_time"), valid)
    data_vars = {v: (layout.dims, data[v], dict(layout.attrs.get(v, {}))) for v in layout.variables}
    ds = xr.Dataset(data_vars, coords=coords)
    if signature is not None:
        ds.attrs[SIGNATURE_ATTR] = json.dumps(signature, sort_keys=True)
        ds.attrs["block_size"] = int(layout.block_size)
        if layout.member_batch is not None:
            ds.attrs["member_batch"] = int(layout.member_batch)
    return ds


def _template(layout: StoreLayout, signature: dict[str, Any]) -> xr.Dataset:
    import dask.array as da  # dask only builds the lazy template; no data is computed

    shape = (len(layout.init_times), len(layout.lead_times), *layout.member_dims.values(), *layout.grid_shape)
    chunks = layout.zarr_chunks()
    data = {v: da.full(shape, np.nan, dtype="float32", chunks=chunks) for v in layout.variables}
    return layout_dataset(layout, data, signature)


class ForecastStore:
    """A forecast zarr store that knows which blocks are finished.

    Use :meth:`open_or_create`; then :meth:`done_blocks`, :meth:`write_block` and :meth:`finish`.
    """

    def __init__(self, path: str | os.PathLike, layout: StoreLayout):
        self.path = Path(path)
        self.target = self.path  # where the store lands: differs from path while an overwrite is staged
        self.layout = layout
        self._group = None
        self._lock: ExclusiveLock | None = None
        self._holder: dict[str, Any] | None = None  # set on a joined (cooperating) writer

    # -- cooperating writers -----------------------------------------------------------------------
    def handoff(self) -> dict[str, Any]:
        """What a cooperating writer needs to :meth:`join` this store: where the blocks go (a staged
        overwrite's folder, perhaps), the final path, and the lock record naming this writer."""
        if self._lock is None:
            raise DataError(f"{self.target} is not held by this process, so it cannot be shared")
        return {"path": str(self.path), "target": str(self.target), "holder": lock_holder(self._lock.path)}

    @classmethod
    def join(cls, layout: StoreLayout, handoff: dict[str, Any]) -> ForecastStore:
        """Write blocks into a store that another process of this run holds (see the module's notes).

        Raises
        ------
        LockError
            If the store's lock does not name the process that handed the store over.
        """
        store = cls(handoff["path"], layout)
        store.target = Path(handoff["target"])
        store._holder = handoff["holder"]
        store._check_holder()
        return store

    def _check_holder(self) -> None:
        if self._holder is None:
            return
        now = lock_holder(lock_path(self.target))
        if now != self._holder:
            raise LockError(
                f"the forecast store {self.target} is no longer held by this run's coordinator "
                f"(process {self._holder.get('pid')} on {self._holder.get('host')}); rerun to resume it"
            )

    # -- creation and resumption -------------------------------------------------------------
    @classmethod
    def open_or_create(
        cls,
        path: str | os.PathLike,
        layout: StoreLayout,
        signature: dict[str, Any],
        *,
        overwrite: bool = False,
    ) -> ForecastStore:
        """Lock the store at ``path``, then resume it or create it (atomically).

        With ``overwrite`` an existing store stays in place, readable, until the new one is complete
        (:meth:`finish` swaps it in).

        Raises
        ------
        LockError
            If another process is writing this store.
        DataError
            If a store exists at ``path`` that another run (different signature) wrote, or the path
            exists and is not a forecast store.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = ExclusiveLock(lock_path(path), f"the forecast store {path}").acquire()
        try:
            recover_dir(path)  # a swap or creation that a killed writer left half-way
            if path.exists() and not overwrite:
                existing = _read_signature(path)
                if existing != json.loads(json.dumps(signature, sort_keys=True)):
                    raise DataError(
                        f"{path} holds a forecast from a different run or input, so it cannot be resumed "
                        f"({_signature_diff(existing, json.loads(json.dumps(signature, sort_keys=True)))}); "
                        "pass --overwrite (overwrite=True) to replace it, or another store path"
                    )
                store = cls(path, layout)
                store._clean_partials()
            else:
                if path.exists():
                    _read_signature(path)  # only ever replace a forecast store, never another folder
                tmp = temp_name(path, "tmp")
                try:
                    with warnings.catch_warnings():
                        # zarr 3 warns that consolidated metadata is outside its spec; xarray reads it fine.
                        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
                        _template(layout, signature).to_zarr(tmp, mode="w", compute=False)
                    (tmp / PROGRESS_DIR).mkdir()
                    if path.exists():
                        store = cls(tmp, layout)  # staged beside the old store until complete
                        store.target = path
                    else:
                        swap_dir(tmp, path)
                        store = cls(path, layout)
                except BaseException:
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise
        except BaseException:
            lock.release()
            raise
        store._lock = lock
        return store

    def release(self) -> None:
        """Release the writer's lock (done by :meth:`finish`; call it when abandoning a run).

        An abandoned overwrite's staged store is deleted: the finished store beside it stays as it was.
        """
        if self.path != self.target:
            shutil.rmtree(self.path, ignore_errors=True)
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _clean_partials(self) -> None:
        # Temporary files of a killed writer: never read by zarr, but they waste space.
        for p in self.path.rglob("*.partial"):
            p.unlink(missing_ok=True)

    # -- progress ----------------------------------------------------------------------------
    def done_blocks(self) -> set[int]:
        """Indices of the blocks whose completion record exists."""
        progress = self.path / PROGRESS_DIR
        if not progress.is_dir():
            return set()
        return {int(p.stem) for p in progress.glob("*.json") if p.stem.isdigit()}

    @property
    def complete(self) -> bool:
        return (self.path / PROGRESS_DIR / COMPLETE_RECORD).exists()

    # -- writing -----------------------------------------------------------------------------
    def _arrays(self):
        if self._group is None:
            import zarr

            self._group = zarr.open_group(str(self.path), mode="r+")
        return self._group

    def write_block(self, block: int, data: dict[str, np.ndarray]) -> None:
        """Write one block (all variables), then its completion record.

        Parameters
        ----------
        block
            Block index.
        data
            Variable name -> array of :meth:`StoreLayout.block_shape` (float32).
        """
        expected = self.layout.block_shape(block)
        missing = set(self.layout.variables) - set(data)
        if missing:
            raise DataError(f"block {block} lacks variables {sorted(missing)}")
        self._check_holder()
        group = self._arrays()
        region = self.layout.block_region(block)
        sl = region[0]
        for name in self.layout.variables:
            arr = np.asarray(data[name], dtype=np.float32)
            if arr.shape != expected:
                raise DataError(f"block {block} of {name!r} has shape {arr.shape}, expected {expected}")
            group[name][region] = arr
        fault_point("store.block")
        record = {"block": block, "init_time_start": str(self.layout.init_times[sl.start])}
        if self.layout.member_batch is not None:
            weights, noise = self.layout.block_members(block)
            record["members"] = {"weight": [weights.start, weights.stop], "noise": [noise.start, noise.stop]}
        _atomic_write_text(self.path / PROGRESS_DIR / f"{block}.json", json.dumps(record))

    def finish(self) -> None:
        """Write the record that says every block is in place, swap a staged overwrite in, unlock."""
        done = self.done_blocks()
        todo = set(range(self.layout.n_blocks)) - done
        if todo:
            raise DataError(f"cannot mark {self.target} complete: blocks {sorted(todo)} are not written")
        _atomic_write_text(
            self.path / PROGRESS_DIR / COMPLETE_RECORD,
            json.dumps({"blocks": self.layout.n_blocks, "finished": pd.Timestamp.now("UTC").isoformat()}),
        )
        if self.path != self.target:
            swap_dir(self.path, self.target)
            self.path = self.target
            self._group = None
        self.release()

    def open(self) -> xr.Dataset:
        """Open the store lazily with xarray."""
        return open_forecast(self.path)


def _read_signature(path: Path) -> dict[str, Any]:
    import zarr

    try:
        attrs = dict(zarr.open_group(str(path), mode="r").attrs)
    except Exception as err:  # zarr raises several kinds for a directory that is no store
        raise DataError(
            f"{path} exists but is not a forecast store ({err}); pass another path or remove it"
        ) from err
    if SIGNATURE_ATTR not in attrs:
        raise DataError(f"{path} is a zarr store but not one written by workbench infer; pass another path")
    return json.loads(attrs[SIGNATURE_ATTR])


def open_forecast(path: str | os.PathLike, *, require_complete: bool = False) -> xr.Dataset:
    """Open a forecast store written by :func:`workbench.inference.run_forecast`.

    Parameters
    ----------
    path
        The store.
    require_complete
        Raise if the run that wrote it has not finished (unfinished blocks read as NaN).
    """
    path = Path(path)
    if not path.exists():
        recover_dir(path)  # a swap interrupted between its two renames (file systems without exchange)
    if require_complete and not (path / PROGRESS_DIR / COMPLETE_RECORD).exists():
        raise DataError(f"{path} is not complete; rerun the same `workbench infer` command to resume it")
    ds = xr.open_zarr(path)
    if not (path / PROGRESS_DIR / COMPLETE_RECORD).exists() and "block_size" in ds.attrs:
        # Only finished blocks are shown: a killed writer may have left some chunks of an unfinished one.
        done = {int(p.stem) for p in (path / PROGRESS_DIR).glob("*.json") if p.stem.isdigit()}
        ds = ds.where(_finished_mask(ds, done))
    return ds


def _finished_mask(ds: xr.Dataset, done: set[int]) -> xr.DataArray:
    """True where the forecast ``ds`` of a store lies in a finished block (over init time and members)."""
    mdims = {d: ds.sizes[d] for d in ("member", "weight_member", "noise_member") if d in ds.dims}
    batch = ds.attrs.get("member_batch")
    parts = member_parts(mdims, None if batch is None else int(batch))
    mask = np.zeros((ds.sizes["init_time"], *mdims.values()), dtype=bool)
    size = int(ds.attrs["block_size"])
    for k in done:
        weights, noise = parts[k % len(parts)]
        members = [weights if d == "weight_member" else noise for d in mdims]
        start = (k // len(parts)) * size
        mask[(slice(start, start + size), *members)] = True
    return xr.DataArray(mask, dims=("init_time", *mdims))


def signature_times(values: Sequence) -> list[str]:
    """Times as ISO strings for the run signature."""
    return [str(v) for v in np.asarray(values)]
