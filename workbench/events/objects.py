"""Connected space-time objects in a boolean (time, y, x) field, found block by block.

Cells are connected to their 26 neighbours in (time, y, x): within a time step to the 8 around them, and
to the same 9 cells one step earlier and later, so a storm that moves by a cell per step stays one
object. On a global lat-lon grid objects also connect across the longitude seam.

The field is labelled in blocks of whole time steps (``scipy.ndimage.label`` per block); labels that touch
across block boundaries (or the seam) are merged with a connected-components pass over the label graph.
A second pass relabels each block and keeps the objects that passed the size filter, so memory stays
bounded by one block and, for a dask-backed field, the mask stays lazy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

_STRUCTURE = np.ones((3, 3, 3), dtype=bool)


@dataclass
class LabelledObjects:
    """Objects that passed the size filter.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per object: ``t_first, t_last`` (time indices), ``y_min, y_max, x_min, x_max`` (inclusive
        cell indices), ``n_cells`` (cell-times), ``peak_area`` (most cells at one time), ``peak`` (largest
        score).
    mask : xarray.DataArray
        Bool, same dims and coords as the input; True on kept objects.
    n_removed : int
        Objects removed by the size filter.
    """

    table: pd.DataFrame
    mask: xr.DataArray
    n_removed: int


def _shift_pairs(a: np.ndarray, b: np.ndarray, periodic_x: bool) -> np.ndarray:
    """Label pairs (a[i, j], b[i + di, j + dj]) for |di|, |dj| <= 1 where both are objects."""
    ny, nx = a.shape
    out = []
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            bb = b
            if periodic_x and dj:
                bb = np.roll(b, -dj, axis=1)
                dj_eff = 0
            else:
                dj_eff = dj
            ys_a = slice(max(0, -di), ny - max(0, di))
            ys_b = slice(max(0, di), ny - max(0, -di))
            xs_a = slice(max(0, -dj_eff), nx - max(0, dj_eff))
            xs_b = slice(max(0, dj_eff), nx - max(0, -dj_eff))
            pa, pb = a[ys_a, xs_a], bb[ys_b, xs_b]
            both = (pa > 0) & (pb > 0)
            if both.any():
                out.append(np.column_stack([pa[both], pb[both]]))
    return np.unique(np.concatenate(out), axis=0) if out else np.empty((0, 2), dtype=np.int64)


def _seam_pairs(labels: np.ndarray) -> np.ndarray:
    """Pairs across the longitude seam inside one block (column 0 against the last column)."""
    first, last = labels[:, :, 0], labels[:, :, -1]
    nt, ny = first.shape
    out = []
    for dt in (-1, 0, 1):
        for di in (-1, 0, 1):
            ta, tb = slice(max(0, -dt), nt - max(0, dt)), slice(max(0, dt), nt - max(0, -dt))
            ya, yb = slice(max(0, -di), ny - max(0, di)), slice(max(0, di), ny - max(0, -di))
            pa, pb = first[ta, ya], last[tb, yb]
            both = (pa > 0) & (pb > 0)
            if both.any():
                out.append(np.column_stack([pa[both], pb[both]]))
    return np.concatenate(out) if out else np.empty((0, 2), dtype=np.int64)


def _block_stats(
    labels: np.ndarray, n: int, score: np.ndarray | None, t0: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-label boxes and peaks, and cells per (label, time step), of one labelled block.

    Works on the labelled cells only (sorted by label, reduced per segment), so the cost follows the
    number of extreme cells rather than the block size.
    """
    t, y, x = np.nonzero(labels)
    lab = labels[t, y, x]
    order = np.argsort(lab, kind="stable")
    t, y, x, lab = t[order], y[order], x[order], lab[order]
    starts = np.flatnonzero(np.r_[True, lab[1:] != lab[:-1]]) if lab.size else np.empty(0, np.int64)
    peak = np.full(starts.size, np.nan)
    if score is not None and lab.size:
        peak = np.maximum.reduceat(score[t, y, x].astype(np.float64), starts)
    stats = pd.DataFrame(
        {
            "local": lab[starts] if lab.size else np.empty(0, np.int64),
            "t_first": t0 + np.minimum.reduceat(t, starts) if lab.size else np.empty(0, np.int64),
            "t_last": t0 + np.maximum.reduceat(t, starts) if lab.size else np.empty(0, np.int64),
            "y_min": np.minimum.reduceat(y, starts) if lab.size else np.empty(0, np.int64),
            "y_max": np.maximum.reduceat(y, starts) if lab.size else np.empty(0, np.int64),
            "x_min": np.minimum.reduceat(x, starts) if lab.size else np.empty(0, np.int64),
            "x_max": np.maximum.reduceat(x, starts) if lab.size else np.empty(0, np.int64),
            "peak": peak,
        }
    )
    key = lab.astype(np.int64) * labels.shape[0] + t
    uniq, cells = np.unique(key, return_counts=True)
    per_time = pd.DataFrame(
        {"local": uniq // labels.shape[0], "t": t0 + uniq % labels.shape[0], "cells": cells}
    )
    return stats, per_time


def label_objects(
    exceed: xr.DataArray,
    score: xr.DataArray | None = None,
    *,
    min_cells: int = 2,
    min_duration: int = 1,
    block: int = 24,
    periodic_x: bool = False,
) -> LabelledObjects:
    """Label connected space-time objects and drop those below a size and duration.

    Parameters
    ----------
    exceed : xarray.DataArray
        Bool with dims ``(time, <row dim>, <column dim>)``, numpy- or dask-backed.
    score : xarray.DataArray, optional
        Same shape; each object's largest value is reported as ``peak``.
    min_cells : int
        Keep objects covering at least this many cells at their largest time step.
    min_duration : int
        Keep objects lasting at least this many time steps.
    block : int
        Time steps labelled at once.
    periodic_x : bool
        Connect the first and last columns (global lat-lon grids).
    """
    nt, ny, nx = exceed.shape
    block = max(1, int(block))
    starts = list(range(0, nt, block))

    def block_values(da: xr.DataArray | None, t0: int) -> np.ndarray | None:
        if da is None:
            return None
        return np.asarray(da.isel(time=slice(t0, t0 + block)).values)

    stats, per_time, edges, offsets = [], [], [], []
    offset = 0
    prev_last: np.ndarray | None = None
    for t0 in starts:
        e = block_values(exceed, t0).astype(bool)
        labels, n = ndimage.label(e, structure=_STRUCTURE)
        s = block_values(score, t0)
        st, pt = _block_stats(labels, n, s, t0)
        st["gid"] = st["local"] + offset
        pt["gid"] = pt["local"] + offset
        stats.append(st)
        per_time.append(pt)
        if periodic_x and n:
            edges.append(_seam_pairs(labels) + offset)
        first = np.where(labels[0] > 0, labels[0] + offset, 0)
        if prev_last is not None:
            edges.append(_shift_pairs(prev_last, first, periodic_x))
        prev_last = np.where(labels[-1] > 0, labels[-1] + offset, 0)
        offsets.append(offset)
        offset += n

    stats = pd.concat(stats, ignore_index=True)
    per_time = pd.concat(per_time, ignore_index=True)
    pairs = np.concatenate(edges) if edges else np.empty((0, 2), dtype=np.int64)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(offset + 1, offset + 1))
    _, comp = connected_components(graph, directed=False)
    stats["obj"] = comp[stats.gid.to_numpy()]
    per_time["obj"] = comp[per_time.gid.to_numpy()]

    objs = stats.groupby("obj").agg(
        t_first=("t_first", "min"),
        t_last=("t_last", "max"),
        y_min=("y_min", "min"),
        y_max=("y_max", "max"),
        x_min=("x_min", "min"),
        x_max=("x_max", "max"),
        peak=("peak", "max"),
    )
    area = per_time.groupby(["obj", "t"]).cells.sum()
    objs["n_cells"] = area.groupby(level="obj").sum()
    objs["peak_area"] = area.groupby(level="obj").max()
    duration = objs.t_last - objs.t_first + 1
    keep = (objs.peak_area >= min_cells) & (duration >= min_duration)
    kept = objs[keep].sort_values(["t_first", "y_min", "x_min"]).reset_index()
    n_removed = int((~keep).sum())

    # Map every provisional label to 0 (dropped) or True.
    keep_gid = np.zeros(offset + 1, dtype=bool)
    keep_gid[1:] = np.isin(comp[1:], kept.obj.to_numpy())

    def paint(block_exceed: np.ndarray, b: int) -> np.ndarray:
        labels, _ = ndimage.label(block_exceed.astype(bool), structure=_STRUCTURE)
        return np.where(labels > 0, keep_gid[labels + offsets[b]], False)

    data = exceed.data
    if hasattr(data, "rechunk") and hasattr(data, "map_blocks"):
        rechunked = data.rechunk((block, ny, nx))

        def paint_block(x, block_info=None):
            return paint(x, block_info[0]["chunk-location"][0])

        out = rechunked.map_blocks(paint_block, dtype=bool)
    else:
        out = np.zeros((nt, ny, nx), dtype=bool)
        for b, t0 in enumerate(starts):
            out[t0 : t0 + block] = paint(np.asarray(exceed.isel(time=slice(t0, t0 + block)).values), b)
    mask = xr.DataArray(out, dims=exceed.dims, coords=exceed.coords, name="mask")
    table = kept[["t_first", "t_last", "y_min", "y_max", "x_min", "x_max", "n_cells", "peak_area", "peak"]]
    return LabelledObjects(table=table, mask=mask, n_removed=n_removed)
