"""Storm report readers on CSVs written with the exact NCEI Storm Events and SPC layouts."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from workbench.errors import DataError
from workbench.sources.reports import (
    SPC_COLUMNS,
    STORM_EVENTS_COLUMNS,
    read_spc_reports,
    read_storm_events,
    storm_events_url,
)

# Two rows as NCEI writes them (values from the 2020 details file's layout; narratives shortened).
NCEI_ROWS = [
    {
        "BEGIN_YEARMONTH": 202006, "BEGIN_DAY": 3, "BEGIN_TIME": 1530, "END_YEARMONTH": 202006, "END_DAY": 3,
        "END_TIME": 1545, "EPISODE_ID": 149001, "EVENT_ID": 900001, "STATE": "KANSAS", "STATE_FIPS": 20,
        "YEAR": 2020, "MONTH_NAME": "June", "EVENT_TYPE": "Hail", "CZ_TYPE": "C", "CZ_FIPS": 173,
        "CZ_NAME": "SEDGWICK", "WFO": "ICT", "BEGIN_DATE_TIME": "03-JUN-20 15:30:00", "CZ_TIMEZONE": "CST-6",
        "END_DATE_TIME": "03-JUN-20 15:45:00", "INJURIES_DIRECT": 0, "INJURIES_INDIRECT": 0,
        "DEATHS_DIRECT": 0, "DEATHS_INDIRECT": 0, "DAMAGE_PROPERTY": "0.00K", "DAMAGE_CROPS": "0.00K",
        "SOURCE": "Trained Spotter", "MAGNITUDE": 1.75, "MAGNITUDE_TYPE": "", "FLOOD_CAUSE": "",
        "CATEGORY": "", "TOR_F_SCALE": "", "TOR_LENGTH": "", "TOR_WIDTH": "", "TOR_OTHER_WFO": "",
        "TOR_OTHER_CZ_STATE": "", "TOR_OTHER_CZ_FIPS": "", "TOR_OTHER_CZ_NAME": "", "BEGIN_RANGE": 2,
        "BEGIN_AZIMUTH": "NW", "BEGIN_LOCATION": "WICHITA", "END_RANGE": 2, "END_AZIMUTH": "NW",
        "END_LOCATION": "WICHITA", "BEGIN_LAT": 37.71, "BEGIN_LON": -97.36, "END_LAT": 37.71,
        "END_LON": -97.36, "EPISODE_NARRATIVE": "Storms formed along a dry line, then moved east.",
        "EVENT_NARRATIVE": "Golf ball sized hail, with some wind.", "DATA_SOURCE": "CSV",
    },
    {
        "BEGIN_YEARMONTH": 202006, "BEGIN_DAY": 30, "BEGIN_TIME": 2350, "END_YEARMONTH": 202007, "END_DAY": 1,
        "END_TIME": 5, "EPISODE_ID": 149002, "EVENT_ID": 900002, "STATE": "NEW YORK", "STATE_FIPS": 36,
        "YEAR": 2020, "MONTH_NAME": "June", "EVENT_TYPE": "Thunderstorm Wind", "CZ_TYPE": "C", "CZ_FIPS": 1,
        "CZ_NAME": "ALBANY", "WFO": "ALY", "BEGIN_DATE_TIME": "30-JUN-20 23:50:00", "CZ_TIMEZONE": "EST-5",
        "END_DATE_TIME": "01-JUL-20 00:05:00", "INJURIES_DIRECT": 0, "INJURIES_INDIRECT": 0,
        "DEATHS_DIRECT": 0, "DEATHS_INDIRECT": 0, "DAMAGE_PROPERTY": "5.00K", "DAMAGE_CROPS": "0.00K",
        "SOURCE": "Public", "MAGNITUDE": 50, "MAGNITUDE_TYPE": "EG", "FLOOD_CAUSE": "", "CATEGORY": "",
        "TOR_F_SCALE": "", "TOR_LENGTH": "", "TOR_WIDTH": "", "TOR_OTHER_WFO": "", "TOR_OTHER_CZ_STATE": "",
        "TOR_OTHER_CZ_FIPS": "", "TOR_OTHER_CZ_NAME": "", "BEGIN_RANGE": 0, "BEGIN_AZIMUTH": "N",
        "BEGIN_LOCATION": "ALBANY", "END_RANGE": 0, "END_AZIMUTH": "N", "END_LOCATION": "ALBANY",
        "BEGIN_LAT": 42.65, "BEGIN_LON": -73.75, "END_LAT": 42.65, "END_LON": -73.75,
        "EPISODE_NARRATIVE": "A line of storms, \"bowing\" at times.", "EVENT_NARRATIVE": "Trees down, on wires.",
        "DATA_SOURCE": "CSV",
    },
]  # fmt: skip


def write_ncei(path, rows=NCEI_ROWS, columns=STORM_EVENTS_COLUMNS):
    frame = pd.DataFrame(rows)[list(columns)]
    text = frame.to_csv(index=False)
    if str(path).endswith(".gz"):
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


def test_storm_events_columns_are_the_real_51():
    assert len(STORM_EVENTS_COLUMNS) == 51
    assert STORM_EVENTS_COLUMNS[:3] == ("BEGIN_YEARMONTH", "BEGIN_DAY", "BEGIN_TIME")
    assert STORM_EVENTS_COLUMNS[-1] == "DATA_SOURCE"


def test_storm_events_times_in_utc_and_raw_columns_kept(tmp_path):
    path = write_ncei(tmp_path / "StormEvents_details-ftp_v1.0_d2020_c20240620.csv.gz")
    table = read_storm_events(path)
    assert list(table.columns[:51]) == list(STORM_EVENTS_COLUMNS)
    assert list(table.columns[51:]) == ["begin_time", "end_time"]
    # 15:30 CST (UTC-6) is 21:30 UTC; 23:50 EST (UTC-5) on 30 June is 04:50 UTC on 1 July.
    assert table["begin_time"].tolist() == [
        pd.Timestamp("2020-06-03T21:30"),
        pd.Timestamp("2020-07-01T04:50"),
    ]
    assert table["end_time"].tolist() == [pd.Timestamp("2020-06-03T21:45"), pd.Timestamp("2020-07-01T05:05")]
    assert table["begin_time"].dtype == "datetime64[ns]"
    assert table.loc[1, "EPISODE_NARRATIVE"] == 'A line of storms, "bowing" at times.'
    assert table.loc[0, "MAGNITUDE"] == 1.75


def test_storm_events_several_files_and_glob(tmp_path):
    write_ncei(tmp_path / "StormEvents_details-ftp_v1.0_d2020_c20240620.csv")
    write_ncei(tmp_path / "StormEvents_details-ftp_v1.0_d2021_c20240620.csv", rows=NCEI_ROWS[:1])
    table = read_storm_events(str(tmp_path / "StormEvents_details-*.csv"))
    assert len(table) == 3
    assert table["EVENT_ID"].tolist() == [900001, 900002, 900001]


def test_storm_events_without_timezone_column_are_taken_as_utc(tmp_path):
    columns = [c for c in STORM_EVENTS_COLUMNS if c != "CZ_TIMEZONE"]
    table = read_storm_events(write_ncei(tmp_path / "events.csv", columns=columns))
    assert table["begin_time"].iloc[0] == pd.Timestamp("2020-06-03T15:30")


def test_storm_events_missing_columns_are_named(tmp_path):
    columns = [c for c in STORM_EVENTS_COLUMNS if c not in ("BEGIN_LAT", "EPISODE_ID")]
    path = write_ncei(tmp_path / "events.csv", columns=columns)
    with pytest.raises(DataError) as err:
        read_storm_events(path)
    assert "['EPISODE_ID', 'BEGIN_LAT']" in str(err.value)
    assert "events.csv" in str(err.value)
    with pytest.raises(DataError, match="No Storm Events file"):
        read_storm_events(tmp_path / "nothing.csv")


def test_storm_events_url_offline_is_fast():
    import time

    start = time.monotonic()
    with pytest.raises(DataError, match="cannot be reached|WORKBENCH_OFFLINE"):
        storm_events_url(2020, timeout=2.0)
    assert time.monotonic() - start < 5


# ---------------------------------------------------------------------------------------------------
# SPC
# ---------------------------------------------------------------------------------------------------

TORN = """Time,F_Scale,Location,County,State,Lat,Lon,Comments
1834,EF1,2 NW Smithville,Dekalb,MO,39.41,-94.60,Brief touchdown. (EAX)
0215,UNK,3 S Clinton,Henry,MO,38.32,-93.78,Tornado reported by law enforcement, no damage. (SGF)
"""
HAIL = """Time,Size,Location,County,State,Lat,Lon,Comments
2330,175,Wichita,Sedgwick,KS,37.69,-97.34,Golf ball size hail. (ICT)
"""
WIND = """Time,Speed,Location,County,State,Lat,Lon,Comments
1200,UNK,Albany,Albany,NY,42.65,-73.75,Trees down on wires, road closed. (ALY)
1159,65,Troy,Rensselaer,NY,42.73,-73.69,Measured gust. (ALY)
"""


def test_spc_per_type_files_in_a_directory(tmp_path):
    (tmp_path / "200603_rpts_torn.csv").write_text(TORN)
    (tmp_path / "200603_rpts_hail.csv").write_text(HAIL)
    (tmp_path / "200603_rpts_wind.csv").write_text(WIND)
    (tmp_path / "notes.csv").write_text("not a report file\n")
    table = read_spc_reports(tmp_path)
    assert list(table.columns) == list(SPC_COLUMNS)
    assert len(table) == 5
    by_place = table.set_index("location")
    # the SPC day of 3 June runs 12 UTC 3 June to 12 UTC 4 June
    assert by_place.loc["2 NW Smithville", "time"] == pd.Timestamp("2020-06-03T18:34")
    assert by_place.loc["3 S Clinton", "time"] == pd.Timestamp("2020-06-04T02:15")
    assert by_place.loc["Albany", "time"] == pd.Timestamp("2020-06-03T12:00")
    assert by_place.loc["Troy", "time"] == pd.Timestamp("2020-06-04T11:59")
    assert by_place.loc["2 NW Smithville", "magnitude"] == 1.0
    assert np.isnan(by_place.loc["3 S Clinton", "magnitude"])
    assert by_place.loc["Wichita", "magnitude"] == 1.75 and by_place.loc["Wichita", "magnitude_units"] == "in"
    assert by_place.loc["Troy", "magnitude"] == 65.0 and by_place.loc["Troy", "magnitude_units"] == "kt"
    assert by_place.loc["Wichita", "event_type"] == "Hail"
    assert by_place.loc["Troy", "event_type"] == "Thunderstorm Wind"
    assert by_place.loc["3 S Clinton", "comments"] == "Tornado reported by law enforcement, no damage. (SGF)"
    assert by_place.loc["Troy", "lon"] == -73.69 and by_place.loc["Troy", "state"] == "NY"
    assert set(table["source"]) == {"SPC"}
    assert table["time"].is_monotonic_increasing


def test_spc_combined_file_with_a_header_per_type(tmp_path):
    path = tmp_path / "200603_rpts.csv"
    path.write_text(TORN + HAIL + WIND)
    table = read_spc_reports(path)
    assert sorted(table["event_type"].value_counts().items()) == [
        ("Hail", 1),
        ("Thunderstorm Wind", 2),
        ("Tornado", 2),
    ]


def test_spc_empty_file_gives_an_empty_table(tmp_path):
    path = tmp_path / "200604_rpts_torn.csv"
    path.write_text("Time,F_Scale,Location,County,State,Lat,Lon,Comments\n")
    table = read_spc_reports(path)
    assert list(table.columns) == list(SPC_COLUMNS) and len(table) == 0


def test_spc_bad_inputs(tmp_path):
    bad = tmp_path / "200603_rpts_hail.csv"
    bad.write_text("Time,Diameter,Location,County,State,Lat,Lon,Comments\n2330,175,A,B,KS,37.0,-97.0,x\n")
    with pytest.raises(DataError, match="F_Scale"):
        read_spc_reports(bad)
    short = tmp_path / "200605_rpts_wind.csv"
    short.write_text("Time,Speed,Location,County,State,Lat,Lon\n")
    with pytest.raises(DataError, match="Comments"):
        read_spc_reports(short)
    undated = tmp_path / "reports_wind.csv"
    undated.write_text(WIND)
    with pytest.raises(DataError, match="YYMMDD"):
        read_spc_reports(undated)
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    with pytest.raises(DataError, match="No SPC report files"):
        read_spc_reports(empty_dir)
