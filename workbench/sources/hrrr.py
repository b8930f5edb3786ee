"""HRRR analyses and forecasts from the public zarr archive or from GRIB2 files, in canonical form.

Two real layouts are read:

* **The HRRR zarr archive** (University of Utah, ``s3://hrrrzarr``): one store per model run,
  ``sfc/YYYYMMDD/YYYYMMDD_HHz_anl.zarr`` (the analysis) and ``..._fcst.zarr`` (hourly forecasts: 48 h
  from the 00/06/12/18 UTC runs, 18 h from the others). Inside, each field is a group
  ``<level>/<VAR>`` (e.g. ``2m_above_ground/TMP``) holding the coordinate arrays
  (``projection_x_coordinate``, ``projection_y_coordinate``, ``time``, ``forecast_period``,
  ``forecast_reference_time``) and a sub-group ``<level>`` with the data array ``<VAR>`` of dims
  ``(projection_y_coordinate, projection_x_coordinate)`` for analyses or
  ``(time, projection_y_coordinate, projection_x_coordinate)`` for forecasts, where time index 0 is the
  1-hour forecast. Fields are often stored as float16.
* **NCEP's GRIB2 surface files** (``hrrr.tHHz.wrfsfcfFF.grib2``), read with cfgrib one variable at a
  time (``filter_by_keys`` on shortName, typeOfLevel and level).

Both come out on the workbench's grid convention (:func:`workbench.grids.hrrr_grid` at 3 km): dims
``(time, y, x)`` for analyses or ``(init_time, lead_time, y, x)`` for forecasts, 1-D ``y``/``x`` in
projection metres, 2-D ``latitude``/``longitude``, and for forecasts a 2-D ``valid_time``. A store or
file covering part of the domain lands on the matching rows and columns.

Conversions: geopotential height (gpm) times g gives ``z500`` (m2 s-2); APCP (kg m-2) over 1000 gives
``tp`` in metres; HRRR winds are relative to the grid, so ``u``/``v`` pairs are rotated to east/north
components with the Lambert cone angle. ``tp`` is the 1-hour accumulation ending at the valid time: in
GRIB the message whose accumulation lasts one hour, in the zarr archive ``surface/APCP_1hr_acc_fcst``.
Analyses carry no precipitation, so an analysis ``tp`` at hour *t* is taken from the 1-hour forecast of
the run started at *t* - 1 h.
"""

from __future__ import annotations

import glob
import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from workbench import lexicon
from workbench.errors import DataError, GridError
from workbench.grids import LambertConformalGrid, hrrr_grid
from workbench.sources.remote import check_remote, fetch, is_remote, storage_options_for

#: Root of the public HRRR zarr archive.
HRRR_ZARR_ROOT = "s3://hrrrzarr"

#: NOAA's public HRRR GRIB2 archive (surface files), for :func:`hrrr_grib_url`.
HRRR_GRIB_URL = "https://noaa-hrrr-bdp-pds.s3.amazonaws.com/hrrr.{init:%Y%m%d}/conus/hrrr.t{init:%H}z.wrfsfcf{lead:02d}.grib2"

#: Variables returned when none are asked for.
DEFAULT_VARIABLES = lexicon.SAMPLE_VARIABLES

#: Canonical name -> group path in the zarr archive (inverse of the lexicon's map).
ZARR_PATHS: dict[str, str] = {name: path for path, (name, _units) in lexicon.HRRR_ZARR_NAMES.items()}
_ZARR_UNITS: dict[str, str] = {name: units for _path, (name, units) in lexicon.HRRR_ZARR_NAMES.items()}

#: Pairs of grid-relative wind components that are rotated together.
_WIND_PAIRS = [("u10m", "v10m")] + [(f"u{lev}", f"v{lev}") for lev in lexicon.PRESSURE_LEVELS]

_GRID_TOLERANCE = 0.02  # fraction of a grid cell within which a coordinate counts as on the grid


def hrrr_zarr_url(init_time: str | pd.Timestamp, kind: str = "anl", root: str = HRRR_ZARR_ROOT) -> str:
    """The archive store of one run: ``<root>/sfc/YYYYMMDD/YYYYMMDD_HHz_<kind>.zarr``."""
    t = pd.Timestamp(init_time)
    if kind not in ("anl", "fcst"):
        raise DataError(f"kind must be 'anl' (analysis) or 'fcst' (forecast), got {kind!r}.")
    return f"{str(root).rstrip('/')}/sfc/{t:%Y%m%d}/{t:%Y%m%d_%H}z_{kind}.zarr"


def hrrr_grib_url(init_time: str | pd.Timestamp, lead_hours: int = 0) -> str:
    """NOAA's URL of a surface GRIB2 file, ``hrrr.tHHz.wrfsfcfFF.grib2``."""
    return HRRR_GRIB_URL.format(init=pd.Timestamp(init_time), lead=int(lead_hours))


# ---------------------------------------------------------------------------------------------------
# Grid
# ---------------------------------------------------------------------------------------------------


def _grid_indices(values: np.ndarray, origin: float, spacing: float, size: int, axis: str) -> np.ndarray:
    index = np.rint((np.asarray(values, dtype=np.float64) - origin) / spacing).astype(np.int64)
    off = np.abs(origin + index * spacing - values)
    if (index < 0).any() or (index >= size).any() or (off > _GRID_TOLERANCE * spacing).any():
        raise GridError(
            f"The file's {axis} coordinates ({values[0]:.1f} .. {values[-1]:.1f} m) do not fall on the HRRR "
            f"3-km grid (first {axis} {origin:.1f} m, spacing {spacing:.0f} m, {size} points)."
        )
    return index


def _grid_coords(x: np.ndarray, y: np.ndarray, grid: LambertConformalGrid) -> dict:
    """Coordinates of the HRRR grid cells at projection coordinates ``x`` and ``y`` (1-D, metres)."""
    ix = _grid_indices(x, grid.x0, grid.dx, grid.nx, "x")
    iy = _grid_indices(y, grid.y0, grid.dx, grid.ny, "y")
    full = grid.coords()
    lat = full["latitude"][1][np.ix_(iy, ix)]
    lon = full["longitude"][1][np.ix_(iy, ix)]
    return {
        "y": ("y", grid.y[iy], full["y"][2]),
        "x": ("x", grid.x[ix], full["x"][2]),
        "latitude": (("y", "x"), lat, full["latitude"][2]),
        "longitude": (("y", "x"), lon, full["longitude"][2]),
    }


def rotate_to_earth(
    u: xr.DataArray, v: xr.DataArray, grid: LambertConformalGrid
) -> tuple[xr.DataArray, xr.DataArray]:
    """Turn grid-relative wind components into eastward/northward components.

    On a Lambert conformal grid the grid's y axis points along the central meridian, and at longitude
    ``lon`` it is turned by ``alpha = n (lon - lon0)`` from local north, with ``n`` the cone constant
    ``sin(standard parallel)``. Then ``u_east = cos(alpha) u + sin(alpha) v`` and
    ``v_north = -sin(alpha) u + cos(alpha) v``.
    """
    n = np.sin(np.deg2rad(grid.standard_parallel))
    dlon = (
        np.asarray(u["longitude"].values, dtype=np.float64) - grid.central_meridian + 180.0
    ) % 360.0 - 180.0
    alpha = xr.DataArray(n * np.deg2rad(dlon), dims=("y", "x"))
    cos, sin = np.cos(alpha), np.sin(alpha)
    u_e = (cos * u + sin * v).astype(u.dtype).transpose(*u.dims)
    v_n = (-sin * u + cos * v).astype(v.dtype).transpose(*v.dims)
    u_e.attrs, v_n.attrs = dict(u.attrs), dict(v.attrs)
    return u_e.rename(u.name), v_n.rename(v.name)


def _rotate_pairs(ds: xr.Dataset, grid: LambertConformalGrid, relative: set[str]) -> xr.Dataset:
    for u_name, v_name in _WIND_PAIRS:
        if u_name in ds and v_name in ds and (u_name in relative or v_name in relative):
            ds[u_name], ds[v_name] = rotate_to_earth(ds[u_name], ds[v_name], grid)
            for name in (u_name, v_name):
                ds[name].attrs["comment"] = "rotated from HRRR grid-relative to earth-relative components"
    return ds


def _wanted(
    variables: Sequence[str] | str | None, available: Sequence[str], what: str
) -> tuple[list[str], bool]:
    """The canonical names to read, and whether the caller named them (so missing ones are errors)."""
    if variables is None or (not isinstance(variables, str) and len(variables) == 0):
        return [v for v in DEFAULT_VARIABLES if v in available], False
    if isinstance(variables, str):
        variables = [v.strip() for v in variables.split(",") if v.strip()]
    return lexicon.resolve_names(list(variables), list(available), what), True


def _with_partners(names: list[str]) -> list[str]:
    """Add the other component of every wind pair, needed for the rotation."""
    out = list(names)
    for u_name, v_name in _WIND_PAIRS:
        if (u_name in out) != (v_name in out):
            out.append(v_name if u_name in out else u_name)
    return out


def _to_canonical(da: xr.DataArray, name: str, units: str) -> xr.DataArray:
    units = str(units).strip()
    if name == "refc" and units in ("dB", "dbz"):
        units = "dBZ"  # reflectivity in dB of Z is dBZ; GRIB tables label it "dB"
    out = lexicon.convert_units(da.astype(np.float32), units, name)
    out.attrs = {"units": out.attrs["units"], "long_name": out.attrs["long_name"]}
    return out


# ---------------------------------------------------------------------------------------------------
# The zarr archive
# ---------------------------------------------------------------------------------------------------


def open_hrrr_zarr(
    start: str | pd.Timestamp,
    end: str | pd.Timestamp | None = None,
    *,
    variables: Sequence[str] | str | None = None,
    kind: str = "anl",
    root: str | os.PathLike = HRRR_ZARR_ROOT,
    init_step_hours: int = 6,
    lead_hours: int | None = None,
    storage_options: dict | None = None,
) -> xr.Dataset:
    """Open HRRR analyses or forecasts from the zarr archive (or a local copy of its layout).

    Parameters
    ----------
    start, end : str or Timestamp
        Inclusive range of analysis times (``kind="anl"``, hourly) or of initial times (``"fcst"``).
    variables : sequence of str, optional
        Canonical names (see :data:`ZARR_PATHS`); defaults to the sample atmosphere's variables.
    kind : {"anl", "fcst"}
        Analyses, dims ``(time, y, x)``, or forecasts, dims ``(init_time, lead_time, y, x)``.
    root : str or path
        Archive root: ``s3://hrrrzarr`` or a local directory with the same ``sfc/...`` layout.
    init_step_hours : int
        Hours between forecast initial times (6 gives the 48-hour runs at 00/06/12/18 UTC).
    lead_hours : int, optional
        Keep forecast lead times up to this many hours.
    storage_options : dict, optional
        fsspec options for a remote root (anonymous access by default).

    Returns
    -------
    xarray.Dataset
        Lazy (dask) Dataset in canonical names and units on the HRRR grid.

    Raises
    ------
    DataError
        Unknown variable, missing store or field (the message names the path), remote root unreachable.
    """
    if kind not in ("anl", "fcst"):
        raise DataError(f"kind must be 'anl' (analysis) or 'fcst' (forecast), got {kind!r}.")
    root = os.fspath(root)
    # Every field, tp included, is available for both kinds: analysis tp comes from the previous run.
    wanted, _explicit = _wanted(variables, list(ZARR_PATHS), f"the HRRR zarr archive ({kind})")
    names = _with_partners(wanted)
    if is_remote(root):
        check_remote(root)
    t0 = pd.Timestamp(start)
    t1 = pd.Timestamp(end) if end is not None and str(end) != "" else t0
    if t1 < t0:
        raise DataError(f"end ({t1}) is before start ({t0}).")
    grid = hrrr_grid(3.0)
    options = storage_options_for(root, storage_options) if is_remote(root) else None

    if kind == "anl":
        times = pd.date_range(t0.floor("h"), t1, freq="h")
        fields = {}
        for name in names:
            if name == "tp":
                parts = [
                    _zarr_field(hrrr_zarr_url(t - pd.Timedelta(hours=1), "fcst", root), name, options, "fcst")
                    .isel(lead_time=0)
                    .drop_vars("lead_time")
                    for t in times
                ]
            else:
                parts = [_zarr_field(hrrr_zarr_url(t, "anl", root), name, options, "anl") for t in times]
            fields[name] = xr.concat(parts, dim=pd.Index(times, name="time"), join="override")
        ds = xr.Dataset(fields)
    else:
        inits = pd.date_range(t0, t1, freq=f"{int(init_step_hours)}h")
        fields = {}
        for name in names:
            parts = [
                _zarr_field(hrrr_zarr_url(t, "fcst", root), name, options, "fcst").expand_dims(init_time=[t])
                for t in inits
            ]
            fields[name] = xr.concat(parts, dim="init_time", join="outer")
        ds = xr.Dataset(fields)
        if lead_hours is not None:
            ds = ds.sel(lead_time=ds.lead_time <= pd.Timedelta(hours=int(lead_hours)))
        ds = ds.assign_coords(valid_time=ds.init_time + ds.lead_time)
    ds = _place_on_grid(ds, grid)
    ds = _rotate_pairs(ds, grid, relative=set(names))
    ds = ds[wanted]
    ds.attrs = {"source": f"HRRR zarr archive ({root})", "kind": "analysis" if kind == "anl" else "forecast"}
    return ds


def _zarr_field(store: str, name: str, options: dict | None, kind: str) -> xr.DataArray:
    """One field of one run: dims ``(projection_y, projection_x)`` or ``(lead_time, ...)`` for forecasts."""
    path = ZARR_PATHS[name]
    level, var = path.split("/")
    try:
        outer = xr.open_zarr(store, group=path, consolidated=False, chunks={}, storage_options=options)
        inner = xr.open_zarr(
            store, group=f"{path}/{level}", consolidated=False, chunks={}, storage_options=options
        )
    except Exception as exc:  # zarr raises several unrelated types for a missing group or store
        raise DataError(
            f"Cannot open HRRR field {path} (for {name!r}) in {store}: {type(exc).__name__}: {exc}. The archive "
            "has one store per run; check the date, the hour and the kind (anl or fcst)."
        ) from None
    if var not in inner.data_vars:
        raise DataError(f"{store}/{path}/{level} holds {list(inner.data_vars)}, not {var}.")
    da = inner[var]
    units = da.attrs.get("units") or _ZARR_UNITS[name]
    da = da.assign_coords(
        projection_x_coordinate=np.asarray(outer["projection_x_coordinate"].values, dtype=np.float64),
        projection_y_coordinate=np.asarray(outer["projection_y_coordinate"].values, dtype=np.float64),
    )
    if kind == "anl" and "time" in da.dims:
        da = da.isel(time=0)  # some analysis stores keep a length-1 time axis
    if "time" in da.dims:
        init = _run_time(store)
        n = da.sizes["time"]
        valid = outer["time"].values if "time" in outer.coords or "time" in outer.data_vars else None
        if (
            valid is not None
            and np.issubdtype(np.asarray(valid).dtype, np.datetime64)
            and np.size(valid) == n
        ):
            lead = pd.to_datetime(np.asarray(valid)) - init
        else:
            lead = pd.to_timedelta(np.arange(1, n + 1), unit="h")  # index 0 is the 1-hour forecast
        da = da.rename(time="lead_time").assign_coords(lead_time=np.asarray(lead, dtype="timedelta64[ns]"))
    da = da.drop_vars([c for c in da.coords if c not in da.dims])
    return _to_canonical(da, name, units)


def _run_time(store: str) -> pd.Timestamp:
    stem = os.path.basename(store.rstrip("/")).split("z_")[0]
    return pd.Timestamp(pd.to_datetime(stem, format="%Y%m%d_%H"))


def _place_on_grid(ds: xr.Dataset, grid: LambertConformalGrid) -> xr.Dataset:
    x = np.asarray(ds["projection_x_coordinate"].values)
    y = np.asarray(ds["projection_y_coordinate"].values)
    ds = ds.drop_vars(["projection_x_coordinate", "projection_y_coordinate"])
    ds = ds.rename({"projection_x_coordinate": "x", "projection_y_coordinate": "y"})
    if y.size > 1 and y[0] > y[-1]:
        ds, y = ds.isel(y=slice(None, None, -1)), y[::-1]
    ds = ds.assign_coords(_grid_coords(x, y, grid))
    order = [d for d in ("time", "init_time", "lead_time", "y", "x") if d in ds.dims]
    return ds.transpose(*order)


# ---------------------------------------------------------------------------------------------------
# GRIB2
# ---------------------------------------------------------------------------------------------------


def _grib_filters() -> dict[str, dict]:
    """Canonical name -> cfgrib ``filter_by_keys`` for the HRRR surface files."""
    filters: dict[str, dict] = {}
    single_levels = {"2t": 2, "2d": 2, "10u": 10, "10v": 10}
    for (short, level_type), (target, upper, units) in lexicon.HRRR_GRIB_NAMES.items():
        if upper:
            for lev in lexicon.PRESSURE_LEVELS:
                filters[lexicon.level_name(target, lev)] = {
                    "keys": {"shortName": short, "typeOfLevel": level_type, "level": lev},
                    "units": units,
                }
        else:
            keys = {"shortName": short, "typeOfLevel": level_type}
            if short in single_levels:
                keys["level"] = single_levels[short]
            if target == "tp":
                # wrfsfcfFF holds both the run-total and the last hour's accumulation; keep the last hour.
                keys.update({"stepType": "accum", "lengthOfTimeRange": 1})
            filters[target] = {"keys": keys, "units": units}
    return filters


GRIB_FILTERS = _grib_filters()


def _grib_paths(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    out: list[str] = []
    for item in items:
        text = os.fspath(item)
        if is_remote(text):
            out.append(str(fetch(text, "hrrr-grib")))
        elif glob.has_magic(text):
            found = sorted(glob.glob(text))
            if not found:
                raise DataError(f"No GRIB2 files match {text!r}.")
            out += found
        elif not os.path.exists(text):
            raise DataError(f"No GRIB2 file at {text!r}.")
        else:
            out.append(text)
    if not out:
        raise DataError("No GRIB2 files given.")
    return out


def _index_path(path: str) -> str:
    # cfgrib's index lives outside the data directory (which may be read-only) and is reused per file.
    folder = Path(tempfile.gettempdir()) / "workbench-cfgrib"
    folder.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:16]
    return str(folder / f"{key}.{{short_hash}}.idx")


def _open_grib_variable(path: str, name: str) -> xr.DataArray | None:
    spec = GRIB_FILTERS[name]
    try:
        ds = xr.open_dataset(
            path,
            engine="cfgrib",
            chunks={},
            backend_kwargs={
                "filter_by_keys": spec["keys"],
                "indexpath": _index_path(path),
                "read_keys": ["uvRelativeToGrid", "LoVInDegrees", "Latin1InDegrees"],
            },
        )
    except Exception as exc:
        raise DataError(f"Cannot read {path} as GRIB2 with cfgrib: {type(exc).__name__}: {exc}") from None
    if not ds.data_vars:
        return None
    da = ds[next(iter(ds.data_vars))]
    return da


def open_hrrr_grib(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    variables: Sequence[str] | str | None = None,
    kind: str = "auto",
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    lead_hours: int | None = None,
    init_step_hours: int | None = None,
) -> xr.Dataset:
    """Read HRRR GRIB2 surface files (``hrrr.tHHz.wrfsfcfFF.grib2``) into the canonical layout.

    Files valid at the same time are merged first, so byte-range subsets holding different variables
    (one file per field, as fetched by index) combine into one Dataset.

    Parameters
    ----------
    paths : path, glob pattern, URL, or a sequence of them
        GRIB2 files; URLs are downloaded once into the cache.
    variables : sequence of str, optional
        Canonical names (see :data:`GRIB_FILTERS`) or ECMWF short names (``2t``, ``10u``). By default,
        the sample atmosphere's variables that every time holds; names asked for explicitly must be
        present at every time.
    kind : {"auto", "analysis", "forecast"}
        Layout of the result: ``(time, y, x)`` or ``(init_time, lead_time, y, x)``. ``"auto"`` gives an
        analysis when every file is a zero-hour forecast.
    start, end : str or Timestamp, optional
        Inclusive range of analysis (valid) times, or of initial times for forecasts.
    lead_hours : int, optional
        Forecasts only: keep lead times up to this many hours.
    init_step_hours : int, optional
        Forecasts only: keep initial times on this step from ``start`` (as the zarr archive reader does).

    Returns
    -------
    xarray.Dataset
        Lazy Dataset in canonical names and units on the HRRR grid.

    Raises
    ------
    DataError
        Missing files or variables (the message lists what the files hold), a grid-relative wind
        component without its partner (it cannot be rotated to east/north), nothing inside the requested
        times or leads (the message says what the files cover), or files of mixed kinds.
    GridError
        Files on another projection than HRRR's.
    """
    if kind not in ("auto", "analysis", "forecast"):
        raise DataError(f"kind must be 'auto', 'analysis' or 'forecast', got {kind!r}.")
    files = _grib_paths(paths)
    names, explicit = _wanted(variables, list(GRIB_FILTERS), "HRRR GRIB2 files")
    read_names = _with_partners(names)
    grid = hrrr_grid(3.0)

    per_file = []
    relative: set[str] = set()
    for path in files:
        fields = {}
        for name in read_names:
            da = _open_grib_variable(path, name)
            if da is None:
                continue
            if da.attrs.get("GRIB_uvRelativeToGrid") == 1:
                relative.add(name)
            _check_projection(da, path)
            fields[name] = da
        if not fields:
            raise DataError(
                f"{path} holds none of {read_names}; HRRR variables readable from GRIB2: {sorted(GRIB_FILTERS)}."
            )
        per_file.append((path, _grib_file_dataset(fields, grid)))

    merged = _merge_same_time(per_file)
    merged = _check_wind_pairs(merged, relative, names, explicit)
    _check_missing(merged, names, explicit)
    ds = _combine_grib([m for _paths, m in merged], kind)
    ds = _select_times(ds, start, end, lead_hours, init_step_hours)
    ds = _rotate_pairs(ds, grid, relative)
    keep = [n for n in names if n in ds]
    if not explicit:
        # Without an explicit list, keep only fields present at every time (no all-NaN holes).
        keep = [n for n in keep if all(n in m for _paths, m in merged)]
    if not keep:
        held = {", ".join(p): sorted(m.data_vars) for p, m in merged}
        raise DataError(
            f"No variable of {list(names)} is held at every time of these GRIB2 files; they hold {held}. "
            "Pass files covering the same variables at every time, or name the variables to read."
        )
    ds = ds[keep]
    ds.attrs = {"source": "HRRR GRIB2", "kind": "analysis" if "time" in ds.dims else "forecast"}
    return ds


def _file_key(ds: xr.Dataset) -> tuple[pd.Timestamp, pd.Timedelta]:
    return pd.Timestamp(ds["time"].values), pd.Timedelta(ds["step"].values)


def _merge_same_time(per_file: list[tuple[str, xr.Dataset]]) -> list[tuple[list[str], xr.Dataset]]:
    """Merge the files of each (initial time, lead time): subsets of one wrfsfcfFF file become one."""
    groups: dict[tuple, list[tuple[str, xr.Dataset]]] = {}
    for path, ds in per_file:
        groups.setdefault(_file_key(ds), []).append((path, ds))
    out = []
    for key in sorted(groups):
        members = groups[key]
        seen: dict[str, str] = {}
        for path, ds in members:
            for name in ds.data_vars:
                if name in seen:
                    raise DataError(
                        f"{seen[name]} and {path} both hold {name!r} for the run of {key[0]} at +{key[1]}; "
                        "pass each field once per time."
                    )
                seen[name] = path
        merged = xr.merge([ds for _p, ds in members], join="outer", compat="override", combine_attrs="drop_conflicts")
        out.append(([p for p, _ds in members], merged))
    return out


def _check_wind_pairs(
    merged: list[tuple[list[str], xr.Dataset]], relative: set[str], names: list[str], explicit: bool
) -> list[tuple[list[str], xr.Dataset]]:
    """Refuse (or, for default variables, drop) a grid-relative wind component whose partner is absent.

    HRRR winds are relative to the Lambert grid; on its domain the grid turns by up to 22.8 degrees
    from north, so one component alone is neither eastward nor northward and cannot be labelled so.
    """
    out = []
    for paths, ds in merged:
        for u_name, v_name in _WIND_PAIRS:
            present = [n for n in (u_name, v_name) if n in ds]
            if len(present) != 1 or present[0] not in relative:
                continue
            lone = present[0]
            other = v_name if lone == u_name else u_name
            if explicit and lone in names:
                raise DataError(
                    f"{', '.join(paths)} hold{'s' if len(paths) == 1 else ''} the grid-relative wind component "
                    f"{lone!r} without {other!r}; both are needed to rotate it to east/north components. "
                    f"Add the file (or byte range) holding {other!r}."
                )
            ds = ds.drop_vars(lone)
        out.append((paths, ds))
    return out


def _check_missing(merged: list[tuple[list[str], xr.Dataset]], names: list[str], explicit: bool) -> None:
    if not explicit:
        return
    for paths, ds in merged:
        missing = [n for n in names if n not in ds]
        if missing:
            hint = (
                " HRRR analyses (f00) carry no 1-hour precipitation; read the f01 files."
                if "tp" in missing
                else ""
            )
            raise DataError(
                f"{', '.join(paths)} hold{'s' if len(paths) == 1 else ''} no message for {missing} "
                f"(found {sorted(ds.data_vars)}).{hint}"
            )


def _select_times(
    ds: xr.Dataset,
    start: str | pd.Timestamp | None,
    end: str | pd.Timestamp | None,
    lead_hours: int | None,
    init_step_hours: int | None,
) -> xr.Dataset:
    """Apply the catalog's time parameters, refusing a request the files do not cover."""
    t0 = None if start is None or str(start) == "" else pd.Timestamp(start)
    t1 = None if end is None or str(end) == "" else pd.Timestamp(end)
    if t0 is not None and t1 is not None and t1 < t0:
        raise DataError(f"end ({t1}) is before start ({t0}).")
    dim = "time" if "time" in ds.dims else "init_time"
    times = ds[dim].to_index()
    keep = np.ones(times.size, dtype=bool)
    if t0 is not None:
        keep &= times >= t0
    if t1 is not None:
        keep &= times <= t1
    if dim == "init_time" and init_step_hours:
        origin = t0 if t0 is not None else times[0]
        keep &= ((times - origin) % pd.Timedelta(hours=int(init_step_hours))) == pd.Timedelta(0)
    if not keep.any():
        what = "analysis times" if dim == "time" else "initial times"
        step = f" every {init_step_hours} h" if dim == "init_time" and init_step_hours else ""
        raise DataError(
            f"The GRIB2 files hold {what} {[str(t) for t in times]}, none between {t0} and {t1}{step}. "
            "Set start/end to the files' times, or pass the files of the times you want."
        )
    ds = ds.isel({dim: np.flatnonzero(keep)})
    if lead_hours is not None and dim == "init_time":
        if int(lead_hours) < 0:
            raise DataError(f"lead_hours must be 0 or more, got {lead_hours}.")
        leads = ds["lead_time"].to_index()
        within = leads <= pd.Timedelta(hours=int(lead_hours))
        if not within.any():
            raise DataError(
                f"The GRIB2 files hold lead times {[int(h) for h in leads / pd.Timedelta(hours=1)]} h, "
                f"none up to lead_hours={lead_hours}."
            )
        ds = ds.isel(lead_time=np.flatnonzero(within))
    return ds


def _check_projection(da: xr.DataArray, path: str) -> None:
    if da.attrs.get("GRIB_gridType") not in (None, "lambert"):
        raise GridError(
            f"{path}: grid type {da.attrs.get('GRIB_gridType')!r}; HRRR files are on a Lambert grid."
        )
    lov = da.attrs.get("GRIB_LoVInDegrees")
    latin = da.attrs.get("GRIB_Latin1InDegrees")
    if lov is not None and abs(((float(lov) + 180.0) % 360.0 - 180.0) - (-97.5)) > 1e-3:
        raise GridError(f"{path}: Lambert grid centred on {lov} degrees east; HRRR's is 262.5 (97.5 W).")
    if latin is not None and abs(float(latin) - 38.5) > 1e-3:
        raise GridError(f"{path}: standard parallel {latin}; HRRR's is 38.5 N.")


def _grib_file_dataset(fields: dict[str, xr.DataArray], grid: LambertConformalGrid) -> xr.Dataset:
    first = next(iter(fields.values()))
    lat = np.asarray(first["latitude"].values, dtype=np.float64)
    lon = np.asarray(first["longitude"].values, dtype=np.float64)
    x2, y2 = grid.project(lat, lon)
    x, y = x2[0, :], y2[:, 0]
    out = {}
    for name, da in fields.items():
        spec = GRIB_FILTERS[name]
        units = da.attrs.get("units") or spec["units"]
        keep = {"time", "step"}
        da = da.drop_vars([c for c in da.coords if c not in keep and c not in da.dims])
        out[name] = _to_canonical(da, name, units)
    ds = xr.Dataset(out)
    if y.size > 1 and y[0] > y[-1]:
        ds, y = ds.isel(y=slice(None, None, -1)), y[::-1]
    return ds.assign_coords(_grid_coords(x, y, grid))


def _combine_grib(per_file: list[xr.Dataset], kind: str) -> xr.Dataset:
    steps = [pd.Timedelta(ds["step"].values) for ds in per_file]
    if kind == "auto":
        kind = "analysis" if all(s == pd.Timedelta(0) for s in steps) else "forecast"
    if kind == "analysis":
        valid = [pd.Timestamp(ds["time"].values) + s for ds, s in zip(per_file, steps, strict=True)]
        if len(set(valid)) != len(valid):
            raise DataError("Two GRIB2 files are valid at the same time; pass one file per analysis hour.")
        order = np.argsort(np.asarray(valid, dtype="datetime64[ns]"))
        parts = [per_file[i].drop_vars(["time", "step"]) for i in order]
        return xr.concat(parts, dim=pd.Index([valid[i] for i in order], name="time"), join="outer")
    by_init: dict[pd.Timestamp, list[xr.Dataset]] = {}
    for ds, s in zip(per_file, steps, strict=True):
        init = pd.Timestamp(ds["time"].values)
        part = ds.drop_vars(["time", "step"]).expand_dims(lead_time=[np.timedelta64(s.value, "ns")])
        by_init.setdefault(init, []).append(part)
    runs = []
    for init in sorted(by_init):
        parts = sorted(by_init[init], key=lambda p: p["lead_time"].values[0])
        runs.append(xr.concat(parts, dim="lead_time", join="outer").expand_dims(init_time=[init]))
    ds = xr.concat(runs, dim="init_time", join="outer")
    ds = ds.assign_coords(valid_time=ds.init_time + ds.lead_time)
    return ds.transpose("init_time", "lead_time", "y", "x")
