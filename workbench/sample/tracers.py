"""Semi-Lagrangian advection of tracers on the HRRR-like Lambert grid or a global lat-lon grid.

Each step traces the air arriving at every grid point back to its departure point along the wind
(two-pass midpoint rule: wind at the arrival point gives a first midpoint, the wind interpolated there
gives the departure point) and interpolates the tracers there, bilinearly. On the Lambert grid the
departure point is located through the grid's projection, so winds stay earth-relative; departure
points outside the limited domain take the nearest edge value (inflow boundary). On the lat-lon grid
longitude wraps around.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from workbench.grids import LambertConformalGrid, LatLonGrid
from workbench.sample.flow import displace


class ModelGrid:
    """What the generator needs to know about an output grid.

    Parameters
    ----------
    grid : LambertConformalGrid or LatLonGrid
        The output grid.
    """

    def __init__(self, grid: LambertConformalGrid | LatLonGrid) -> None:
        self.grid = grid
        self.periodic = isinstance(grid, LatLonGrid)
        if self.periodic:
            lon1, lat1 = np.meshgrid(grid.longitude, grid.latitude)
            self.lat = lat1
            self.lon = (lon1 + 180.0) % 360.0 - 180.0
            self.spacing_m = np.deg2rad(grid.resolution) * 6.371e6
            self.cell_area_km2 = (np.deg2rad(grid.resolution) * 6371.0) ** 2 * np.maximum(
                np.cos(np.deg2rad(self.lat)), 0.0
            )
        else:
            self.lat = grid.latitude
            self.lon = grid.longitude
            self.spacing_m = float(grid.dx)
            self.cell_area_km2 = grid.cell_area() / 1e6
        self.shape = self.lat.shape

    def fractional_index(self, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fractional (row, column) of points in the grid's index space."""
        g = self.grid
        if self.periodic:
            fy = (np.asarray(lat) - g.latitude[0]) / g.resolution
            fx = (np.asarray(lon) % 360.0) / g.resolution
            return fy, fx
        x, y = g.project(lat, lon)
        return (y - g.y0) / g.dx, (x - g.x0) / g.dx

    def window(self, lat: float, lon: float, radius_m: float) -> tuple[slice, slice] | None:
        """Rows and columns of the grid within ``radius_m`` of a point (all, on a global grid)."""
        if self.periodic:
            return (slice(None), slice(None))
        fy, fx = self.fractional_index(np.array([lat]), np.array([lon]))
        n = radius_m / self.spacing_m
        y0, y1 = max(int(np.floor(fy[0] - n)), 0), min(int(np.ceil(fy[0] + n)) + 1, self.shape[0])
        x0, x1 = max(int(np.floor(fx[0] - n)), 0), min(int(np.ceil(fx[0] + n)) + 1, self.shape[1])
        if y0 >= y1 or x0 >= x1:
            return None
        return (slice(y0, y1), slice(x0, x1))

    def index_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Row and column index of every grid point (float arrays)."""
        if not hasattr(self, "_index"):
            self._index = tuple(a.astype(float) for a in np.indices(self.shape))
        return self._index

    def jacobian(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Derivatives of (row, column) per metre moved east and north at every grid point.

        Returned as ``(drow/deast, drow/dnorth, dcol/deast, dcol/dnorth)``; computed once by moving
        each point 1 km east and north and locating it on the grid, so it holds the projection's map
        factor and the rotation between grid axes and geographic directions.
        """
        if not hasattr(self, "_jac"):
            h = 1000.0
            fy0, fx0 = self.fractional_index(self.lat, self.lon)
            out = []
            for de, dn in ((h, 0.0), (0.0, h)):
                lat, lon = displace(self.lat, self.lon, np.full(self.shape, de), np.full(self.shape, dn))
                fy, fx = self.fractional_index(lat, lon)
                dfx = fx - fx0
                if self.periodic:
                    n = self.shape[1]
                    dfx = (dfx + n / 2) % n - n / 2
                out.append(((fy - fy0) / h, dfx / h))
            (dy_e, dx_e), (dy_n, dx_n) = out
            self._jac = (dy_e, dy_n, dx_e, dx_n)
        return self._jac

    def interpolate(self, fields: list[np.ndarray], fy: np.ndarray, fx: np.ndarray) -> list[np.ndarray]:
        """Bilinear interpolation of 2-D fields at fractional indices (edges clamp; longitude wraps)."""
        ny, nx = self.shape
        fy = np.clip(fy, 0.0, ny - 1.000001)
        y0 = fy.astype(np.intp)
        wy = fy - y0
        if self.periodic:
            fx = np.mod(fx, nx)
            x0 = fx.astype(np.intp)
            wx = fx - x0
            x1 = x0 + 1
            x1[x1 == nx] = 0
        else:
            fx = np.clip(fx, 0.0, nx - 1.000001)
            x0 = fx.astype(np.intp)
            wx = fx - x0
            x1 = x0 + 1
        row0 = y0 * nx
        i00, i01 = row0 + x0, row0 + x1
        i10, i11 = i00 + nx, i01 + nx
        out = []
        for f in fields:
            flat = f.ravel()
            a = flat[i00]
            top = a + wx * (flat[i01] - a)
            c = flat[i10]
            bottom = c + wx * (flat[i11] - c)
            out.append((top + wy * (bottom - top)).astype(f.dtype, copy=False))
        return out


class Coarsened:
    """A sub-sampled copy of a grid, and linear interpolation from it back to the full grid.

    The large-scale flow varies over hundreds of kilometres, so it is evaluated on every ``factor``-th
    point (plus the last row and column) and interpolated back with two small matrix products.
    """

    def __init__(self, mg: ModelGrid, factor: int) -> None:
        self.factor = factor
        ny, nx = mg.shape
        self.rows = np.unique(np.r_[np.arange(0, ny, factor), ny - 1])
        self.cols = np.unique(np.r_[np.arange(0, nx, factor), nx - 1])
        self.lat = mg.lat[np.ix_(self.rows, self.cols)]
        self.lon = mg.lon[np.ix_(self.rows, self.cols)]
        # separable linear interpolation (no BLAS: its threads fight over 2 cores)
        self._jy, self._wy = _linear_weights(self.rows, ny)
        self._jx, self._wx = _linear_weights(self.cols, nx)

    def upsample(self, coarse: np.ndarray) -> np.ndarray:
        """Interpolate a field on the coarse points to the full grid."""
        if self.factor == 1:
            return coarse
        along_x = coarse[:, self._jx] * (1 - self._wx) + coarse[:, self._jx + 1] * self._wx
        wy = self._wy[:, None]
        return along_x[self._jy] * (1 - wy) + along_x[self._jy + 1] * wy


def _linear_weights(knots: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Left knot index and weight of the right knot for linear interpolation at ``0..n-1``."""
    idx = np.arange(n)
    j = np.clip(np.searchsorted(knots, idx, side="right") - 1, 0, knots.size - 2)
    w = (idx - knots[j]) / (knots[j + 1] - knots[j])
    return j, w


def departure_points(
    mg: ModelGrid, u: np.ndarray, v: np.ndarray, dt_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Fractional indices of the departure points of the air arriving at each grid point."""
    jac = mg.jacobian()
    iy, ix = mg.index_grid()
    fy = iy - 0.5 * dt_s * (jac[0] * u + jac[1] * v)
    fx = ix - 0.5 * dt_s * (jac[2] * u + jac[3] * v)
    um, vm = mg.interpolate([u, v], fy, fx)
    # the metric at the midpoint is close to that at the arrival point on these smooth grids
    fy = iy - dt_s * (jac[0] * um + jac[1] * vm)
    fx = ix - dt_s * (jac[2] * um + jac[3] * vm)
    return fy, fx


def advect(
    mg: ModelGrid, fields: list[np.ndarray], u: np.ndarray, v: np.ndarray, dt_s: float
) -> list[np.ndarray]:
    """Advect tracers by the wind ``(u, v)`` (m/s, earth-relative) over ``dt_s`` seconds."""
    fy, fx = departure_points(mg, u, v, dt_s)
    return mg.interpolate(fields, fy, fx)


def correlated_noise(rng: np.random.Generator, shape: tuple[int, int], scale_cells: float) -> np.ndarray:
    """Spatially correlated Gaussian noise with unit standard deviation and correlation length ``scale_cells``."""
    white = rng.standard_normal(shape)
    sigma = max(scale_cells, 0.3)
    smooth = ndimage.gaussian_filter(white, sigma=sigma, mode="wrap")
    std = smooth.std()
    return smooth / std if std > 0 else smooth
