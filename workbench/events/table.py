"""The event table and the HR-Extreme-style index CSV.

Event table: one row per case or threshold object, columns :data:`EVENT_COLUMNS`:

``event_id``
    Unique string id (``ncei-<EPISODE_ID>``, ``spc-<family>-<n>``, ``thr-<label>-<n>``).
``event_type``
    The ``'+'``-joined families of the case (``"hail+wind"``); each family is a mask layer.
``start``, ``end``
    First and last valid time (inclusive, UTC, ``datetime64``) of the case.
``y_min``, ``y_max``, ``x_min``, ``x_max``
    Inclusive cell indices of the case's box on the grid it was built for (rows/columns of
    ``latitude``/``longitude`` on a lat-lon grid).
``lat_min``, ``lat_max``, ``lon_min``, ``lon_max``
    Extent of the box's cell centres, degrees (longitude in the grid's own convention).
``source``
    ``ncei``, ``ncei+spc`` (an episode that absorbed SPC reports), ``spc``, ``threshold`` or ``index``.
``details``
    The ``'+'``-joined detailed types (``"Hail+Thunderstorm Wind"``) or the threshold rule.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from workbench._io import atomic_write
from workbench.errors import DataError

EVENT_COLUMNS: tuple[str, ...] = (
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
    "source",
    "details",
)

_INT_COLUMNS = ("y_min", "y_max", "x_min", "x_max")
_FLOAT_COLUMNS = ("lat_min", "lat_max", "lon_min", "lon_max")
_STR_COLUMNS = ("event_id", "event_type", "source", "details")

INDEX_COLUMNS: tuple[str, ...] = ("type", "bounding_box", "begin_time", "end_time", "details")


def make_table(rows: list[dict] | pd.DataFrame) -> pd.DataFrame:
    """An event table with the canonical columns and dtypes (empty when ``rows`` is empty)."""
    df = pd.DataFrame(rows) if not isinstance(rows, pd.DataFrame) else rows.copy()
    missing = [c for c in EVENT_COLUMNS if c not in df.columns]
    if len(df) and missing:
        raise DataError(f"event table is missing columns {missing}")
    if not len(df):
        df = pd.DataFrame({c: [] for c in EVENT_COLUMNS})
    df = df.loc[:, list(EVENT_COLUMNS)]
    for c in ("start", "end"):
        df[c] = pd.to_datetime(df[c]).astype("datetime64[ns]")
    for c in _INT_COLUMNS:
        df[c] = df[c].astype(np.int64)
    for c in _FLOAT_COLUMNS:
        df[c] = df[c].astype(float)
    for c in _STR_COLUMNS:
        df[c] = df[c].astype(object)
    return df.reset_index(drop=True)


def check_table(table: pd.DataFrame) -> pd.DataFrame:
    """Validate an event table (columns present, boxes ordered) and return it with canonical dtypes."""
    if not isinstance(table, pd.DataFrame):
        raise DataError(f"expected an event table (pandas DataFrame), got {type(table).__name__}")
    missing = [c for c in EVENT_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(
            f"event table is missing columns {missing}; build it with cases_from_reports, "
            "threshold_events or read_index_csv"
        )
    table = make_table(table)
    bad = (table.y_min > table.y_max) | (table.x_min > table.x_max) | (table.start > table.end)
    if bad.any():
        ids = table.event_id[bad].tolist()[:5]
        raise DataError(f"{int(bad.sum())} events have min > max in their box or start > end, e.g. {ids}")
    return table


def to_index_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The event table in the layout of HR-Extreme's index CSV.

    Columns ``type`` (the event type), ``bounding_box`` (``x_min_y_min_x_max_y_max``, inclusive cell
    indices), ``begin_time``, ``end_time`` (the case's span, already capped and extended) and
    ``details``.
    """
    table = check_table(table)
    box = (
        table.x_min.astype(str)
        + "_"
        + table.y_min.astype(str)
        + "_"
        + table.x_max.astype(str)
        + "_"
        + table.y_max.astype(str)
    )
    return pd.DataFrame(
        {
            "type": table.event_type.values,
            "bounding_box": box.values,
            "begin_time": table.start.values,
            "end_time": table.end.values,
            "details": table.details.values,
        }
    )


def write_index_csv(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write the event table as an HR-Extreme-style index CSV (see :func:`to_index_frame`)."""
    frame = to_index_frame(table)
    # Atomic: a kill while writing leaves the previous index, never a truncated or empty one.
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False, date_format="%Y-%m-%d %H:%M:%S"))


def read_index_csv(path: str | os.PathLike, grid_like=None) -> pd.DataFrame:
    """Read an HR-Extreme-style index CSV back into an event table.

    Parameters
    ----------
    path : path-like
        A CSV with columns ``type, bounding_box, begin_time, end_time`` (``details`` optional), such as
        HR-Extreme's ``index_files/*.csv`` or one written by :func:`write_index_csv`. A ``span`` column
        (HR-Extreme's final index) sets the end to ``begin_time + span``.
    grid_like : xarray object or grid, optional
        The grid the boxes index; when given, ``lat_min``..``lon_max`` are filled and boxes are checked
        against its shape, otherwise those columns are NaN.
    """
    df = pd.read_csv(path)
    missing = [c for c in INDEX_COLUMNS[:4] if c not in df.columns]
    if missing:
        raise DataError(f"{path}: index CSV is missing columns {missing} (expected {list(INDEX_COLUMNS)})")
    parts = df["bounding_box"].astype(str).str.split("_", expand=True)
    if parts.shape[1] != 4:
        raise DataError(f"{path}: bounding_box must be x_min_y_min_x_max_y_max")
    try:
        box = parts.astype(np.int64)
    except ValueError as err:
        raise DataError(f"{path}: bounding_box holds non-integer values ({err})") from None
    try:
        start = pd.to_datetime(df["begin_time"])
        end = pd.to_datetime(df["end_time"])
        if "span" in df.columns:
            # HR-Extreme's final index: end_time is the clipped end, the case lasts begin_time + span
            end = start + pd.to_timedelta(df["span"])
    except (ValueError, TypeError) as err:
        raise DataError(f"{path}: cannot parse begin_time/end_time/span ({err})") from None
    lat_min = lat_max = lon_min = lon_max = np.full(len(df), np.nan)
    if grid_like is not None and len(df):
        from workbench.events.grid import grid_info

        info = grid_info(grid_like)
        ny, nx = info.shape
        if (box[2] >= nx).any() or (box[3] >= ny).any() or (box < 0).any().any():
            raise DataError(f"{path}: some boxes reach outside the {ny} x {nx} grid given")
        ext = np.array(
            [
                _extent(info.latitude, info.longitude, y0, y1, x0, x1)
                for x0, y0, x1, y1 in box.itertuples(index=False)
            ]
        )
        lat_min, lat_max, lon_min, lon_max = ext.T
    details = df["details"].fillna("").astype(str) if "details" in df.columns else df["type"].astype(str)
    rows = pd.DataFrame(
        {
            "event_id": [f"index-{i:05d}" for i in range(len(df))],
            "event_type": [_families_of_label(t) for t in df["type"].astype(str)],
            "start": start.values,
            "end": end.values,
            "y_min": box[1].values,
            "y_max": box[3].values,
            "x_min": box[0].values,
            "x_max": box[2].values,
            "lat_min": lat_min,
            "lat_max": lat_max,
            "lon_min": lon_min,
            "lon_max": lon_max,
            "source": "index",
            "details": details.values,
        }
    )
    return check_table(rows)


def _families_of_label(label: str) -> str:
    from workbench.events.types import family_of, join_types

    parts = [p for p in label.split("+") if p]
    return join_types({family_of(p) or p.strip().lower() for p in parts})


def _extent(lat, lon, y0, y1, x0, x1):
    sub_lat = lat[y0 : y1 + 1, x0 : x1 + 1]
    sub_lon = lon[y0 : y1 + 1, x0 : x1 + 1]
    return sub_lat.min(), sub_lat.max(), sub_lon.min(), sub_lon.max()
