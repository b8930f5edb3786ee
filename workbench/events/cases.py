"""Extreme-event cases from storm reports, following the HR-Extreme method.

Step 1 (Storm Events episodes). For each ``EPISODE_ID`` the case's points are every event's begin point,
its end point (tornado tracks and other events with ``END_LAT``/``END_LON``), the four corners of a box of
half-width ``BEGIN_RANGE`` miles (x 1.61 km) around the begin point where ``BEGIN_RANGE > 0``, and the SPC
reports that lie within ``spc_match_deg`` degrees of an event's begin point (in latitude and longitude)
and inside that event's time window. Those SPC reports leave the pool. The case's box is the bounding box
of the points' nearest grid cells, padded by ``pad_km`` (60 km: the 20 cells of HR-Extreme on the 3-km
HRRR grid) and clipped to the grid. Its time span runs from the earliest begin to the latest end (floored
to the hour), capped at ``max_span`` (3 days) and extended by ``extend`` (4 hours). Its ``event_type`` is
the ``'+'``-joined set of the episode's families and ``details`` the ``'+'``-joined detailed types.

Step 2 (leftover SPC reports). Reports of the same family are linked when they lie within
``spc_group_km`` of each other and ``spc_group_hours`` apart; each connected group of at least
``min_spc_reports`` reports is a case, boxed and timed as in step 1. HR-Extreme clusters each hour's
reports with DBSCAN in coordinates scaled to that hour's spread; a fixed distance and time gap is used
here so that a case does not depend on what else happened that hour.

An event whose begin point lies off the grid is dropped, as is an SPC report off the grid (one warning
counts them); end points and range corners off the grid are clipped to the nearest edge cell.

Step 3 (heat and cold from the temperature fields) is :func:`workbench.events.thresholds.threshold_events`.

Where this differs from HR-Extreme, deliberately: times are converted to UTC from ``CZ_TIMEZONE``; SPC
reports add their own location (HR-Extreme added the matched event's point again); every point is mapped
to its nearest cell before taking the box (HR-Extreme mapped the lat-lon box's two corners, which on a
Lambert grid can cut off part of the points); single SPC reports are kept by default
(``min_spc_reports=1``; a severe report is by definition an extreme event; HR-Extreme's DBSCAN dropped
them, set 2 to do the same).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from workbench.errors import DataError
from workbench.events.grid import EARTH_RADIUS_KM, GridLocator, box_columns, unit_vectors
from workbench.events.reports import prepare_spc, prepare_storm_events, warn_dropped
from workbench.events.table import make_table
from workbench.events.types import DEFAULT_EVENT_TYPES, join_types


@dataclass(frozen=True)
class CaseRules:
    """Parameters of case building (defaults follow HR-Extreme where it has one).

    Attributes
    ----------
    event_types : tuple of str
        NCEI Storm Events types kept (:data:`~workbench.events.types.DEFAULT_EVENT_TYPES`).
    pad_km : float
        Padding around a case's points, km, turned into cells of the target grid at the case's centre
        (rounded half up): 20 cells on the 3-km HRRR grid, 2-3 on a 24-km grid, 0 on a 5.625-degree grid.
    pad_cells : int or None
        Padding in cells, overriding ``pad_km`` (HR-Extreme: 20).
    spc_match_deg : float
        An SPC report joins a Storm Events episode when within this many degrees of latitude and of
        longitude of one of its events' begin points (inclusive) and inside that event's hours.
    use_end_points : bool
        Add each event's end point (``END_LAT``/``END_LON``) to the case's points.
    spc_group_km, spc_group_hours : float
        Leftover SPC reports of one family closer than both of these are grouped into one case
        (single linkage, so a squall line's reports chain into one case along its track).
    min_spc_reports : int
        Minimum number of reports in a leftover-SPC case (the minimum case size).
    max_span : pandas.Timedelta
        Longest case span before ``extend`` is added (3 days).
    extend : pandas.Timedelta
        Added to every case's end (4 hours).
    to_utc : bool
        Convert Storm Events times from ``CZ_TIMEZONE`` local standard time to UTC.
    """

    event_types: tuple[str, ...] = DEFAULT_EVENT_TYPES
    pad_km: float = 60.0
    pad_cells: int | None = None
    spc_match_deg: float = 1.0
    use_end_points: bool = True
    spc_group_km: float = 100.0
    spc_group_hours: float = 2.0
    min_spc_reports: int = 1
    max_span: pd.Timedelta = pd.Timedelta(days=3)
    extend: pd.Timedelta = pd.Timedelta(hours=4)
    to_utc: bool = True

    def __post_init__(self) -> None:
        if self.pad_km < 0 or (self.pad_cells is not None and self.pad_cells < 0):
            raise DataError("pad_km and pad_cells must be >= 0")
        if self.spc_match_deg < 0 or self.spc_group_km < 0 or self.spc_group_hours < 0:
            raise DataError("spc_match_deg, spc_group_km and spc_group_hours must be >= 0")
        if self.min_spc_reports < 1:
            raise DataError("min_spc_reports must be >= 1")
        if pd.Timedelta(self.max_span) < pd.Timedelta(0) or pd.Timedelta(self.extend) < pd.Timedelta(0):
            raise DataError("max_span and extend must be >= 0")


def _wrap180(lon: np.ndarray) -> np.ndarray:
    return (np.asarray(lon, dtype=float) + 180.0) % 360.0 - 180.0


def _offset_corners(lat: np.ndarray, lon: np.ndarray, km: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The four corners (lat +- d, lon +- d) of boxes of half-width ``km`` around points, shape (4n,)."""
    dlat = np.rad2deg(km / EARTH_RADIUS_KM)
    dlon = np.rad2deg(km / (EARTH_RADIUS_KM * np.cos(np.deg2rad(lat))))
    clat = np.concatenate([lat + dlat, lat + dlat, lat - dlat, lat - dlat])
    clon = np.concatenate([lon - dlon, lon + dlon, lon - dlon, lon + dlon])
    return clat, clon


def cases_from_reports(
    reports: pd.DataFrame | None,
    grid_like,
    spc: pd.DataFrame | None = None,
    *,
    rules: CaseRules | None = None,
    allow_empty: bool = False,
    **overrides,
) -> pd.DataFrame:
    """Build extreme-event cases from NCEI Storm Events and SPC reports (the HR-Extreme method).

    Parameters
    ----------
    reports : pandas.DataFrame, path or None
        NCEI Storm Events "details" rows with their raw columns (at least those in
        :data:`~workbench.events.reports.NCEI_REQUIRED`), or a CSV path read with
        ``workbench.sources.reports.read_storm_events``.
    grid_like : xarray.Dataset, xarray.DataArray, workbench.grids grid or GridLocator
        The target grid: ``(y, x)`` with 2-D latitude/longitude or ``(latitude, longitude)``.
    spc : pandas.DataFrame or path, optional
        SPC local storm reports, normalised or raw (see :func:`~workbench.events.reports.prepare_spc`),
        or a directory / file of SPC CSVs read with ``workbench.sources.reports.read_spc_reports``.
    rules : CaseRules, optional
        Parameters; see :class:`CaseRules` for the defaults.
    allow_empty : bool
        Return an empty table instead of raising when no case results.
    **overrides
        Fields of :class:`CaseRules` to change, e.g. ``pad_cells=20``.

    Returns
    -------
    pandas.DataFrame
        The event table (:data:`~workbench.events.table.EVENT_COLUMNS`), sorted by start time.

    Raises
    ------
    DataError
        Missing columns (named), unparseable times, or no case at all (unless ``allow_empty``).

    Warns
    -----
    UserWarning
        Counting reports dropped for lying outside the grid or lacking coordinates.
    """
    rules = dataclasses.replace(rules or CaseRules(), **overrides)
    reports, spc = _read_if_path(reports, spc)
    if reports is None and spc is None:
        raise DataError("give Storm Events reports, SPC reports or both")
    loc = GridLocator.for_grid(grid_like)
    counts: dict[str, int] = {}

    events = _empty_events()
    if reports is not None:
        events, ev_counts = prepare_storm_events(reports, rules.event_types, to_utc=rules.to_utc)
        counts.update(ev_counts)
        iy, ix, inside = loc.locate(events.lat, events.lon)
        counts["ncei_outside"] = int((~inside).sum())
        events = events.assign(iy=iy, ix=ix).loc[inside].reset_index(drop=True)

    pool = pd.DataFrame(columns=["time", "family", "detail", "lat", "lon", "iy", "ix"])
    if spc is not None:
        pool, counts["spc_no_coords"] = prepare_spc(spc)
        iy, ix, inside = loc.locate(pool.lat, pool.lon)
        counts["spc_outside"] = int((~inside).sum())
        pool = pool.assign(iy=iy, ix=ix).loc[inside].reset_index(drop=True)

    raw: list[pd.DataFrame] = []
    used = np.zeros(len(pool), dtype=bool)
    if len(events):
        episodes, used = _episode_cases(events, pool, loc, rules)
        raw.append(episodes)
    if len(pool) and not used.all():
        raw.append(_spc_cases(pool.loc[~used].reset_index(drop=True), rules))
    raw = [r for r in raw if len(r)]

    warn_dropped(counts)
    table = make_table(_finish(pd.concat(raw, ignore_index=True), loc, rules) if raw else [])
    if not len(table) and not allow_empty:
        raise DataError(
            "no extreme-event cases: "
            + (
                f"{counts.get('kept', 0)} of {counts.get('total', 0)} Storm Events rows are of the kept "
                f"types {list(rules.event_types)[:6]}..., "
                if reports is not None
                else ""
            )
            + f"{counts.get('ncei_outside', 0) + counts.get('spc_outside', 0)} reports lie outside the grid, "
            f"{counts.get('no_coords', 0) + counts.get('spc_no_coords', 0)} have no coordinates. Check the "
            "reports' period and area against the grid, or pass allow_empty=True"
        )
    return table.sort_values(["start", "event_id"], kind="stable").reset_index(drop=True)


def _read_if_path(reports, spc):
    """Read report files given as paths with the workbench's readers."""
    if isinstance(reports, str | os.PathLike) or isinstance(spc, str | os.PathLike):
        from workbench.sources.reports import read_spc_reports, read_storm_events

        if isinstance(reports, str | os.PathLike):
            reports = read_storm_events(reports)
        if isinstance(spc, str | os.PathLike):
            spc = read_spc_reports(spc)
    return reports, spc


def _empty_events() -> pd.DataFrame:
    return pd.DataFrame(columns=["event_id", "episode", "detail", "family", "begin", "end", "lat", "lon"])


def _episode_cases(
    events: pd.DataFrame, pool: pd.DataFrame, loc: GridLocator, rules: CaseRules
) -> tuple[pd.DataFrame, np.ndarray]:
    """Step 1: one case per episode (unpadded boxes); also returns which SPC reports they absorbed."""
    pts_case: list[np.ndarray] = [events.episode.to_numpy()]
    pts_iy: list[np.ndarray] = [events.iy.to_numpy()]
    pts_ix: list[np.ndarray] = [events.ix.to_numpy()]

    def add_points(case: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> None:
        ok = np.isfinite(lat) & np.isfinite(lon)
        if ok.any():
            # Off-grid end points and range corners are clipped to the edge cell they are nearest to.
            iy, ix, _ = loc.locate(lat[ok], lon[ok])
            pts_case.append(case[ok])
            pts_iy.append(iy)
            pts_ix.append(ix)

    if rules.use_end_points:
        add_points(events.episode.to_numpy(), events.end_lat.to_numpy(), events.end_lon.to_numpy())
    ranged = events.range_km.to_numpy() > 0
    if ranged.any():
        r = events.loc[ranged]
        clat, clon = _offset_corners(r.lat.to_numpy(), r.lon.to_numpy(), r.range_km.to_numpy())
        add_points(np.tile(r.episode.to_numpy(), 4), clat, clon)

    used = np.zeros(len(pool), dtype=bool)
    with_spc: set[str] = set()
    if len(pool):
        ev_idx, sp_idx = _spc_matches(events, pool, rules.spc_match_deg)
        if len(sp_idx):
            # A report near several episodes joins each of them, as in HR-Extreme.
            ep = events.episode.to_numpy()[ev_idx]
            pairs = pd.DataFrame({"case": ep, "spc": sp_idx}).drop_duplicates()
            pts_case.append(pairs.case.to_numpy())
            pts_iy.append(pool.iy.to_numpy()[pairs.spc.to_numpy()])
            pts_ix.append(pool.ix.to_numpy()[pairs.spc.to_numpy()])
            used[pairs.spc.unique()] = True
            with_spc = set(pairs.case.unique())

    points = pd.DataFrame(
        {"case": np.concatenate(pts_case), "iy": np.concatenate(pts_iy), "ix": np.concatenate(pts_ix)}
    )
    raw = points.groupby("case").agg(
        y_min=("iy", "min"), y_max=("iy", "max"), x_min=("ix", "min"), x_max=("ix", "max")
    )
    by_episode = events.groupby("episode")
    raw["start"] = by_episode.begin.min()
    raw["end"] = by_episode.end.max()
    raw["event_type"] = pd.Series(_joined_sets(events.episode, events.family, join_types))
    raw["details"] = pd.Series(_joined_sets(events.episode, events.detail, lambda s: "+".join(sorted(s))))
    raw["source"] = np.where(raw.index.isin(list(with_spc)), "ncei+spc", "ncei")
    raw = raw.rename_axis("event_id").reset_index()
    return raw, used


def _joined_sets(keys: pd.Series, values: pd.Series, join) -> dict:
    """``{key: join(set of values)}`` (a plain loop: far faster than a pandas groupby-apply per episode)."""
    sets: dict = {}
    for k, v in zip(keys.to_numpy(), values.to_numpy(), strict=True):
        sets.setdefault(k, set()).add(v)
    return {k: join(v) for k, v in sets.items()}


def _spc_matches(events: pd.DataFrame, pool: pd.DataFrame, deg: float) -> tuple[np.ndarray, np.ndarray]:
    """(event, SPC report) index pairs: the report inside the event's hours and within ``deg`` of it."""
    order = np.argsort(pool.time.to_numpy(), kind="stable")
    t_sorted = pool.time.to_numpy()[order]
    lo = np.searchsorted(t_sorted, events.begin.to_numpy(), side="left")
    hi = np.searchsorted(t_sorted, events.end.to_numpy(), side="right")
    count = np.maximum(hi - lo, 0)
    ev_lat, ev_lon = events.lat.to_numpy(), _wrap180(events.lon.to_numpy())
    sp_lat, sp_lon = pool.lat.to_numpy(), _wrap180(pool.lon.to_numpy())
    out_ev, out_sp = [], []
    # Candidates come from the time window (sorted search), then the +-deg test; in slices of events so
    # that a year of reports never expands into more than a few million candidate pairs at once.
    bounds = np.searchsorted(np.cumsum(count), np.arange(0, count.sum() + 1, 4_000_000)[1:], side="right")
    for a, b in zip(np.r_[0, bounds], np.r_[bounds, len(events)], strict=True):
        c = count[a:b]
        if b <= a or c.sum() == 0:
            continue
        ev = np.repeat(np.arange(a, b), c)
        offset = np.arange(c.sum()) - np.repeat(np.cumsum(c) - c, c)
        sp = order[np.repeat(lo[a:b], c) + offset]
        dlon = np.abs(_wrap180(sp_lon[sp] - ev_lon[ev]))
        near = (np.abs(sp_lat[sp] - ev_lat[ev]) <= deg) & (dlon <= deg)
        out_ev.append(ev[near])
        out_sp.append(sp[near])
    if not out_ev:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(out_ev), np.concatenate(out_sp)


def _spc_cases(pool: pd.DataFrame, rules: CaseRules) -> pd.DataFrame:
    """Step 2: group leftover SPC reports of each family by proximity in space and time (unpadded boxes)."""
    frames = []
    chord = 2.0 * EARTH_RADIUS_KM * np.sin(min(rules.spc_group_km / (2.0 * EARTH_RADIUS_KM), np.pi / 2))
    max_gap = np.timedelta64(int(round(rules.spc_group_hours * 3600)), "s")
    for family, part in pool.groupby("family", sort=True):
        part = part.reset_index(drop=True)
        n = len(part)
        xyz = unit_vectors(part.lat.to_numpy(), part.lon.to_numpy()) * EARTH_RADIUS_KM
        pairs = cKDTree(xyz).query_pairs(r=chord, output_type="ndarray")
        t = part.time.to_numpy()
        if len(pairs):
            pairs = pairs[np.abs(t[pairs[:, 0]] - t[pairs[:, 1]]) <= max_gap]
        graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
        _, label = connected_components(graph, directed=False)
        summary = (
            part.assign(group=label)
            .groupby("group")
            .agg(
                start=("time", "min"),
                end=("time", "max"),
                y_min=("iy", "min"),
                y_max=("iy", "max"),
                x_min=("ix", "min"),
                x_max=("ix", "max"),
                size=("time", "size"),
                lat=("lat", "mean"),
            )
        )
        summary = summary[summary["size"] >= rules.min_spc_reports].sort_values(["start", "lat"])
        summary["event_id"] = [f"spc-{family}-{k:04d}" for k in range(len(summary))]
        summary["event_type"] = str(family)
        summary["details"] = part.detail.iloc[0]
        summary["source"] = "spc"
        frames.append(summary.drop(columns=["size", "lat"]))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _finish(raw: pd.DataFrame, loc: GridLocator, rules: CaseRules) -> pd.DataFrame:
    """Pad and clip the boxes, cap and extend the spans, and add the boxes' lat/lon extents."""
    y0, y1 = raw.y_min.to_numpy(np.int64), raw.y_max.to_numpy(np.int64)
    x0, x1 = raw.x_min.to_numpy(np.int64), raw.x_max.to_numpy(np.int64)
    if rules.pad_cells is not None:
        pad_y = pad_x = np.full(len(raw), int(rules.pad_cells))
    else:
        pad_y, pad_x = loc.pad_cells_at(rules.pad_km, (y0 + y1) // 2, (x0 + x1) // 2)
    ny, nx = loc.shape
    y0, y1 = np.maximum(y0 - pad_y, 0), np.minimum(y1 + pad_y, ny - 1)
    x0, x1 = np.maximum(x0 - pad_x, 0), np.minimum(x1 + pad_x, nx - 1)
    start = pd.to_datetime(raw.start).to_numpy()
    end = np.minimum(
        pd.to_datetime(raw.end).to_numpy(), start + pd.Timedelta(rules.max_span).to_timedelta64()
    )
    end = end + pd.Timedelta(rules.extend).to_timedelta64()
    return pd.DataFrame(
        {
            "event_id": raw.event_id.astype(str).to_numpy(),
            "event_type": raw.event_type.to_numpy(),
            "start": start,
            "end": end,
            **box_columns(loc.info, y0, y1, x0, x1),
            "source": raw.source.to_numpy(),
            "details": raw.details.to_numpy(),
        }
    )
