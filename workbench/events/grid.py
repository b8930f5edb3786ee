"""Where reports fall on a model grid: nearest cells, in-domain tests and local grid spacing.

One code path serves every grid: cell centres are placed on the unit sphere and searched with a
KD-tree, so the nearest cell is the nearest in great-circle distance on a Lambert conformal HRRR-like
grid (dims ``y, x`` with 2-D ``latitude``/``longitude``), on a regional or global lat-lon grid (dims
``latitude, longitude``) and across the longitude seam of a global grid alike.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import xarray as xr
from scipy.spatial import cKDTree

from workbench.errors import GridError

EARTH_RADIUS_KM = 6371.0

# A report counts as inside the grid when it lies within half a cell (plus this slack, in cell units)
# beyond the outermost cell centres.
_EDGE_SLACK = 1e-6


def unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Cartesian unit vectors (..., 3) of points given in degrees."""
    phi = np.deg2rad(np.asarray(lat, dtype=float))
    lam = np.deg2rad(np.asarray(lon, dtype=float))
    cos_phi = np.cos(phi)
    return np.stack([cos_phi * np.cos(lam), cos_phi * np.sin(lam), np.sin(phi)], axis=-1)


def great_circle_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distance in km between points given in degrees (broadcasting)."""
    chord = np.linalg.norm(unit_vectors(lat1, lon1) - unit_vectors(lat2, lon2), axis=-1)
    return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0))


@dataclass
class GridInfo:
    """The horizontal grid of an xarray object.

    Attributes
    ----------
    y_dim, x_dim : str
        Names of the row and column dimensions (``y, x`` or ``latitude, longitude``).
    latitude, longitude : numpy.ndarray
        2-D (ny, nx) cell-centre coordinates in degrees (lat-lon grids are broadcast).
    coords : dict
        The grid's coordinates, ready for ``xr.DataArray(coords=...)``.
    periodic_x : bool
        True for a lat-lon grid that wraps all the way round in longitude.
    """

    y_dim: str
    x_dim: str
    latitude: np.ndarray
    longitude: np.ndarray
    coords: dict = field(repr=False)
    periodic_x: bool = False

    @property
    def shape(self) -> tuple[int, int]:
        return self.latitude.shape  # type: ignore[return-value]

    @property
    def is_latlon(self) -> bool:
        return self.y_dim == "latitude"


def grid_info(grid_like) -> GridInfo:
    """Describe the horizontal grid of ``grid_like``.

    Parameters
    ----------
    grid_like : xarray.Dataset, xarray.DataArray or a ``workbench.grids`` grid
        Either dims ``(…, y, x)`` with 2-D ``latitude``/``longitude`` coordinates (projected grids such
        as the HRRR Lambert grid), or dims ``(…, latitude, longitude)`` with 1-D coordinates. A grid
        object with a ``coords()`` method (``workbench.grids``) is accepted too.

    Raises
    ------
    GridError
        When neither layout is found.
    """
    if not isinstance(grid_like, xr.Dataset | xr.DataArray) and callable(getattr(grid_like, "coords", None)):
        grid_like = xr.Dataset(coords=grid_like.coords())
    if not isinstance(grid_like, xr.Dataset | xr.DataArray):
        raise GridError(
            f"expected an xarray Dataset/DataArray or a workbench.grids grid, got {type(grid_like).__name__}"
        )
    dims = set(grid_like.dims)
    if {"y", "x"} <= dims:
        if "latitude" not in grid_like.coords or "longitude" not in grid_like.coords:
            raise GridError(
                "a (y, x) grid needs 2-D 'latitude' and 'longitude' coordinates to place reports on it; "
                "assign them with .assign_coords(latitude=(('y', 'x'), lat), longitude=(('y', 'x'), lon))"
            )
        lat = grid_like["latitude"].transpose("y", "x").values.astype(float)
        lon = grid_like["longitude"].transpose("y", "x").values.astype(float)
        coords = {name: grid_like.coords[name].variable for name in ("y", "x") if name in grid_like.coords}
        # keep the caller's coordinate variables (dtype, attrs) so masks align exactly with its data
        coords["latitude"] = grid_like["latitude"].transpose("y", "x").variable.compute()
        coords["longitude"] = grid_like["longitude"].transpose("y", "x").variable.compute()
        return GridInfo("y", "x", lat, lon, coords, periodic_x=False)
    if {"latitude", "longitude"} <= dims:
        lat1 = np.asarray(grid_like["latitude"].values, dtype=float)
        lon1 = np.asarray(grid_like["longitude"].values, dtype=float)
        if lat1.ndim != 1 or lon1.ndim != 1:
            raise GridError("a lat-lon grid needs 1-D 'latitude' and 'longitude' coordinates")
        lon2, lat2 = np.meshgrid(lon1, lat1)
        periodic = False
        if lon1.size > 2:
            step = np.median(np.abs(np.diff(lon1)))
            periodic = bool(abs(step * lon1.size - 360.0) < 0.5 * step)
        coords = {"latitude": ("latitude", lat1), "longitude": ("longitude", lon1)}
        return GridInfo("latitude", "longitude", lat2, lon2, coords, periodic_x=periodic)
    raise GridError(
        f"cannot find a horizontal grid in dims {tuple(grid_like.dims)}: expected (y, x) with 2-D "
        "latitude/longitude coordinates, or (latitude, longitude)"
    )


def _neighbour_distance_km(lat: np.ndarray, lon: np.ndarray, axis: int) -> np.ndarray:
    """Distance from each cell to its neighbour along ``axis`` (the last row/column repeats)."""
    n = lat.shape[axis]
    if n < 2:
        return np.full(lat.shape, np.nan)
    a = [slice(None), slice(None)]
    b = [slice(None), slice(None)]
    a[axis] = slice(0, n - 1)
    b[axis] = slice(1, n)
    d = great_circle_km(lat[tuple(a)], lon[tuple(a)], lat[tuple(b)], lon[tuple(b)])
    last = [slice(None), slice(None)]
    last[axis] = slice(n - 2, n - 1)
    return np.concatenate([d, d[tuple(last)]], axis=axis)


class GridLocator:
    """Nearest-cell lookup and local spacing for one grid.

    Build it once per grid and reuse it; the KD-tree over a 3-km HRRR grid (1.9 million cells) takes
    about a second.

    Parameters
    ----------
    grid_like : xarray.Dataset, xarray.DataArray or a ``workbench.grids`` grid
        See :func:`grid_info`.
    """

    _cache: OrderedDict = OrderedDict()
    _CACHE_SIZE = 4

    @classmethod
    def for_grid(cls, grid_like) -> GridLocator:
        """A locator for ``grid_like``, reused when the same grid (same coordinates) was seen recently."""
        if isinstance(grid_like, GridLocator):
            return grid_like
        info = grid_info(grid_like)
        digest = hashlib.blake2b(digest_size=16)
        digest.update(np.ascontiguousarray(info.latitude).tobytes())
        digest.update(np.ascontiguousarray(info.longitude).tobytes())
        key = (info.shape, digest.hexdigest())
        if key in cls._cache:
            cls._cache.move_to_end(key)
            return cls._cache[key]
        loc = cls(info)
        cls._cache[key] = loc
        while len(cls._cache) > cls._CACHE_SIZE:
            cls._cache.popitem(last=False)
        return loc

    def __init__(self, grid_like) -> None:
        self.info = grid_like if isinstance(grid_like, GridInfo) else grid_info(grid_like)
        ny, nx = self.info.shape
        if ny < 1 or nx < 1:
            raise GridError(f"the grid is empty (shape {ny} x {nx})")
        lat, lon = self.info.latitude, self.info.longitude
        if not (np.isfinite(lat).all() and np.isfinite(lon).all()):
            raise GridError("the grid's latitude/longitude coordinates contain NaNs")
        self._xyz = unit_vectors(lat, lon)
        self._tree = cKDTree(self._xyz.reshape(-1, 3))
        self._dy_km = _neighbour_distance_km(lat, lon, axis=0)
        self._dx_km = _neighbour_distance_km(lat, lon, axis=1)

    @property
    def shape(self) -> tuple[int, int]:
        return self.info.shape

    def locate(self, lat, lon) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Nearest cells of points, and whether each point lies on the grid.

        Parameters
        ----------
        lat, lon : array_like
            Degrees; longitude in any convention (-180..180 or 0..360).

        Returns
        -------
        iy, ix : numpy.ndarray of int
            Row and column of the nearest cell (-1 where a coordinate is NaN).
        inside : numpy.ndarray of bool
            False where the point lies more than half a cell beyond the outermost cell centres (or has
            a NaN coordinate).
        """
        lat = np.atleast_1d(np.asarray(lat, dtype=float))
        lon = np.atleast_1d(np.asarray(lon, dtype=float))
        n = lat.size
        iy = np.full(n, -1, dtype=np.int64)
        ix = np.full(n, -1, dtype=np.int64)
        inside = np.zeros(n, dtype=bool)
        ok = np.isfinite(lat) & np.isfinite(lon)
        if not ok.any():
            return iy, ix, inside
        p = unit_vectors(lat[ok], lon[ok])
        _, flat = self._tree.query(p)
        ny, nx = self.shape
        jy, jx = np.unravel_index(flat, (ny, nx))
        offset = p - self._xyz[jy, jx]
        out = np.zeros(jy.size, dtype=bool)
        # Only edge cells can have points beyond them; measure the offset along the local grid axis in
        # cell units (the step to the inward neighbour), which works on any smooth grid.
        if ny > 1:
            out |= self._beyond_edge(offset, jy, jx, axis=0)
        if nx > 1 and not self.info.periodic_x:
            out |= self._beyond_edge(offset, jy, jx, axis=1)
        iy[ok], ix[ok] = jy, jx
        inside[ok] = ~out
        return iy, ix, inside

    def _beyond_edge(self, offset: np.ndarray, jy: np.ndarray, jx: np.ndarray, axis: int) -> np.ndarray:
        n = self.shape[axis]
        j = jy if axis == 0 else jx
        out = np.zeros(j.size, dtype=bool)
        for edge, inward in ((0, 1), (n - 1, n - 2)):
            sel = np.flatnonzero(j == edge)
            if sel.size == 0:
                continue
            if axis == 0:
                step = self._xyz[jy[sel], jx[sel]] - self._xyz[np.full(sel.size, inward), jx[sel]]
            else:
                step = self._xyz[jy[sel], jx[sel]] - self._xyz[jy[sel], np.full(sel.size, inward)]
            norm2 = np.einsum("ij,ij->i", step, step)
            along = np.einsum("ij,ij->i", offset[sel], step) / np.where(norm2 > 0, norm2, np.inf)
            out[sel] = along > 0.5 + _EDGE_SLACK  # `step` points outward, away from the grid
        return out

    def spacing_km(self, iy: int, ix: int) -> tuple[float, float]:
        """Local grid spacing (dy, dx) in km at cell (iy, ix)."""
        return float(self._dy_km[iy, ix]), float(self._dx_km[iy, ix])

    def pad_cells(self, pad_km: float, iy: int, ix: int) -> tuple[int, int]:
        """A distance in km expressed in whole cells (rounded half up) along y and x at cell (iy, ix).

        On the 3-km HRRR grid 60 km gives the 20 cells of HR-Extreme; on coarser grids fewer cells.
        """
        pad_y, pad_x = self.pad_cells_at(pad_km, np.array([iy]), np.array([ix]))
        return int(pad_y[0]), int(pad_x[0])

    def pad_cells_at(self, pad_km: float, iy: np.ndarray, ix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`pad_cells` for arrays of cells."""
        iy, ix = np.asarray(iy, dtype=np.int64), np.asarray(ix, dtype=np.int64)
        if pad_km <= 0:
            return np.zeros(iy.shape, np.int64), np.zeros(iy.shape, np.int64)
        out = []
        for spacing in (self._dy_km[iy, ix], self._dx_km[iy, ix]):
            ok = np.isfinite(spacing) & (spacing > 0)
            cells = np.floor(pad_km / np.where(ok, spacing, 1.0) + 0.5)
            out.append(np.where(ok, cells, 0).astype(np.int64))
        return out[0], out[1]

    def box_extent(self, y_min: int, y_max: int, x_min: int, x_max: int) -> tuple[float, float, float, float]:
        """(lat_min, lat_max, lon_min, lon_max) of the cell centres in an inclusive index box."""
        return box_extent(self.info, y_min, y_max, x_min, x_max)


def box_extent(
    info: GridInfo, y_min: int, y_max: int, x_min: int, x_max: int
) -> tuple[float, float, float, float]:
    """(lat_min, lat_max, lon_min, lon_max) of the cell centres in an inclusive index box of ``info``.

    Latitude and longitude have no interior extrema on these grids, so the box's perimeter suffices.
    """
    lat, lon = info.latitude, info.longitude
    y_min, y_max, x_min, x_max = int(y_min), int(y_max), int(x_min), int(x_max)
    edges = (
        (y_min, slice(x_min, x_max + 1)),
        (y_max, slice(x_min, x_max + 1)),
        (slice(y_min, y_max + 1), x_min),
        (slice(y_min, y_max + 1), x_max),
    )
    lat_min = min(lat[e].min() for e in edges)
    lat_max = max(lat[e].max() for e in edges)
    lon_min = min(lon[e].min() for e in edges)
    lon_max = max(lon[e].max() for e in edges)
    return float(lat_min), float(lat_max), float(lon_min), float(lon_max)


def _concat_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + n) for s, n in zip(starts, lengths)])`` without the loop."""
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(starts, lengths) + offsets


def box_columns(info: GridInfo, y_min, y_max, x_min, x_max) -> dict:
    """The box columns of a case table, in its order: the index bounds as given, then their
    :func:`box_extents` as ``lat_min``, ``lat_max``, ``lon_min``, ``lon_max``."""
    extent = box_extents(info, y_min, y_max, x_min, x_max)
    return {
        "y_min": y_min,
        "y_max": y_max,
        "x_min": x_min,
        "x_max": x_max,
        "lat_min": extent[:, 0],
        "lat_max": extent[:, 1],
        "lon_min": extent[:, 2],
        "lon_max": extent[:, 3],
    }


def box_extents(info: GridInfo, y_min, y_max, x_min, x_max) -> np.ndarray:
    """:func:`box_extent` of many boxes at once: an (n, 4) array of lat_min, lat_max, lon_min, lon_max."""
    y0, y1 = np.asarray(y_min, np.int64), np.asarray(y_max, np.int64)
    x0, x1 = np.asarray(x_min, np.int64), np.asarray(x_max, np.int64)
    out = np.empty((y0.size, 4))
    if y0.size == 0:
        return out
    lat, lon = info.latitude, info.longitude
    perimeter = 2 * (y1 - y0 + 1) + 2 * (x1 - x0 + 1)
    # a few million perimeter cells at a time keep the index arrays small
    bounds = np.searchsorted(
        np.cumsum(perimeter), np.arange(0, perimeter.sum() + 1, 4_000_000)[1:], side="right"
    )
    for a, b in zip(np.r_[0, bounds], np.r_[bounds, y0.size], strict=True):
        if b <= a:
            continue
        w, h = x1[a:b] - x0[a:b] + 1, y1[a:b] - y0[a:b] + 1
        cols, rows = _concat_ranges(x0[a:b], w), _concat_ranges(y0[a:b], h)
        seg_w = np.r_[0, np.cumsum(w)[:-1]]
        seg_h = np.r_[0, np.cumsum(h)[:-1]]
        edges = (
            ((np.repeat(y0[a:b], w), cols), seg_w),
            ((np.repeat(y1[a:b], w), cols), seg_w),
            ((rows, np.repeat(x0[a:b], h)), seg_h),
            ((rows, np.repeat(x1[a:b], h)), seg_h),
        )
        for k, (values, reduce) in enumerate(
            ((lat, np.minimum), (lat, np.maximum), (lon, np.minimum), (lon, np.maximum))
        ):
            parts = [reduce.reduceat(values[idx], seg) for idx, seg in edges]
            out[a:b, k] = reduce.reduce(np.stack(parts), axis=0)
    return out
