"""HR-Extreme mode: cases built on files in the real Storm Events / SPC layouts, checked against values
worked out by hand from HR-Extreme's make_dataset1/2/3.py and make_datasetall.py."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench.errors import DataError
from workbench.events import HR_EXTREME_TYPES
from workbench.events.hrextreme import _is_cold_hour, dbscan, hr_extreme_cases, to_hr_extreme_index
from workbench.sources.reports import STORM_EVENTS_COLUMNS, read_storm_events

NY, NX = 60, 80  # latitude 30 + 0.5 y, longitude -100 + 0.5 x


def grid() -> xr.Dataset:
    y, x = np.mgrid[0:NY, 0:NX]
    return xr.Dataset(
        coords={"latitude": (("y", "x"), 30.0 + 0.5 * y), "longitude": (("y", "x"), -100.0 + 0.5 * x)}
    )


def storm_events_file(path) -> str:
    rows = [
        # episode 1001: hail and a thunderstorm wind with a 10-mile range, the wind lasting past 3 days
        dict(EVENT_TYPE="Hail", EPISODE_ID=1001, EVENT_ID=1, BEGIN_YEARMONTH=202006, BEGIN_DAY=10,
             BEGIN_TIME=1530, END_YEARMONTH=202006, END_DAY=10, END_TIME=1610, BEGIN_RANGE=0,
             BEGIN_LAT=40.0, BEGIN_LON=-80.0),
        dict(EVENT_TYPE="Thunderstorm Wind", EPISODE_ID=1001, EVENT_ID=2, BEGIN_YEARMONTH=202006,
             BEGIN_DAY=10, BEGIN_TIME=1700, END_YEARMONTH=202006, END_DAY=13, END_TIME=1800, BEGIN_RANGE=10,
             BEGIN_LAT=41.0, BEGIN_LON=-79.0),
        # episode 2002: in the grid's far corner, so the pads are capped
        dict(EVENT_TYPE="Flash Flood", EPISODE_ID=2002, EVENT_ID=3, BEGIN_YEARMONTH=202006, BEGIN_DAY=11,
             BEGIN_TIME=0, END_YEARMONTH=202006, END_DAY=11, END_TIME=300, BEGIN_RANGE=0,
             BEGIN_LAT=59.3, BEGIN_LON=-61.2),
        # episode 3003: no BEGIN_RANGE, so HR-Extreme leaves it out (as it does zone-based heat)
        dict(EVENT_TYPE="Lightning", EPISODE_ID=3003, EVENT_ID=4, BEGIN_YEARMONTH=202006, BEGIN_DAY=11,
             BEGIN_TIME=100, END_YEARMONTH=202006, END_DAY=11, END_TIME=100, BEGIN_RANGE=None,
             BEGIN_LAT=45.0, BEGIN_LON=-70.0),
        dict(EVENT_TYPE="Excessive Heat", EPISODE_ID=3003, EVENT_ID=5, BEGIN_YEARMONTH=202006, BEGIN_DAY=11,
             BEGIN_TIME=100, END_YEARMONTH=202006, END_DAY=12, END_TIME=100),
        # episode 4004: a marine thunderstorm wind near the lower-left corner, across midnight
        dict(EVENT_TYPE="Marine Thunderstorm Wind", EPISODE_ID=4004, EVENT_ID=6, BEGIN_YEARMONTH=202006,
             BEGIN_DAY=12, BEGIN_TIME=2359, END_YEARMONTH=202006, END_DAY=13, END_TIME=5, BEGIN_RANGE=2,
             BEGIN_LAT=31.0, BEGIN_LON=-98.0),
    ]  # fmt: skip
    frame = pd.DataFrame(rows).reindex(columns=list(STORM_EVENTS_COLUMNS))
    frame["CZ_TIMEZONE"] = "CST-6"  # HR-Extreme ignores it; the workbench's default converts to UTC
    frame["STATE"] = "KANSAS"
    target = path / "StormEvents_details-ftp_v1.0_d2020_c20231217.csv"
    frame.to_csv(target, index=False)
    return target


def spc_files(path) -> pd.DataFrame:
    files = {
        "200610_rpts_hail.csv": "Time,Size,Location,County,State,Lat,Lon,Comments\n1545,175,A,B,PA,40.5,-79.5,x\n",
        "200611_rpts_wind.csv": (
            "Time,Speed,Location,County,State,Lat,Lon,Comments\n"
            "0130,UNK,A,B,ME,50.0,-70.0,x\n0130,UNK,A,B,ME,50.1,-70.1,x\n0145,UNK,A,B,ME,55.0,-65.0,x\n"
        ),
        "200612_rpts_torn.csv": "Time,F_Scale,Location,County,State,Lat,Lon,Comments\n1900,EF1,A,B,MS,35.0,-90.0,x\n",
    }
    frames = []
    for name, text in files.items():
        (path / name).write_text(text)
        df = pd.read_csv(path / name, dtype={"Time": str})
        frames.append(df.rename(columns={df.columns[1]: "magnitude"}).assign(kind=name[12:16], date=name[:6]))
    return pd.concat(frames, ignore_index=True)


def t2m_field() -> xr.DataArray:
    times = pd.to_datetime(["2020-06-10T10", "2020-06-10T18", "2020-06-10T19"])
    data = np.full((3, NY, NX), 300.0)
    data[0, 40:52, 5:17] = 313.15  # 40 C at 10 UTC: outside HR-Extreme's 12-20 UTC heat hours
    data[1, 40:52, 5:17] = 313.15  # 144 cells at 18 UTC: a heat hour, one cluster
    data[2, 40:50, 5:15] = 313.15  # 100 cells at 19 UTC: not more than 100 above 37 C, no case
    return xr.DataArray(data, dims=("time", "y", "x"), coords={"time": times}, attrs={"units": "K"})


def test_seventeen_types():
    assert len(HR_EXTREME_TYPES) == 17 == len(set(HR_EXTREME_TYPES))
    for name in ("Lightning", "Funnel_Cloud", "Waterspout", "Marine_Thunderstorm_Wind", "Marine_Hail",
                 "Debris_Flow", "Flash_Flood", "Flood", "Heavy_Rain", "Heat", "Cold", "Wind"):  # fmt: skip
        assert name in HR_EXTREME_TYPES


def test_hr_extreme_cases_by_hand(tmp_path):
    reports = read_storm_events(storm_events_file(tmp_path))
    spc = spc_files(tmp_path)
    table = hr_extreme_cases(reports, grid(), spc, t2m_field())
    index = to_hr_extreme_index(table)
    # Episode 1001. Points: (40, -80), (41, -79) and its range corners: 10 mi x 1.61 = 16.1 km is
    # 0.14479 deg of latitude and 0.19185 deg of longitude at 41 N. Corners (40, -80) -> cell (20, 40) and
    # (41.14479, -78.80815) -> (22, 42); padded by 20: y 0..42 (0 exactly), x 20..62. The SPC hail report at
    # (40.5, -79.5) 15:45 is inside the hail's 15-16 h and within 1 degree: used, so it makes no step-2 case.
    dlat = math.degrees(16.1 / 6371.0)
    dlon = math.degrees(16.1 / (6371.0 * math.cos(math.radians(41.0))))
    assert round((41.0 + dlat - 30.0) / 0.5) == 22 and round((-79.0 + dlon + 100.0) / 0.5) == 42
    expected = pd.DataFrame(
        [
            ("Hail+Thunderstorm_Wind", "20_0_62_42", "2020-06-10 15:00:00", "2020-06-13 15:00:00",
             "Hail 2020061015 2020061016,Thunderstorm_Wind 2020061017 2020061318", "3 days 04:00:00"),
            # (59.3, -61.2) -> (59, 78); + 20 capped at the last row 59 and column 79
            ("Flash_Flood", "58_39_79_59", "2020-06-11 00:00:00", "2020-06-11 03:00:00",
             "Flash_Flood 2020061100 2020061103", "0 days 07:00:00"),
            # 2 mi = 3.22 km around (31, -98): all corners in cell (2, 4); y0, x0 clipped at 0
            ("Marine_Thunderstorm_Wind", "0_0_24_22", "2020-06-12 23:00:00", "2020-06-13 00:00:00",
             "Marine_Thunderstorm_Wind 2020061223 2020061300", "0 days 05:00:00"),
            # step 2: the three wind reports of 2020-06-11 01 UTC (date + HHMM, no next-day shift),
            # scaled lat (0, 0.02, 1), lon (0.0196, 0, 1): the first two are one DBSCAN cluster, the
            # third noise; cells (40, 60) and (40, 60) padded by 20, x capped at 79
            ("Wind", "40_20_79_59", "2020-06-11 01:00:00", "2020-06-11 01:00:00", "", "0 days 04:00:00"),
            # step 3: 144 cells above 38 C at 18 UTC, rows 40-51, columns 5-16, padded by 10
            ("Heat", "0_30_26_59", "2020-06-10 18:00:00", "2020-06-10 18:00:00", "", "0 days 04:00:00"),
        ],
        columns=["type", "bounding_box", "begin_time", "end_time", "details", "span"],
    )  # fmt: skip
    pd.testing.assert_frame_equal(index, expected)
    # the event table: boxes as inclusive cell indices, the case lasting to end_time + 4 h
    first = table.iloc[0]
    assert (first.y_min, first.y_max, first.x_min, first.x_max) == (0, 42, 20, 62)
    assert first.end == pd.Timestamp("2020-06-13T19:00")
    assert table.source.tolist() == ["hr-extreme-1"] * 3 + ["hr-extreme-2", "hr-extreme-3"]
    # the CSV round trip keeps HR-Extreme's layout
    path = tmp_path / "index.csv"
    from workbench.events.hrextreme import write_hr_extreme_index

    write_hr_extreme_index(table, path)
    from workbench.events import read_index_csv

    again = read_index_csv(path)
    assert again.end.tolist() == table.end.tolist()  # begin_time + span
    back = pd.read_csv(path, keep_default_na=False)
    assert back.columns.tolist() == ["type", "bounding_box", "begin_time", "end_time", "details", "span"]
    assert back.bounding_box.tolist() == expected.bounding_box.tolist()


def test_cold_hours_follow_the_code_date_ranges():
    ts = pd.Timestamp
    assert _is_cold_hour(ts("2020-12-31T00")) and not _is_cold_hour(ts("2020-12-31T01"))
    assert _is_cold_hour(ts("2020-02-28T00")) and not _is_cold_hour(ts("2020-02-28T01"))
    assert not _is_cold_hour(ts("2020-02-29T12")) and _is_cold_hour(ts("2020-01-15T13"))
    assert not _is_cold_hour(ts("2020-03-01T00")) and not _is_cold_hour(ts("2020-11-30T23"))


def test_dbscan_hand_values():
    pts = np.array([[0.0, 0.0], [0.1, 0.0], [0.2, 0.0], [1.0, 1.0], [1.05, 1.0], [5.0, 5.0]])
    np.testing.assert_array_equal(dbscan(pts, eps=0.1, min_samples=2), [0, 0, 0, 1, 1, -1])
    # min_samples counts the point itself: with 3, the pair is noise and the chain's ends are border points
    np.testing.assert_array_equal(dbscan(pts, eps=0.1, min_samples=3), [0, 0, 0, -1, -1, -1])


def test_bad_inputs():
    with pytest.raises(DataError, match="give Storm Events"):
        hr_extreme_cases(None, grid())
    with pytest.raises(DataError, match="BEGIN_RANGE"):
        hr_extreme_cases(pd.DataFrame({"EVENT_TYPE": ["Hail"]}), grid())


def test_build_masks_in_hr_extreme_mode(tmp_path):
    from workbench.events import build_masks

    times = pd.date_range("2020-06-10T00", "2020-06-13T23", freq="h")
    t2m = t2m_field().reindex(time=times, fill_value=300.0)
    truth = grid().assign(t2m=t2m.assign_coords(latitude=grid().latitude, longitude=grid().longitude))
    events = build_masks(truth, storm_events_file(tmp_path), spc_files(tmp_path), method="hr-extreme")
    layers = events.masks.event_type.values.tolist()
    assert set(layers) == {
        "Hail",
        "Thunderstorm_Wind",
        "Flash_Flood",
        "Marine_Thunderstorm_Wind",
        "Wind",
        "Heat",
    }
    assert set(layers) <= set(HR_EXTREME_TYPES)
    heat = events.masks.sel(event_type="Heat")
    # one 18 UTC case lasting to 22 UTC (span 4 h), box rows 30-59, columns 0-26
    assert heat.any(("y", "x")).values.nonzero()[0].tolist() == [18, 19, 20, 21, 22]
    assert int(heat.isel(time=18).sum()) == 30 * 27
    with pytest.raises(DataError, match="method must be"):
        build_masks(truth, thresholds="default", method="hrextreme")


def test_cli_hr_extreme_mode_writes_its_index(tmp_path, capsys):
    from workbench.cli import main

    times = pd.date_range("2020-06-10T00", "2020-06-13T23", freq="h")
    t2m = t2m_field().reindex(time=times, fill_value=300.0)
    truth = grid().assign(t2m=t2m.assign_coords(latitude=grid().latitude, longitude=grid().longitude))
    truth.to_netcdf(tmp_path / "truth.nc")
    storm = storm_events_file(tmp_path)
    spc_dir = tmp_path / "spc"
    spc_dir.mkdir()
    spc_files(spc_dir)
    out = tmp_path / "events.nc"
    code = main(["events", str(tmp_path / "truth.nc"), "--reports", str(storm), "--spc", str(spc_dir),
                 "--method", "hr-extreme", "--thresholds", "none", "-o", str(out)])  # fmt: skip
    assert code == 0
    index = pd.read_csv(tmp_path / "events.nc.index.csv", keep_default_na=False)
    assert index.columns.tolist() == ["type", "bounding_box", "begin_time", "end_time", "details", "span"]
    # the cases of the hand-worked test, in order of their begin times
    assert index.bounding_box.tolist() == [
        "20_0_62_42",
        "0_30_26_59",
        "58_39_79_59",
        "40_20_79_59",
        "0_0_24_22",
    ]
    masks = xr.open_dataset(out)["mask"].load()
    assert set(masks.event_type.values.tolist()) <= set(HR_EXTREME_TYPES)
    assert "Marine_Thunderstorm_Wind" in capsys.readouterr().out
