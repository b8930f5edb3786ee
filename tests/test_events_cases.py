"""Cases from storm reports (the HR-Extreme method) on small hand-checked grids.

The lat-lon test grid has rows at 30.0, 30.5, ..., 40.0 N and columns at 100.0, 99.5, ..., 90.0 W, so a
report at (lat, lon) falls in row (lat - 30) / 0.5 and column (lon + 100) / 0.5. Every expected index and
time below is worked out by hand in the comments.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench.errors import DataError, GridError
from workbench.events import (
    EVENT_COLUMNS,
    CaseRules,
    GridLocator,
    build_masks,
    cases_from_reports,
    family_of,
    masks_from_cases,
    read_index_csv,
    write_index_csv,
)

# The 51 columns of NCEI's StormEvents_details-ftp_v1.0 files, in their order.
NCEI_HEADER = (
    "BEGIN_YEARMONTH,BEGIN_DAY,BEGIN_TIME,END_YEARMONTH,END_DAY,END_TIME,EPISODE_ID,EVENT_ID,STATE,"
    "STATE_FIPS,YEAR,MONTH_NAME,EVENT_TYPE,CZ_TYPE,CZ_FIPS,CZ_NAME,WFO,BEGIN_DATE_TIME,CZ_TIMEZONE,"
    "END_DATE_TIME,INJURIES_DIRECT,INJURIES_INDIRECT,DEATHS_DIRECT,DEATHS_INDIRECT,DAMAGE_PROPERTY,"
    "DAMAGE_CROPS,SOURCE,MAGNITUDE,MAGNITUDE_TYPE,FLOOD_CAUSE,CATEGORY,TOR_F_SCALE,TOR_LENGTH,TOR_WIDTH,"
    "TOR_OTHER_WFO,TOR_OTHER_CZ_STATE,TOR_OTHER_CZ_FIPS,TOR_OTHER_CZ_NAME,BEGIN_RANGE,BEGIN_AZIMUTH,"
    "BEGIN_LOCATION,END_RANGE,END_AZIMUTH,END_LOCATION,BEGIN_LAT,BEGIN_LON,END_LAT,END_LON,"
    "EPISODE_NARRATIVE,EVENT_NARRATIVE,DATA_SOURCE"
)

# Episode 100 (Kansas, CST-6): hail at 14:30 CST, then a thunderstorm wind 16:00-01:30 CST with
# BEGIN_RANGE 35 miles. Episode 200 (Texas): a flash flood lasting 5 days (capped to 3) and a zone-based
# Excessive Heat event without coordinates (skipped). Episode 300 lies in Oregon, off the grid. Episode
# 400 is a Drought, not a kept type.
NCEI_ROWS = """\
202006,1,1430,202006,1,1515,100,1001,KANSAS,20,2020,June,Hail,C,15,BUTLER,ICT,01-JUN-20 14:30:00,CST-6,01-JUN-20 15:15:00,0,0,0,0,0.00K,0.00K,Trained Spotter,1.75,,,,,,,,,,,0,N,AUGUSTA,0,N,AUGUSTA,35.0,-95.0,35.0,-95.0,"Storms formed along a front.","Golf ball hail."
202006,1,1600,202006,2,130,100,1002,KANSAS,20,2020,June,Thunderstorm Wind,C,15,BUTLER,ICT,01-JUN-20 16:00:00,CST-6,02-JUN-20 01:30:00,0,0,0,0,10.00K,0.00K,Law Enforcement,65.0,EG,,,,,,,,,,35,NE,AUGUSTA,5,NE,ROSE HILL,36.0,-94.0,36.5,-93.5,"Storms formed along a front.","Trees down."
202006,3,800,202006,8,1200,200,2001,TEXAS,48,2020,June,Flash Flood,C,139,ELLIS,FWD,03-JUN-20 08:00:00,CST-6,08-JUN-20 12:00:00,0,0,0,0,50.00K,0.00K,Public,,,Heavy Rain,,,,,,,,,0,N,WAXAHACHIE,0,N,WAXAHACHIE,32.0,-98.0,,,"Slow-moving storms.","Roads flooded."
202006,3,800,202006,4,1200,200,2002,TEXAS,48,2020,June,Excessive Heat,Z,120,ELLIS,FWD,03-JUN-20 08:00:00,CST-6,04-JUN-20 12:00:00,0,0,0,0,0.00K,0.00K,ASOS,,,,,,,,,,,,,,,,,,,,,,"Slow-moving storms.","Heat index above 110."
202006,3,800,202006,4,1200,300,3001,OREGON,41,2020,June,Hail,C,5,LANE,PQR,03-JUN-20 08:00:00,PST-8,04-JUN-20 12:00:00,0,0,0,0,0.00K,0.00K,Public,1.00,,,,,,,,,,,0,N,EUGENE,0,N,EUGENE,45.0,-120.0,45.0,-120.0,"Hail in Oregon.","Hail."
202006,3,800,202006,4,1200,400,4001,TEXAS,48,2020,June,Drought,Z,121,HILL,FWD,03-JUN-20 08:00:00,CST-6,04-JUN-20 12:00:00,0,0,0,0,0.00K,0.00K,Drought Monitor,,,,,,,,,,,,0,N,HILLSBORO,0,N,HILLSBORO,33.0,-97.0,,,"Dry.","Dry."
"""


def ncei_frame(rows: str = NCEI_ROWS) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(NCEI_HEADER + "\n" + rows))


def spc_frame() -> pd.DataFrame:
    """Normalised SPC reports: one joins episode 100, one is a leftover tornado, one lies off the grid."""
    return pd.DataFrame(
        {
            "time": pd.to_datetime(["2020-06-01T20:40", "2020-06-02T23:10", "2020-06-02T12:00"]),
            "event_type": ["Hail", "Tornado", "Thunderstorm Wind"],
            "lat": [35.4, 38.0, 50.0],
            "lon": [-95.3, -91.0, -95.0],
            "magnitude": [1.0, 1.0, 60.0],
            "state": ["KS", "MO", "ND"],
            "source": "SPC",
        }
    )


LAT = np.arange(30.0, 40.01, 0.5)  # 21 rows
LON = np.arange(-100.0, -89.99, 0.5)  # 21 columns
TIMES = pd.date_range("2020-06-01T00", "2020-06-07T23", freq="h")


def latlon_truth() -> xr.Dataset:
    t2m = np.full((TIMES.size, LAT.size, LON.size), 290.0, dtype=np.float32)
    return xr.Dataset(
        {"t2m": (("time", "latitude", "longitude"), t2m, {"units": "K"})},
        coords={"time": TIMES, "latitude": LAT, "longitude": LON},
    )


def build(**kw) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cases_from_reports(ncei_frame(), latlon_truth(), spc_frame(), pad_cells=2, **kw)


# Hand-worked expected cases (pad_cells=2):
# ncei-100: event 1001 begin (35.0, -95.0) -> (10, 10); event 1002 begin (36.0, -94.0) -> (12, 12),
#   end (36.5, -93.5) -> (13, 13); its 35-mile range = 56.35 km -> +-0.5068 deg lat (rows 11 and 13)
#   and +-0.6264 deg lon at 36 N (columns 11 and 13); the SPC hail at (35.4, -95.3) -> (11, 9) joins
#   (0.4 and 0.3 deg from event 1001, 20:40 UTC inside 20-21 UTC). Box rows 10..13, cols 9..13,
#   padded: rows 8..15, cols 7..15. Times 14 CST = 20 UTC on 1 June to 01 CST = 07 UTC on 2 June,
#   plus 4 h -> 11 UTC.
# ncei-200: (32.0, -98.0) -> (4, 4), padded rows/cols 2..6; 08 CST 3 June = 14 UTC; the end (18 UTC on
#   8 June) is capped at 3 days (14 UTC 6 June) plus 4 h -> 18 UTC on 6 June.
# spc-tornado-0000: (38.0, -91.0) -> (16, 18), padded rows 14..18, cols 16..20 (clipped at 20);
#   23 UTC on 2 June, plus 4 h -> 03 UTC on 3 June.
EXPECTED = pd.DataFrame(
    {
        "event_id": ["ncei-100", "spc-tornado-0000", "ncei-200"],
        "event_type": ["hail+wind", "tornado", "heavy_rain"],
        "start": pd.to_datetime(["2020-06-01T20", "2020-06-02T23", "2020-06-03T14"]),
        "end": pd.to_datetime(["2020-06-02T11", "2020-06-03T03", "2020-06-06T18"]),
        "y_min": [8, 14, 2],
        "y_max": [15, 18, 6],
        "x_min": [7, 16, 2],
        "x_max": [15, 20, 6],
        "source": ["ncei+spc", "spc", "ncei"],
        "details": ["Hail+Thunderstorm Wind", "Tornado", "Flash Flood"],
    }
)


def test_cases_match_hand_computed_boxes_and_spans():
    table = build()
    assert list(table.columns) == list(EVENT_COLUMNS)
    pd.testing.assert_frame_equal(table[list(EXPECTED.columns)], EXPECTED, check_dtype=False)
    # lat/lon extent of the box's cell centres
    row = table.iloc[0]
    assert (row.lat_min, row.lat_max, row.lon_min, row.lon_max) == (34.0, 37.5, -96.5, -92.5)


def test_report_files_by_path(tmp_path):
    path = tmp_path / "StormEvents_details-ftp_v1.0_d2020_c20240101.csv"
    path.write_text(NCEI_HEADER + "\n" + NCEI_ROWS)
    spc_dir = tmp_path / "spc"
    spc_dir.mkdir()
    (spc_dir / "200601_rpts_hail.csv").write_text(
        "Time,Size,Location,County,State,Lat,Lon,Comments\n2040,100,AUGUSTA,BUTLER,KS,35.4,-95.3,\n"
    )
    (spc_dir / "200602_rpts_torn.csv").write_text(
        "Time,F_Scale,Location,County,State,Lat,Lon,Comments\n2310,EF1,SALEM,DENT,MO,38.0,-91.0,\n"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = cases_from_reports(path, latlon_truth(), spc_dir, pad_cells=2)
    pd.testing.assert_frame_equal(table[list(EXPECTED.columns)], EXPECTED, check_dtype=False)


def test_dropped_reports_are_counted_in_a_warning():
    with pytest.warns(UserWarning) as record:
        cases_from_reports(ncei_frame(), latlon_truth(), spc_frame(), pad_cells=2)
    text = " ".join(str(w.message) for w in record)
    assert "2 reports lie outside the grid and were dropped (1 Storm Events, 1 SPC)" in text
    assert "1 reports have no latitude/longitude" in text


def test_masks_from_cases_cell_by_cell():
    table = build()
    masks = masks_from_cases(table, latlon_truth())
    assert masks.name == "mask" and masks.dtype == bool
    assert masks.dims == ("event_type", "time", "latitude", "longitude")
    assert masks.event_type.values.tolist() == ["tornado", "hail", "wind", "heavy_rain"]

    t = {ts: i for i, ts in enumerate(TIMES)}
    expected = np.zeros(masks.shape, dtype=bool)
    # hail and wind: 1 June 20 UTC .. 2 June 11 UTC inclusive, rows 8..15, columns 7..15
    for k in (1, 2):
        expected[k, t[pd.Timestamp("2020-06-01T20")] : t[pd.Timestamp("2020-06-02T11")] + 1, 8:16, 7:16] = (
            True
        )
    # tornado: 2 June 23 UTC .. 3 June 03 UTC, rows 14..18, columns 16..20
    expected[0, t[pd.Timestamp("2020-06-02T23")] : t[pd.Timestamp("2020-06-03T03")] + 1, 14:19, 16:21] = True
    # heavy rain: 3 June 14 UTC .. 6 June 18 UTC, rows 2..6, columns 2..6
    expected[3, t[pd.Timestamp("2020-06-03T14")] : t[pd.Timestamp("2020-06-06T18")] + 1, 2:7, 2:7] = True
    np.testing.assert_array_equal(masks.values, expected)
    assert int(masks.sel(event_type="hail").sum()) == 16 * 8 * 9


def test_lazy_masks_equal_eager_masks():
    table = build()
    eager = masks_from_cases(table, latlon_truth())
    lazy = masks_from_cases(table, latlon_truth(), chunks={"time": 10})
    assert lazy.chunks is not None
    np.testing.assert_array_equal(lazy.values, eager.values)


def test_min_spc_reports_two_drops_the_single_tornado():
    table = build(min_spc_reports=2)
    assert table.event_id.tolist() == ["ncei-100", "ncei-200"]


def test_max_span_and_extend_are_parameters():
    table = build(max_span=pd.Timedelta(days=1), extend=pd.Timedelta(0))
    flood = table.set_index("event_id").loc["ncei-200"]
    assert flood.end == pd.Timestamp("2020-06-04T14")


def test_times_stay_local_without_utc_conversion():
    table = build(to_utc=False)
    assert table.set_index("event_id").loc["ncei-200", "start"] == pd.Timestamp("2020-06-03T08")


def test_leftover_spc_reports_group_by_distance_and_time():
    # Three wind reports: two 40 km and 1 h apart (one case), one 300 km away (its own case).
    spc = pd.DataFrame(
        {
            "time": pd.to_datetime(["2020-06-05T01:00", "2020-06-05T02:30", "2020-06-05T01:00"]),
            "event_type": "Thunderstorm Wind",
            "lat": [33.0, 33.36, 36.0],
            "lon": [-96.0, -96.0, -96.0],
        }
    )
    table = cases_from_reports(None, latlon_truth(), spc, pad_cells=0)
    assert table.event_id.tolist() == ["spc-wind-0000", "spc-wind-0001"]
    first, second = table.iloc[0], table.iloc[1]
    # (33.0, -96) -> (6, 8); (33.36, -96) -> (7, 8); (36.0, -96) -> (12, 8)
    assert (first.y_min, first.y_max, first.x_min, first.x_max) == (6, 7, 8, 8)
    assert (first.start, first.end) == (pd.Timestamp("2020-06-05T01"), pd.Timestamp("2020-06-05T06"))
    assert (second.y_min, second.y_max) == (12, 12)
    # times are floored to the hour (01 and 02 UTC), so a gap under 1 h splits the pair
    split = cases_from_reports(None, latlon_truth(), spc, pad_cells=0, spc_group_hours=0.5)
    assert len(split) == 3


def test_raw_spc_files_concatenated():
    # Raw SPC rows as in 200601_rpts_hail.csv / 200602_rpts_torn.csv, with the file name kept: the hail at
    # 2040 is on the 1 June convective day; the tornado at 2310 on 2 June.
    raw = pd.DataFrame(
        {
            "Time": [2040, 2310],
            "Size": [100, np.nan],
            "F_Scale": [np.nan, "EF1"],
            "Location": ["AUGUSTA", "SALEM"],
            "County": ["BUTLER", "DENT"],
            "State": ["KS", "MO"],
            "Lat": [35.4, 38.0],
            "Lon": [-95.3, -91.0],
            "Comments": ["", ""],
            "file": ["200601_rpts_hail.csv", "200602_rpts_torn.csv"],
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = cases_from_reports(ncei_frame(), latlon_truth(), raw, pad_cells=2)
    pd.testing.assert_frame_equal(table[list(EXPECTED.columns)], EXPECTED, check_dtype=False)


def test_raw_spc_time_before_noon_is_next_day():
    raw = pd.DataFrame({"Time": [130], "Speed": [60], "Lat": [33.0], "Lon": [-96.0], "date": ["200604"]})
    table = cases_from_reports(None, latlon_truth(), raw, pad_cells=0, extend=pd.Timedelta(0))
    assert table.start.iloc[0] == pd.Timestamp("2020-06-05T01")
    assert table.event_type.iloc[0] == "wind"


def rotated_grid(ny: int = 12, nx: int = 15) -> xr.Dataset:
    """A projected-style grid: dims (y, x) with skewed 2-D latitude/longitude."""
    j, i = np.meshgrid(np.arange(nx), np.arange(ny))
    lat = 30.0 + 0.5 * i + 0.1 * j
    lon = -100.0 + 0.5 * j - 0.1 * i
    return xr.Dataset(
        coords={
            "y": np.arange(ny) * 50e3,
            "x": np.arange(nx) * 50e3,
            "latitude": (("y", "x"), lat),
            "longitude": (("y", "x"), lon),
        }
    )


def cell(i: float, j: float) -> tuple[float, float]:
    """Latitude and longitude of fractional cell position (i, j) on `rotated_grid`."""
    return 30.0 + 0.5 * i + 0.1 * j, -100.0 + 0.5 * j - 0.1 * i


def test_projected_grid_boxes_and_edges():
    grid = rotated_grid()
    loc = GridLocator(grid)
    pts = [cell(3.2, 4.1), cell(7.0, 9.0), cell(11.3, 14.4), cell(-0.4, 5.0), cell(-0.7, 5.0), cell(5, 15.6)]
    lat, lon = np.array(pts).T
    iy, ix, inside = loc.locate(lat, lon)
    assert iy.tolist()[:4] == [3, 7, 11, 0] and ix.tolist()[:4] == [4, 9, 14, 5]
    # 0.3 and 0.4 cells beyond the last row/column centres are still on the grid, 0.6-0.7 are not
    assert inside.tolist() == [True, True, True, True, False, False]

    reports = ncei_frame(
        "202006,1,1200,202006,1,1300,7,71,KANSAS,20,2020,June,Tornado,C,15,X,ICT,,UTC,,0,0,0,0,,,,,,,,EF1,"
        f",,,,,,0,N,A,0,N,B,{cell(3.2, 4.1)[0]},{cell(3.2, 4.1)[1]},{cell(5.1, 6.9)[0]},{cell(5.1, 6.9)[1]},,,\n"
    )
    table = cases_from_reports(reports, grid, pad_cells=1)
    row = table.iloc[0]
    # begin (3, 4) and end (5, 7), padded by one cell
    assert (row.y_min, row.y_max, row.x_min, row.x_max) == (2, 6, 3, 8)
    assert (row.start, row.end) == (pd.Timestamp("2020-06-01T12"), pd.Timestamp("2020-06-01T17"))
    masks = masks_from_cases(table, grid, times=pd.date_range("2020-06-01T10", periods=10, freq="h").values)
    assert masks.dims == ("event_type", "time", "y", "x")
    expected = np.zeros((1, 10, 12, 15), dtype=bool)
    expected[0, 2:8, 2:7, 3:9] = True  # 12..17 UTC
    np.testing.assert_array_equal(masks.values, expected)


def test_default_padding_is_60_km_in_cells():
    # Rows 0.5 deg apart = 55.6 km -> 60 km is 1.08 cells -> 1; columns at 35 N: 45.5 km -> 1.32 -> 1.
    loc = GridLocator(latlon_truth())
    assert loc.pad_cells(60.0, 10, 10) == (1, 1)
    assert loc.pad_cells(120.0, 10, 10) == (2, 3)  # 2.16 -> 2 rows; 2.64 -> 3 columns


def test_locator_agrees_with_workbench_grids():
    grids = pytest.importorskip("workbench.grids")
    g = grids.hrrr_grid(96.0)
    loc = GridLocator(g)
    rng = np.random.default_rng(1)
    # points at random offsets within +-0.4 cells of random cell centres: no ties, unambiguous answers
    jy = rng.integers(0, g.shape[0], 500)
    jx = rng.integers(0, g.shape[1], 500)
    lat, lon = g.unproject(
        g.x[jx] + rng.uniform(-0.4, 0.4, 500) * g.dx, g.y[jy] + rng.uniform(-0.4, 0.4, 500) * g.dx
    )
    iy, ix, inside = loc.locate(lat, lon)
    np.testing.assert_array_equal(iy, jy)
    np.testing.assert_array_equal(ix, jx)
    assert inside.all()
    far_lat, far_lon = g.unproject(g.x[-1] + 0.8 * g.dx, g.y[3])
    assert not loc.locate(far_lat, far_lon)[2][0]
    assert not g.contains(far_lat, far_lon)


def test_global_latlon_grid_wraps_longitude():
    grids = pytest.importorskip("workbench.grids")
    g = grids.latlon_grid(5.625)  # longitudes 0..354.375, latitudes cell-centred
    loc = GridLocator(g)
    iy, ix, inside = loc.locate([40.0, 40.0], [-97.0, 358.0])  # -97 = 263 E -> column 47; 358 E -> 0
    assert ix.tolist() == [47, 0]
    assert iy.tolist() == g.nearest_index(np.array([40.0, 40.0]), np.array([263.0, 358.0]))[0].tolist()
    assert inside.all()


def test_index_csv_round_trip(tmp_path):
    table = build()
    path = tmp_path / "index.csv"
    write_index_csv(table, path)
    raw = pd.read_csv(path)
    assert raw.columns.tolist() == ["type", "bounding_box", "begin_time", "end_time", "details"]
    assert raw.bounding_box.tolist() == ["7_8_15_15", "16_14_20_18", "2_2_6_6"]
    assert raw.begin_time.iloc[0] == "2020-06-01 20:00:00"
    back = read_index_csv(path, latlon_truth())
    for col in ("event_type", "start", "end", "y_min", "y_max", "x_min", "x_max", "lat_min", "lon_max"):
        assert back[col].tolist() == table[col].tolist(), col


def test_read_hr_extreme_style_index(tmp_path):
    path = tmp_path / "hr.csv"
    path.write_text(
        "type,bounding_box,begin_time,end_time,details\n"
        "Hail+Thunderstorm_Wind,1_2_3_4,2020-06-01 20:00:00,2020-06-02 07:00:00,Hail 2020060120 2020060121\n"
        "torn,0_0_5_5,2020-06-02 23:00:00,2020-06-02 23:00:00,\n"
    )
    table = read_index_csv(path)
    assert table.event_type.tolist() == ["hail+wind", "tornado"]
    assert table[["x_min", "y_min", "x_max", "y_max"]].values.tolist() == [[1, 2, 3, 4], [0, 0, 5, 5]]


def test_family_normalisation():
    assert family_of("Thunderstorm_Wind") == "wind"
    assert family_of("EXTREME COLD/WIND CHILL") == "cold"
    assert family_of("torn") == "tornado"
    assert family_of("Flash Flood") == "heavy_rain"
    assert family_of("Drought") is None


# --- bad input --------------------------------------------------------------------------------------


def test_missing_columns_are_named():
    df = ncei_frame().drop(columns=["BEGIN_TIME", "EPISODE_ID"])
    with pytest.raises(DataError, match=r"missing required columns \['BEGIN_TIME', 'EPISODE_ID'\]"):
        cases_from_reports(df, latlon_truth())


def test_unparseable_times_name_the_events():
    bad = NCEI_ROWS.replace("202006,1,1430,", "202006,1,2460,", 1)
    with pytest.raises(DataError, match=r"cannot parse the times of 1 storm events \(EVENT_ID \[1001\]\)"):
        cases_from_reports(ncei_frame(bad), latlon_truth())
    bad_day = NCEI_ROWS.replace("202006,3,800,202006,8,1200", "202006,31,800,202006,8,1200", 1)
    with pytest.raises(DataError, match=r"EVENT_ID \[2001\]"):
        cases_from_reports(ncei_frame(bad_day), latlon_truth())


def test_unknown_time_zone():
    with pytest.raises(DataError, match="cannot read time zones"):
        cases_from_reports(ncei_frame(NCEI_ROWS.replace("CST-6", "MOON")), latlon_truth())


def test_unparseable_spc_times():
    spc = spc_frame().assign(time=["yesterday", "2020-06-02T23:10", "2020-06-02T12:00"])
    with pytest.raises(DataError, match="cannot parse 1 SPC report times"):
        cases_from_reports(None, latlon_truth(), spc)


def test_raw_spc_without_date():
    raw = pd.DataFrame({"Time": [130], "Speed": [60], "Lat": [33.0], "Lon": [-96.0]})
    with pytest.raises(DataError, match="need their date"):
        cases_from_reports(None, latlon_truth(), raw)


def test_all_reports_off_the_grid_is_an_error():
    off = (
        NCEI_ROWS.replace("35.0,-95.0,35.0,-95.0", "55.0,-75.0,55.0,-75.0")
        .replace("36.0,-94.0,36.5,-93.5", "55.0,-75.0,55.0,-75.0")
        .replace("32.0,-98.0,,", "55.0,-75.0,,")
    )
    with (
        pytest.warns(UserWarning, match="4 reports lie outside the grid"),
        pytest.raises(DataError, match="no extreme-event cases"),
    ):
        cases_from_reports(ncei_frame(off), latlon_truth())
    with pytest.warns(UserWarning):
        empty = cases_from_reports(ncei_frame(off), latlon_truth(), allow_empty=True)
    assert len(empty) == 0 and list(empty.columns) == list(EVENT_COLUMNS)


def test_grid_without_coordinates():
    with pytest.raises(GridError, match="2-D 'latitude' and 'longitude'"):
        cases_from_reports(
            ncei_frame(),
            xr.Dataset(coords={"y": np.arange(3), "x": np.arange(4)}).assign(
                a=(("y", "x"), np.zeros((3, 4)))
            ),
        )


def test_bad_rules():
    with pytest.raises(DataError, match="min_spc_reports"):
        CaseRules(min_spc_reports=0)
    with pytest.raises(DataError, match="have no family"):
        cases_from_reports(ncei_frame(), latlon_truth(), event_types=("Hail", "Drought"))


def test_table_from_other_grid_is_refused():
    table = build()
    small = latlon_truth().isel(latitude=slice(0, 10), longitude=slice(0, 10))
    with pytest.raises(DataError, match="reach outside the 10 x 10 grid"):
        masks_from_cases(table, small)


def test_build_masks_combines_reports_and_thresholds():
    truth = latlon_truth()
    # a planted 330 K blob over three cells at 12-14 UTC on 4 June
    truth["t2m"].loc[
        dict(time=slice("2020-06-04T12", "2020-06-04T14"), latitude=[31.0, 31.5, 32.0], longitude=-99.0)
    ] = 330.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the climatology comes from 1-3 June, before the blob
        events = build_masks(
            truth,
            ncei_frame(),
            spc_frame(),
            thresholds="default",
            reference=slice("2020-06-01", "2020-06-03"),
            allow_in_sample=True,
            pad_cells=2,
        )
    masks = events.masks
    assert masks.event_type.values.tolist() == ["tornado", "hail", "wind", "heavy_rain", "heat", "cold"]
    heat = events.table[events.table.event_type == "heat"]
    assert len(heat) == 1
    h = heat.iloc[0]
    assert (h.y_min, h.y_max, h.x_min, h.x_max) == (2, 4, 2, 2)
    assert (h.start, h.end) == (pd.Timestamp("2020-06-04T12"), pd.Timestamp("2020-06-04T14"))
    assert int(masks.sel(event_type="heat").sum()) == 9
    assert int(masks.sel(event_type="cold").sum()) == 0
    assert int(masks.sel(event_type="hail").sum()) == 16 * 8 * 9


def test_spc_matching_agrees_with_brute_force():
    from workbench.events.cases import _spc_matches

    rng = np.random.default_rng(5)
    n, m = 300, 400
    begin = pd.Timestamp("2020-06-01") + pd.to_timedelta(rng.integers(0, 72, n), unit="h")
    events = pd.DataFrame(
        {
            "begin": begin,
            "end": begin + pd.to_timedelta(rng.integers(0, 6, n), unit="h"),
            "lat": rng.uniform(30, 40, n),
            "lon": rng.uniform(-100, -90, n),
        }
    )
    pool = pd.DataFrame(
        {
            "time": pd.Timestamp("2020-06-01") + pd.to_timedelta(rng.integers(0, 78, m), unit="h"),
            "lat": rng.uniform(30, 40, m),
            "lon": rng.uniform(-100, -90, m) + 360.0 * rng.integers(0, 2, m),  # either convention
        }
    )
    ev, sp = _spc_matches(events, pool, 1.0)
    got = set(zip(ev.tolist(), sp.tolist(), strict=True))
    # every pair, by broadcasting
    t = pool.time.to_numpy()[None, :]
    dlon = np.abs((pool.lon.to_numpy()[None, :] - events.lon.to_numpy()[:, None] + 180) % 360 - 180)
    ok = (
        (events.begin.to_numpy()[:, None] <= t)
        & (t <= events.end.to_numpy()[:, None])
        & (np.abs(pool.lat.to_numpy()[None, :] - events.lat.to_numpy()[:, None]) <= 1)
        & (dlon <= 1)
    )
    rows, cols = np.nonzero(ok)
    expected = set(zip(rows.tolist(), cols.tolist(), strict=True))
    assert got == expected and len(expected) > 20


def test_vectorised_box_extents():
    from workbench.events.grid import box_extent, box_extents

    loc = GridLocator(rotated_grid())
    boxes = [(0, 11, 0, 14), (3, 3, 5, 5), (2, 7, 9, 14)]
    many = box_extents(loc.info, *np.array(boxes).T)
    np.testing.assert_array_equal(many, [box_extent(loc.info, *b) for b in boxes])
    # the whole grid: corners of the skewed grid
    assert many[0].tolist() == pytest.approx([30.0, 30.0 + 5.5 + 1.4, -100.0 - 1.1, -100.0 + 7.0])
