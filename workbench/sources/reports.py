"""Storm reports: NOAA NCEI Storm Events "details" CSVs and SPC daily local storm reports.

**NCEI Storm Events.** One gzipped CSV per year
(``StormEvents_details-ftp_v1.0_dYYYY_cYYYYMMDD.csv.gz``, the ``c`` date being when NCEI last rebuilt it)
with one row per event and 51 columns. Times are given twice, as ``BEGIN_YEARMONTH``/``BEGIN_DAY``/
``BEGIN_TIME`` (``HHMM``) and as ``BEGIN_DATE_TIME`` (``DD-MON-YY HH:MM:SS``), both in the local standard
time named by ``CZ_TIMEZONE`` (``CST-6``, ``EST-5``, ...). :func:`read_storm_events` keeps every raw column
and adds ``begin_time`` and ``end_time`` in UTC (tz-naive ``datetime64``), so reports line up with model
times.

**SPC local storm reports.** One CSV per report type and convective day, ``YYMMDD_rpts_torn.csv``,
``_hail.csv`` and ``_wind.csv`` (and ``YYMMDD_rpts.csv`` with all three, each section under its own header
row), columns ``Time, F_Scale|Size|Speed, Location, County, State, Lat, Lon, Comments``. The SPC day runs
from 12 UTC to 12 UTC, so a report at ``HHMM`` before 1200 belongs to the next calendar day.
:func:`read_spc_reports` returns one normalised table: ``time`` (UTC), ``event_type`` (the Storm Events
names ``Tornado``, ``Hail``, ``Thunderstorm Wind``), ``lat``, ``lon``, ``magnitude`` and
``magnitude_units`` (EF/F scale number, hail diameter in inches, wind speed in knots, as NCEI's
``MAGNITUDE``), ``state``, ``location``, ``county``, ``comments`` and ``source`` (``"SPC"``).
"""

from __future__ import annotations

import csv
import glob
import io
import os
import re
import urllib.request
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.errors import DataError
from workbench.sources.remote import check_remote, fetch, is_remote

#: Directory of NCEI's yearly Storm Events CSVs.
NCEI_STORM_EVENTS_DIR = "https://www.ncei.noaa.gov/pub/data/swdi/stormevents/csvfiles/"

#: Columns of the real "details" files, in their order.
STORM_EVENTS_COLUMNS = (
    "BEGIN_YEARMONTH", "BEGIN_DAY", "BEGIN_TIME", "END_YEARMONTH", "END_DAY", "END_TIME",
    "EPISODE_ID", "EVENT_ID", "STATE", "STATE_FIPS", "YEAR", "MONTH_NAME", "EVENT_TYPE", "CZ_TYPE",
    "CZ_FIPS", "CZ_NAME", "WFO", "BEGIN_DATE_TIME", "CZ_TIMEZONE", "END_DATE_TIME", "INJURIES_DIRECT",
    "INJURIES_INDIRECT", "DEATHS_DIRECT", "DEATHS_INDIRECT", "DAMAGE_PROPERTY", "DAMAGE_CROPS", "SOURCE",
    "MAGNITUDE", "MAGNITUDE_TYPE", "FLOOD_CAUSE", "CATEGORY", "TOR_F_SCALE", "TOR_LENGTH", "TOR_WIDTH",
    "TOR_OTHER_WFO", "TOR_OTHER_CZ_STATE", "TOR_OTHER_CZ_FIPS", "TOR_OTHER_CZ_NAME", "BEGIN_RANGE",
    "BEGIN_AZIMUTH", "BEGIN_LOCATION", "END_RANGE", "END_AZIMUTH", "END_LOCATION", "BEGIN_LAT",
    "BEGIN_LON", "END_LAT", "END_LON", "EPISODE_NARRATIVE", "EVENT_NARRATIVE", "DATA_SOURCE",
)  # fmt: skip

#: Columns a file must have: those the HR-Extreme case builder uses.
STORM_EVENTS_REQUIRED = (
    "EVENT_TYPE", "BEGIN_YEARMONTH", "BEGIN_DAY", "BEGIN_TIME", "END_YEARMONTH", "END_DAY", "END_TIME",
    "EPISODE_ID", "EVENT_ID", "STATE", "BEGIN_RANGE", "END_RANGE", "BEGIN_LAT", "END_LAT", "BEGIN_LON",
    "END_LON", "EPISODE_NARRATIVE", "EVENT_NARRATIVE",
)  # fmt: skip

#: UTC offsets (hours) of the time-zone abbreviations found in older Storm Events files.
_TZ_ABBREVIATIONS = {
    "UTC": 0, "GMT": 0, "Z": 0,
    "AST": -4, "ADT": -3, "EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6,
    "PST": -8, "PDT": -7, "AKST": -9, "AKDT": -8, "AKS": -9, "HST": -10, "SST": -11, "GST": 10, "ChST": 10,
}  # fmt: skip
_TZ_CODE = re.compile(r"^([A-Za-z]*)\s*([+-]?\d+)?$")
#: UTC offsets that exist on Earth, in hours (Baker Island -12 to Kiribati +14).
UTC_OFFSET_RANGE = (-12, 14)

#: Numeric columns of a details file: (lowest, highest or None, whole numbers only). Empty cells are
#: allowed (zone-based events have no coordinates); text that is not a number is not.
STORM_EVENTS_NUMERIC = {
    "BEGIN_LAT": (-90.0, 90.0, False), "END_LAT": (-90.0, 90.0, False),
    "BEGIN_LON": (-180.0, 180.0, False), "END_LON": (-180.0, 180.0, False),
    "BEGIN_RANGE": (0.0, None, False), "END_RANGE": (0.0, None, False),
    "EPISODE_ID": (0.0, 2.0**53, True), "EVENT_ID": (0.0, 2.0**53, True), "MAGNITUDE": (0.0, None, False),
}  # fmt: skip

#: SPC report types: file suffix -> (header column of the magnitude, event type, magnitude units)
SPC_TYPES = {
    "torn": ("F_Scale", "Tornado", "EF"),
    "hail": ("Size", "Hail", "in"),
    "wind": ("Speed", "Thunderstorm Wind", "kt"),
}
SPC_COLUMNS = ("time", "event_type", "lat", "lon", "magnitude", "magnitude_units", "state", "location",
               "county", "comments", "source")  # fmt: skip
_SPC_HEADER_REST = ("Location", "County", "State", "Lat", "Lon", "Comments")
_SPC_NAME = re.compile(r"([0-9]{6})_rpts(?:_filtered)?(?:_(torn|hail|wind))?\.csv$", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------------
# NCEI Storm Events
# ---------------------------------------------------------------------------------------------------


def storm_events_url(year: int, *, directory: str = NCEI_STORM_EVENTS_DIR, timeout: float = 20.0) -> str:
    """The URL of NCEI's newest "details" file for ``year`` (found by listing NCEI's directory).

    Raises
    ------
    DataError
        If NCEI cannot be reached, or lists no file for that year.
    """
    check_remote(directory, needs_fsspec=False)
    try:
        with urllib.request.urlopen(directory, timeout=timeout) as response:
            listing = response.read().decode("utf-8", errors="replace")
    except OSError as exc:
        raise DataError(f"Could not list {directory}: {exc}.") from None
    names = sorted(set(re.findall(rf"StormEvents_details-ftp_v1\.0_d{int(year)}_c\d{{8}}\.csv\.gz", listing)))
    if not names:
        raise DataError(f"NCEI lists no Storm Events details file for {year} in {directory}.")
    return directory + names[-1]  # the newest rebuild sorts last


def _expand_paths(source: str | os.PathLike | Sequence[str | os.PathLike], what: str) -> list[str]:
    items = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    out: list[str] = []
    for item in items:
        text = os.fspath(item)
        if is_remote(text):
            out.append(text)
        elif glob.has_magic(text):
            found = sorted(glob.glob(text))
            if not found:
                raise DataError(f"No {what} files match {text!r}.")
            out += found
        elif os.path.isdir(text):
            out.append(text)
        elif not os.path.exists(text):
            raise DataError(f"No {what} file at {text!r}.")
        else:
            out.append(text)
    if not out:
        raise DataError(f"No {what} files given.")
    return out


def read_storm_events(source: str | os.PathLike | Sequence[str | os.PathLike]) -> pd.DataFrame:
    """Read NCEI Storm Events "details" CSV files (plain or gzipped, local or ``https://``).

    Parameters
    ----------
    source : path, glob pattern, URL, or a sequence of them
        One or more yearly files; their rows are concatenated.

    Returns
    -------
    pandas.DataFrame
        Every raw column, plus ``begin_time`` and ``end_time``: UTC, built from ``BEGIN_YEARMONTH``,
        ``BEGIN_DAY``, ``BEGIN_TIME`` (and the ``END_`` ones) and the local standard time of
        ``CZ_TIMEZONE`` (taken as UTC when the column is absent).

    Raises
    ------
    DataError
        If a file lacks required columns (the message names them and the file) or cannot be read.
    """
    frames = []
    for path in _expand_paths(source, "Storm Events"):
        local = fetch(path, "storm-events") if is_remote(path) else path
        try:
            frame = pd.read_csv(local, low_memory=False, compression="infer")
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            raise DataError(f"Cannot read {path} as a Storm Events CSV: {exc}") from None
        frame.columns = [str(c).strip() for c in frame.columns]
        missing = [c for c in STORM_EVENTS_REQUIRED if c not in frame.columns]
        if missing:
            raise DataError(
                f"{path} is not a Storm Events details file: missing required column(s) {missing}. "
                f"NCEI's details files have the columns {list(STORM_EVENTS_COLUMNS)}."
            )
        # Checked per file, so the lines named in an error are lines of that file.
        check_storm_events(frame, path)
        offsets = pd.to_timedelta(timezone_offsets(frame, path), unit="h")
        frame["begin_time"] = _event_times(frame, "BEGIN", path) - offsets
        frame["end_time"] = _event_times(frame, "END", path) - offsets
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _lines(rows: np.ndarray | pd.Index, n: int = 5) -> str:
    """CSV line numbers (the header is line 1) of the first ``n`` row positions, and how many in all."""
    lines = [int(r) + 2 for r in np.asarray(rows)[:n]]
    more = f" and {len(rows) - n} more" if len(rows) > n else ""
    return f"line{'s' if len(rows) > 1 else ''} {', '.join(map(str, lines))}{more}"


def check_storm_events(frame: pd.DataFrame, source: str = "Storm Events table") -> None:
    """Refuse text in the numeric columns of a details table, and coordinates off the globe.

    Without this, ``BEGIN_LAT=abc`` read as "no coordinates" and the event vanished under a warning
    about zone-based events.

    Raises
    ------
    DataError
        Naming the column, the lines (header = line 1) and an example value.
    """
    for column, bounds in STORM_EVENTS_NUMERIC.items():
        if column not in frame.columns:
            continue
        raw = frame[column]
        text = raw.astype("string").str.strip()
        values = pd.to_numeric(raw, errors="coerce")
        unreadable = np.flatnonzero((values.isna() & text.notna() & (text != "")).to_numpy())
        if unreadable.size:
            raise DataError(
                f"{source}: column {column} holds text that is not a number on {_lines(unreadable)} (e.g. "
                f"{str(raw.iloc[unreadable[0]])[:40]!r}); leave the cell empty when there is no value."
            )
        finite = values.to_numpy(dtype=float)
        lo, hi, whole = bounds
        outside = np.flatnonzero(np.isinf(finite) | (finite < lo) | ((finite > hi) if hi is not None else False))
        if outside.size:
            want = f"between {lo:g} and {hi:g}" if hi is not None else f"at least {lo:g}"
            raise DataError(
                f"{source}: column {column} must be {want}, but is {finite[outside[0]]:g} on {_lines(outside)}."
            )
        empty = np.flatnonzero(np.isnan(finite)) if column == "EVENT_ID" else []
        if len(empty):  # every event has an id: cases and masks are keyed by it
            raise DataError(f"{source}: column {column} is empty on {_lines(empty)}; every event needs one.")
        fractional = np.flatnonzero(np.isfinite(finite) & (finite != np.round(finite))) if whole else []
        if len(fractional):
            raise DataError(
                f"{source}: column {column} must hold whole numbers, but is {finite[fractional[0]]:g} on "
                f"{_lines(fractional)}."
            )


def _event_times(table: pd.DataFrame, prefix: str, source: str = "Storm Events table") -> pd.Series:
    """Local times from ``<prefix>_YEARMONTH`` (YYYYMM), ``<prefix>_DAY`` and ``<prefix>_TIME`` (HHMM).

    Raises
    ------
    DataError
        For a field that is missing, not a whole number, or makes an impossible date or time (31 June,
        25:00), naming the lines.
    """
    columns = [f"{prefix}_YEARMONTH", f"{prefix}_DAY", f"{prefix}_TIME"]
    yearmonth, day, hhmm = (pd.to_numeric(table[c], errors="coerce") for c in columns)
    parts = pd.DataFrame(
        {
            "year": yearmonth // 100,
            "month": yearmonth % 100,
            "day": day,
            "hour": hhmm // 100,
            "minute": hhmm % 100,
        }
    )
    whole = (yearmonth == yearmonth.round()) & (day == day.round()) & (hhmm == hhmm.round())
    bad = (
        parts.isna().any(axis=1) | ~whole | ~parts["year"].between(1000, 2999) | ~parts["month"].between(1, 12)
        | ~parts["day"].between(1, 31) | ~parts["hour"].between(0, 23) | ~parts["minute"].between(0, 59)
    )  # fmt: skip
    times = pd.to_datetime(parts.where(~bad, 1).astype("int64"), errors="coerce")
    bad = bad | times.isna()  # 31 June and 29 February of a common year
    rows = np.flatnonzero(bad.to_numpy())
    if rows.size:
        example = {c: str(table[c].iloc[rows[0]]) for c in columns}
        raise DataError(
            f"{source}: unreadable {prefix} date/time on {_lines(rows)} (e.g. {example}); expected "
            f"{prefix}_YEARMONTH as YYYYMM, {prefix}_DAY 1-31 and {prefix}_TIME as HHMM."
        )
    return times.astype("datetime64[ns]")


def timezone_offsets(table: pd.DataFrame, source: str = "Storm Events table") -> np.ndarray:
    """``local - UTC`` in hours per row, from ``CZ_TIMEZONE`` (zero when the column is absent).

    A code is a zone name, an offset, or both (``CST-6``, ``EST``, ``UTC``, ``GST10``). The offset must
    lie within -12..+14 h, and agree with the name where the name is known (``CST6`` or ``CST-60``
    would shift events by half a day or more).

    Raises
    ------
    DataError
        Naming the bad codes and their lines.
    """
    if "CZ_TIMEZONE" not in table.columns:
        return np.zeros(len(table))
    codes = table["CZ_TIMEZONE"].astype("string").str.strip().fillna("")
    lookup = {code: parse_timezone(code) for code in codes.unique()}
    hours = codes.map(lookup).astype("float64").to_numpy()
    rows = np.flatnonzero(np.isnan(hours))
    if rows.size:
        bad = list(dict.fromkeys(str(codes.iloc[r]) for r in rows))[:5]
        raise DataError(
            f"{source}: cannot read time zones {bad} in CZ_TIMEZONE on {_lines(rows)}: expected a name and/or "
            f"offset such as 'CST-6', 'EST' or 'UTC', the offset within {UTC_OFFSET_RANGE[0]}..+"
            f"{UTC_OFFSET_RANGE[1]} h and matching the name."
        )
    return hours


def parse_timezone(code: str) -> float | None:
    """UTC offset in hours of a ``CZ_TIMEZONE`` code, or None for a malformed or impossible one."""
    match = _TZ_CODE.match(str(code).strip())
    if not match or not (match.group(1) or match.group(2)):
        return None
    name, offset = match.group(1), match.group(2)
    known = _TZ_ABBREVIATIONS.get(name.upper(), _TZ_ABBREVIATIONS.get(name)) if name else None
    if offset is None:
        return None if known is None else float(known)
    if len(offset.lstrip("+-")) > 2:
        return None
    hours = int(offset)
    if not UTC_OFFSET_RANGE[0] <= hours <= UTC_OFFSET_RANGE[1]:
        return None
    if name and known != hours:
        return None  # a name contradicting its offset, or an unknown name that cannot vouch for it
    return float(hours)


# ---------------------------------------------------------------------------------------------------
# SPC local storm reports
# ---------------------------------------------------------------------------------------------------


def read_spc_reports(source: str | os.PathLike | Sequence[str | os.PathLike]) -> pd.DataFrame:
    """Read SPC daily storm report CSVs into one normalised table.

    Parameters
    ----------
    source : directory, path, glob pattern, URL, or a sequence of them
        A directory is searched for ``YYMMDD_rpts*.csv``. File names must keep SPC's ``YYMMDD`` prefix,
        which dates the reports.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SPC_COLUMNS`, sorted by time.

    Raises
    ------
    DataError
        If no report files are found, a file name carries no date, or a file's header is not an SPC
        header (the message names the missing columns).
    """
    paths: list[str] = []
    for item in _expand_paths(source, "SPC report"):
        if not is_remote(item) and os.path.isdir(item):
            found = sorted(p for p in glob.glob(os.path.join(item, "*_rpts*.csv")) if _SPC_NAME.search(p))
            if not found:
                raise DataError(f"No SPC report files (YYMMDD_rpts_torn|hail|wind.csv) in {item!r}.")
            paths += found
        else:
            paths.append(item)
    rows: list[dict] = []
    for path in paths:
        rows += _read_spc_file(path)
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=_SPC_DTYPES.get(c, "object")) for c in SPC_COLUMNS})
    table = pd.DataFrame(rows, columns=list(SPC_COLUMNS))
    table["time"] = table["time"].astype("datetime64[ns]")
    return table.sort_values(["time", "event_type"], kind="stable").reset_index(drop=True)


_SPC_DTYPES = {"time": "datetime64[ns]", "lat": "float64", "lon": "float64", "magnitude": "float64"}


def _read_spc_file(path: str) -> list[dict]:
    match = _SPC_NAME.search(os.path.basename(path))
    if not match:
        raise DataError(
            f"{path}: SPC report files are named YYMMDD_rpts_torn|hail|wind.csv (or YYMMDD_rpts.csv); the "
            "date in the name is needed to date the reports."
        )
    yymmdd, file_type = match.group(1), (match.group(2) or "").lower() or None
    try:
        day = pd.Timestamp(pd.to_datetime(yymmdd, format="%y%m%d"))
    except ValueError:
        raise DataError(
            f"{path}: the name's date {yymmdd} is not a date (YYMMDD, e.g. 200615 for 15 June 2020); SPC "
            "files are named by their convective day."
        ) from None
    local = fetch(path, "spc") if is_remote(path) else path
    text = Path(local).read_text(encoding="utf-8", errors="replace")
    rows: list[dict] = []
    current = None
    skipped: list[int] = []
    for line_no, fields in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not fields or not "".join(fields).strip():
            continue
        if fields[0].strip().lower() == "time":
            current = _spc_header_type(fields, path, line_no)
            continue
        if current is None:
            raise DataError(
                f"{path}: line {line_no} comes before any header row; SPC files start with "
                "'Time,F_Scale|Size|Speed,Location,County,State,Lat,Lon,Comments'."
            )
        if file_type is not None and current != file_type:
            raise DataError(f"{path}: the name says {file_type!r} reports but the header says {current!r}.")
        row = _spc_row(fields, current, day)
        if row is None:
            skipped.append(line_no)
        else:
            rows.append(row)
    if skipped:
        warnings.warn(
            f"{path}: skipped {len(skipped)} report(s) with unreadable time or position (lines {skipped[:5]}).",
            stacklevel=3,
        )
    return rows


def _spc_header_type(fields: list[str], path: str, line_no: int) -> str:
    header = [f.strip() for f in fields]
    for key, (magnitude_column, _event, _units) in SPC_TYPES.items():
        if len(header) > 1 and header[1] == magnitude_column:
            missing = [c for c in _SPC_HEADER_REST if c not in header]
            if missing:
                raise DataError(f"{path}: header on line {line_no} lacks column(s) {missing}.")
            return key
    raise DataError(
        f"{path}: header on line {line_no} is {header}; the second column must be F_Scale (tornado), Size "
        "(hail) or Speed (wind), followed by Location, County, State, Lat, Lon, Comments."
    )


def _spc_row(fields: list[str], kind: str, day: pd.Timestamp) -> dict | None:
    if len(fields) < 7:
        return None
    # Comments may contain commas that SPC does not quote; everything after Lon is the comment.
    comments = ",".join(fields[7:]).strip()
    try:
        hhmm = int(fields[0].strip())
        lat = float(fields[5])
        lon = float(fields[6])
    except ValueError:
        return None
    hour, minute = divmod(hhmm, 100)
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        return None
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):  # also refuses NaN and inf
        return None
    # The SPC convective day runs 12 UTC to 12 UTC: morning hours belong to the next calendar day.
    time = day + pd.Timedelta(days=1 if hhmm < 1200 else 0, hours=hour, minutes=minute)
    _column, event_type, units = SPC_TYPES[kind]
    return {
        "time": time,
        "event_type": event_type,
        "lat": lat,
        "lon": lon,
        "magnitude": _spc_magnitude(fields[1], kind),
        "magnitude_units": units,
        "state": fields[4].strip(),
        "location": fields[2].strip(),
        "county": fields[3].strip(),
        "comments": comments,
        "source": "SPC",
    }


def _spc_magnitude(value: str, kind: str) -> float:
    text = value.strip().upper()
    if kind == "torn":
        digits = re.sub(r"^E?F", "", text)
        return float(digits) if digits.isdigit() else np.nan
    try:
        number = float(text)
    except ValueError:
        return np.nan  # "UNK"
    return number / 100.0 if kind == "hail" else number  # hail Size is in hundredths of an inch
