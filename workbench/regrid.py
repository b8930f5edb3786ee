"""Regridding between the grids the workbench knows: regular lat-lon grids and Lambert conformal grids.

A global model's forecast lives on a regular latitude-longitude grid (any spacing, latitude ascending or
descending, longitude from 0 or from -180, global or regional); HRRR-grid truth and event masks live on
the HRRR Lambert conformal grid at some spacing (:func:`workbench.grids.hrrr_grid`). This module moves
fields between any two such grids, in either direction.

Methods
-------
``bilinear``
    For smooth fields (temperature, geopotential, winds, pressure). Each target point takes the
    bilinear interpolation of the four source points around it, in the source grid's own coordinates
    (latitude/longitude, or projection metres), where the interpolation is exact for fields linear in
    those coordinates.
``conservative``
    For fields whose area integral matters (precipitation ``tp``) when coarsening. Each source cell is
    split into ``k x k`` sub-cells (``k`` from the ratio of cell sizes, so a sub-cell is at most a
    quarter of a target cell across); a sub-cell's spherical area goes to the target cell holding its
    centre. A target value is the area-weighted mean of what it received, so the area integral over
    the cells both grids share is preserved to rounding. A target cell less than half covered by the
    source grid is NaN (the edge of a regional source).
``maximum``
    For reflectivity and other fields whose peaks matter when coarsening: the largest source value
    whose cell centre falls in the target cell.
``nearest``
    The source cell nearest each target point; what ``conservative`` and ``maximum`` become when the
    target is finer than the source (target cells less than half the source spacing across), since a
    target cell then lies inside one source cell.
``auto``
    ``conservative`` for ``tp``, ``maximum`` for ``refc``, ``bilinear`` for everything else.

Masks (boolean event regions) are regridded as area fractions with :func:`regrid_mask`: the fraction of
each target cell covered by the event (``conservative`` on 0/1, or ``nearest`` when refining), and a
target cell is in the event when that fraction reaches :data:`MASK_THRESHOLD` (0.5: the cell is mostly
inside the event, so the event's area is kept on average, neither grown nor shrunk).

Weights are a sparse matrix (``scipy.sparse``) computed once per pair of grids and method, kept in
memory and, given ``cache_dir``, on disk (written to a temporary name and renamed, so a reader never
sees a partial file); applying them is one sparse matrix product per field.

Why no regridding library: xESMF needs the ESMF library, which only conda provides; xarray-regrid works
on rectilinear grids only, and the HRRR grid is curvilinear in latitude/longitude; pyresample handles
both grids for bilinear and nearest but has no conservative method. Both grids here are regular in their
own coordinates, so exact weights need only the projection formulas of :mod:`workbench.grids`, and the
sparse matrices and their products come from SciPy, a dependency already.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import xarray as xr

from workbench.errors import GridError
from workbench.grids import EARTH_RADIUS_M, LambertConformalGrid

#: A target cell is inside a regridded mask when at least this fraction of its area is in the event.
MASK_THRESHOLD = 0.5

#: Methods accepted by :func:`regrid` (``auto`` picks one per variable).
METHODS = ("auto", "bilinear", "conservative", "maximum", "nearest")

#: The per-variable choice of ``method="auto"``.
AUTO_METHODS = {"tp": "conservative", "refc": "maximum"}

_MIN_COVERAGE = 0.5  # conservative: a target cell less covered than this by the source grid is NaN
_WEIGHTS_VERSION = "1"  # bump when the weights change, so cached files are not reused
_REFERENCE_LAT = 38.5  # where cell sizes are compared (the middle of the HRRR domain)


# ---------------------------------------------------------------------------------------------------
# Grids
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LatLonAxes:
    """A regular latitude-longitude grid in any orientation: first value and signed step per axis.

    Attributes
    ----------
    lat0, dlat : float
        First latitude and step (negative when latitude descends), degrees.
    nlat : int
    lon0, dlon : float
        First longitude and step, degrees.
    nlon : int
    """

    lat0: float
    dlat: float
    nlat: int
    lon0: float
    dlon: float
    nlon: int

    @property
    def is_global(self) -> bool:
        """Whether longitude wraps around the whole circle."""
        return abs(abs(self.dlon) * self.nlon - 360.0) < 1e-6 * 360.0

    @property
    def latitude(self) -> np.ndarray:
        return self.lat0 + self.dlat * np.arange(self.nlat)

    @property
    def longitude(self) -> np.ndarray:
        return self.lon0 + self.dlon * np.arange(self.nlon)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.nlat, self.nlon)

    def key(self) -> str:
        return (
            f"latlon:{self.lat0:.6f}:{self.dlat:.6f}:{self.nlat}:{self.lon0:.6f}:{self.dlon:.6f}:{self.nlon}"
        )


Grid = LatLonAxes | LambertConformalGrid


def _regular(values: np.ndarray, name: str) -> tuple[float, float]:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size < 2:
        raise GridError(f"{name} must be a 1-D coordinate with at least 2 values, got shape {values.shape}.")
    steps = np.diff(values)
    if not np.allclose(steps, steps[0], rtol=1e-4, atol=1e-9) or steps[0] == 0:
        raise GridError(
            f"{name} is not evenly spaced (steps from {steps.min():g} to {steps.max():g}); only regular grids "
            "can be regridded."
        )
    return float(values[0]), float(steps.mean())


def grid_of(obj: xr.DataArray | xr.Dataset) -> Grid:
    """The grid an object lives on: 1-D ``latitude``/``longitude`` dims, or ``y``/``x`` in projection metres.

    Raises
    ------
    GridError
        If the object has neither layout, its coordinates are not evenly spaced, or its 2-D
        latitude/longitude do not match a Lambert grid with HRRR's projection at its ``y``/``x``.
    """
    dims = set(obj.dims)
    if {"latitude", "longitude"} <= dims:
        lat0, dlat = _regular(obj["latitude"].values, "latitude")
        lon0, dlon = _regular(obj["longitude"].values, "longitude")
        return LatLonAxes(lat0, dlat, obj.sizes["latitude"], lon0, dlon, obj.sizes["longitude"])
    if {"y", "x"} <= dims and "y" in obj.coords and "x" in obj.coords:
        x0, dx = _regular(obj["x"].values, "x")
        y0, dy = _regular(obj["y"].values, "y")
        if dx <= 0 or dy <= 0 or abs(dx - dy) > 1e-3 * dx:
            raise GridError(
                f"A Lambert grid needs ascending y and x with one spacing; got dx={dx:g} m, dy={dy:g} m."
            )
        grid = LambertConformalGrid(nx=obj.sizes["x"], ny=obj.sizes["y"], dx=dx, x0=x0, y0=y0)
        if "latitude" in obj.coords and obj["latitude"].ndim == 2:
            lat = obj["latitude"].transpose("y", "x")
            for iy, ix in ((0, 0), (-1, -1)):
                # Two corners are enough, and cheap: the whole 2-D latitude of a 3-km grid is not.
                have = float(lat[iy, ix])
                want = float(grid.unproject(grid.x[ix], grid.y[iy])[0])
                if abs(have - want) > 0.01:
                    raise GridError(
                        f"The object's y/x and latitude do not match the HRRR Lambert projection (latitude "
                        f"{have:.3f} where the projection gives {want:.3f}); only that projection is known."
                    )
        return grid
    raise GridError(
        "Cannot tell the grid: expected dims (latitude, longitude) with 1-D coordinates, or (y, x) with 1-D "
        f"projection coordinates in metres; got dims {tuple(obj.dims)}."
    )


def _spatial_dims(grid: Grid) -> tuple[str, str]:
    return ("latitude", "longitude") if isinstance(grid, LatLonAxes) else ("y", "x")


def _grid_key(grid: Grid) -> str:
    if isinstance(grid, LatLonAxes):
        return grid.key()
    g = grid
    return (
        f"lambert:{g.nx}:{g.ny}:{g.dx:.3f}:{g.x0:.3f}:{g.y0:.3f}:{g.standard_parallel}:{g.central_meridian}"
    )


def _fractional_index(grid: Grid, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fractional (row, column) of points on ``grid``; longitude is taken modulo 360 on lat-lon grids."""
    if isinstance(grid, LatLonAxes):
        fi = (lat - grid.lat0) / grid.dlat
        offset = (lon - grid.lon0) if grid.dlon > 0 else (grid.lon0 - lon)
        fj = np.mod(offset, 360.0) / abs(grid.dlon)
        return fi, fj
    x, y = grid.project(lat, lon)
    return (y - grid.y0) / grid.dx, (x - grid.x0) / grid.dx


def _points(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude of every grid point, flattened in (row, column) order."""
    if isinstance(grid, LatLonAxes):
        lat, lon = np.meshgrid(grid.latitude, grid.longitude, indexing="ij")
        return lat.ravel(), lon.ravel()
    return grid.latitude.ravel(), grid.longitude.ravel()


def _cell_size_m(grid: Grid) -> float:
    """Typical cell width (m) at the reference latitude, to tell coarsening from refining."""
    if isinstance(grid, LatLonAxes):
        rad = np.deg2rad
        return float(
            EARTH_RADIUS_M * np.sqrt(rad(abs(grid.dlat)) * rad(abs(grid.dlon)) * np.cos(rad(_REFERENCE_LAT)))
        )
    return float(grid.dx / grid.map_factor(np.array(_REFERENCE_LAT)))


def _cell_areas(grid: Grid) -> np.ndarray:
    """Spherical area (m2) of every cell, flattened; lat-lon cells are clipped at the poles."""
    if isinstance(grid, LatLonAxes):
        half = abs(grid.dlat) / 2
        lat = grid.latitude
        top = np.deg2rad(np.clip(lat + half, -90, 90))
        bottom = np.deg2rad(np.clip(lat - half, -90, 90))
        band = EARTH_RADIUS_M**2 * np.deg2rad(abs(grid.dlon)) * np.abs(np.sin(top) - np.sin(bottom))
        return np.repeat(band, grid.nlon)
    return grid.cell_area().ravel()


# ---------------------------------------------------------------------------------------------------
# Weights
# ---------------------------------------------------------------------------------------------------


@dataclass
class Weights:
    """Sparse weights from one grid to another.

    Attributes
    ----------
    matrix : scipy.sparse.csr_matrix
        ``(n_target, n_source)``; a field ``f`` (flattened in row-major order) maps to ``matrix @ f``.
    valid : numpy.ndarray
        ``(n_target,)`` bool; False where the target lies outside the source grid (the result is NaN).
    method : str
        The method the weights implement (``nearest`` where ``conservative``/``maximum`` refine).
    target_area : numpy.ndarray or None
        ``conservative`` only: the source area (m2) each target cell received.
    source_area : numpy.ndarray or None
        ``conservative`` only: the area (m2) of every source cell, as the sub-cells sum it.
    """

    matrix: sp.csr_matrix
    valid: np.ndarray
    method: str
    target_area: np.ndarray | None = None
    source_area: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.nan_outside = np.where(self.valid, 1.0, np.nan)  # 1 inside the source grid, NaN outside


def _bilinear(source: Grid, target: Grid) -> Weights:
    lat, lon = _points(target)
    with np.errstate(all="ignore"):
        fi, fj = _fractional_index(source, lat, lon)
    fi, fj = np.where(np.isfinite(fi), fi, -1.0), np.where(np.isfinite(fj), fj, -1.0)
    ny, nx = source.shape
    wrap = isinstance(source, LatLonAxes) and source.is_global
    valid = (fi >= -1e-9) & (fi <= ny - 1 + 1e-9)
    valid &= np.isfinite(fj) & (wrap | ((fj >= -1e-9) & (fj <= nx - 1 + 1e-9)))
    fi, fj = np.clip(fi, 0, ny - 1), fj if wrap else np.clip(fj, 0, nx - 1)
    i0 = np.minimum(np.floor(fi).astype(np.int64), ny - 2)
    ti = fi - i0
    j0 = np.floor(fj).astype(np.int64)
    if not wrap:
        j0 = np.minimum(j0, nx - 2)
    tj = fj - j0
    j1 = (j0 + 1) % nx if wrap else j0 + 1
    j0 = j0 % nx if wrap else j0
    rows = np.flatnonzero(valid)
    cols, data = [], []
    for ii, jj, w in (
        (i0, j0, (1 - ti) * (1 - tj)),
        (i0, j1, (1 - ti) * tj),
        (i0 + 1, j0, ti * (1 - tj)),
        (i0 + 1, j1, ti * tj),
    ):
        cols.append((ii * nx + jj)[rows])
        data.append(w[rows])
    matrix = sp.csr_matrix(
        (np.concatenate(data), (np.tile(rows, 4), np.concatenate(cols))), shape=(lat.size, ny * nx)
    )
    matrix.eliminate_zeros()  # a zero weight must not carry a NaN neighbour into the result
    return Weights(matrix, valid, "bilinear")


def _target_index(target: Grid, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Flat index of the target cell holding each point, -1 outside."""
    with np.errstate(all="ignore"):  # the far side of the globe projects to inf/NaN on a Lambert grid
        fi, fj = _fractional_index(target, lat, lon)
    ny, nx = target.shape
    bad = ~(np.isfinite(fi) & np.isfinite(fj))
    fi, fj = np.where(bad, -1.0, fi), np.where(bad, -1.0, fj)
    # Points exactly on a cell edge (nested grids sharing an origin) go to the upper cell; the small
    # offset keeps rounding noise of the projection round trip from splitting such an edge at random.
    i = np.floor(fi + 0.5 + 1e-6).astype(np.int64)
    j = np.floor(fj + 0.5 + 1e-6).astype(np.int64)
    if isinstance(target, LatLonAxes) and target.is_global:
        j %= nx
    inside = (i >= 0) & (i < ny) & (j >= 0) & (j < nx) & ~bad
    return np.where(inside, i * nx + j, -1)


def _nearest(source: Grid, target: Grid) -> Weights:
    lat, lon = _points(target)
    index = _target_index(source, lat, lon)  # the source cell holding each target point
    valid = index >= 0
    rows = np.flatnonzero(valid)
    matrix = sp.csr_matrix(
        (np.ones(rows.size), (rows, index[valid])), shape=(lat.size, int(np.prod(source.shape)))
    )
    return Weights(matrix, valid, "nearest")


def _subcells(source: Grid, k: int, rows: slice) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Centres (lat, lon), areas and source cell index of the k x k sub-cells of source rows ``rows``."""
    offsets = (np.arange(k) + 0.5) / k - 0.5
    ny, nx = source.shape
    r = np.arange(ny)[rows]
    if isinstance(source, LatLonAxes):
        lat_c = source.lat0 + source.dlat * (r[:, None] + offsets[None, :])  # (rows, k)
        lon_c = source.lon0 + source.dlon * (np.arange(nx)[:, None] + offsets[None, :])  # (nx, k)
        half = abs(source.dlat) / (2 * k)
        top = np.deg2rad(np.clip(lat_c + half, -90, 90))
        bottom = np.deg2rad(np.clip(lat_c - half, -90, 90))
        band = EARTH_RADIUS_M**2 * np.deg2rad(abs(source.dlon) / k) * np.abs(np.sin(top) - np.sin(bottom))
        shape = (r.size, k, nx, k)
        lat = np.broadcast_to(lat_c[:, :, None, None], shape)
        lon = np.broadcast_to(lon_c[None, None, :, :], shape)
        area = np.broadcast_to(band[:, :, None, None], shape)
    else:
        y = source.y0 + source.dx * (r[:, None] + offsets[None, :])
        x = source.x0 + source.dx * (np.arange(nx)[:, None] + offsets[None, :])
        shape = (r.size, k, nx, k)
        yy = np.broadcast_to(y[:, :, None, None], shape)
        xx = np.broadcast_to(x[None, None, :, :], shape)
        lat, lon = source.unproject(xx, yy)
        area = (source.dx / k) ** 2 / source.map_factor(lat) ** 2
    cell = np.broadcast_to((r[:, None] * nx + np.arange(nx)[None, :])[:, None, :, None], shape)
    return lat.ravel(), lon.ravel(), np.ascontiguousarray(area).ravel(), cell.ravel()


def _aggregate(source: Grid, target: Grid, k: int, method: str) -> Weights:
    """Conservative (area-weighted mean) or maximum: source sub-cells assigned to target cells."""
    ny, _nx = source.shape
    n_source, n_target = int(np.prod(source.shape)), int(np.prod(target.shape))
    block = max(1, int(2_000_000 // (k * k * source.shape[1])))  # bound memory on large grids
    rows_all, cols_all, data_all = [], [], []
    source_area = np.zeros(n_source)
    for start in range(0, ny, block):
        lat, lon, area, cell = _subcells(source, k, slice(start, min(ny, start + block)))
        np.add.at(source_area, cell, area)
        tgt = _target_index(target, lat, lon)
        keep = tgt >= 0
        rows_all.append(tgt[keep])
        cols_all.append(cell[keep])
        data_all.append(area[keep])
    rows, cols, data = np.concatenate(rows_all), np.concatenate(cols_all), np.concatenate(data_all)
    summed = sp.csr_matrix((data, (rows, cols)), shape=(n_target, n_source))  # duplicates add up
    target_area = np.asarray(summed.sum(axis=1)).ravel()
    valid = target_area >= _MIN_COVERAGE * _cell_areas(target)
    if method == "maximum":
        summed.data[:] = 1.0  # membership only; the maximum is taken in apply()
        return Weights(summed, valid, "maximum")
    scale = np.where(target_area > 0, 1.0 / np.where(target_area > 0, target_area, 1.0), 0.0)
    matrix = sp.diags(scale) @ summed
    return Weights(sp.csr_matrix(matrix), valid, "conservative", target_area, source_area)


def _subsamples(source: Grid, target: Grid) -> int:
    """Sub-cells per source cell side: a sub-cell at most a quarter of a target cell across."""
    return int(np.clip(np.ceil(4 * _cell_size_m(source) / _cell_size_m(target)), 1, 8))


def _refines(source: Grid, target: Grid) -> bool:
    return _cell_size_m(target) < 0.5 * _cell_size_m(source)


_MEMORY: OrderedDict[str, Weights] = OrderedDict()  # the most recently used weights, newest last
_MEMORY_SIZE = 8  # a 0.25-degree to 3-km pair is about 120 MB of weights: keep a few, not all


def weights(source: Grid, target: Grid, method: str, cache_dir: str | os.PathLike | None = None) -> Weights:
    """The weights from ``source`` to ``target`` for ``method``, computed once and cached.

    Parameters
    ----------
    source, target : LatLonAxes or LambertConformalGrid
        Grids, e.g. from :func:`grid_of`.
    method : {"bilinear", "conservative", "maximum", "nearest"}
    cache_dir : path, optional
        Directory for the weights files (``<key>.npz``); without it, weights are kept in memory only.

    Raises
    ------
    GridError
        For an unknown method.
    """
    if method not in METHODS or method == "auto":
        raise GridError(f"Unknown regridding method {method!r}; choose one of {list(METHODS[1:])}.")
    if method in ("conservative", "maximum") and _refines(source, target):
        method = "nearest"  # each target cell lies inside one source cell
    k = _subsamples(source, target) if method == "conservative" else 1
    text = f"{_WEIGHTS_VERSION}|{_grid_key(source)}|{_grid_key(target)}|{method}|{k}"
    key = hashlib.sha256(text.encode()).hexdigest()[:24]
    if key in _MEMORY:
        _MEMORY.move_to_end(key)
        return _MEMORY[key]
    path = Path(cache_dir) / f"{method}-{key}.npz" if cache_dir is not None else None
    w = _load(path) if path is not None and path.exists() else None
    if w is None:
        if method == "bilinear":
            w = _bilinear(source, target)
        elif method == "nearest":
            w = _nearest(source, target)
        else:
            w = _aggregate(source, target, k, method)
        if path is not None:
            _save(w, path)
    _MEMORY[key] = w
    while len(_MEMORY) > _MEMORY_SIZE:
        _MEMORY.popitem(last=False)
    return w


def _save(w: Weights, path: Path) -> None:
    """Write to a temporary file beside ``path`` and rename: readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    m = w.matrix.tocsr()
    arrays = {"data": m.data, "indices": m.indices, "indptr": m.indptr, "shape": np.array(m.shape)}
    arrays["valid"] = w.valid
    arrays["method"] = np.array(w.method)
    if w.target_area is not None:
        arrays["target_area"], arrays["source_area"] = w.target_area, w.source_area
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _load(path: Path) -> Weights | None:
    try:
        with np.load(path) as f:
            matrix = sp.csr_matrix((f["data"], f["indices"], f["indptr"]), shape=tuple(f["shape"]))
            area = (f["target_area"], f["source_area"]) if "target_area" in f else (None, None)
            return Weights(matrix, f["valid"].astype(bool), str(f["method"]), *area)
    except (OSError, ValueError, KeyError):
        return None  # unreadable: recompute (and rewrite) rather than fail


def apply(w: Weights, values: np.ndarray) -> np.ndarray:
    """Regrid an array whose last two axes are the source grid; returns ``(..., n_target)`` flattened."""
    lead = values.shape[:-2]
    flat = values.reshape(-1, values.shape[-2] * values.shape[-1]).astype(np.float64, copy=False)
    if w.method == "maximum":
        out = _maximum(w.matrix, flat)
    elif flat.shape[0] == 1:
        out = (w.matrix @ flat[0])[None, :]  # one field: SciPy's matrix-vector kernel, the fastest path
    else:
        out = np.asarray(w.matrix @ flat.T).T
    out *= w.nan_outside  # one multiply: cheaper than boolean indexing on a mostly-outside target
    return out.reshape(*lead, -1)


def _maximum(member: sp.csr_matrix, flat: np.ndarray) -> np.ndarray:
    counts = np.diff(member.indptr)
    out = np.full((flat.shape[0], member.shape[0]), np.nan)
    filled = counts > 0
    starts = member.indptr[:-1][filled]
    gathered = flat[:, member.indices]  # (n, nnz) in row order
    out[:, filled] = np.maximum.reduceat(gathered, starts, axis=1)
    return out


# ---------------------------------------------------------------------------------------------------
# xarray
# ---------------------------------------------------------------------------------------------------


def _target_coords(like: xr.DataArray | xr.Dataset | None, target: Grid) -> dict:
    dims = _spatial_dims(target)
    if like is not None:
        names = [c for c in like.coords if set(like[c].dims) <= set(dims) and like[c].dims]
        return {c: like[c].variable for c in names}
    if isinstance(target, LatLonAxes):
        return {"latitude": ("latitude", target.latitude), "longitude": ("longitude", target.longitude)}
    return target.coords()


def regrid(
    obj: xr.DataArray | xr.Dataset,
    like: xr.DataArray | xr.Dataset | Grid,
    method: str = "auto",
    *,
    cache_dir: str | os.PathLike | None = None,
) -> xr.DataArray | xr.Dataset:
    """Regrid ``obj`` onto the grid of ``like`` (an object on that grid, or a grid).

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        Fields on a regular lat-lon or a Lambert grid, with any other dims (init_time, lead_time,
        member...); lazy (dask) inputs stay lazy.
    like : xarray object, LatLonAxes or LambertConformalGrid
        The target grid; the result takes its spatial coordinates.
    method : {"auto", "bilinear", "conservative", "maximum", "nearest"}
        ``auto`` picks per variable (:data:`AUTO_METHODS`, otherwise bilinear).
    cache_dir : path, optional
        Where to keep the weights between sessions.

    Returns
    -------
    Same type as ``obj``, with the target's spatial dims and coordinates; attributes kept, and
    ``attrs["regrid_method"]`` on each regridded variable.

    Raises
    ------
    GridError
        For an unknown method, or objects on a grid that cannot be told.
    """
    if method not in METHODS:
        raise GridError(f"Unknown regridding method {method!r}; choose one of {list(METHODS)}.")
    source = grid_of(obj)
    if isinstance(like, (LatLonAxes, LambertConformalGrid)):
        target, like_obj = like, None
    else:
        target, like_obj = grid_of(like), like
    src_dims, tgt_dims = _spatial_dims(source), _spatial_dims(target)
    coords = _target_coords(like_obj, target)

    def one(da: xr.DataArray) -> xr.DataArray:
        if not set(src_dims) <= set(da.dims):
            return da
        chosen = AUTO_METHODS.get(str(da.name), "bilinear") if method == "auto" else method
        w = weights(source, target, chosen, cache_dir)
        ny, nx = target.shape
        out_names = ("_regrid_y", "_regrid_x") if set(tgt_dims) & (set(da.dims) - set(src_dims)) else tgt_dims

        def fn(values: np.ndarray) -> np.ndarray:
            return (
                apply(w, values)
                .reshape(*values.shape[:-2], ny, nx)
                .astype(np.result_type(values.dtype, np.float32), copy=False)
            )

        out = xr.apply_ufunc(
            fn,
            da.drop_vars([c for c in da.coords if set(da[c].dims) & set(src_dims)]),
            input_core_dims=[list(src_dims)],
            output_core_dims=[list(out_names)],
            exclude_dims=set(src_dims),
            dask="parallelized",
            output_dtypes=[np.result_type(da.dtype, np.float32)],
            dask_gufunc_kwargs={
                "output_sizes": dict(zip(out_names, (ny, nx), strict=True)),
                "allow_rechunk": True,
            },
            keep_attrs=True,
        )
        out = out.rename(dict(zip(out_names, tgt_dims, strict=True))) if out_names != tgt_dims else out
        order = [d for d in da.dims if d not in src_dims] + list(tgt_dims)
        out = out.transpose(*order).assign_coords(coords)
        out.attrs["regrid_method"] = w.method
        return out

    if isinstance(obj, xr.DataArray):
        return one(obj)
    result = xr.Dataset({name: one(da) for name, da in obj.data_vars.items()}, attrs=obj.attrs)
    return result


def regrid_mask(
    mask: xr.DataArray,
    like: xr.DataArray | xr.Dataset | Grid,
    *,
    threshold: float = MASK_THRESHOLD,
    cache_dir: str | os.PathLike | None = None,
) -> tuple[xr.DataArray, xr.DataArray]:
    """Regrid a boolean mask as area fractions, and threshold them.

    Parameters
    ----------
    mask : xarray.DataArray
        Boolean (True inside an event) on a lat-lon or Lambert grid.
    like : xarray object or grid
        The target grid.
    threshold : float
        A target cell is in the mask when at least this fraction of its area is (default
        :data:`MASK_THRESHOLD`, 0.5).

    Returns
    -------
    (mask, fraction) : tuple of xarray.DataArray
        The boolean mask on the target grid (False outside the source grid) and the covered fraction
        (NaN outside the source grid).

    Raises
    ------
    GridError
        If the threshold is not in (0, 1].
    """
    if not 0 < threshold <= 1:
        raise GridError(f"threshold must be in (0, 1], got {threshold}.")
    fraction = regrid(mask.astype(np.float32), like, "conservative", cache_dir=cache_dir)
    fraction = fraction.rename("area_fraction")
    fraction.attrs = {"units": "1", "long_name": "fraction of the cell's area inside the mask"}
    out = (fraction >= threshold - 1e-6).fillna(False).astype(bool).rename(mask.name)
    out.attrs = {**mask.attrs, "regrid_threshold": threshold}
    return out, fraction
