"""ERA5 from the public WeatherBench 2 and ARCO-ERA5 zarr stores, or from files of the Copernicus data
store (netCDF or GRIB), in canonical names and SI units.

Both archives use ERA5's long names (``2m_temperature``, ``geopotential`` on a ``level`` dimension in hPa)
on a regular latitude-longitude grid. WeatherBench 2 (WB2) keeps 6-hourly regridded copies
(``64x32_equiangular_conservative`` is the 5.625-degree grid, latitude ascending); ARCO-ERA5 keeps the
hourly 0.25-degree original with latitude descending. Some WB2 stores order their dims
``(time, level, longitude, latitude)``. The reader hides all of that: it returns a lazy (dask) Dataset
with dims ``(time, latitude, longitude)``, latitude ascending, longitude in [0, 360), one data variable
per canonical name (``t2m``, ``z500``, ...) with ``attrs["units"]`` in canonical SI units.

Precipitation needs care: ``tp`` is the accumulation over the preceding output time step, so the reader
picks the store variable whose accumulation period matches the step (``total_precipitation_6hr`` on the
6-hourly stores, ``total_precipitation`` on the hourly ARCO store and the data store's files) and, when the output step is coarser
than the store's, sums the preceding store steps.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from workbench import lexicon
from workbench.errors import DataError
from workbench.sources.remote import check_remote, is_remote, storage_options_for

_WB2 = "gs://weatherbench2/datasets/era5/"

#: Public WeatherBench 2 ERA5 stores, by grid spacing in degrees (6-hourly, 13 pressure levels).
WB2_ERA5_URLS: dict[str, str] = {
    "5.625": _WB2 + "1959-2023_01_10-6h-64x32_equiangular_conservative.zarr",
    "2.8125": _WB2 + "1959-2022-6h-128x64_equiangular_conservative.zarr",
    "1.5": _WB2 + "1959-2023_01_10-6h-240x121_equiangular_with_poles_conservative.zarr",
    "0.25": _WB2 + "1959-2023_01_10-wb13-6h-1440x721_with_derived_variables.zarr",
}

#: ARCO-ERA5: hourly, 0.25 degrees, 37 pressure levels, latitude descending.
ARCO_ERA5_URL = "gs://gcp-public-data-arco-era5/ar/full_37-1h-0p25deg-chunk-1.zarr-v3"

#: Resolution keys accepted by :func:`open_era5` (``"arco"`` selects the ARCO-ERA5 store).
RESOLUTIONS = (*WB2_ERA5_URLS, "arco")

#: Hours over which each ERA5 precipitation variable accumulates.
_PRECIP_HOURS = {
    "total_precipitation": 1,
    "total_precipitation_1hr": 1,
    "total_precipitation_6hr": 6,
    "total_precipitation_24hr": 24,
}

#: What a reader returns when no variables are asked for: the sample atmosphere's set, where available.
DEFAULT_VARIABLES = lexicon.SAMPLE_VARIABLES


def era5_url(resolution: str | float = "5.625") -> str:
    """The public store for a resolution key (``"5.625"``, ``"2.8125"``, ``"1.5"``, ``"0.25"``, ``"arco"``).

    Raises
    ------
    DataError
        For an unknown key; the message lists the known ones.
    """
    key = str(resolution).strip()
    if key == "arco":
        return ARCO_ERA5_URL
    if key not in WB2_ERA5_URLS:
        try:
            key = next(k for k in WB2_ERA5_URLS if float(k) == float(key))
        except (ValueError, StopIteration):
            raise DataError(
                f"No public ERA5 store for resolution {resolution!r}; choose one of {list(RESOLUTIONS)} "
                "or pass the store's path or URL."
            ) from None
    return WB2_ERA5_URLS[key]


def open_era5(
    source: str | os.PathLike | xr.Dataset | None = None,
    *,
    resolution: str | float = "5.625",
    variables: Sequence[str] | str | None = None,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    step_hours: int | None = None,
    storage_options: dict | None = None,
) -> xr.Dataset:
    """Open ERA5 from a WeatherBench 2 / ARCO-ERA5 zarr store as a canonical, lazy Dataset.

    Parameters
    ----------
    source : str, path, xarray.Dataset or None
        A zarr store path or URL (``gs://``, ``s3://``, ``https://``); a netCDF or GRIB file (or a glob
        pattern of them) as the Copernicus data store delivers it; an already opened Dataset with ERA5
        long names or ECMWF short names; or ``None`` for the public store of ``resolution``.
    resolution : str or float
        Which public store to use when ``source`` is ``None`` (see :data:`RESOLUTIONS`).
    variables : sequence of str, str or None
        Canonical names (``"t2m"``, ``"z500"``, any ``<field><level>`` the store has). ``None`` takes the
        sample atmosphere's variables that the store provides.
    start, end : str or Timestamp, optional
        Inclusive time range.
    step_hours : int, optional
        Output time step in hours, a multiple of the store's step; defaults to the store's step.
    storage_options : dict, optional
        fsspec options for remote stores (anonymous access is the default).

    Returns
    -------
    xarray.Dataset
        Dims ``(time, latitude, longitude)``; canonical variable names; units in ``attrs["units"]``.

    Raises
    ------
    DataError
        If a requested variable or level is not in the store (the message lists what is), the time
        range is empty, or a remote store cannot be reached.
    """
    if isinstance(source, xr.Dataset):
        raw = from_cds_layout(source)
    else:
        url = era5_url(resolution) if source is None else os.fspath(source)
        raw = _open_store(url, storage_options)
    return from_era5_names(raw, variables=variables, start=start, end=end, step_hours=step_hours)


_NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf", ".cdf")
_GRIB_SUFFIXES = (".grib", ".grb", ".grib1", ".grib2", ".grb2")


def _open_store(url: str, storage_options: dict | None) -> xr.Dataset:
    if is_remote(url):
        check_remote(url)
        return xr.open_zarr(url, chunks={}, storage_options=storage_options_for(url, storage_options))
    paths = sorted(glob.glob(url)) if glob.has_magic(url) else [url]
    if not paths or not all(os.path.exists(p) for p in paths):
        raise DataError(
            f"No ERA5 data at {url!r}. Check the path, or leave it empty to use the public store."
        )
    if len(paths) == 1 and os.path.isdir(paths[0]):
        return xr.open_zarr(paths[0], chunks={})
    # The Copernicus data store delivers netCDF (one file per step type: instant, accum) or GRIB.
    parts = [from_cds_layout(_open_file(p)) for p in paths]
    try:
        return xr.merge(parts, join="outer", compat="no_conflicts", combine_attrs="drop_conflicts")
    except (ValueError, xr.MergeError) as exc:
        raise DataError(f"The ERA5 files {paths} do not combine into one Dataset: {exc}") from None


def _open_file(path: str) -> xr.Dataset:
    lower = path.lower()
    try:
        if lower.endswith(_GRIB_SUFFIXES):
            import cfgrib

            # A CDS GRIB file mixes level types and step types; cfgrib splits it into compatible cubes.
            cubes = cfgrib.open_datasets(path, backend_kwargs={"indexpath": ""}, chunks={})
            return xr.merge(
                [_stack_steps(c) for c in cubes], join="outer", compat="override", combine_attrs="drop"
            )
        if lower.endswith(_NETCDF_SUFFIXES):
            return xr.open_dataset(path, chunks={})
    except ImportError:
        raise DataError(f"Reading {path} needs cfgrib and eccodes: pip install 'workbench[grib]'.") from None
    except Exception as exc:  # the backends raise many unrelated types for an unreadable file
        raise DataError(f"Cannot read {path}: {type(exc).__name__}: {exc}") from None
    raise DataError(
        f"Unknown ERA5 file type {path!r}: use a zarr store (directory), netCDF "
        f"({', '.join(_NETCDF_SUFFIXES)}) or GRIB ({', '.join(_GRIB_SUFFIXES)})."
    )


def _stack_steps(ds: xr.Dataset) -> xr.Dataset:
    """cfgrib's ``(time, step)`` of accumulated fields -> one ``valid_time`` axis; a single pressure
    level (a scalar ``isobaricInhPa``) -> a level dimension of length one."""
    if "isobaricInhPa" in ds.coords and "isobaricInhPa" not in ds.dims:
        ds = ds.expand_dims("isobaricInhPa")
    scalar_levels = [
        c for c in ds.coords if c not in ds.dims and c not in ("time", "step", "valid_time", "number")
    ]
    ds = ds.drop_vars(scalar_levels)  # heightAboveGround, surface, meanSea: one per cube, no meaning here
    if "step" in ds.dims:
        if "time" not in ds.dims:
            ds = ds.drop_vars("valid_time", errors="ignore").expand_dims("time")
        ds = ds.stack(_valid=("time", "step"))
        valid = (ds["time"] + ds["step"]).values
        ds = ds.drop_vars(["_valid", "time", "step", "valid_time"], errors="ignore")
        ds = ds.assign_coords(_valid=valid).rename(_valid="time")
        ds = ds.isel(time=np.argsort(valid, kind="stable"))
        return ds.dropna("time", how="all")
    if "valid_time" in ds.coords and "valid_time" not in ds.dims:
        # A single step: time + step is the valid time.
        if "time" in ds.dims:
            ds = ds.assign_coords(time=np.atleast_1d(ds["valid_time"].values))
        ds = ds.drop_vars("valid_time")
    return ds.drop_vars(["step"], errors="ignore")


#: ERA5 long name of each canonical single-level name and upper-air field (inverse of ERA5_NAMES).
_LONG_NAME: dict[str, str] = {}
for _source, (_target, _upper, _units) in lexicon.ERA5_NAMES.items():
    if _target != "tp":
        _LONG_NAME.setdefault(_target, _source)
_LONG_NAME["tp"] = "total_precipitation"  # the CDS delivers the hourly accumulation


def from_cds_layout(raw: xr.Dataset) -> xr.Dataset:
    """Rename a Copernicus data store Dataset (netCDF or cfgrib) into the WeatherBench 2 layout.

    The data store's netCDF (since 2024) has dims ``(valid_time, [pressure_level,] latitude, longitude)``,
    a scalar ``number`` and an ``expver`` coordinate along ``valid_time`` (``"0001"`` for ERA5, ``"0005"``
    for the preliminary ERA5T); older files have ``time`` and an ``expver`` *dimension* when a request
    spans both, and cfgrib gives ``isobaricInhPa``. Variables carry ECMWF short names (``t2m``, ``u10``,
    ``z``...), renamed here to ERA5 long names; a bare upper-air letter without a level dimension (the
    surface ``z`` is orography) is left out.

    Raises
    ------
    DataError
        For an ensemble (``number`` of length > 1): pick one member first.
    """
    ds = raw
    if "valid_time" in ds.dims and "time" not in ds.dims:
        ds = ds.drop_vars("time", errors="ignore").rename(valid_time="time")
    for level_dim in ("pressure_level", "isobaricInhPa"):
        if level_dim in ds.dims:
            ds = ds.rename({level_dim: "level"})
    if "number" in ds.dims:
        if ds.sizes["number"] > 1:
            raise DataError(
                f"This ERA5 file holds {ds.sizes['number']} ensemble members (dimension 'number'); "
                "select one (ds.isel(number=0)) and pass the Dataset."
            )
        ds = ds.isel(number=0)
    if "expver" in ds.dims:
        # ERA5 (expver 1) where it exists, the preliminary ERA5T (5) elsewhere.
        order = sorted(ds["expver"].values.tolist(), key=lambda v: int(str(v)))
        parts = [ds.sel(expver=v, drop=True) for v in order]
        merged = parts[0]
        for part in parts[1:]:
            merged = merged.combine_first(part)
        ds = merged
    ds = ds.drop_vars(
        [c for c in ("number", "expver", "surface", "step", "valid_time") if c in ds.coords], errors="ignore"
    )
    if "level" in ds.coords:
        ds = ds.assign_coords(level=np.asarray(ds["level"].values).astype(np.int64))
    renames, dropped = {}, []
    for name, da in ds.data_vars.items():
        key = str(name)
        if key in lexicon.ERA5_NAMES:
            continue
        if key in lexicon.ECMWF_LEVEL_FIELDS and "level" not in da.dims:
            dropped.append(key)  # surface geopotential (orography) and the like
        elif key in lexicon.ECMWF_LEVEL_FIELDS:
            renames[key] = _LONG_NAME[lexicon.ECMWF_LEVEL_FIELDS[key]]
        elif key in lexicon.ECMWF_SHORT_NAMES and lexicon.ECMWF_SHORT_NAMES[key] in _LONG_NAME:
            renames[key] = _LONG_NAME[lexicon.ECMWF_SHORT_NAMES[key]]
    return ds.drop_vars(dropped).rename(renames)


def available_variables(raw: xr.Dataset) -> list[str]:
    """Canonical names that a Dataset with ERA5 names can provide (upper-air fields at every level)."""
    names: list[str] = []
    levels = _levels(raw)
    for source_name, (target, upper, _units) in lexicon.ERA5_NAMES.items():
        if source_name not in raw.data_vars:
            continue
        if upper and "level" in raw[source_name].dims:
            # Levels above 10 hPa (ARCO-ERA5 has 1-7 hPa) have no canonical names and are left out.
            names += [lexicon.level_name(target, lev) for lev in levels if lev >= 10]
        elif not upper and target not in names:
            names.append(target)
    return names


def _levels(raw: xr.Dataset) -> list[int]:
    if "level" not in raw.coords:
        return []
    return [int(v) for v in np.asarray(raw["level"].values).ravel()]


def from_era5_names(
    raw: xr.Dataset,
    *,
    variables: Sequence[str] | str | None = None,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    step_hours: int | None = None,
) -> xr.Dataset:
    """Convert a Dataset with ERA5 / WeatherBench 2 names into the canonical form (see :func:`open_era5`)."""
    for dim in ("time", "latitude", "longitude"):
        if dim not in raw.dims:
            raise DataError(
                f"An ERA5 store needs dims time, latitude and longitude; this one has {tuple(raw.dims)}."
            )
    raw = _normalise_grid(raw)
    available = available_variables(raw)
    wanted = _wanted_variables(variables, available)

    native = _native_step_hours(raw)
    step = int(step_hours) if step_hours else native
    if step % native:
        raise DataError(f"step_hours={step_hours} is not a multiple of the store's time step ({native} h).")
    factor = step // native
    t0 = pd.Timestamp(start) if start is not None and str(start) != "" else None
    t1 = pd.Timestamp(end) if end is not None and str(end) != "" else None
    # Precipitation sums need the (factor - 1) store steps before the first output time.
    lead_in = pd.Timedelta(hours=native * (factor - 1))
    window = raw.sel(time=slice(None if t0 is None else t0 - lead_in, t1))
    if window.sizes["time"] == 0:
        raise DataError(
            f"No ERA5 times between {start} and {end}; the store covers "
            f"{_fmt(raw.time.values[0])} to {_fmt(raw.time.values[-1])}."
        )

    out = {}
    for name in wanted:
        da = _precipitation(window, native, step) if name == "tp" else _select(window, name)
        out[name] = da
    ds = xr.Dataset(out)
    times = ds["time"].to_index()
    keep = times.hour % step == 0 if step > native else np.ones(times.size, dtype=bool)
    if t0 is not None:
        keep &= times >= t0
    else:
        # Without a start, the first output times would lack the store steps their sums need.
        keep &= times >= times[0] + lead_in
    ds = ds.isel(time=np.flatnonzero(keep))
    if ds.sizes["time"] == 0:
        raise DataError(f"No ERA5 times between {start} and {end} at a {step}-hour step.")
    ds = ds.transpose("time", "latitude", "longitude")
    ds.attrs = {
        "source": "ERA5 (WeatherBench 2 / ARCO-ERA5 zarr)",
        "time_step_hours": step,
    }
    return ds


def _fmt(t) -> str:
    return str(pd.Timestamp(t))


def _normalise_grid(raw: xr.Dataset) -> xr.Dataset:
    """Latitude ascending, longitude in [0, 360) and sorted; lazy index operations only."""
    lat = np.asarray(raw["latitude"].values)
    if lat.size > 1 and lat[0] > lat[-1]:
        raw = raw.isel(latitude=slice(None, None, -1))
    lon = np.asarray(raw["longitude"].values, dtype=np.float64)
    if (lon < 0).any() or (np.diff(lon) < 0).any():
        wrapped = np.mod(lon, 360.0)
        order = np.argsort(wrapped, kind="stable")
        raw = raw.isel(longitude=order).assign_coords(longitude=wrapped[order])
    return raw


def _wanted_variables(variables: Sequence[str] | str | None, available: list[str]) -> list[str]:
    if variables is None or (not isinstance(variables, str) and len(variables) == 0):
        wanted = [v for v in DEFAULT_VARIABLES if v in available]
        if not wanted:
            raise DataError(
                "This store holds none of the default variables "
                f"{list(DEFAULT_VARIABLES)}; ask for some of {available}."
            )
        return wanted
    if isinstance(variables, str):
        variables = [v.strip() for v in variables.split(",") if v.strip()]
    return lexicon.resolve_names(list(variables), available, "this ERA5 data")


def _summary(names: Iterable[str]) -> str:
    """A compact list: single-level names, then upper-air fields with their levels."""
    single, upper = [], {}
    for n in names:
        info = lexicon.info(n)
        if info.level is None:
            single.append(n)
        else:
            upper.setdefault(n[: -len(str(info.level))], []).append(info.level)
    parts = single + [f"{f}<level> for levels {sorted(levs)}" for f, levs in upper.items()]
    return ", ".join(parts)


def _native_step_hours(raw: xr.Dataset) -> int:
    times = raw["time"].to_index()
    if times.size < 2:
        return 6
    step = (times[1] - times[0]) / pd.Timedelta(hours=1)
    if step <= 0 or step != int(step):
        raise DataError(f"The store's time coordinate is not on a whole-hour step (first step {step} h).")
    return int(step)


def _source_units(da: xr.DataArray, default: str) -> str:
    return str(da.attrs.get("units") or default)


def _select(raw: xr.Dataset, name: str) -> xr.DataArray:
    info = lexicon.info(name)
    for source_name, (target, upper, units) in lexicon.ERA5_NAMES.items():
        if source_name not in raw.data_vars or target == "tp":
            continue
        if info.level is None and not upper and target == name:
            da = raw[source_name]
            return _finish(da, name, _source_units(da, units))
        if info.level is not None and upper and lexicon.level_name(target, info.level) == name:
            da = raw[source_name].sel(level=info.level)
            da = da.drop_vars("level")
            return _finish(da, name, _source_units(raw[source_name], units))
    raise DataError(f"{name!r} is not in this ERA5 store.")  # guarded by _wanted_variables


def _finish(da: xr.DataArray, name: str, units: str) -> xr.DataArray:
    out = lexicon.convert_units(da.astype(np.float32), units, name)
    out.attrs = {"units": out.attrs["units"], "long_name": out.attrs["long_name"]}
    return out


def _precipitation(raw: xr.Dataset, native: int, step: int) -> xr.DataArray:
    candidates = {n: h for n, h in _PRECIP_HOURS.items() if n in raw.data_vars}
    exact = [n for n, h in candidates.items() if h == step]
    if exact:
        da = raw[exact[0]]
        return _finish(da, "tp", _source_units(da, "m"))
    per_step = [n for n, h in candidates.items() if h == native]
    if per_step:
        da = raw[per_step[0]]
        factor = step // native
        if factor > 1:
            # Sum the accumulations of the store steps inside each output step, ending at the output time.
            da = da.rolling(time=factor, min_periods=factor).sum()
        return _finish(da, "tp", _source_units(raw[per_step[0]], "m"))
    raise DataError(
        f"Cannot build tp over {step} h from this store: its precipitation variables accumulate over "
        f"{ {n: f'{h} h' for n, h in candidates.items()} }, and none matches {step} h or the store's "
        f"{native}-hour step."
    )
