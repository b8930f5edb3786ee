"""Grids: the HRRR Lambert conformal grid at any spacing, regular lat-lon grids, and area weights.

The HRRR grid is defined by NOAA's published projection: a Lambert conformal conic tangent at
38.5 N (``lat_1 = lat_2 = lat_0 = 38.5``), central meridian 97.5 W, on a sphere of radius 6371229 m,
with its first (south-west) point at 21.138123 N, 122.719528 W and 3-km spacing over 1799 x 1059
points. A coarser grid keeps the same origin and extent, so a 24-km grid covers the same CONUS domain.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from workbench.errors import GridError

EARTH_RADIUS_M = 6371229.0

HRRR_STANDARD_PARALLEL = 38.5
HRRR_CENTRAL_MERIDIAN = -97.5
HRRR_FIRST_LAT = 21.138123
HRRR_FIRST_LON = -122.719528
HRRR_SPACING_M = 3000.0
HRRR_SHAPE = (1059, 1799)  # (ny, nx) at 3 km


@dataclass(frozen=True)
class LambertConformalGrid:
    """A regular grid in a (tangent) Lambert conformal conic projection on a sphere.

    Parameters
    ----------
    nx, ny : int
        Number of points along x (east) and y (north).
    dx : float
        Grid spacing in metres (same along x and y).
    x0, y0 : float
        Projection coordinates (m) of the first, south-west point.
    standard_parallel, central_meridian : float
        Projection parameters in degrees.
    radius : float
        Sphere radius in metres.
    """

    nx: int
    ny: int
    dx: float
    x0: float
    y0: float
    standard_parallel: float = HRRR_STANDARD_PARALLEL
    central_meridian: float = HRRR_CENTRAL_MERIDIAN
    radius: float = EARTH_RADIUS_M
    _latlon: dict = field(default_factory=dict, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.nx < 2 or self.ny < 2:
            raise GridError(f"A grid needs at least 2 x 2 points, got nx={self.nx}, ny={self.ny}.")
        if not np.isfinite(self.dx) or self.dx <= 0:
            raise GridError(f"Grid spacing must be a positive number of metres, got {self.dx!r}.")
        if not 0 < abs(self.standard_parallel) < 90:
            raise GridError(
                f"The standard parallel must lie strictly between 0 and 90 degrees, got {self.standard_parallel}."
            )

    # -- projection -------------------------------------------------------------------------------
    @property
    def _cone(self) -> tuple[float, float, float]:
        phi1 = np.deg2rad(self.standard_parallel)
        n = np.sin(phi1)
        big_f = np.cos(phi1) * np.tan(np.pi / 4 + phi1 / 2) ** n / n
        rho0 = self.radius * big_f / np.tan(np.pi / 4 + phi1 / 2) ** n
        return n, big_f, rho0

    def project(self, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project latitude/longitude (degrees) onto projection coordinates ``(x, y)`` in metres."""
        n, big_f, rho0 = self._cone
        lat = np.asarray(lat, dtype=np.float64)
        lon = np.asarray(lon, dtype=np.float64)
        rho = self.radius * big_f / np.tan(np.pi / 4 + np.deg2rad(lat) / 2) ** n
        dlon = (lon - self.central_meridian + 180.0) % 360.0 - 180.0
        theta = n * np.deg2rad(dlon)
        return rho * np.sin(theta), rho0 - rho * np.cos(theta)

    def unproject(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Invert :meth:`project`: projection coordinates (m) to latitude/longitude in degrees."""
        n, big_f, rho0 = self._cone
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        rho = np.sign(n) * np.hypot(x, rho0 - y)
        theta = np.arctan2(x, rho0 - y)
        lat = np.rad2deg(2 * np.arctan((self.radius * big_f / rho) ** (1 / n)) - np.pi / 2)
        lon = self.central_meridian + np.rad2deg(theta / n)
        return lat, (lon + 180.0) % 360.0 - 180.0

    def map_factor(self, lat: np.ndarray) -> np.ndarray:
        """Scale factor of the projection at latitude ``lat`` (1 on the standard parallel)."""
        n, big_f, _ = self._cone
        phi = np.deg2rad(np.asarray(lat, dtype=np.float64))
        rho = self.radius * big_f / np.tan(np.pi / 4 + phi / 2) ** n
        return n * rho / (self.radius * np.cos(phi))

    # -- geometry ---------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)``."""
        return (self.ny, self.nx)

    @property
    def x(self) -> np.ndarray:
        """Projection x coordinates of the columns (m)."""
        return self.x0 + self.dx * np.arange(self.nx)

    @property
    def y(self) -> np.ndarray:
        """Projection y coordinates of the rows (m), south to north."""
        return self.y0 + self.dx * np.arange(self.ny)

    def _lat_lon(self) -> tuple[np.ndarray, np.ndarray]:
        if not self._latlon:
            xx, yy = np.meshgrid(self.x, self.y)
            lat, lon = self.unproject(xx, yy)
            self._latlon["lat"], self._latlon["lon"] = lat, lon
        return self._latlon["lat"], self._latlon["lon"]

    @property
    def latitude(self) -> np.ndarray:
        """2-D latitude (degrees north) of every point, shape ``(ny, nx)``."""
        return self._lat_lon()[0]

    @property
    def longitude(self) -> np.ndarray:
        """2-D longitude (degrees east, in [-180, 180)) of every point, shape ``(ny, nx)``."""
        return self._lat_lon()[1]

    def cell_area(self) -> np.ndarray:
        """Area of each cell on the sphere (m^2): ``dx**2 / m**2`` with ``m`` the map factor."""
        return self.dx**2 / self.map_factor(self.latitude) ** 2

    def coords(self) -> dict:
        """Coordinates for an xarray object on this grid: 1-D ``y``, ``x`` and 2-D ``latitude``/``longitude``."""
        return {
            "y": ("y", self.y, {"units": "m", "standard_name": "projection_y_coordinate"}),
            "x": ("x", self.x, {"units": "m", "standard_name": "projection_x_coordinate"}),
            "latitude": (("y", "x"), self.latitude.astype(np.float32), {"units": "degrees_north"}),
            "longitude": (("y", "x"), self.longitude.astype(np.float32), {"units": "degrees_east"}),
        }

    def attrs(self) -> dict:
        """CF-style ``grid_mapping`` attributes describing the projection."""
        return {
            "grid_mapping_name": "lambert_conformal_conic",
            "standard_parallel": self.standard_parallel,
            "longitude_of_central_meridian": self.central_meridian,
            "latitude_of_projection_origin": self.standard_parallel,
            "earth_radius": self.radius,
            "grid_spacing_m": self.dx,
        }

    def contains(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Whether each point lies inside the grid's domain (within half a cell of its edge)."""
        x, y = self.project(lat, lon)
        half = self.dx / 2
        return (
            (x >= self.x[0] - half) & (x <= self.x[-1] + half) & (y >= self.y[0] - half) & (y <= self.y[-1] + half)
        )

    def nearest_index(self, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row and column of the cell nearest each point; points outside are clipped to the edge.

        Use :meth:`contains` first to drop points outside the domain.
        """
        x, y = self.project(lat, lon)
        ix = np.clip(np.rint((x - self.x0) / self.dx), 0, self.nx - 1).astype(np.int64)
        iy = np.clip(np.rint((y - self.y0) / self.dx), 0, self.ny - 1).astype(np.int64)
        return iy, ix


def hrrr_grid(spacing_km: float = 3.0) -> LambertConformalGrid:
    """The HRRR CONUS grid, or the same domain at a coarser (or finer) spacing.

    Parameters
    ----------
    spacing_km : float
        Grid spacing in km. 3 gives NOAA's 1059 x 1799 grid; 24 gives 133 x 225.

    Returns
    -------
    LambertConformalGrid

    Raises
    ------
    GridError
        If the spacing is not a positive number, or so coarse that the domain has fewer than 2 x 2 points.
    """
    try:
        spacing_m = float(spacing_km) * 1000.0
    except (TypeError, ValueError):
        raise GridError(f"spacing_km must be a number of kilometres, got {spacing_km!r}.") from None
    if not np.isfinite(spacing_m) or spacing_m <= 0:
        raise GridError(f"spacing_km must be positive, got {spacing_km!r}. HRRR's native spacing is 3 km.")
    extent_x = (HRRR_SHAPE[1] - 1) * HRRR_SPACING_M
    extent_y = (HRRR_SHAPE[0] - 1) * HRRR_SPACING_M
    nx = int(np.floor(extent_x / spacing_m + 1e-9)) + 1
    ny = int(np.floor(extent_y / spacing_m + 1e-9)) + 1
    if nx < 2 or ny < 2:
        raise GridError(
            f"spacing_km={spacing_km} is too coarse: the HRRR domain ({extent_x / 1e3:.0f} x "
            f"{extent_y / 1e3:.0f} km) would have fewer than 2 x 2 points. Use at most "
            f"{extent_y / 1e3:.0f} km."
        )
    probe = LambertConformalGrid(nx=2, ny=2, dx=1.0, x0=0.0, y0=0.0)
    x0, y0 = probe.project(HRRR_FIRST_LAT, HRRR_FIRST_LON)
    return LambertConformalGrid(nx=nx, ny=ny, dx=spacing_m, x0=float(x0), y0=float(y0))


@dataclass(frozen=True)
class LatLonGrid:
    """A regular latitude-longitude grid as used by ERA5 and WeatherBench 2.

    Latitude is ascending (south to north) and longitude runs from 0 to 360 - resolution, as in
    WeatherBench 2's stores.
    """

    resolution: float
    include_poles: bool

    @property
    def latitude(self) -> np.ndarray:
        """1-D latitudes (degrees north), ascending."""
        if self.include_poles:
            n = int(round(180.0 / self.resolution)) + 1
            return np.linspace(-90.0, 90.0, n)
        n = int(round(180.0 / self.resolution))
        return -90.0 + self.resolution * (np.arange(n) + 0.5)

    @property
    def longitude(self) -> np.ndarray:
        """1-D longitudes (degrees east) from 0."""
        return self.resolution * np.arange(int(round(360.0 / self.resolution)))

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_latitude, n_longitude)``."""
        return (self.latitude.size, self.longitude.size)

    def coords(self) -> dict:
        """Coordinates for an xarray object on this grid."""
        return {
            "latitude": ("latitude", self.latitude, {"units": "degrees_north"}),
            "longitude": ("longitude", self.longitude, {"units": "degrees_east"}),
        }

    def nearest_index(self, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row and column of the cell nearest each point (longitude wraps)."""
        lat = np.asarray(lat, dtype=np.float64)
        lon = np.asarray(lon, dtype=np.float64) % 360.0
        lats = self.latitude
        iy = np.clip(np.rint((lat - lats[0]) / self.resolution), 0, lats.size - 1).astype(np.int64)
        ix = np.rint(lon / self.resolution).astype(np.int64) % self.longitude.size
        return iy, ix


def latlon_grid(resolution: float = 5.625, include_poles: bool | None = None) -> LatLonGrid:
    """A WeatherBench-style lat-lon grid.

    Parameters
    ----------
    resolution : float
        Spacing in degrees; 360 / resolution must be a whole number (5.625 gives 32 x 64,
        1.40625 gives 128 x 256, 0.25 gives 721 x 1440).
    include_poles : bool, optional
        Whether rows sit on the poles. Defaults to ``True`` for 0.25 degrees (ERA5's native grid) and
        ``False`` otherwise (WeatherBench 2's equiangular conservative grids, cell-centred).

    Raises
    ------
    GridError
        If the resolution is not positive or does not divide 360 degrees.
    """
    try:
        resolution = float(resolution)
    except (TypeError, ValueError):
        raise GridError(f"resolution must be a number of degrees, got {resolution!r}.") from None
    if not np.isfinite(resolution) or not 0 < resolution <= 90:
        raise GridError(f"resolution must be in (0, 90] degrees, got {resolution}.")
    n_lon = 360.0 / resolution
    if abs(n_lon - round(n_lon)) > 1e-6:
        raise GridError(
            f"resolution {resolution} does not divide 360 degrees; use e.g. 5.625, 2.8125, 1.40625 or 0.25."
        )
    if include_poles is None:
        include_poles = resolution <= 0.25
    return LatLonGrid(resolution=resolution, include_poles=bool(include_poles))


def area_weights(obj: xr.DataArray | xr.Dataset) -> xr.DataArray:
    """Weights proportional to cell area, normalised to mean 1.

    On a lat-lon grid (a 1-D ``latitude`` dimension) the weight is ``cos(latitude)``, constant along
    longitude. On a projected grid (dims ``y``, ``x`` with 2-D ``latitude``/``longitude`` coordinates)
    it is the spherical area of each cell, computed from the local derivatives of latitude and
    longitude, so any projection works.

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        Anything on the grid.

    Returns
    -------
    xarray.DataArray
        Dims ``(latitude,)`` or ``(y, x)``.

    Raises
    ------
    GridError
        If the object has neither layout.
    """
    if "latitude" in obj.dims:
        lat = obj["latitude"]
        w = np.cos(np.deg2rad(lat)).clip(min=0.0)
        w = w / w.mean()
        return w.rename("area_weight").assign_attrs(units="1", long_name="cos(latitude) area weight")
    if {"y", "x"} <= set(obj.dims) and "latitude" in obj.coords and "longitude" in obj.coords:
        lat = np.deg2rad(np.asarray(obj["latitude"].transpose("y", "x"), dtype=np.float64))
        lon = np.deg2rad(np.unwrap(np.asarray(obj["longitude"].transpose("y", "x"), dtype=np.float64)))
        dlat_dy, dlat_dx = np.gradient(lat)
        dlon_dy, dlon_dx = np.gradient(lon)
        area = np.abs(dlon_dx * dlat_dy - dlon_dy * dlat_dx) * np.cos(lat)
        area = area / area.mean()
        return xr.DataArray(
            area,
            dims=("y", "x"),
            coords={"y": obj["y"], "x": obj["x"]} if "y" in obj.coords and "x" in obj.coords else None,
            name="area_weight",
            attrs={"units": "1", "long_name": "cell area weight"},
        )
    raise GridError(
        "Cannot compute area weights: expected a 'latitude' dimension (lat-lon grid) or dims ('y', 'x') "
        f"with 2-D 'latitude' and 'longitude' coordinates; got dims {tuple(obj.dims)}."
    )
