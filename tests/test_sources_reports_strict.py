"""Strict storm-report parsing: bad time zones, text in numeric columns and impossible dates are refused.

Before, ``CST-60`` shifted an event by 60 hours and ``CST6`` by 12, ``BEGIN_LAT=abc`` made the event
vanish under a warning about zone-based events, and an SPC file named with an impossible date raised a
bare ``ValueError`` from pandas.
"""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from workbench.errors import DataError
from workbench.sources.reports import (
    STORM_EVENTS_COLUMNS,
    parse_timezone,
    read_spc_reports,
    read_storm_events,
)


def storm_row(**values) -> dict:
    """One details row: hail at 14:30 local standard time on 1 June 2020 in Kansas (CST-6)."""
    row = dict.fromkeys(STORM_EVENTS_COLUMNS, "")
    row.update(
        BEGIN_YEARMONTH=202006, BEGIN_DAY=1, BEGIN_TIME=1430, END_YEARMONTH=202006, END_DAY=1, END_TIME=1515,
        EPISODE_ID=100, EVENT_ID=1001, STATE="KANSAS", EVENT_TYPE="Hail", CZ_TIMEZONE="CST-6",
        BEGIN_LAT=37.7, BEGIN_LON=-97.0, END_LAT=37.7, END_LON=-97.0, BEGIN_RANGE=0, END_RANGE=0,
        EPISODE_NARRATIVE="Storms.", EVENT_NARRATIVE="Hail.",
    )  # fmt: skip
    row.update(values)
    return row


def write_storm_csv(path, *rows: dict):
    pd.DataFrame(list(rows), columns=list(STORM_EVENTS_COLUMNS)).to_csv(path, index=False)
    return path


def test_a_good_file_gives_utc_times(tmp_path):
    path = write_storm_csv(tmp_path / "se.csv", storm_row(), storm_row(EVENT_ID=1002, CZ_TIMEZONE="GST10"))
    table = read_storm_events(path)
    assert table["begin_time"].tolist() == [
        pd.Timestamp("2020-06-01 20:30"),
        pd.Timestamp("2020-06-01 04:30"),
    ]
    assert table["end_time"].iloc[0] == pd.Timestamp("2020-06-01 21:15")


@pytest.mark.parametrize(
    ("code", "hours"),
    [("CST-6", -6), ("EST", -5), ("UTC", 0), ("GST10", 10), ("ChST10", 10), ("AKST-9", -9), ("-5", -5),
     ("CST-60", None), ("CST6", None), ("EST+5", None), ("-13", None), ("+15", None), ("MOON-6", None),
     ("", None), ("CST-6-6", None), ("C S T", None), ("CST-006", None)],
)  # fmt: skip
def test_time_zone_codes(code, hours):
    assert parse_timezone(code) == hours


@pytest.mark.parametrize("code", ["CST-60", "CST6", "MOON"])
def test_bad_time_zones_are_refused_with_their_lines(tmp_path, code):
    path = write_storm_csv(
        tmp_path / "se.csv", storm_row(), storm_row(EVENT_ID=1002), storm_row(EVENT_ID=1003, CZ_TIMEZONE=code)
    )
    with pytest.raises(DataError, match=rf"cannot read time zones \['{code}'\] in CZ_TIMEZONE on line 4:"):
        read_storm_events(path)


def test_text_in_begin_lat_names_the_column_and_lines(tmp_path):
    path = write_storm_csv(
        tmp_path / "se.csv", storm_row(), storm_row(EVENT_ID=1002, BEGIN_LAT="abc"),
        storm_row(EVENT_ID=1003, BEGIN_LAT="abc"),
    )  # fmt: skip
    with pytest.raises(
        DataError, match=r"column BEGIN_LAT holds text that is not a number on lines 3, 4 \(e.g. 'abc'\)"
    ):
        read_storm_events(path)


def test_text_in_begin_lat_is_refused_when_building_cases_from_a_table():
    """A frame handed straight to the case builder used to give zero events and a wrong warning."""
    from workbench.events.reports import prepare_storm_events

    frame = pd.DataFrame([storm_row(BEGIN_LAT="abc")], columns=list(STORM_EVENTS_COLUMNS))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataError, match="column BEGIN_LAT holds text"):
            prepare_storm_events(frame, ["Hail"])
    # an empty cell (a zone-based event) is still just an event without coordinates
    frame = pd.DataFrame([storm_row(BEGIN_LAT="", BEGIN_LON="")], columns=list(STORM_EVENTS_COLUMNS))
    events, counts = prepare_storm_events(frame, ["Hail"])
    assert len(events) == 0 and counts["no_coords"] == 1


def test_time_zone_through_the_case_builder():
    from workbench.events.reports import parse_storm_event_times

    frame = pd.DataFrame([storm_row(CZ_TIMEZONE="CST-60")], columns=list(STORM_EVENTS_COLUMNS))
    with pytest.raises(DataError, match="cannot read time zones"):
        parse_storm_event_times(frame)
    frame = pd.DataFrame([storm_row()], columns=list(STORM_EVENTS_COLUMNS))
    begin, _ = parse_storm_event_times(frame)
    assert begin.iloc[0] == pd.Timestamp("2020-06-01 20:00")  # 14:30 CST floored to 14:00, +6 h


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [("BEGIN_LAT", 97.0, "BEGIN_LAT must be between -90 and 90, but is 97 on line 2"),
     ("END_LON", "inf", "END_LON must be between -180 and 180"),
     ("BEGIN_RANGE", -3, "BEGIN_RANGE must be at least 0"),
     ("EPISODE_ID", 9.22351277434313e18, "EPISODE_ID must be between 0 and"),  # found by the fuzz layer
     ("EVENT_ID", 1.5, "EVENT_ID must hold whole numbers, but is 1.5 on line 2"),
     ("EVENT_ID", "", "EVENT_ID is empty on line 2"),  # found by the fuzz layer
     ("BEGIN_DAY", 31, "unreadable BEGIN date/time on line 2"),  # 31 June
     ("END_TIME", 2460, "unreadable END date/time on line 2"),
     ("BEGIN_YEARMONTH", "2020-06", "unreadable BEGIN date/time")],
)  # fmt: skip
def test_impossible_values_are_refused(tmp_path, field, value, match):
    path = write_storm_csv(tmp_path / "se.csv", storm_row(**{field: value}))
    with pytest.raises(DataError, match=match):
        read_storm_events(path)


SPC_TORN = (
    "Time,F_Scale,Location,County,State,Lat,Lon,Comments\n1730,EF1,2 N Augusta,Butler,KS,37.72,-96.98,x\n"
)


def test_spc_file_with_an_impossible_date_in_its_name(tmp_path):
    good = tmp_path / "200601_rpts_torn.csv"
    good.write_text(SPC_TORN)
    assert read_spc_reports(good)["time"].tolist() == [pd.Timestamp("2020-06-01 17:30")]
    for name in ("201340_rpts_torn.csv", "200230_rpts_torn.csv"):
        bad = tmp_path / name
        bad.write_text(SPC_TORN)
        with pytest.raises(DataError, match=f"the name's date {name[:6]} is not a date"):
            read_spc_reports(bad)


def test_spc_rows_off_the_globe_are_skipped_with_a_warning(tmp_path):
    path = tmp_path / "200601_rpts_torn.csv"
    path.write_text(SPC_TORN + "1800,EF0,x,y,KS,137.7,-96.9,off the globe\n1900,EF0,x,y,KS,nan,-96.9,nan\n")
    with pytest.warns(
        UserWarning, match=r"skipped 2 report\(s\) with unreadable time or position \(lines \[3, 4\]\)"
    ):
        table = read_spc_reports(path)
    assert len(table) == 1
