"""The event browser's table: each event's type, time, place, size and every model's error inside it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from workbench.viz.borders import state_at
from workbench.workflow.derive import check_events, event_errors

__all__ = ["event_errors", "event_frame"]

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
    check_events(events)
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
