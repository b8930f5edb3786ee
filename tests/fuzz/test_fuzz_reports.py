"""Fuzzing the storm-report parsers (NCEI Storm Events and SPC CSVs) and the scoring-input validators.

Rows are generated in the real column layouts, each field either a valid value or a hostile one (text,
impossible numbers, odd time zones, quotes, commas, newlines). Invariant: the parser returns a table
that satisfies its documented contract, or raises :class:`~workbench.errors.WorkbenchError`; never
another exception, never a hang.
"""

from __future__ import annotations

import csv
import io
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.errors import WorkbenchError
from workbench.sources.reports import (
    SPC_COLUMNS,
    STORM_EVENTS_COLUMNS,
    UTC_OFFSET_RANGE,
    parse_timezone,
    read_spc_reports,
    read_storm_events,
)

pytestmark = pytest.mark.timeout(120)

FILE_EXAMPLES = max(10, settings().max_examples * 3 // 5)
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
JUNK = st.one_of(
    TEXT,
    st.sampled_from(["", "abc", "nan", "inf", "-inf", "1e400", "N", ",", '"', "\n", "0x1A", "١٢", "--1"]),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.integers(-(10**12), 10**12).map(str),
)


def either(valid: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly valid values (three in four), sometimes hostile ones, so both paths are explored."""
    return st.integers(0, 3).flatmap(lambda pick: valid if pick else JUNK)


ZONES = st.one_of(
    st.sampled_from(["CST-6", "EST-5", "MST-7", "PST-8", "AKST-9", "HST-10", "GST10", "UTC", "EST"]),
    st.sampled_from(["CST-60", "CST6", "EST+5", "MOON", "C-6", "+15", "-13", "CST-06", "cst-6", " CST-6 "]),
    st.from_regex(r"\A[A-Za-z]{0,4}[+-]?\d{0,3}\Z"),
)


@st.composite
def storm_rows(draw) -> dict:
    """A valid details row, with none, one or two of its fields made hostile."""
    row = dict.fromkeys(STORM_EVENTS_COLUMNS, "")
    year = draw(st.integers(1950, 2030))
    valid = {
        "BEGIN_YEARMONTH": st.integers(1, 12).map(lambda m: f"{year}{m:02d}"),
        "BEGIN_DAY": st.integers(1, 28).map(str),
        "BEGIN_TIME": st.integers(0, 23).flatmap(
            lambda h: st.integers(0, 59).map(lambda m: str(100 * h + m))
        ),
        "END_YEARMONTH": st.just(f"{year}12"),
        "END_DAY": st.integers(1, 31).map(str),
        "END_TIME": st.integers(0, 2359).filter(lambda t: t % 100 < 60).map(str),
        "EPISODE_ID": st.integers(1, 10**6).map(str),
        "EVENT_ID": st.integers(1, 10**7).map(str),
        "EVENT_TYPE": st.sampled_from(["Hail", "Tornado", "Thunderstorm Wind", "Flash Flood", "Drought"]),
        "CZ_TIMEZONE": st.sampled_from(
            ["CST-6", "EST-5", "MST-7", "PST-8", "AKST-9", "HST-10", "GST10", "UTC"]
        ),
        "BEGIN_LAT": st.one_of(st.just(""), st.floats(-90, 90).map(str)),
        "BEGIN_LON": st.one_of(st.just(""), st.floats(-180, 180).map(str)),
        "END_LAT": st.floats(-90, 90).map(str),
        "END_LON": st.floats(-180, 180).map(str),
        "BEGIN_RANGE": st.floats(0, 100).map(str),
        "MAGNITUDE": st.floats(0, 200).map(str),
        "EPISODE_NARRATIVE": TEXT,
        "EVENT_NARRATIVE": TEXT,
    }
    row.update({column: draw(strategy) for column, strategy in valid.items()}, STATE="KANSAS")
    for column in draw(st.lists(st.sampled_from(sorted(valid)), max_size=2)):
        row[column] = draw(ZONES if column == "CZ_TIMEZONE" else JUNK)
    return row


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")


@settings(max_examples=FILE_EXAMPLES)
@given(st.lists(storm_rows(), min_size=1, max_size=6), st.sampled_from(["all", "drop_column", "shuffle"]))
def test_storm_events_csv(fuzz_counts, rows, layout):
    fuzz_counts["Storm Events CSV"] += 1
    header = list(STORM_EVENTS_COLUMNS)
    if layout == "drop_column":
        header.remove("CZ_TIMEZONE")
    elif layout == "shuffle":
        header = header[::-1]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "StormEvents_details.csv"
        write_csv(path, header, [[row[c] for c in header] for row in rows])
        try:
            table = read_storm_events(path)
        except WorkbenchError:
            fuzz_counts["Storm Events CSV (refused)"] += 1
            return
    assert len(table) == len(rows)
    assert table["begin_time"].notna().all() and table["end_time"].notna().all()
    local = pd.to_datetime(
        {
            "year": table["BEGIN_YEARMONTH"].astype(int) // 100,
            "month": table["BEGIN_YEARMONTH"].astype(int) % 100,
            "day": table["BEGIN_DAY"].astype(int),
            "hour": table["BEGIN_TIME"].astype(int) // 100,
            "minute": table["BEGIN_TIME"].astype(int) % 100,
        }
    )
    shift = (table["begin_time"] - local) / pd.Timedelta(hours=1)
    assert shift.between(-UTC_OFFSET_RANGE[1], -UTC_OFFSET_RANGE[0]).all()
    for column, bound in (("BEGIN_LAT", 90), ("BEGIN_LON", 180)):
        values = pd.to_numeric(table[column], errors="coerce")
        assert (values.isna() | values.abs().le(bound)).all()
    # the case builder takes the parsed table without any other kind of error
    from workbench.events.reports import prepare_storm_events

    try:
        events, counts = prepare_storm_events(table, ["Hail", "Tornado", "Thunderstorm Wind"])
    except WorkbenchError:
        fuzz_counts["Storm Events cases (refused)"] += 1
        return
    assert np.isfinite(events["lat"]).all() and (events["begin"] <= events["end"]).all()


@given(ZONES)
def test_time_zone_codes(fuzz_counts, code):
    fuzz_counts["CZ_TIMEZONE codes"] += 1
    hours = parse_timezone(code)
    if hours is None:
        fuzz_counts["CZ_TIMEZONE codes (refused)"] += 1
        return
    assert UTC_OFFSET_RANGE[0] <= hours <= UTC_OFFSET_RANGE[1]


SPC_HEADERS = {
    "torn": "Time,F_Scale,Location,County,State,Lat,Lon,Comments",
    "hail": "Time,Size,Location,County,State,Lat,Lon,Comments",
    "wind": "Time,Speed,Location,County,State,Lat,Lon,Comments",
}


@st.composite
def spc_file(draw) -> tuple[str, str]:
    kind = draw(st.sampled_from(["torn", "hail", "wind"]))
    # weights by a drawn number: hypothesis merges repeated branches of one_of
    pick = draw(st.integers(0, 7))
    if pick < 6:
        date = draw(st.dates(pd.Timestamp("2000-01-01").date(), pd.Timestamp("2030-12-31").date())).strftime(
            "%y%m%d"
        )
    else:
        date = draw(
            st.from_regex(r"\A\d{6}\Z") if pick == 6 else JUNK.filter(lambda t: not set(t) & set("/\\\x00"))
        )
    name = f"{date}_rpts_{kind}.csv" if draw(st.booleans()) else f"{date}_rpts.csv"
    pick = draw(st.integers(0, 7))
    header = (
        SPC_HEADERS[kind]
        if pick < 6
        else draw(st.sampled_from(list(SPC_HEADERS.values())) if pick == 6 else JUNK)
    )
    lines = [header]
    for _ in range(draw(st.integers(0, 5))):
        fields = [
            draw(either(st.integers(0, 2359).map(lambda t: f"{t:04d}"))),
            draw(either(st.sampled_from(["EF0", "EF3", "F2", "UNK", "175", "65"]))),
            draw(TEXT),
            draw(TEXT),
            draw(st.sampled_from(["KS", "TX", ""])),
            draw(either(st.floats(-90, 90).map(lambda v: f"{v:.2f}"))),
            draw(either(st.floats(-180, 180).map(lambda v: f"{v:.2f}"))),
            draw(TEXT),
        ]
        buffer = io.StringIO()
        csv.writer(buffer).writerow(fields[: draw(st.integers(1, 8))] if draw(st.booleans()) else fields)
        lines.append(buffer.getvalue().rstrip("\r\n"))
    return name, "\n".join(lines) + "\n"


@settings(max_examples=FILE_EXAMPLES)
@given(st.lists(spc_file(), min_size=1, max_size=3, unique_by=lambda f: f[0]))
def test_spc_csv(fuzz_counts, files):
    fuzz_counts["SPC CSV"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for name, text in files:
            path = Path(tmp) / name
            path.write_text(text, encoding="utf-8")
            paths.append(str(path))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # skipped rows are reported by a warning
                table = read_spc_reports(paths)
        except WorkbenchError:
            fuzz_counts["SPC CSV (refused)"] += 1
            return
    assert list(table.columns) == list(SPC_COLUMNS)
    assert table["time"].notna().all()
    assert table["lat"].between(-90, 90).all() and table["lon"].between(-180, 180).all()
    assert set(table["event_type"]) <= {"Tornado", "Hail", "Thunderstorm Wind"}


# --------------------------------------------------------------------------------------------------
# Scoring-input validators: masks of any dtype, values of any size for a canonical variable
# --------------------------------------------------------------------------------------------------

DTYPES = st.sampled_from(
    ["bool", "int8", "uint8", "int64", "float32", "float64", "complex64", "U3", "datetime64[ns]"]
)


@given(DTYPES, st.lists(st.integers(-3, 3), min_size=4, max_size=4), st.booleans())
def test_mask_dtypes(fuzz_counts, dtype, values, lazy):
    from workbench.scoring.inputs import _as_bool_masks

    fuzz_counts["masks"] += 1
    data = np.array(values).reshape(1, 1, 2, 2)
    data = data.astype(dtype) if dtype != "datetime64[ns]" else data.astype("datetime64[ns]")
    masks = xr.DataArray(data, dims=("event_type", "time", "y", "x"))
    if lazy:
        masks = masks.chunk()
    try:
        out = _as_bool_masks(masks)
    except WorkbenchError:
        fuzz_counts["masks (refused)"] += 1
        return
    assert out.dtype == bool
    assert dtype in ("bool", "int8", "uint8", "int64") and set(np.unique(data).tolist()) <= {
        0,
        1,
    }


@given(
    st.sampled_from(["t2m", "msl", "tp", "z500", "q850", "refc", "u10m", "r700"]),
    st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=6),
)
def test_plausible_values(fuzz_counts, name, values):
    from workbench import lexicon

    fuzz_counts["plausible ranges"] += 1
    da = xr.DataArray(np.array(values, dtype=np.float32), dims="x", attrs={"units": lexicon.info(name).units})
    try:
        lexicon.check_plausible(da, name)
    except WorkbenchError:
        fuzz_counts["plausible ranges (refused)"] += 1
        return
    lo, hi = lexicon.plausible_range(name)
    finite = da.values[np.isfinite(da.values)]
    assert ((finite >= lo) & (finite <= hi)).all()
