"""Storm reports as the event logic needs them: checked columns, parsed UTC times, kept types.

Two inputs are understood:

* NCEI Storm Events "details" rows (raw columns, as read from the yearly CSVs). Begin and end times are
  built from ``BEGIN_YEARMONTH`` (YYYYMM), ``BEGIN_DAY`` and ``BEGIN_TIME`` (HHMM), likewise for END, and
  floored to the hour as in HR-Extreme. NCEI times are local standard time; where ``CZ_TIMEZONE`` is
  given (``"CST-6"``, ``"EST-5"``, ``"UTC"``, ...) they are converted to UTC, which HR-Extreme skipped.
* SPC local storm reports, either normalised (``time, event_type, lat, lon, ...`` as returned by
  ``workbench.sources.reports.read_spc_reports``) or raw daily files concatenated (``Time`` HHMM,
  ``F_Scale``/``Size``/``Speed``, ``Lat``, ``Lon``, ...) with the report date in a ``date`` column or the
  file name in a ``file`` column. Raw SPC times are UTC within the convective day, which runs from 12 UTC
  on the file's date to 12 UTC on the next day, so times before 1200 belong to the next calendar day.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable

import numpy as np
import pandas as pd

from workbench.errors import DataError, DataNote
from workbench.events.types import SPC_DETAILED_TYPE, family_of, is_kept, normalise_types

#: Columns a Storm Events frame must have.
NCEI_REQUIRED: tuple[str, ...] = (
    "EVENT_TYPE",
    "BEGIN_YEARMONTH",
    "BEGIN_DAY",
    "BEGIN_TIME",
    "END_YEARMONTH",
    "END_DAY",
    "END_TIME",
    "EPISODE_ID",
    "EVENT_ID",
    "BEGIN_LAT",
    "BEGIN_LON",
)

MILES_TO_KM = 1.61  # the factor HR-Extreme applies to BEGIN_RANGE


def require_columns(df: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    """Raise :class:`DataError` naming every column of ``columns`` that ``df`` lacks."""
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{what}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(
            f"{what} is missing required columns {missing}; it has {list(df.columns)[:20]}. "
            "Pass the NCEI Storm Events 'details' CSV as read (e.g. workbench.sources.reports."
            "read_storm_events), with its original column names"
        )


def utc_offsets(zones: pd.Series) -> np.ndarray:
    """UTC offsets in hours of ``CZ_TIMEZONE`` values such as ``"CST-6"``, ``"EST"`` or ``"UTC"``.

    Missing values are UTC. The codes are read by :func:`workbench.sources.reports.parse_timezone`: an
    offset outside -12..+14 h, or one that contradicts the zone's name (``CST6``), is refused.

    Raises
    ------
    DataError
        Naming the bad values and their rows; pass ``to_utc=False`` if the times are already UTC.
    """
    from workbench.sources.reports import timezone_offsets

    return timezone_offsets(pd.DataFrame({"CZ_TIMEZONE": zones.fillna("UTC").to_numpy()}), "CZ_TIMEZONE")


def _parse_parts(df: pd.DataFrame, which: str) -> tuple[pd.Series, np.ndarray]:
    ym = pd.to_numeric(df[f"{which}_YEARMONTH"], errors="coerce")
    day = pd.to_numeric(df[f"{which}_DAY"], errors="coerce")
    hhmm = pd.to_numeric(df[f"{which}_TIME"], errors="coerce")
    year, month = ym // 100, ym % 100
    hour, minute = hhmm // 100, hhmm % 100
    ok = (
        ym.notna() & day.notna() & hhmm.notna()
        & (ym == ym.round()) & (hhmm == hhmm.round()) & (day == day.round())
        & month.between(1, 12) & day.between(1, 31) & hour.between(0, 23) & minute.between(0, 59)
    )  # fmt: skip
    parts = pd.DataFrame(
        {
            "year": year.where(ok, 2000).astype(int),
            "month": month.where(ok, 1).astype(int),
            "day": day.where(ok, 1).astype(int),
            "hour": hour.where(ok, 0).astype(int),
        },
        index=df.index,
    )
    times = pd.to_datetime(parts, errors="coerce")  # NaT for impossible dates such as 31 June
    ok = ok.to_numpy() & times.notna().to_numpy()
    return times.where(ok), ok


def parse_storm_event_times(df: pd.DataFrame, to_utc: bool = True) -> tuple[pd.Series, pd.Series]:
    """Begin and end times of Storm Events rows, floored to the hour, in UTC.

    Parameters
    ----------
    df : pandas.DataFrame
        Rows with ``BEGIN_YEARMONTH`` (YYYYMM), ``BEGIN_DAY``, ``BEGIN_TIME`` (HHMM) and the END columns.
    to_utc : bool
        Convert from the local standard time named in ``CZ_TIMEZONE`` (when that column exists).

    Returns
    -------
    begin, end : pandas.Series of datetime64
        Floored to the hour; an end before its begin is raised to the begin.

    Raises
    ------
    DataError
        Naming the EVENT_IDs and values of rows whose times cannot be parsed.
    """
    begin, ok_b = _parse_parts(df, "BEGIN")
    end, ok_e = _parse_parts(df, "END")
    bad = ~(ok_b & ok_e)
    if bad.any():
        ids = df["EVENT_ID"].to_numpy()[bad][:5].tolist() if "EVENT_ID" in df.columns else []
        cols = [f"{w}_{p}" for w in ("BEGIN", "END") for p in ("YEARMONTH", "DAY", "TIME")]
        example = df.loc[bad, cols].head(1).to_dict("records")
        raise DataError(
            f"cannot parse the times of {int(bad.sum())} storm events (EVENT_ID {ids}); expected "
            f"*_YEARMONTH as YYYYMM, *_DAY 1-31 and *_TIME as HHMM, got e.g. {example}"
        )
    if to_utc and "CZ_TIMEZONE" in df.columns:
        shift = pd.to_timedelta(-utc_offsets(df["CZ_TIMEZONE"]), unit="h")
        begin, end = begin + shift, end + shift
    return begin, end.where(end >= begin, begin)


def prepare_storm_events(
    df: pd.DataFrame, event_types: Iterable[str], to_utc: bool = True
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Kept Storm Events rows in a compact form for case building.

    Returns
    -------
    events : pandas.DataFrame
        Columns ``event_id, episode, detail, family, begin, end, lat, lon, end_lat, end_lon, range_km``
        for rows of a kept type that have begin coordinates.
    counts : dict
        ``total``, ``kept`` (of a kept type), ``no_coords`` (kept but without BEGIN_LAT/LON; zone-based
        events such as Excessive Heat have none).
    """
    require_columns(df, NCEI_REQUIRED, "storm events table")
    from workbench.sources.reports import check_storm_events

    check_storm_events(df)  # text in BEGIN_LAT is an error, not an event without coordinates
    kept_keys = normalise_types(event_types)
    unknown = [t for t in event_types if family_of(t) is None]
    if unknown:
        raise DataError(
            f"event types {unknown} have no family; known types include Thunderstorm Wind, Hail, Tornado, "
            "Flash Flood, High Wind, Winter Storm, Excessive Heat, Extreme Cold/Wind Chill"
        )
    types = df["EVENT_TYPE"].astype(str)
    keep = types.map(lambda t: is_kept(t, kept_keys)).to_numpy(dtype=bool)
    sub = df.loc[keep]
    counts = {"total": len(df), "kept": int(keep.sum()), "no_coords": 0}
    begin, end = parse_storm_event_times(sub, to_utc=to_utc)
    lat = pd.to_numeric(sub["BEGIN_LAT"], errors="coerce").to_numpy(dtype=float)
    lon = pd.to_numeric(sub["BEGIN_LON"], errors="coerce").to_numpy(dtype=float)
    has = np.isfinite(lat) & np.isfinite(lon)
    counts["no_coords"] = int((~has).sum())

    def numeric(col: str) -> np.ndarray:
        if col not in sub.columns:
            return np.full(len(sub), np.nan)
        return pd.to_numeric(sub[col], errors="coerce").to_numpy(dtype=float)

    rng = numeric("BEGIN_RANGE")
    episode = pd.to_numeric(sub["EPISODE_ID"], errors="coerce")
    event_id = sub["EVENT_ID"].astype(str).to_numpy()
    # An event without an episode is a case of its own.
    episode_key = np.where(
        episode.notna(), "ncei-" + episode.astype("Int64").astype(str), "ncei-event-" + event_id
    )
    events = pd.DataFrame(
        {
            "event_id": event_id,
            "episode": episode_key,
            "detail": types[keep].to_numpy(),
            "family": types[keep].map(family_of).to_numpy(),
            "begin": begin.to_numpy(),
            "end": end.to_numpy(),
            "lat": lat,
            "lon": lon,
            "end_lat": numeric("END_LAT"),
            "end_lon": numeric("END_LON"),
            "range_km": np.where(np.isfinite(rng) & (rng > 0), rng * MILES_TO_KM, 0.0),
        }
    )
    return events.loc[has].reset_index(drop=True), counts


def _column(df: pd.DataFrame, *names: str) -> str | None:
    lower = {c.lower(): c for c in df.columns}
    for n in names:
        if n in lower:
            return lower[n]
    return None


_FILE_RE = re.compile(r"(\d{6})_rpts_(torn|hail|wind)", re.IGNORECASE)


def prepare_spc(spc: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """SPC reports as ``time`` (UTC, floored to the hour), ``family``, ``detail``, ``lat``, ``lon``.

    Accepts the normalised layout (``time`` as datetimes, ``event_type``, ``lat``, ``lon``) or raw daily
    files concatenated (``Time`` as HHMM plus a ``date`` or ``file`` column, type from ``type``/``file``
    or from which of ``F_Scale``/``Size``/``Speed`` is filled). Column names are matched case-insensitively.

    Returns
    -------
    reports : pandas.DataFrame
    dropped : int
        Rows without coordinates.
    """
    if not isinstance(spc, pd.DataFrame):
        raise DataError(f"SPC reports: expected a pandas DataFrame, got {type(spc).__name__}")
    lat_c = _column(spc, "lat", "latitude", "begin_lat")
    lon_c = _column(spc, "lon", "longitude", "begin_lon")
    time_c = _column(spc, "time", "datetime")
    missing = [n for n, c in (("lat", lat_c), ("lon", lon_c), ("time", time_c)) if c is None]
    if missing:
        raise DataError(
            f"SPC reports are missing columns {missing}; they have {list(spc.columns)}. Expected the "
            "normalised layout (time, event_type, lat, lon, magnitude, state, source) or raw SPC columns "
            "(Time, Lat, Lon, ... plus a 'date' or 'file' column)"
        )
    file_c = _column(spc, "file", "filename", "path")
    file_match = spc[file_c].astype(str).str.extract(_FILE_RE) if file_c else None

    # --- type
    type_c = _column(spc, "event_type", "type", "kind")
    if type_c is not None:
        raw_type = spc[type_c].astype(str)
    elif file_match is not None and file_match[1].notna().all():
        raw_type = file_match[1]
    else:
        mag = [
            (_column(spc, "f_scale"), "tornado"),
            (_column(spc, "size"), "hail"),
            (_column(spc, "speed"), "wind"),
        ]
        mag = [(c, t) for c, t in mag if c is not None]
        if not mag:
            raise DataError(
                "SPC reports carry no type: add an 'event_type' column (tornado/hail/wind), a 'file' column "
                "with the YYMMDD_rpts_<type>.csv name, or the F_Scale/Size/Speed columns"
            )
        raw_type = pd.Series(None, index=spc.index, dtype=object)
        for c, t in mag:
            raw_type = raw_type.where(raw_type.notna() | spc[c].isna(), t)
        raw_type = raw_type.fillna("unknown")
    family = raw_type.map(lambda t: family_of(t) if family_of(t) in SPC_DETAILED_TYPE else None)
    if family.isna().any():
        bad = sorted(set(raw_type[family.isna()]))[:5]
        raise DataError(f"SPC report types {bad} are not tornado, hail or wind (or torn/hail/wind)")

    # --- time
    t = spc[time_c]
    raw_hhmm = pd.api.types.is_numeric_dtype(t) or t.astype(str).str.fullmatch(r"\s*\d{1,4}\s*").all()
    if raw_hhmm and time_c.lower() == "time":
        times = _spc_raw_times(spc, t, file_match)
    else:
        times = pd.to_datetime(t, errors="coerce", utc=True, format="mixed").dt.tz_convert(None)
        if times.isna().any():
            bad = t[times.isna()].head(3).tolist()
            raise DataError(f"cannot parse {int(times.isna().sum())} SPC report times, e.g. {bad}")

    lat = pd.to_numeric(spc[lat_c], errors="coerce").to_numpy(dtype=float)
    lon = pd.to_numeric(spc[lon_c], errors="coerce").to_numpy(dtype=float)
    has = np.isfinite(lat) & np.isfinite(lon)
    out = pd.DataFrame(
        {
            "time": times.dt.floor("h").to_numpy(),
            "family": family.to_numpy(),
            "detail": family.map(SPC_DETAILED_TYPE).to_numpy(),
            "lat": lat,
            "lon": lon,
        }
    )
    return out.loc[has].reset_index(drop=True), int((~has).sum())


def _spc_raw_times(spc: pd.DataFrame, hhmm_raw: pd.Series, file_match: pd.DataFrame | None) -> pd.Series:
    date_c = _column(spc, "date")
    if date_c is not None:
        d = spc[date_c]
        if pd.api.types.is_datetime64_any_dtype(d):
            day = d.dt.normalize()
        else:
            s = d.astype(str).str.strip().str.replace(r"\.0$", "", regex=True)
            fmt = np.where(s.str.len() == 6, "%y%m%d", "%Y%m%d")
            day = pd.Series(
                [pd.to_datetime(v, format=str(f), errors="coerce") for v, f in zip(s, fmt, strict=True)],
                index=spc.index,
            )
    elif file_match is not None and file_match[0].notna().all():
        day = pd.to_datetime(file_match[0], format="%y%m%d", errors="coerce")
    else:
        raise DataError(
            "raw SPC reports (Time as HHMM) need their date: add a 'date' column (YYMMDD) or a 'file' "
            "column with the YYMMDD_rpts_<type>.csv name, or pass the normalised frame of read_spc_reports"
        )
    hhmm = pd.to_numeric(hhmm_raw, errors="coerce")
    ok = day.notna() & hhmm.notna() & (hhmm // 100).between(0, 23) & (hhmm % 100).between(0, 59)
    if not ok.all():
        bad = hhmm_raw[~ok].head(3).tolist()
        raise DataError(
            f"cannot parse {int((~ok).sum())} SPC report times (Time as HHMM, with a date), e.g. {bad}"
        )
    hours = pd.to_timedelta(hhmm // 100, unit="h") + pd.to_timedelta(hhmm % 100, unit="min")
    # The convective day of a YYMMDD file runs 12 UTC that day to 12 UTC the next.
    next_day = pd.to_timedelta((hhmm < 1200).astype(int), unit="D")
    return pd.Series(day + next_day + hours, index=spc.index)


def warn_dropped(counts: dict[str, int]) -> None:
    """One warning that counts the reports dropped for lying off the grid or lacking coordinates."""
    parts = []
    if counts.get("ncei_outside") or counts.get("spc_outside"):
        parts.append(
            f"{counts.get('ncei_outside', 0) + counts.get('spc_outside', 0)} reports lie outside the grid "
            f"and were dropped ({counts.get('ncei_outside', 0)} Storm Events, "
            f"{counts.get('spc_outside', 0)} SPC)"
        )
    if counts.get("no_coords") or counts.get("spc_no_coords"):
        parts.append(
            f"{counts.get('no_coords', 0) + counts.get('spc_no_coords', 0)} reports have no latitude/"
            "longitude and were skipped (zone-based Storm Events such as Excessive Heat or Winter Storm "
            "have none; heat and cold come from threshold events)"
        )
    if parts:
        warnings.warn("; ".join(parts), DataNote, stacklevel=3)
