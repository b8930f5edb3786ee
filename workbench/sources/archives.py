"""Forecast archives in the canonical forecast layout: WeatherBench 2, the AI-model archive, HRRR by Herbie.

Three public layouts, each returned with dims ``(init_time, lead_time[, member], latitude, longitude)``
(or ``y, x`` for HRRR), a 2-D ``valid_time`` coordinate, canonical names and SI units:

* **WeatherBench 2 forecast stores** (``gs://weatherbench2/datasets/hres/...zarr``, ``.../pangu/...``,
  ``.../graphcast/...``): dims ``time`` (the initial time), ``prediction_timedelta`` (the lead time),
  ``level``, ``latitude``, ``longitude`` (and ``number`` for ensembles), ERA5 long names
  (``2m_temperature``, ``geopotential``), precipitation as ``total_precipitation_6hr`` or ``_24hr``.
* **The archive of AI-model forecasts run from GFS and IFS initial conditions** (NOAA/CIRA,
  ``s3://noaa-oar-mlwp-data``: FourCastNet v2, Pangu-Weather, GraphCast, Aurora): one netCDF per run,
  ``<MODEL>_<version>_<GFS|IFS>_YYYYMMDDHH_f000_f240_06.nc``, dims ``time`` (valid times, 6-hourly),
  ``level``, ``latitude`` (90 to -90), ``longitude`` (0 to 359.75), short names ``t2``, ``u10``, ``v10``,
  ``msl``, ``z``, ``t``, ``u``, ``v``, ``q`` (``apcp`` for GraphCast). The initial time is in the name.
  Runs are read whole from local files or lazily through kerchunk references
  (:mod:`workbench.sources.references`).
* **HRRR forecasts as byte-range GRIB2 subsets**, fetched by Herbie (``herbie-data``, the optional extra
  ``herbie``): only the messages of the requested fields are downloaded, then read by
  :func:`workbench.sources.hrrr.open_hrrr_grib` (which merges the subsets and rotates the winds).
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from workbench import lexicon
from workbench.errors import DataError
from workbench.sources import era5 as _era5
from workbench.sources.references import is_reference, open_reference
from workbench.sources.remote import check_remote, is_remote, storage_options_for

#: A run file of the AI-model archive: model, version, initial conditions, initial time.
AIWP_FILE = re.compile(
    r"(?P<model>[A-Z]{4})_(?P<version>v\d+)_(?P<ic>[A-Z]+)_(?P<init>\d{10})_f\d{3}_f\d{3}_\d{2}"
    r"\.(nc|json|parq|parquet)/?$"
)

#: Root of the AI-model archive (anonymous S3).
AIWP_ROOT = "s3://noaa-oar-mlwp-data"


def aiwp_url(model: str, init_time: str | pd.Timestamp, root: str = AIWP_ROOT) -> str:
    """The archive's file of one run: ``<root>/<MODEL>/<YYYY>/<mmdd>/<MODEL>_<YYYYmmddHH>_f000_f240_06.nc``.

    ``model`` is the archive's folder name with its initial conditions, e.g. ``"FOUR_v200_GFS"``.
    """
    t = pd.Timestamp(init_time)
    return f"{root.rstrip('/')}/{model}/{t:%Y}/{t:%m%d}/{model}_{t:%Y%m%d%H}_f000_f240_06.nc"


def _finish(
    ds: xr.Dataset,
    start: str | pd.Timestamp | None,
    end: str | pd.Timestamp | None,
    lead_hours: int | None,
    what: str,
) -> xr.Dataset:
    """Time selection (refusing an empty result), valid_time, and the canonical dim order."""
    inits = ds["init_time"].to_index()
    keep = np.ones(inits.size, dtype=bool)
    t0 = None if start is None or str(start) == "" else pd.Timestamp(start)
    t1 = None if end is None or str(end) == "" else pd.Timestamp(end)
    if t0 is not None:
        keep &= inits >= t0
    if t1 is not None:
        keep &= inits <= t1
    if not keep.any():
        raise DataError(
            f"{what} holds initial times {inits.min()} to {inits.max()}; none between {t0} and {t1}."
        )
    ds = ds.isel(init_time=np.flatnonzero(keep))
    if lead_hours is not None:
        within = ds["lead_time"].to_index() <= pd.Timedelta(hours=int(lead_hours))
        if not within.any():
            raise DataError(f"{what} has no lead time up to lead_hours={lead_hours}.")
        ds = ds.isel(lead_time=np.flatnonzero(within))
    ds = ds.assign_coords(valid_time=ds["init_time"] + ds["lead_time"])
    order = [d for d in ("init_time", "lead_time", "member", "latitude", "longitude") if d in ds.dims]
    return ds.transpose(*order, ...)


def _requested(variables: Sequence[str] | str | None, available: list[str], what: str) -> list[str]:
    if variables is None or (not isinstance(variables, str) and len(variables) == 0):
        wanted = [v for v in lexicon.SAMPLE_VARIABLES if v in available]
        if not wanted:
            raise DataError(f"{what} holds none of the default variables; ask for some of {available}.")
        return wanted
    if isinstance(variables, str):
        variables = [v.strip() for v in variables.split(",") if v.strip()]
    return lexicon.resolve_names(list(variables), available, what)


# ---------------------------------------------------------------------------------------------------
# WeatherBench 2
# ---------------------------------------------------------------------------------------------------


def open_wb2_forecast(
    source: str | os.PathLike | xr.Dataset,
    *,
    variables: Sequence[str] | str | None = None,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    lead_hours: int | None = None,
    storage_options: dict | None = None,
) -> xr.Dataset:
    """Open a WeatherBench 2 forecast store (HRES, ENS, Pangu, GraphCast...) in the canonical layout.

    Parameters
    ----------
    source : str, path or xarray.Dataset
        The zarr store (local path or ``gs://`` URL) or an opened Dataset in that layout.
    variables : sequence of str, optional
        Canonical or ECMWF short names; by default the sample atmosphere's that the store has.
    start, end : str or Timestamp, optional
        Inclusive range of initial times.
    lead_hours : int, optional
        Keep lead times up to this many hours.

    Returns
    -------
    xarray.Dataset
        Dims ``(init_time, lead_time[, member], latitude, longitude)``, latitude ascending, longitude in
        [0, 360); ``tp`` is the precipitation over each lead step (the store's ``_6hr`` or ``_24hr``
        variable matching the step).

    Raises
    ------
    DataError
        A missing store, dims other than WeatherBench 2's, an unknown variable (the message lists the
        valid ones), no ``tp`` matching the lead step, or nothing in the requested times.
    """
    if isinstance(source, xr.Dataset):
        raw, what = source, "this WeatherBench 2 forecast"
    else:
        url = os.fspath(source)
        what = f"the WeatherBench 2 forecast {url}"
        if is_remote(url):
            check_remote(url)
            raw = xr.open_zarr(url, chunks={}, storage_options=storage_options_for(url, storage_options))
        elif not os.path.isdir(url):
            raise DataError(f"No WeatherBench 2 forecast store at {url!r}.")
        else:
            raw = xr.open_zarr(url, chunks={})
    for dim in ("time", "prediction_timedelta", "latitude", "longitude"):
        if dim not in raw.dims:
            raise DataError(
                f"{what} lacks the dim {dim!r} (dims {list(raw.dims)}); WeatherBench 2 forecasts have time, "
                "prediction_timedelta, [level,] latitude, longitude."
            )
    raw = raw.rename({"time": "init_time", "prediction_timedelta": "lead_time"})
    if "number" in raw.dims:
        raw = raw.rename(number="member")
    raw = _era5._normalise_grid(raw)
    available = _era5.available_variables(raw)
    wanted = _requested(variables, available, what)
    leads = raw["lead_time"].to_index()
    step = (leads[1] - leads[0]) / pd.Timedelta(hours=1) if leads.size > 1 else 6.0
    out = {}
    for name in wanted:
        if name == "tp":
            out[name] = _wb2_precipitation(raw, step, what)
        else:
            out[name] = _era5._select(raw, name)
    ds = xr.Dataset(out)
    ds.attrs = {"source": what, "kind": "forecast"}
    return _finish(ds, start, end, lead_hours, what)


def _wb2_precipitation(raw: xr.Dataset, step: float, what: str) -> xr.DataArray:
    hours = {n: h for n, h in _era5._PRECIP_HOURS.items() if n in raw.data_vars}
    match = [n for n, h in hours.items() if h == step]
    if not match:
        raise DataError(
            f"{what} has lead steps of {step:g} h but its precipitation accumulates over "
            f"{ {n: f'{h} h' for n, h in hours.items()} }; tp must cover one lead step."
        )
    da = raw[match[0]]
    return _era5._finish(da, "tp", str(da.attrs.get("units") or "m"))


# ---------------------------------------------------------------------------------------------------
# The AI-model archive (one netCDF per run)
# ---------------------------------------------------------------------------------------------------


def _aiwp_paths(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    out: list[str] = []
    for item in items:
        text = os.fspath(item)
        if is_remote(text) and is_reference(text):
            out.append(text)  # a reference is small; the run's bytes are fetched chunk by chunk
            continue
        if is_remote(text):
            raise DataError(
                f"{text}: runs of the AI-model archive are 4-5 GB each; download the runs you need (e.g. "
                "`aws s3 cp --no-sign-request`) and pass the local files, or read them through kerchunk "
                "references (workbench.sources.references.build_references)."
            )
        found = sorted(glob.glob(text)) if glob.has_magic(text) else [text]
        if not found or not all(os.path.isfile(p) or (is_reference(p) and os.path.isdir(p)) for p in found):
            raise DataError(f"No AI-model archive file at {text!r}.")
        out += found
    if not out:
        raise DataError("No AI-model archive files given.")
    return out


def _aiwp_init(path: str, ds: xr.Dataset) -> pd.Timestamp:
    match = AIWP_FILE.search(os.path.basename(path.rstrip("/")))
    if match:
        return pd.Timestamp(pd.to_datetime(match.group("init"), format="%Y%m%d%H"))
    if "time" in ds.dims and ds.sizes["time"] > 0:
        return pd.Timestamp(ds["time"].values[0])  # f000 is the first output time
    raise DataError(
        f"Cannot tell the initial time of {path}: expected a name like FOUR_v200_GFS_2023100100_f000_f240_06.nc."
    )


def _aiwp_run(path: str) -> tuple[xr.Dataset, pd.Timestamp]:
    if is_reference(path):
        raw = open_reference(path)
    else:
        try:
            raw = xr.open_dataset(path, chunks={})
        except Exception as exc:  # the netCDF backends raise many unrelated types
            raise DataError(f"Cannot read {path} as netCDF: {type(exc).__name__}: {exc}") from None
    return _aiwp_canonical(path, raw)


def _aiwp_canonical(path: str, raw: xr.Dataset) -> tuple[xr.Dataset, pd.Timestamp]:
    for dim in ("time", "latitude", "longitude"):
        if dim not in raw.dims:
            raise DataError(
                f"{path} lacks the dim {dim!r} (dims {list(raw.dims)}); not an AI-model archive run."
            )
    init = _aiwp_init(path, raw)
    out = {}
    for var, (target, upper, units) in lexicon.AIWP_NAMES.items():
        if var not in raw.data_vars:
            continue
        da = raw[var]
        if upper and "level" in da.dims:
            for lev in np.asarray(raw["level"].values).astype(int):
                if int(lev) in lexicon.PRESSURE_LEVELS:
                    name = lexicon.level_name(target, int(lev))
                    out[name] = _era5._finish(
                        da.sel(level=lev).drop_vars("level"), name, str(da.attrs.get("units") or units)
                    )
        elif not upper:
            out[target] = _era5._finish(da, target, str(da.attrs.get("units") or units))
    ds = xr.Dataset(out)
    lead = ds["time"].to_index() - init
    ds = ds.rename(time="lead_time").assign_coords(lead_time=np.asarray(lead, dtype="timedelta64[ns]"))
    return ds.expand_dims(init_time=[init]), init


def open_aiwp_forecast(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    variables: Sequence[str] | str | None = None,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    lead_hours: int | None = None,
) -> xr.Dataset:
    """Read runs of the AI-model forecast archive (FourCastNet v2, Pangu, GraphCast, Aurora) canonically.

    Parameters
    ----------
    paths : path, glob pattern, or a sequence of them
        Run files, one per initial time, in the archive's layout (see the module docstring), or kerchunk
        references to them (``.json`` files or ``.parq`` folders named like the runs, local or remote:
        :mod:`workbench.sources.references`), read chunk by chunk.
    variables : sequence of str, optional
        Canonical or ECMWF short names; by default the sample atmosphere's that every run has.
    start, end : str or Timestamp, optional
        Inclusive range of initial times.
    lead_hours : int, optional
        Keep lead times up to this many hours.

    Returns
    -------
    xarray.Dataset
        Dims ``(init_time, lead_time, latitude, longitude)``, latitude ascending, longitude in [0, 360).

    Raises
    ------
    DataError
        Missing or unreadable files, two files of one initial time, an unknown variable (listing the
        valid ones), or nothing in the requested times.
    """
    files = _aiwp_paths(paths)
    runs, inits = [], []
    for path in files:
        run, init = _aiwp_run(path)
        if init in inits:
            raise DataError(f"Two files hold the run of {init}: {files[inits.index(init)]} and {path}.")
        runs.append(run)
        inits.append(init)
    common = sorted(
        set.intersection(*(set(r.data_vars) for r in runs)), key=lambda n: list(runs[0].data_vars).index(n)
    )
    what = f"the AI-model archive files ({len(files)} runs)"
    wanted = _requested(variables, common, what)
    order = np.argsort(np.asarray(inits, dtype="datetime64[ns]"))
    ds = xr.concat([runs[i][wanted] for i in order], dim="init_time", join="outer")
    ds = _era5._normalise_grid(ds)
    ds.attrs = {"source": what, "kind": "forecast"}
    return _finish(ds, start, end, lead_hours, what)


# ---------------------------------------------------------------------------------------------------
# HRRR forecasts through Herbie
# ---------------------------------------------------------------------------------------------------


def herbie_search(variables: Sequence[str]) -> str:
    """Herbie's search regex for the index lines of the canonical ``variables`` (winds in pairs)."""
    unknown = [v for v in variables if v not in lexicon.HERBIE_HRRR_SEARCH]
    if unknown:
        raise DataError(f"No HRRR index search for {unknown}; known: {sorted(lexicon.HERBIE_HRRR_SEARCH)}.")
    return "|".join(re.escape(lexicon.HERBIE_HRRR_SEARCH[v]) for v in variables)


def open_hrrr_herbie(
    start: str | pd.Timestamp,
    end: str | pd.Timestamp | None = None,
    *,
    variables: Sequence[str] | str | None = None,
    lead_hours: int = 18,
    init_step_hours: int = 6,
    save_dir: str | os.PathLike | None = None,
    herbie_options: dict | None = None,
) -> xr.Dataset:
    """HRRR forecasts, downloading only the requested fields' byte ranges with Herbie.

    Parameters
    ----------
    start, end : str or Timestamp
        Inclusive range of initial times, every ``init_step_hours``.
    variables : sequence of str, optional
        Canonical names (winds are fetched in pairs, for the rotation); defaults to t2m, u10m, v10m,
        msl, tp, refc, gust.
    lead_hours : int
        Lead times 1 .. ``lead_hours`` hours (hourly).
    save_dir : path, optional
        Where Herbie keeps the subsets; defaults to ``<cache>/herbie``.
    herbie_options : dict, optional
        More keyword arguments for ``herbie.Herbie`` (e.g. ``priority=["aws"]``).

    Returns
    -------
    xarray.Dataset
        Dims ``(init_time, lead_time, y, x)`` on the HRRR grid, as :func:`open_hrrr_grib` returns.

    Raises
    ------
    DataError
        Without Herbie installed, or when a download fails (the message names the run and lead).
    """
    try:
        from herbie import Herbie
    except ImportError:
        raise DataError(
            "HRRR through Herbie needs the herbie extra: pip install 'workbench[herbie]'."
        ) from None
    from workbench.sources.hrrr import _with_partners, open_hrrr_grib
    from workbench.sources.remote import cache_root

    if variables is None or (not isinstance(variables, str) and len(variables) == 0):
        names = ["t2m", "u10m", "v10m", "msl", "tp", "refc", "gust"]
    else:
        names = [variables] if isinstance(variables, str) else list(variables)
        names = lexicon.resolve_names(names, list(lexicon.HERBIE_HRRR_SEARCH), "HRRR through Herbie")
    search = herbie_search(_with_partners(names))
    t0 = pd.Timestamp(start)
    t1 = pd.Timestamp(end) if end is not None and str(end) != "" else t0
    if int(lead_hours) < 1:
        raise DataError(f"lead_hours must be at least 1, got {lead_hours}.")
    folder = Path(save_dir) if save_dir else cache_root() / "herbie"
    files = []
    for init in pd.date_range(t0, t1, freq=f"{int(init_step_hours)}h"):
        for lead in range(1, int(lead_hours) + 1):
            try:
                h = Herbie(
                    init, model="hrrr", product="sfc", fxx=lead, save_dir=folder, **(herbie_options or {})
                )
                path = h.download(search)
            except Exception as exc:  # Herbie raises several types for missing runs and network errors
                raise DataError(
                    f"Herbie could not fetch HRRR {init:%Y-%m-%d %H} UTC +{lead} h: {exc}"
                ) from None
            if path is None or not Path(path).exists():
                raise DataError(f"Herbie found no HRRR file for {init:%Y-%m-%d %H} UTC +{lead} h.")
            files.append(str(path))
    ds = open_hrrr_grib(files, variables=names, kind="forecast", start=t0, end=t1, lead_hours=lead_hours)
    ds.attrs["source"] = "HRRR GRIB2 subsets via Herbie"
    return ds
