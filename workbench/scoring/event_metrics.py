"""Event metrics where an RMSE is the wrong question (after ExtremeWeatherBench's per-event metrics).

For a heat wave the questions are "how hot did the forecast say the peak would be, when would it start
and how long would it last?"; for a convective case "did the forecast have a storm there at all?". Each
function returns one row per case:

* :func:`peak_error`: the case's peak (max, or min for cold) over its box and hours, forecast minus
  observed.
* :func:`onset_duration_error`: from one forecast run (the latest started at least ``min_lead`` before
  the case), the first valid time the box passes a threshold (onset) and the span of valid times it
  does (duration), forecast minus observed, in hours.
* :func:`convective_contingency`: hit or miss of each case (a forecast cell beyond the threshold within
  ``radius_km`` of the case's box and ``window_hours`` of its hours), and the forecast's false alarms:
  its objects beyond the threshold that no case accounts for.
"""

from __future__ import annotations

import operator

import numpy as np
import pandas as pd
import xarray as xr
from scipy import ndimage

from workbench.errors import DataError

_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
_CASE_COLUMNS = {"event_id", "event_type", "start", "end", "y_min", "y_max", "x_min", "x_max"}


def _check(forecast: xr.Dataset, truth: xr.Dataset, cases: pd.DataFrame, variable: str) -> tuple[str, str]:
    if not isinstance(cases, pd.DataFrame) or not set(cases.columns) >= _CASE_COLUMNS:
        raise DataError(f"cases must be an event table with columns {sorted(_CASE_COLUMNS)}")
    if variable not in forecast or variable not in truth:
        raise DataError(f"{variable!r} must be in both forecast and truth")
    if not {"init_time", "lead_time"} <= set(forecast.dims):
        raise DataError(f"the forecast needs (init_time, lead_time) dims, it has {tuple(forecast.dims)}")
    dims = truth[variable].dims
    if {"y", "x"} <= set(dims):
        return "y", "x"
    if {"latitude", "longitude"} <= set(dims):
        return "latitude", "longitude"
    raise DataError(f"cannot find the grid dims of {variable!r}: {dims}")


def _at_lead(forecast: xr.Dataset, variable: str, lead) -> tuple[xr.DataArray, pd.DatetimeIndex]:
    lead = pd.Timedelta(lead).to_timedelta64()
    if not (forecast["lead_time"].values.astype("timedelta64[ns]") == lead).any():
        raise DataError(f"lead time {pd.Timedelta(lead)} is not in the forecast")
    fc = forecast[variable].sel(lead_time=lead)
    return fc, pd.DatetimeIndex(fc["init_time"].values + lead)


def peak_error(
    forecast: xr.Dataset,
    truth: xr.Dataset,
    cases: pd.DataFrame,
    *,
    variable: str = "t2m",
    kind: str = "max",
    lead_time="24h",
) -> pd.DataFrame:
    """Error of each case's peak value at one lead time.

    The peak is the max (``kind="max"``, heat) or min (``"min"``, cold) over the case's box and the
    hours that have both a forecast at ``lead_time`` and a truth.

    Returns
    -------
    pandas.DataFrame
        Index ``event_id``: ``event_type``, ``n_hours``, ``observed``, ``forecast``, ``error``
        (forecast - observed; NaN without a scored hour).
    """
    if kind not in ("max", "min"):
        raise DataError(f"kind must be 'max' or 'min', got {kind!r}")
    ydim, xdim = _check(forecast, truth, cases, variable)
    fc, valid = _at_lead(forecast, variable, lead_time)
    ttimes = truth.indexes["time"]
    reduce = np.nanmax if kind == "max" else np.nanmin
    rows = []
    for c in cases.itertuples(index=False):
        hours = pd.date_range(pd.Timestamp(c.start).floor("h"), pd.Timestamp(c.end), freq="h")
        hours = hours[hours.isin(valid) & hours.isin(ttimes)]
        box = {ydim: slice(int(c.y_min), int(c.y_max) + 1), xdim: slice(int(c.x_min), int(c.x_max) + 1)}
        obs = fcv = np.nan
        if len(hours):
            obs = float(reduce(truth[variable].isel(time=ttimes.get_indexer(hours), **box).values))
            fcv = float(reduce(fc.isel(init_time=valid.get_indexer(hours), **box).values))
        rows.append(
            {"event_id": c.event_id, "event_type": c.event_type, "n_hours": len(hours), "observed": obs,
             "forecast": fcv, "error": fcv - obs}
        )  # fmt: skip
    return pd.DataFrame(rows).set_index("event_id")


def _onset_span(times: pd.DatetimeIndex, passed: np.ndarray) -> tuple[pd.Timestamp | None, float]:
    if not passed.any():
        return None, 0.0
    on = times[passed]
    return on[0], (on[-1] - on[0]) / pd.Timedelta(hours=1) + 1.0


def onset_duration_error(
    forecast: xr.Dataset,
    truth: xr.Dataset,
    cases: pd.DataFrame,
    *,
    variable: str = "t2m",
    comparison: str = ">",
    threshold: float = 311.15,
    min_lead="0h",
) -> pd.DataFrame:
    """Onset and duration errors of each case from one forecast run.

    For each case the run is the latest whose ``init_time <= start - min_lead``; its valid times within
    the case's hours are compared with the truth at the same times. The box "passes" at a time when any
    of its cells does (``variable comparison threshold``). Onset: the first passing time; duration: last
    minus first passing time plus one hour.

    Returns
    -------
    pandas.DataFrame
        Index ``event_id``: ``event_type``, ``init_time``, ``observed_onset``, ``forecast_onset``,
        ``onset_error_h`` (forecast - observed, NaN when either never passes), ``observed_duration_h``,
        ``forecast_duration_h``, ``duration_error_h``.
    """
    if comparison not in _OPS:
        raise DataError(f"comparison must be one of {list(_OPS)}, got {comparison!r}")
    ydim, xdim = _check(forecast, truth, cases, variable)
    op = _OPS[comparison]
    inits = pd.DatetimeIndex(forecast["init_time"].values)
    leads = pd.TimedeltaIndex(forecast["lead_time"].values)
    ttimes = truth.indexes["time"]
    rows = []
    for c in cases.itertuples(index=False):
        start, end = pd.Timestamp(c.start), pd.Timestamp(c.end)
        box = {ydim: slice(int(c.y_min), int(c.y_max) + 1), xdim: slice(int(c.x_min), int(c.x_max) + 1)}
        usable = np.flatnonzero(inits <= start - pd.Timedelta(min_lead))
        row = {"event_id": c.event_id, "event_type": c.event_type, "init_time": pd.NaT}
        obs_on = fc_on = None
        obs_d = fc_d = np.nan
        if usable.size:
            i = int(usable[-1])
            valid = inits[i] + leads
            keep = np.flatnonzero((valid >= start) & (valid <= end) & valid.isin(ttimes))
            if keep.size:
                times = valid[keep]
                f = forecast[variable].isel(init_time=i, lead_time=keep, **box).values
                o = truth[variable].isel(time=ttimes.get_indexer(times), **box).values
                fc_on, fc_d = _onset_span(times, op(f, threshold).any(axis=(1, 2)))
                obs_on, obs_d = _onset_span(times, op(o, threshold).any(axis=(1, 2)))
                row["init_time"] = inits[i]
        row.update(
            {
                "observed_onset": obs_on if obs_on is not None else pd.NaT,
                "forecast_onset": fc_on if fc_on is not None else pd.NaT,
                "onset_error_h": (fc_on - obs_on) / pd.Timedelta(hours=1)
                if fc_on is not None and obs_on is not None
                else np.nan,
                "observed_duration_h": obs_d,
                "forecast_duration_h": fc_d,
                "duration_error_h": fc_d - obs_d,
            }
        )
        rows.append(row)
    return pd.DataFrame(rows).set_index("event_id")


def convective_contingency(
    forecast: xr.Dataset,
    cases: pd.DataFrame,
    *,
    variable: str = "refc",
    threshold: float = 50.0,
    radius_km: float = 50.0,
    window_hours: float = 2.0,
    lead_time="6h",
    spacing_km: float | None = None,
    truth: xr.Dataset | None = None,
) -> pd.DataFrame:
    """Hits, misses and false alarms of convective cases as events.

    A case is a **hit** when the forecast at ``lead_time`` has a cell ``>= threshold`` inside the case's
    box grown by ``radius_km`` (in cells of ``spacing_km``), at a valid time within ``window_hours`` of
    the case's hours; otherwise a **miss**. Each forecast object (connected cells ``>= threshold`` at one
    valid time) that touches no grown box of a case within ``window_hours`` is a **false alarm**.

    Parameters
    ----------
    spacing_km : float, optional
        Grid spacing; default ``forecast.attrs["spacing_km"]``, else read from a ``y`` coordinate in
        metres (projected grids).
    truth : xarray.Dataset, optional
        Unused by the counts; accepted for a uniform signature with the other event metrics.

    Returns
    -------
    pandas.DataFrame
        One row per case (``outcome`` ``hit`` or ``miss``) and per false alarm (``event_id``
        ``fa-<n>``, ``outcome`` ``false_alarm``, its valid time and cell count); index ``event_id``.
    """
    if not isinstance(cases, pd.DataFrame) or not set(cases.columns) >= _CASE_COLUMNS:
        raise DataError(f"cases must be an event table with columns {sorted(_CASE_COLUMNS)}")
    if variable not in forecast:
        raise DataError(f"{variable!r} is not in the forecast")
    fc, valid = _at_lead(forecast, variable, lead_time)
    dims = [d for d in fc.dims if d != "init_time"]
    if spacing_km is None:
        spacing_km = forecast.attrs.get("spacing_km")
        if spacing_km is None and "y" in forecast.coords and forecast["y"].size > 1:
            spacing_km = float(abs(forecast["y"].values[1] - forecast["y"].values[0])) / 1000.0
    if not spacing_km or spacing_km <= 0:
        raise DataError("give spacing_km (the grid spacing) to turn radius_km into cells")
    grow = int(np.ceil(radius_km / spacing_km))
    window = pd.Timedelta(hours=window_hours)
    ny, nx = fc.sizes[dims[0]], fc.sizes[dims[1]]
    exceed = np.asarray(fc.transpose("init_time", *dims).values >= threshold)
    starts = pd.to_datetime(cases.start).to_numpy()
    ends = pd.to_datetime(cases.end).to_numpy()
    boxes = np.column_stack(
        [
            np.maximum(cases.y_min.to_numpy() - grow, 0),
            np.minimum(cases.y_max.to_numpy() + grow, ny - 1),
            np.maximum(cases.x_min.to_numpy() - grow, 0),
            np.minimum(cases.x_max.to_numpy() + grow, nx - 1),
        ]
    )
    rows = []
    for k, c in enumerate(cases.itertuples(index=False)):
        near = np.flatnonzero((valid >= starts[k] - window) & (valid <= ends[k] + window))
        y0, y1, x0, x1 = boxes[k]
        hit = bool(near.size and exceed[near, y0 : y1 + 1, x0 : x1 + 1].any())
        rows.append({"event_id": c.event_id, "event_type": c.event_type, "outcome": "hit" if hit else "miss",
                     "valid_time": pd.NaT, "n_cells": np.nan})  # fmt: skip
    n_fa = 0
    for i, t in enumerate(valid):
        labels, n = ndimage.label(exceed[i], structure=np.ones((3, 3), dtype=bool))
        if not n:
            continue
        active = np.flatnonzero((starts - window <= t.to_datetime64()) & (ends + window >= t.to_datetime64()))
        covered = np.zeros((ny, nx), dtype=bool)
        for k in active:
            y0, y1, x0, x1 = boxes[k]
            covered[y0 : y1 + 1, x0 : x1 + 1] = True
        for lab in range(1, n + 1):
            cells = labels == lab
            if not (cells & covered).any():
                rows.append({"event_id": f"fa-{n_fa:04d}", "event_type": "", "outcome": "false_alarm",
                             "valid_time": t, "n_cells": int(cells.sum())})  # fmt: skip
                n_fa += 1
    return pd.DataFrame(rows).set_index("event_id")
