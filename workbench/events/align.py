"""Event masks at a forecast's valid times: the one step from masks on truth's hours to a forecast's layout.

It sits below both :mod:`workbench.events.thresholds` (whose :meth:`EventSet.at` uses it) and
:mod:`workbench.events.masks` (which re-exports it), so neither of those has to import the other.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from workbench.errors import DataError


def masks_at(masks: xr.DataArray, valid_time) -> xr.DataArray:
    """Select masks at a forecast's valid times.

    Parameters
    ----------
    masks : xarray.DataArray
        Masks with a ``time`` dimension.
    valid_time : xarray.DataArray, xarray.Dataset or array_like
        The forecast's ``valid_time`` (e.g. dims ``(init_time, lead_time)``), a forecast Dataset carrying
        that coordinate, or plain times.

    Returns
    -------
    xarray.DataArray
        Dims ``(event_type, <valid_time dims>, <grid dims>)``, with ``valid_time`` as a coordinate.

    Raises
    ------
    DataError
        When some valid times are not among the mask times (they are counted and the first ones named).
    """
    if isinstance(valid_time, xr.Dataset | xr.DataArray) and "valid_time" in valid_time.coords:
        valid_time = valid_time.coords["valid_time"]
    if "time" not in masks.dims:
        raise DataError(f"masks need a 'time' dimension; they have {tuple(masks.dims)}")
    if not isinstance(valid_time, xr.DataArray):
        vt = np.atleast_1d(np.asarray(valid_time, dtype="datetime64[ns]"))
        valid_time = xr.DataArray(vt, dims="valid_time", coords={"valid_time": vt})
    values = np.asarray(valid_time.values).astype("datetime64[ns]").ravel()
    if np.isnat(values).any():
        raise DataError(f"{int(np.isnat(values).sum())} valid times are NaT")
    have = masks["time"].values.astype("datetime64[ns]")
    missing = np.unique(values[~np.isin(values, have)])
    if missing.size:
        ts = pd.Timestamp
        span = f"{ts(have.min())} to {ts(have.max())} ({have.size} times)" if have.size else "no times"
        raise DataError(
            f"the masks do not cover {missing.size} of the forecast's valid times (first "
            f"{ts(missing[0])}, last {ts(missing[-1])}); the masks cover {span}. Build the masks on truth "
            "that spans the forecast's valid times"
        )
    out = masks.sel(time=valid_time.astype("datetime64[ns]"))
    out = out.drop_vars("time")
    if "valid_time" not in out.coords:
        out = out.assign_coords(valid_time=valid_time)
    return out
