"""HR-Extreme's case-building method, reproduced exactly (``method="hr-extreme"``).

HR-Extreme (Ran et al., 2024) builds its cases for 2020 on the 3-km HRRR grid in three steps; the
parameters below are those of its public code (``make_dataset1.py``, ``make_dataset2.py``,
``make_dataset3.py``, ``make_datasetall.py``):

1. **Storm Events episodes.** Every Storm Events row with a ``BEGIN_RANGE`` (whatever its type; for
   2020 these are the 17 :data:`HR_EXTREME_TYPES` less the SPC-only ``Wind`` and the step-3 ``Heat`` and
   ``Cold``), with its type's spaces replaced by underscores. Times are the local ``BEGIN``/``END``
   dates and the hour of ``*_TIME`` (no time-zone conversion). Per ``EPISODE_ID``, the points are each
   row's begin point and, where ``BEGIN_RANGE > 0``, the four corners of a box of ``BEGIN_RANGE x 1.61``
   km (Earth radius 6371 km) around it. An SPC report (time = the file's date plus its HHMM, floored to
   the hour) inside a row's hours (inclusive) and strictly within 1 degree of its begin point in latitude
   and in longitude is *used* (it leaves the pool of step 2; it adds the row's own point again, so the box
   does not change). The box: the cells nearest (Euclidean distance in degrees, longitudes in 0-360) to
   the (min lat, min lon) and (max lat, max lon) corners of the points, padded by 20 cells and clipped to
   the grid. ``type``: the episode's sorted unique types ``'+'``-joined; ``details``:
   ``"<type> <first begin YYYYMMDDHH> <last end YYYYMMDDHH>"`` per type, ``','``-joined.
2. **Leftover SPC reports**, per floored hour (in order of first appearance): an hour with at least 3
   reports is clustered with DBSCAN (eps 0.2, min_samples 2) on (lat, lon) scaled to ``(v - min) /
   (max - min + 1e-6)`` within the hour; if every report has its own label the hour is skipped; each
   cluster (noise dropped) is a case of its reports' types (``torn``, ``hail``, ``wind`` in order of
   appearance) whose box is its reports' nearest cells padded by 20 and clipped, one hour long.
3. **Heat and cold** from hourly 2-m temperature (C): heat hours are 1 June 12 UTC to 31 August 20 UTC
   at 12-20 UTC with more than 100 cells above 37 C; the cells above 38 C, if at least 100, are
   clustered with DBSCAN (eps 0.1, min_samples 2) on their scaled (row, column); each cluster is a
   one-hour ``heat`` case padded by 10 cells. Cold hours are 1 December 00 UTC to 31 December 00 UTC and
   1 January 00 UTC to 28 February 00 UTC (the code's ``date_range`` ends at midnight of its last day)
   with more than 100 cells below -29 C; those cells, if at least 3, are clustered the same way into
   ``cold`` cases padded by 10.

All cases: ``end_time`` clipped to ``begin_time + 3 days``; ``span = end_time - begin_time + 4 h`` (the
case covers ``begin_time`` to ``end_time + 4 h``); ``torn, hail, wind, cold, heat`` written ``Tornado,
Hail, Wind, Cold, Heat``. The index CSV (:func:`write_hr_extreme_index`) has HR-Extreme's columns
``type, bounding_box (x_min_y_min_x_max_y_max), begin_time, end_time, details, span``. The scoring
convention (per-case unweighted RMSE over the box at a 1-hour lead, averaged over cases) is
:func:`workbench.scoring.cases.case_rmse`.

Where the workbench's own method (``method="workbench"``, :func:`~workbench.events.cases.
cases_from_reports`) differs, and why it stays the default:

=========================  ==================================  =========================================
item                       HR-Extreme (this module)            workbench (default)
=========================  ==================================  =========================================
Storm Events times         local standard time, as written     converted to UTC from ``CZ_TIMEZONE``
SPC times before 12 UTC    on the file's date                  on the next day (the SPC day runs 12-12 UTC)
rows kept                  any type with a ``BEGIN_RANGE``     the types a forecast can verify, with
                                                               begin coordinates
off-grid reports           mapped to the nearest edge cell     dropped (counted in a warning)
box                        nearest cells of the lat-lon        box of every point's nearest cell, so a
                           box's two corners                   Lambert grid does not cut points off
SPC reports in an episode  add the event's point again         add their own location
tornado/wind end points    not used                            added (a track's end is in the case)
padding                    20 cells (10 for heat/cold)         60 km in cells of the target grid
leftover SPC reports       DBSCAN per hour (eps 0.2 in         single linkage within 100 km and 2 h, per
                           hour-scaled lat/lon), >= 3/hour     family; single reports kept
heat and cold              37/38 C and -29 C cell counts,      out-of-sample percentiles with physical
                           DBSCAN, one-hour cases, summer/     bounds, connected space-time objects,
                           winter months only                  any month
span                       end clipped to 3 days, + 4 h        the same
scoring                    unweighted RMSE per case, mean      area-weighted pooled cell-times
                           over cases, 1-h lead                (``decompose``), every lead
=========================  ==================================  =========================================

The clipping bounds are the target grid's last row and column (HR-Extreme's 1058 and 1798 on HRRR).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from scipy.spatial import cKDTree

from workbench._io import atomic_write
from workbench.errors import DataError
from workbench.events.grid import box_columns, grid_info
from workbench.events.reports import NCEI_REQUIRED, _parse_parts, require_columns
from workbench.events.table import make_table

#: The 17 event types of HR-Extreme's 2020 index, as its index CSV writes them.
HR_EXTREME_TYPES: tuple[str, ...] = (
    "Cold",
    "Debris_Flow",
    "Flash_Flood",
    "Flood",
    "Funnel_Cloud",
    "Hail",
    "Heat",
    "Heavy_Rain",
    "Lightning",
    "Marine_Hail",
    "Marine_High_Wind",
    "Marine_Strong_Wind",
    "Marine_Thunderstorm_Wind",
    "Thunderstorm_Wind",
    "Tornado",
    "Waterspout",
    "Wind",
)

EARTH_RADIUS_KM = 6371.0


@dataclass(frozen=True)
class HRExtremeParams:
    """The parameters of HR-Extreme's code (defaults are its values)."""

    range_factor: float = 1.61  # BEGIN_RANGE miles -> km
    spc_match_deg: float = 1.0  # strict: |dlat| < 1 and |dlon| < 1
    pad_cells: int = 20
    spc_min_per_hour: int = 3
    spc_eps: float = 0.2
    min_samples: int = 2
    heat_hour_c: float = 37.0  # an hour is a heat hour with more than heat_hour_cells cells above this
    heat_hour_cells: int = 100
    heat_cell_c: float = 38.0  # the cells clustered
    heat_min_cells: int = 100
    heat_hours: tuple[int, int] = (12, 20)
    cold_c: float = -29.0
    cold_hour_cells: int = 100
    cold_min_cells: int = 3
    temperature_eps: float = 0.1
    temperature_pad_cells: int = 10
    max_span: pd.Timedelta = pd.Timedelta(days=3)
    extend: pd.Timedelta = pd.Timedelta(hours=4)


# ---------------------------------------------------------------------------------------------------
# building blocks


def dbscan(points: np.ndarray, eps: float, min_samples: int) -> np.ndarray:
    """DBSCAN labels of ``points`` (n, d): clusters 0, 1, ... in order of their first core point, -1 noise.

    A point is a core point when at least ``min_samples`` points (itself included) lie within ``eps``
    (Euclidean, inclusive); clusters are the connected groups of core points, and a border point joins
    the first-found cluster among its core neighbours, as in scikit-learn's implementation.
    """
    points = np.asarray(points, dtype=float)
    n = len(points)
    labels = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return labels
    tree = cKDTree(points)
    neighbours = tree.query_ball_point(points, r=eps)
    core = np.array([len(nb) >= min_samples for nb in neighbours])
    cluster = 0
    for i in range(n):
        if labels[i] != -1 or not core[i]:
            continue
        labels[i] = cluster
        stack = [i]
        while stack:
            j = stack.pop()
            for k in neighbours[j]:
                if labels[k] == -1:
                    labels[k] = cluster
                    if core[k]:
                        stack.append(k)
        cluster += 1
    return labels


def _scaled(points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=float)
    lo, hi = points.min(axis=0), points.max(axis=0)
    return (points - lo) / (hi - lo + 1e-6)


def _clusters(points: np.ndarray, eps: float, min_samples: int) -> list[np.ndarray]:
    """Index arrays of HR-Extreme's clusters (none when every point has its own label)."""
    labels = dbscan(_scaled(points), eps, min_samples)
    if len(np.unique(labels)) == len(labels):
        return []
    return [np.flatnonzero(labels == lab) for lab in np.unique(labels) if lab != -1]


class _Nearest:
    """Nearest grid cell by Euclidean distance in (latitude, longitude mod 360) degrees."""

    def __init__(self, grid_like):
        self.info = grid_info(grid_like)
        lat, lon = self.info.latitude, np.mod(self.info.longitude, 360.0)
        self.shape = lat.shape
        self.tree = cKDTree(np.column_stack([lat.ravel(), lon.ravel()]))

    def __call__(self, lat, lon) -> tuple[np.ndarray, np.ndarray]:
        pts = np.column_stack([np.asarray(lat, float), np.mod(np.asarray(lon, float), 360.0)])
        _, flat = self.tree.query(pts)
        return np.unravel_index(flat, self.shape)


def _fix_type(label: str) -> str:
    for old, new in (
        ("hail", "Hail"),
        ("torn", "Tornado"),
        ("wind", "Wind"),
        ("cold", "Cold"),
        ("heat", "Heat"),
    ):
        label = label.replace(old, new)
    return label


# ---------------------------------------------------------------------------------------------------
# inputs


def _spc_frame(spc: pd.DataFrame) -> pd.DataFrame:
    """SPC reports as HR-Extreme reads them: ``datetime`` (file date + HHMM, floored), ``type``, lat, lon.

    The normalised layout of ``workbench.sources.reports.read_spc_reports`` (``time`` as datetimes,
    ``event_type``) is accepted too; its times already follow the SPC day (reports before 12 UTC on the
    next day), so only raw files reproduce HR-Extreme's times exactly.
    """
    if not isinstance(spc, pd.DataFrame):
        raise DataError(f"SPC reports: expected a pandas DataFrame, got {type(spc).__name__}")
    cols = {c.lower(): c for c in spc.columns}
    lat_c, lon_c = cols.get("lat"), cols.get("lon")
    type_c = cols.get("type") or cols.get("kind") or cols.get("event_type")
    if lat_c is None or lon_c is None or type_c is None:
        raise DataError(
            f"SPC reports need Lat, Lon and a type/kind column (torn, hail, wind); they have {list(spc.columns)}"
        )
    if "date" in cols and "time" in cols:
        date = spc[cols["date"]].astype(str).str.strip().str.replace(r"\.0$", "", regex=True)
        date = np.where(date.str.len() == 6, "20" + date, date)
        hhmm = spc[cols["time"]].astype(str).str.strip().str.zfill(4)
        when = pd.to_datetime(pd.Series(date, index=spc.index) + hhmm, format="%Y%m%d%H%M", errors="coerce")
    elif "time" in cols and pd.api.types.is_datetime64_any_dtype(spc[cols["time"]]):
        when = spc[cols["time"]]
    else:
        raise DataError("raw SPC reports need 'Time' (HHMM) and 'date' (YYMMDD) columns")
    if when.isna().any():
        bad = spc.loc[when.isna()].head(2).to_dict("records")
        raise DataError(f"cannot read {int(when.isna().sum())} SPC report times, e.g. {bad}")
    kind = (
        spc[type_c]
        .astype(str)
        .str.lower()
        .map({"torn": "torn", "tornado": "torn", "hail": "hail", "wind": "wind", "thunderstorm wind": "wind"})
    )
    if kind.isna().any():
        raise DataError(
            f"SPC report types {sorted(set(spc[type_c][kind.isna()].astype(str)))[:5]} are not torn/hail/wind"
        )
    out = pd.DataFrame(
        {
            "datetime": when.dt.floor("h").to_numpy(),
            "type": kind.to_numpy(),
            "lat": pd.to_numeric(spc[lat_c], errors="coerce").to_numpy(float),
            "lon": pd.to_numeric(spc[lon_c], errors="coerce").to_numpy(float),
        }
    )
    return out.dropna(subset=["lat", "lon"]).reset_index(drop=True)


def _storm_events(reports: pd.DataFrame, params: HRExtremeParams) -> pd.DataFrame:
    require_columns(reports, (*NCEI_REQUIRED, "BEGIN_RANGE"), "storm events table")
    rng = pd.to_numeric(reports["BEGIN_RANGE"], errors="coerce")
    sub = reports.loc[rng.notna()]
    begin, ok_b = _parse_parts(sub, "BEGIN")
    end, ok_e = _parse_parts(sub, "END")
    if not (ok_b & ok_e).all():
        ids = sub["EVENT_ID"].to_numpy()[~(ok_b & ok_e)][:5].tolist()
        raise DataError(f"cannot parse the times of storm events {ids} (YYYYMM, day, HHMM expected)")
    out = pd.DataFrame(
        {
            "episode": sub["EPISODE_ID"].to_numpy(),
            "type": sub["EVENT_TYPE"].astype(str).str.replace(" ", "_").to_numpy(),
            "begin": begin.to_numpy(),
            "end": end.to_numpy(),
            "lat": pd.to_numeric(sub["BEGIN_LAT"], errors="coerce").to_numpy(float),
            "lon": pd.to_numeric(sub["BEGIN_LON"], errors="coerce").to_numpy(float),
            "range_km": rng.loc[sub.index].to_numpy(float) * params.range_factor,
        }
    )
    if out[["lat", "lon"]].isna().any().any():
        raise DataError("storm events with a BEGIN_RANGE but no BEGIN_LAT/BEGIN_LON cannot be placed")
    return out


# ---------------------------------------------------------------------------------------------------
# the three steps (rows: type, y0, x0, y1, x1, begin, end, details, step)


def _step1(events: pd.DataFrame, spc: pd.DataFrame, near: _Nearest, p: HRExtremeParams):
    ny, nx = near.shape
    used = np.zeros(len(spc), dtype=bool)
    rows = []
    for episode in pd.unique(events.episode):
        part = events[events.episode == episode]
        lats, lons = [], []
        for r in part.itertuples(index=False):
            hit = (
                (spc.datetime >= r.begin) & (spc.datetime <= r.end)
                & (spc.lat > r.lat - p.spc_match_deg) & (spc.lat < r.lat + p.spc_match_deg)
                & (np.mod(spc.lon, 360) > np.mod(r.lon, 360) - p.spc_match_deg)
                & (np.mod(spc.lon, 360) < np.mod(r.lon, 360) + p.spc_match_deg)
            ).to_numpy()  # fmt: skip
            used |= hit
            lats.append(r.lat)
            lons.append(r.lon)
            if r.range_km > 0:
                dlat = math.degrees(r.range_km / EARTH_RADIUS_KM)
                dlon = math.degrees(r.range_km / (EARTH_RADIUS_KM * math.cos(math.radians(r.lat))))
                lats += [r.lat + dlat, r.lat + dlat, r.lat - dlat, r.lat - dlat]
                lons += [r.lon - dlon, r.lon + dlon, r.lon - dlon, r.lon + dlon]
        lons360 = np.mod(lons, 360.0)
        (y0, y1), (x0, x1) = near([min(lats), max(lats)], [lons360.min(), lons360.max()])
        y0, x0 = max(y0 - p.pad_cells, 0), max(x0 - p.pad_cells, 0)
        y1, x1 = min(y1 + p.pad_cells, ny - 1), min(x1 + p.pad_cells, nx - 1)
        types = sorted(set(part.type))
        details = ",".join(
            f"{t} {part.begin[part.type == t].min():%Y%m%d%H} {part.end[part.type == t].max():%Y%m%d%H}"
            for t in types
        )
        rows.append(("+".join(types), y0, x0, y1, x1, part.begin.min(), part.end.max(), details, 1))
    return rows, used


def _step2(spc: pd.DataFrame, near: _Nearest, p: HRExtremeParams):
    ny, nx = near.shape
    rows = []
    for hour in pd.unique(spc.datetime):
        part = spc[spc.datetime == hour]
        if len(part) < p.spc_min_per_hour:
            continue
        for idx in _clusters(part[["lat", "lon"]].to_numpy(), p.spc_eps, p.min_samples):
            cluster = part.iloc[idx]
            iy, ix = near(cluster.lat, cluster.lon)
            rows.append(
                (
                    "+".join(pd.unique(cluster.type)),
                    max(iy.min() - p.pad_cells, 0),
                    max(ix.min() - p.pad_cells, 0),
                    min(iy.max() + p.pad_cells, ny - 1),
                    min(ix.max() + p.pad_cells, nx - 1),
                    pd.Timestamp(hour),
                    pd.Timestamp(hour),
                    "",
                    2,
                )
            )
    return rows


def _is_heat_hour(t: pd.Timestamp, p: HRExtremeParams) -> bool:
    return t.month in (6, 7, 8) and p.heat_hours[0] <= t.hour <= p.heat_hours[1]


def _is_cold_hour(t: pd.Timestamp) -> bool:
    # pd.date_range(year+"1201", year+"1231", freq="h") and (year+"0101", year+"0228") end at midnight
    day = (t.month, t.day)
    if t.month == 12:
        return day < (12, 31) or (day == (12, 31) and t.hour == 0 and t.minute == 0)
    if t.month == 1 or (t.month == 2 and t.day < 28):
        return True
    return day == (2, 28) and t.hour == 0 and t.minute == 0


def _step3(t2m: xr.DataArray, info, p: HRExtremeParams):
    ny, nx = info.shape
    rows = []
    units = str(t2m.attrs.get("units", "K"))
    offset = 273.15 if units in ("K", "kelvin") else 0.0
    if units not in ("K", "kelvin", "degC", "C", "celsius"):
        raise DataError(f"t2m must be in K or degC for the heat and cold cases, not {units!r}")
    t2m = t2m.transpose("time", info.y_dim, info.x_dim)
    for k, when in enumerate(pd.DatetimeIndex(t2m["time"].values)):
        heat, cold = _is_heat_hour(when, p), _is_cold_hour(when)
        if not (heat or cold):
            continue
        img = np.asarray(t2m.isel(time=k).values, dtype=float) - offset
        for label, on, hour_cells, cells, pick in (
            ("heat", heat, img > p.heat_hour_c, p.heat_min_cells, img > p.heat_cell_c),
            ("cold", cold, img < p.cold_c, p.cold_min_cells, img < p.cold_c),
        ):
            threshold = p.heat_hour_cells if label == "heat" else p.cold_hour_cells
            if not on or hour_cells.sum() <= threshold:
                continue
            y, x = np.nonzero(pick)
            if len(y) < cells:
                continue
            pts = np.column_stack([y, x])
            for idx in _clusters(pts, p.temperature_eps, p.min_samples):
                c = pts[idx]
                pad = p.temperature_pad_cells
                rows.append(
                    (
                        label,
                        max(c[:, 0].min() - pad, 0),
                        max(c[:, 1].min() - pad, 0),
                        min(c[:, 0].max() + pad, ny - 1),
                        min(c[:, 1].max() + pad, nx - 1),
                        when,
                        when,
                        "",
                        3,
                    )
                )
    return rows


def hr_extreme_cases(
    reports: pd.DataFrame | None,
    grid_like,
    spc: pd.DataFrame | None = None,
    t2m: xr.DataArray | None = None,
    *,
    params: HRExtremeParams | None = None,
) -> pd.DataFrame:
    """HR-Extreme's cases (steps 1-3) as an event table.

    Parameters
    ----------
    reports : pandas.DataFrame, optional
        NCEI Storm Events "details" rows with their raw columns (``BEGIN_RANGE`` included).
    grid_like : xarray object or grid
        The target grid (2-D latitude/longitude or a lat-lon grid).
    spc : pandas.DataFrame, optional
        SPC reports in the raw layout (``Time`` HHMM, ``date`` YYMMDD or YYYYMMDD, ``Lat``, ``Lon`` and a
        ``type``/``kind`` column of torn/hail/wind), e.g. ``open_sample("spc")``.
    t2m : xarray.DataArray, optional
        Hourly 2-m temperature ``(time, <grid>)`` in K or degC, for step 3.
    params : HRExtremeParams, optional
        The method's parameters (default: HR-Extreme's).

    Returns
    -------
    pandas.DataFrame
        The event table (:data:`~workbench.events.table.EVENT_COLUMNS`): ``event_type`` is HR-Extreme's
        ``'+'``-joined type (``"Hail+Thunderstorm_Wind"``), ``end`` is the clipped end plus 4 hours
        (the case's last hour), ``source`` is ``hr-extreme-1/2/3``, ``details`` HR-Extreme's.

    Raises
    ------
    DataError
        Missing columns, unreadable times, nothing to build from.
    """
    p = params or HRExtremeParams()
    if reports is None and spc is None and t2m is None:
        raise DataError("give Storm Events reports, SPC reports or t2m (or several)")
    near = _Nearest(grid_like)
    spc_frame = (
        _spc_frame(spc) if spc is not None else pd.DataFrame(columns=["datetime", "type", "lat", "lon"])
    )
    rows: list[tuple] = []
    used = np.zeros(len(spc_frame), dtype=bool)
    if reports is not None:
        step1, used = _step1(_storm_events(reports, p), spc_frame, near, p)
        rows += step1
    if len(spc_frame):
        rows += _step2(spc_frame.loc[~used].reset_index(drop=True), near, p)
    if t2m is not None:
        rows += _step3(t2m, near.info, p)
    cols = ["type", "y0", "x0", "y1", "x1", "begin", "end", "details", "step"]
    raw = pd.DataFrame(rows, columns=cols)
    if not len(raw):
        return make_table([])
    begin = pd.to_datetime(raw.begin)
    end = np.minimum(pd.to_datetime(raw.end), begin + pd.Timedelta(p.max_span)) + pd.Timedelta(p.extend)
    y0, y1 = np.minimum(raw.y0, raw.y1), np.maximum(raw.y0, raw.y1)  # a Lambert grid can invert them
    x0, x1 = np.minimum(raw.x0, raw.x1), np.maximum(raw.x0, raw.x1)
    table = pd.DataFrame(
        {
            "event_id": [f"hrx{s}-{k:05d}" for k, s in enumerate(raw.step)],
            "event_type": raw.type.map(_fix_type),
            "start": begin,
            "end": end,
            **box_columns(near.info, y0, y1, x0, x1),
            "source": "hr-extreme-" + raw.step.astype(str),
            "details": raw.details,
        }
    )
    return make_table(table)


_EXTEND = pd.Timedelta(hours=4)


def to_hr_extreme_index(table: pd.DataFrame, extend: pd.Timedelta = _EXTEND) -> pd.DataFrame:
    """HR-Extreme's index layout: ``type, bounding_box, begin_time, end_time, details, span``.

    ``end_time`` is the clipped end (the table's ``end`` less ``extend``) and ``span`` is
    ``end_time - begin_time + extend``, as ``make_datasetall.py`` writes them.
    """
    from workbench.events.table import check_table

    table = check_table(table)
    end = table.end - pd.Timedelta(extend)
    return pd.DataFrame(
        {
            "type": table.event_type.to_numpy(),
            "bounding_box": [
                f"{x0}_{y0}_{x1}_{y1}"
                for x0, y0, x1, y1 in zip(table.x_min, table.y_min, table.x_max, table.y_max, strict=True)
            ],
            "begin_time": table.start.dt.strftime("%Y-%m-%d %H:%M:%S").to_numpy(),
            "end_time": end.dt.strftime("%Y-%m-%d %H:%M:%S").to_numpy(),
            "details": table.details.to_numpy(),
            "span": (end - table.start + pd.Timedelta(extend)).astype(str).to_numpy(),
        }
    )


def write_hr_extreme_index(table: pd.DataFrame, path) -> None:
    """Write :func:`to_hr_extreme_index` of ``table`` to ``path`` (CSV, no index column)."""
    index = to_hr_extreme_index(table)
    atomic_write(path, lambda tmp: index.to_csv(tmp, index=False))
