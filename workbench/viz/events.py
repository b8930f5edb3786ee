"""The event browser's table: each event's type, time, place, size and every model's error inside it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from workbench.errors import DataError
from workbench.viz.borders import state_at

_EVENT_COLUMNS = (
    "event_id",
    "event_type",
    "start",
    "end",
    "y_min",
    "y_max",
    "x_min",
    "x_max",
    "lat_min",
    "lat_max",
    "lon_min",
    "lon_max",
)


def _check_events(events: pd.DataFrame) -> None:
    missing = [c for c in _EVENT_COLUMNS if c not in events.columns]
    if missing:
        raise DataError(f"The event table is missing columns {missing}; build it with workbench.events.")


class _Footprints:
    """Each event's own mask cells inside its box, from the masks held once as a numpy array."""

    def __init__(self, masks: xr.DataArray | None) -> None:
        self.values = None
        if masks is not None:
            m = masks.transpose("event_type", "time", "y", "x")
            self.values = np.asarray(m.values, dtype=bool)
            self.types = {str(t): i for i, t in enumerate(m["event_type"].values)}
            self.times = {t: i for i, t in enumerate(m["time"].values.astype("datetime64[ns]"))}

    def cells(self, event_type: str, times: np.ndarray, ys: slice, xs: slice) -> np.ndarray | None:
        """``(t, y, x)`` footprint at ``times``, or None to use the whole box."""
        if self.values is None:
            return None
        types = [self.types[t] for t in str(event_type).split("+") if t in self.types]
        t_idx = [self.times.get(t) for t in times]
        if not types or any(i is None for i in t_idx):
            return None
        cells = self.values[types][:, t_idx, ys, xs].any(axis=0)
        return cells if cells.any() else None


def event_errors(
    events: pd.DataFrame,
    truth: xr.Dataset,
    forecasts: dict[str, xr.Dataset],
    variable: str,
    lead_hours: int,
    masks: xr.DataArray | None = None,
) -> pd.DataFrame:
    """RMSE of each model inside each event, at one lead time.

    For every event, the forecasts from all initial times whose valid time ``init + lead`` falls in the
    event's ``[start, end]`` are compared with the truth over the event's cells: the cells of its own
    mask layers inside its box when ``masks`` are given (the reports' footprint), else the whole box.
    Cells are not area-weighted: an event's box is small enough that cell areas barely differ.

    Parameters
    ----------
    events : pandas.DataFrame
        Event table (box indices on the truth's grid).
    truth : xarray.Dataset
        ``(time, y, x)``.
    forecasts : dict of str to xarray.Dataset
        ``(init_time, lead_time, y, x)`` per model.
    variable : str
        Canonical variable.
    lead_hours : int
        Lead time in hours.
    masks : xarray.DataArray, optional
        ``(event_type, time, y, x)``.

    Returns
    -------
    pandas.DataFrame
        Index ``event_id``, one column per model; NaN where no forecast verifies inside the event.
    """
    _check_events(events)
    lead = np.timedelta64(int(lead_hours), "h").astype("timedelta64[ns]")
    truth_times = truth["time"].values.astype("datetime64[ns]")
    truth_index = {t: i for i, t in enumerate(truth_times)}
    out = pd.DataFrame(index=pd.Index(events["event_id"].astype(str), name="event_id"))
    footprints = _Footprints(masks)
    starts = pd.to_datetime(events["start"]).values.astype("datetime64[ns]")
    ends = pd.to_datetime(events["end"]).values.astype("datetime64[ns]")
    for model, fc in forecasts.items():
        if variable not in fc.data_vars or lead not in set(fc["lead_time"].values.astype("timedelta64[ns]")):
            out[model] = np.nan
            continue
        da = fc[variable].sel(lead_time=lead)
        if "member" in da.dims:
            da = da.mean("member")
        inits = da["init_time"].values.astype("datetime64[ns]")
        valid = inits + lead
        verifiable = np.array([v in truth_index for v in valid])
        # One load per model and lead; events are then plain numpy slices.
        fc_values = np.asarray(da.isel(init_time=np.flatnonzero(verifiable)).transpose("init_time", "y", "x"))
        valid = valid[verifiable]
        tr_values = (
            np.asarray(truth[variable].isel(time=[truth_index[v] for v in valid]).transpose("time", "y", "x"))
            if len(valid)
            else np.empty((0,) + fc_values.shape[1:])
        )
        errors = []
        for start, end, y0, y1, x0, x1, kind in zip(
            starts,
            ends,
            events["y_min"],
            events["y_max"],
            events["x_min"],
            events["x_max"],
            events["event_type"],
            strict=True,
        ):
            pick = np.flatnonzero((valid >= start) & (valid <= end))
            if not len(pick):
                errors.append(np.nan)
                continue
            ys, xs = slice(int(y0), int(y1) + 1), slice(int(x0), int(x1) + 1)
            diff = fc_values[pick, ys, xs] - tr_values[pick, ys, xs]
            cells = footprints.cells(kind, valid[pick], ys, xs)
            sq = diff[cells] ** 2 if cells is not None else diff.ravel() ** 2
            sq = sq[np.isfinite(sq)]
            errors.append(float(np.sqrt(sq.mean())) if sq.size else np.nan)
        out[model] = errors
    return out


def event_frame(
    events: pd.DataFrame,
    errors: pd.DataFrame | None = None,
    grid=None,
    event_type: str | None = None,
    models: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The event browser's rows: type, time, place, size and each model's error.

    Parameters
    ----------
    events : pandas.DataFrame
        Event table.
    errors : pandas.DataFrame, optional
        From :func:`event_errors` (index ``event_id``).
    grid : LambertConformalGrid, optional
        The grid of the boxes; gives the size in km^2 (else in cells).
    event_type : str, optional
        Keep only events of this type (an event of ``"hail+wind"`` counts for both).
    models : sequence of str, optional
        Error columns to keep, in this order.

    Returns
    -------
    pandas.DataFrame
        Columns ``event_id, type, start, hours, place, size_km2`` (or ``cells``), then one error column
        per model; the box indices stay as hidden columns ``y_min ... x_max`` for zooming.
    """
    _check_events(events)
    ev = events.copy()
    if event_type not in (None, "", "all", "extreme"):
        ev = ev[ev["event_type"].astype(str).str.split("+").map(lambda types: event_type in types)]
    lat_c = (ev["lat_min"] + ev["lat_max"]) / 2
    lon_c = (ev["lon_min"] + ev["lon_max"]) / 2
    lon_c = (lon_c + 180.0) % 360.0 - 180.0

    def place(lat: float, lon: float) -> str:
        code = state_at(lat, lon)
        where = f"{abs(lat):.1f}°{'N' if lat >= 0 else 'S'} {abs(lon):.1f}°{'E' if lon >= 0 else 'W'}"
        return f"{code} ({where})" if code else where

    cells = (ev["y_max"] - ev["y_min"] + 1) * (ev["x_max"] - ev["x_min"] + 1)
    frame = pd.DataFrame(
        {
            "event_id": ev["event_id"].astype(str).values,
            "type": ev["event_type"].astype(str).values,
            "start": pd.to_datetime(ev["start"]).dt.strftime("%Y-%m-%d %H:%M").values,
            "hours": ((pd.to_datetime(ev["end"]) - pd.to_datetime(ev["start"])).dt.total_seconds() / 3600 + 1)
            .round()
            .astype(int)
            .values,
            "place": [place(a, b) for a, b in zip(lat_c, lon_c, strict=True)],
        }
    )
    if grid is not None:
        frame["size_km2"] = np.round(cells.values * (grid.dx / 1000.0) ** 2).astype(int)
    else:
        frame["cells"] = cells.values.astype(int)
    if errors is not None:
        cols = [m for m in (models or errors.columns) if m in errors.columns]
        joined = errors.reindex(frame["event_id"])[cols]
        for m in cols:
            frame[m] = joined[m].values.round(3)
    for c in ("y_min", "y_max", "x_min", "x_max"):
        frame[c] = ev[c].astype(int).values
    frame["start_time"] = pd.to_datetime(ev["start"]).values
    frame["end_time"] = pd.to_datetime(ev["end"]).values
    return frame.reset_index(drop=True)
