"""Static, insolation and lateral-boundary inputs of the learned models: one path for training and inference.

A network sees, besides its normalised state, three kinds of input channels, each declared in its config:

``static`` (fixed fields of the grid)
    ``orography`` (m / 2000), ``land_sea_mask`` (land fraction 0..1), ``lat_sin``, ``lat_cos``,
    ``lon_sin``, ``lon_cos``. They let a network know where it is: local solar time, coasts, mountains.
``forcings`` (functions of the valid time)
    the uniform time-of-day channels of :data:`workbench.models.layers.FORCINGS` and
    ``toa_insolation``: the top-of-atmosphere insolation at each grid point at the valid time of the
    input, divided by the solar constant (so 0..~1.03). It is the local-solar-time signal a uniform UTC
    hour cannot give.
``boundary`` (lateral boundary conditioning)
    for limited-area networks, as StormCast conditions on a global model: the coarse (global-model
    resolution) state of a few variables at the valid time of the *output*, kept in a strip of
    ``width`` cells along the domain edge and zero inside, plus the strip mask. During training it comes
    from the ERA5-like global analysis regridded to the model grid (:func:`boundary_from_global`); at
    inference from the driving global forecast started from the same analysis (the sample's NWP
    forecast, smoothed to the global model's scale by :func:`coarse_state`), as a regional NWP model is
    driven by a global model's forecast. Without a boundary the network is blind to what flows in.

:func:`static_fields` computes the static channels from a data set's ``latitude``/``longitude``
coordinates and its ``orography``/``land_sea_mask`` variables (the sample's geography fills a missing land
mask); :func:`attach_inputs` gives them to a model. The inference engine (``inference/prepare.py``) and the
training data (``training/data.py``) both call these functions, so a network is always fed the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import xarray as xr

from workbench.errors import DataError

__all__ = [
    "INSOLATION",
    "STATIC",
    "BoundarySource",
    "as_boundary",
    "attach_inputs",
    "available_static",
    "boundary_from_global",
    "boundary_mask",
    "coarse_state",
    "static_fields",
    "toa_insolation",
]

#: Static channels a model may declare in its config's ``static`` list.
STATIC = ("orography", "land_sea_mask", "lat_sin", "lat_cos", "lon_sin", "lon_cos")
#: The time forcing that varies in space: top-of-atmosphere insolation / solar constant.
INSOLATION = "toa_insolation"
#: Orography is divided by this (m), so the channel is of order one like the normalised state.
OROGRAPHY_SCALE_M = 2000.0
#: Smoothing scale (km) of :func:`coarse_state`: about half the ERA5-like grid's 5.625 degrees, the
#: scale the global analysis resolves once bilinearly regridded to the regional grid.
GLOBAL_SCALE_KM = 300.0


def _latlon(source: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    if "latitude" not in source.coords or "longitude" not in source.coords:
        raise DataError(
            "the model takes static inputs (latitude/longitude, insolation), but the data has no 'latitude' "
            "and 'longitude' coordinates; open it with its grid's coordinates"
        )
    lat, lon = source["latitude"], source["longitude"]
    if lat.ndim == 1 and lon.ndim == 1:  # a regular lat-lon grid
        lat2, lon2 = np.meshgrid(lat.values, lon.values, indexing="ij")
        return lat2.astype(np.float64), lon2.astype(np.float64)
    return np.asarray(lat.values, dtype=np.float64), np.asarray(lon.values, dtype=np.float64)


def _static_variable(source: xr.Dataset, name: str, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    if name in source.variables and "time" not in source[name].dims:
        values = np.asarray(source[name].values, dtype=np.float64)
        if values.shape != lat.shape or not np.isfinite(values).all():
            raise DataError(f"the data's {name!r} is not a finite field on its {lat.shape} grid")
        return values
    if name in ("land_sea_mask", "orography") and _sample_geography(name) is not None:
        # the sample's geography (US outlines, towns elsewhere; its orography over land, as the generator
        # builds it) when the data carries no field of its own
        geography = _sample_geography(name)
        land = geography.grid_land_fraction(lat, lon).astype(np.float64)
        return land if name == "land_sea_mask" else geography.orography(lat, lon) * land
    raise DataError(
        f"the model takes the static input {name!r}, which the data does not hold (a field without a time "
        "dimension); use a data set that has it, e.g. the sample of version 3 or later"
    )


def _sample_geography(name: str):
    """The sample's geography module when it can give ``name``, its rasters kept in the sample cache."""
    from workbench.sample import geography
    from workbench.sample.store import cache_root

    if name == "orography" and not hasattr(geography, "orography"):
        return None
    geography.use_cache_dir(cache_root() / "sample")
    return geography


def available_static(source: xr.Dataset) -> list[str]:
    """The static channels :func:`static_fields` can give for ``source``."""
    if not {"latitude", "longitude"} <= set(source.coords):
        return []
    return [n for n in STATIC if n != "orography" or "orography" in source.variables
            or _sample_geography("orography") is not None]


def static_fields(source: xr.Dataset, names: Sequence[str]) -> np.ndarray:
    """The static channels ``names`` on ``source``'s grid, ``(len(names), ny, nx)`` float32.

    Raises
    ------
    DataError
        For an unknown name, a grid without latitude/longitude, or a missing ``orography``.
    """
    unknown = [n for n in names if n not in STATIC]
    if unknown:
        raise DataError(f"unknown static inputs {unknown}; known: {list(STATIC)}")
    lat, lon = _latlon(source)
    phi, lam = np.deg2rad(lat), np.deg2rad(lon)
    out = []
    for name in names:
        if name == "orography":
            out.append(_static_variable(source, name, lat, lon) / OROGRAPHY_SCALE_M)
        elif name == "land_sea_mask":
            out.append(np.clip(_static_variable(source, name, lat, lon), 0.0, 1.0))
        else:
            angle = phi if name.startswith("lat") else lam
            out.append(np.sin(angle) if name.endswith("sin") else np.cos(angle))
    return np.stack(out).astype(np.float32) if out else np.zeros((0, *lat.shape), np.float32)


def toa_insolation(hours: torch.Tensor, lat_rad: torch.Tensor, lon_rad: torch.Tensor) -> torch.Tensor:
    """Top-of-atmosphere insolation over the solar constant, ``(B, 1, ny, nx)``.

    Parameters
    ----------
    hours
        Valid times ``(B,)``, hours since 1970-01-01 UTC (float64 keeps the hour exact).
    lat_rad, lon_rad
        ``(ny, nx)`` grid coordinates in radians.

    Notes
    -----
    Declination and Earth-Sun distance from the day of the year (Spencer-like first harmonics, errors of
    a few tenths of a degree, far below what a network can use); hour angle from UTC plus longitude. It
    runs on the device, so the engine's clock never leaves it.
    """
    days = hours.reshape(-1, 1, 1) / 24.0
    gamma = 2 * math.pi * torch.remainder(days - 0.5, 365.2425) / 365.2425  # 0 on 1 January
    decl = torch.deg2rad(torch.as_tensor(23.44, dtype=days.dtype, device=days.device)) * -torch.cos(
        gamma + 2 * math.pi * 10 / 365.2425
    )
    distance = 1.0 + 0.033 * torch.cos(gamma - 2 * math.pi * 2 / 365.2425)
    hour_angle = 2 * math.pi * (torch.remainder(hours.reshape(-1, 1, 1), 24.0) / 24.0) + lon_rad - math.pi
    phi = lat_rad.to(days.dtype)
    cos_zenith = torch.sin(phi) * torch.sin(decl) + torch.cos(phi) * torch.cos(decl) * torch.cos(hour_angle)
    return (distance * cos_zenith.clamp(min=0.0))[:, None]


def boundary_mask(shape: tuple[int, int], width: int) -> np.ndarray:
    """1 in the ``width`` cells along each edge of a ``shape`` grid, 0 inside, float32."""
    ny, nx = shape
    if width < 1 or 2 * width >= min(ny, nx):
        raise DataError(f"boundary width must be between 1 and {min(ny, nx) // 2 - 1} cells, got {width}")
    mask = np.ones(shape, np.float32)
    mask[width:-width, width:-width] = 0.0
    return mask


def coarse_state(ds: xr.Dataset, scale_km: float = GLOBAL_SCALE_KM, spacing_km: float | None = None) -> xr.Dataset:
    """``ds`` smoothed to a global model's scale on its own grid (Gaussian, edges held), same layout.

    The driving forecast at inference has the regional grid's detail; the networks learnt their boundary
    from the global analysis, which resolves only ~``scale_km``. Smoothing it first keeps the two alike.
    """
    from scipy import ndimage

    if spacing_km is None:
        if "y" not in ds.coords or ds.sizes.get("y", 0) < 2:
            raise DataError("coarse_state needs the grid spacing: give spacing_km or a 'y' coordinate in metres")
        spacing_km = float(abs(ds["y"].values[1] - ds["y"].values[0])) / 1000.0
    sigma = scale_km / spacing_km
    out = {}
    for name, da in ds.data_vars.items():
        if da.dims[-2:] != ("y", "x"):
            out[name] = da
            continue
        axes = (0,) * (da.ndim - 2) + (sigma, sigma)
        values = ndimage.gaussian_filter(np.asarray(da.values, dtype=np.float32), sigma=axes, mode="nearest")
        out[name] = da.copy(data=values)
    return xr.Dataset(out, coords=ds.coords, attrs=ds.attrs)


def boundary_from_global(global_analysis: xr.Dataset, like: xr.Dataset, variables: Sequence[str]) -> xr.Dataset:
    """The global (ERA5-like) analysis of ``variables`` regridded bilinearly onto ``like``'s grid."""
    from workbench.regrid import regrid

    missing = [v for v in variables if v not in global_analysis.data_vars]
    if missing:
        raise DataError(f"the global analysis lacks the boundary variables {missing}")
    return regrid(global_analysis[list(variables)], like, method="bilinear")


@dataclass(frozen=True)
class BoundarySource:
    """Where a limited-area network's boundary comes from: an analysis or a driving forecast.

    ``data`` is on the model grid with dims ``(time, y, x)`` (an analysis: linear in time between its
    times) or ``(init_time, lead_time, y, x)`` (a forecast: the forecast from the same initial time,
    linear between its leads).
    """

    data: xr.Dataset

    @property
    def kind(self) -> str:
        return "forecast" if "init_time" in self.data.dims else "analysis"

    def fields(
        self, init_times: Sequence[np.datetime64], valid_times: Sequence[np.datetime64], variables: Sequence[str]
    ) -> np.ndarray:
        """``(b, len(variables), ny, nx)`` float32 physical values at each ``valid_times[i]`` (of the
        forecast from ``init_times[i]`` when the source is a forecast)."""
        missing = [v for v in variables if v not in self.data.data_vars]
        if missing:
            raise DataError(f"the boundary data lacks {missing}; it has {sorted(map(str, self.data.data_vars))}")
        valid = pd.DatetimeIndex(valid_times)
        if self.kind == "analysis":
            times = pd.DatetimeIndex(self.data["time"].values)
            # seconds, not asi8: indexes may carry different resolutions (ns, us)
            pos = _fractional_positions(_seconds(times - _EPOCH), _seconds(valid - _EPOCH), "boundary analysis", valid)
            return _Interp(self.data, "time").at(pos, variables)
        inits = pd.DatetimeIndex(init_times)
        known = pd.DatetimeIndex(self.data["init_time"].values)
        absent = inits.difference(known)
        if len(absent):
            raise DataError(f"the driving forecast has no run from {list(map(str, absent[:3]))}")
        leads = pd.TimedeltaIndex(self.data["lead_time"].values)
        out = []
        for init, t in zip(inits, valid, strict=True):
            pos = _fractional_positions(_seconds(leads), _seconds(pd.TimedeltaIndex([t - init])), "driving forecast", [t])
            sel = self.data.sel(init_time=init)
            out.append(_Interp(sel, "lead_time").at(pos, variables)[0])
        return np.stack(out)


@dataclass(frozen=True)
class _Interp:
    data: xr.Dataset
    dim: str

    def at(self, pos: np.ndarray, variables: Sequence[str]) -> np.ndarray:
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, self.data.sizes[self.dim] - 1)
        w = (pos - lo).astype(np.float32)[:, None, None, None]
        need = np.unique(np.concatenate([lo, hi]))
        block = np.stack(
            [np.asarray(self.data[v].isel({self.dim: need}).transpose(self.dim, ...).values, np.float32)
             for v in variables],
            axis=1,
        )
        index = {int(k): i for i, k in enumerate(need)}
        a = block[[index[int(k)] for k in lo]]
        b = block[[index[int(k)] for k in hi]]
        out = (1 - w) * a + w * b
        if not np.isfinite(out).all():
            raise DataError("the boundary data holds NaN or infinite values at the times asked for")
        return out


_EPOCH = pd.Timestamp("1970-01-01")


def _seconds(deltas: pd.TimedeltaIndex) -> np.ndarray:
    return np.asarray(deltas / pd.Timedelta(seconds=1), dtype=np.float64)


def _fractional_positions(axis: np.ndarray, wanted: np.ndarray, what: str, labels) -> np.ndarray:
    axis = np.asarray(axis, dtype=np.float64)
    wanted = np.asarray(wanted, dtype=np.float64)
    # within one spacing past either end the nearest state holds (a 6-hourly analysis ends before the
    # hourly one it drives)
    reach = float(np.diff(axis).max()) if len(axis) > 1 else 0.0
    if len(axis) == 0 or wanted.min() < axis[0] - reach or wanted.max() > axis[-1] + reach:
        raise DataError(f"the {what} does not cover {[str(t) for t in list(labels)[:3]]} (its times run "
                        f"from the first to the last of {len(axis)})")
    return np.interp(wanted, axis, np.arange(len(axis), dtype=np.float64))


def as_boundary(obj) -> BoundarySource | None:
    """``None``, a :class:`BoundarySource`, or a data set (analysis or forecast) made into one."""
    if obj is None or isinstance(obj, BoundarySource):
        return obj
    if isinstance(obj, xr.Dataset) and ("time" in obj.dims or "init_time" in obj.dims):
        return BoundarySource(obj)
    raise DataError(
        "boundary must be an xarray Dataset on the model grid with a 'time' (analysis) or 'init_time' "
        f"(driving forecast) dimension, not {type(obj).__name__}"
    )


def attach_inputs(model, source: xr.Dataset) -> None:
    """Give every network of ``model`` (a forecaster, a family or a list) its static fields from ``source``.

    Networks without static inputs or insolation are left alone (old checkpoints run as before).
    """
    from workbench.models.protocol import step_models, torch_module

    models = model if isinstance(model, (list, tuple)) else [model]
    seen: set[int] = set()
    for m in models:
        for step in step_models(m).values():
            module = torch_module(step)
            if id(module) in seen or not hasattr(module, "set_static"):
                continue
            seen.add(id(module))
            if module.needs_static:
                lat, lon = _latlon(source)
                module.set_static(static_fields(source, module.static), np.deg2rad(lat), np.deg2rad(lon))
