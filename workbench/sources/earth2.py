"""Earth2Studio data sources (``earth2studio.data``: GFS, HRRR, ARCO, CDS, WB2, Random...) in canonical form.

An Earth2Studio data source is called with times and variables and returns a DataArray of dims
``(time, variable, lat, lon)`` (latitude descending) in Earth2Studio's lexicon, which the workbench's
follows (``t2m``, ``u10m``, ``z500``). :func:`from_earth2_source` turns that into the workbench's
canonical Dataset: one variable per name, dims ``(time, latitude, longitude)``, latitude ascending,
longitude in [0, 360), units from the lexicon. Earth2Studio is the optional extra ``earth2``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from workbench import lexicon
from workbench.errors import DataError


def from_earth2_array(da: xr.DataArray) -> xr.Dataset:
    """An Earth2Studio DataArray ``(time, variable, lat, lon)`` as a canonical Dataset.

    Raises
    ------
    DataError
        Dims other than Earth2Studio's, or a variable the workbench has no name for (the message lists
        the ones it has).
    """
    missing = [d for d in ("time", "variable") if d not in da.dims]
    if missing:
        raise DataError(f"An Earth2Studio data array has dims (time, variable, ...); this one has {da.dims}.")
    da = da.rename({k: v for k, v in {"lat": "latitude", "lon": "longitude"}.items() if k in da.dims})
    out = {}
    unknown = []
    for raw in np.asarray(da["variable"].values).tolist():
        name = lexicon.earth2_name(str(raw))
        if name is None:
            unknown.append(str(raw))
            continue
        field = da.sel(variable=raw, drop=True).astype(np.float32)
        field.attrs = {"units": lexicon.info(name).units, "long_name": lexicon.info(name).long_name}
        out[name] = field.rename(name)
    if unknown:
        raise DataError(
            f"Earth2Studio variables {unknown} have no workbench name; known: {lexicon.summarize_names(list(lexicon.VARIABLES))}."
        )
    ds = xr.Dataset(out)
    if "latitude" in ds.dims:
        lat = np.asarray(ds["latitude"].values)
        if lat.size > 1 and lat[0] > lat[-1]:
            ds = ds.isel(latitude=slice(None, None, -1))
    if "longitude" in ds.dims:
        lon = np.mod(np.asarray(ds["longitude"].values, dtype=np.float64), 360.0)
        order = np.argsort(lon, kind="stable")
        ds = ds.isel(longitude=order).assign_coords(longitude=lon[order])
    return ds


def from_earth2_source(source: Any, times: Sequence[Any] | Any, variables: Sequence[str]) -> xr.Dataset:
    """Fetch ``variables`` at ``times`` from an Earth2Studio data source, in canonical form.

    Parameters
    ----------
    source : earth2studio data source
        Any object called as ``source(time, variable)`` returning Earth2Studio's DataArray layout.
    times : datetime-like or sequence of them
    variables : sequence of str
        Canonical names (the same in Earth2Studio's lexicon).
    """
    index = pd.DatetimeIndex(pd.to_datetime(np.atleast_1d(np.asarray(times))))
    names = [str(v) for v in variables]
    back = {v: k for k, v in lexicon.EARTH2_NAMES.items() if k != v}
    try:
        da = source([t.to_pydatetime() for t in index], [back.get(n, n) for n in names])
    except Exception as exc:  # data sources raise their own types for network and request errors
        raise DataError(
            f"The Earth2Studio source {type(source).__name__} failed: {type(exc).__name__}: {exc}"
        ) from None
    return from_earth2_array(da)
