"""Masks aligned with forecast valid times, combined, and built from the embedded sample."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench.errors import DataError
from workbench.events import (
    EventSet,
    build_masks,
    combine_masks,
    masks_at,
    masks_from_cases,
)
from workbench.events.table import make_table

TIMES = pd.date_range("2020-06-01", periods=48, freq="h")


def toy_masks() -> xr.DataArray:
    rng = np.random.default_rng(7)
    values = rng.random((2, TIMES.size, 3, 4)) > 0.7
    return xr.DataArray(
        values,
        dims=("event_type", "time", "y", "x"),
        coords={
            "event_type": ["hail", "heat"],
            "time": TIMES,
            "y": [0.0, 1.0, 2.0],
            "x": [0.0, 1.0, 2.0, 3.0],
        },
        name="mask",
    )


def forecast(init=("2020-06-01T00", "2020-06-01T12"), leads=(0, 1, 6, 24)) -> xr.Dataset:
    init_time = pd.to_datetime(list(init)).values
    lead_time = pd.to_timedelta(list(leads), unit="h").values
    valid = init_time[:, None] + lead_time[None, :]
    return xr.Dataset(
        {"t2m": (("init_time", "lead_time", "y", "x"), np.zeros((len(init), len(leads), 3, 4)))},
        coords={
            "init_time": init_time,
            "lead_time": lead_time,
            "valid_time": (("init_time", "lead_time"), valid),
            "y": [0.0, 1.0, 2.0],
            "x": [0.0, 1.0, 2.0, 3.0],
        },
    )


def test_masks_at_forecast_valid_time():
    masks, fc = toy_masks(), forecast()
    out = masks_at(masks, fc.valid_time)
    assert out.dims == ("event_type", "init_time", "lead_time", "y", "x")
    assert out.shape == (2, 2, 4, 3, 4)
    for i, init in enumerate(fc.init_time.values):
        for j, lead in enumerate(fc.lead_time.values):
            k = TIMES.get_loc(pd.Timestamp(init + lead))
            np.testing.assert_array_equal(out.values[:, i, j], masks.values[:, k])
    np.testing.assert_array_equal(out.valid_time.values, fc.valid_time.values)
    # the whole forecast Dataset works too, and aligns with forecast arithmetic
    same = masks_at(masks, fc)
    xr.testing.assert_identical(same, out)
    hail = out.sel(event_type="hail")
    masked = fc.t2m.where(hail, -1.0)
    assert masked.dims == ("init_time", "lead_time", "y", "x")
    assert int((masked == -1.0).sum()) == int((~hail).sum())


def test_masks_at_on_lazy_masks():
    lazy = toy_masks().chunk({"time": 12})
    out = masks_at(lazy, forecast().valid_time)
    assert out.chunks is not None
    xr.testing.assert_identical(out.compute(), masks_at(toy_masks(), forecast().valid_time))


def test_masks_at_plain_times():
    out = masks_at(toy_masks(), TIMES[[3, 5]].values)
    assert out.dims == ("event_type", "valid_time", "y", "x")
    np.testing.assert_array_equal(out.values, toy_masks().values[:, [3, 5]])


def test_masks_at_refuses_uncovered_valid_times():
    # valid times of the second run: 2 June 12, 13, 18 UTC and 3 June 12 UTC (+24 h), past the masks
    fc = forecast(init=("2020-06-01T00", "2020-06-02T12"))
    with pytest.raises(
        DataError,
        match=r"do not cover 1 of the forecast's valid times \(first 2020-06-03 12:00:00, last 2020-06-03 "
        r"12:00:00\); the masks cover 2020-06-01 00:00:00 to 2020-06-02 23:00:00 \(48 times\)",
    ):
        masks_at(toy_masks(), fc.valid_time)


def test_masks_at_refuses_nat():
    with pytest.raises(DataError, match="1 valid times are NaT"):
        masks_at(toy_masks(), np.array(["2020-06-01T00", "NaT"], dtype="datetime64[ns]"))


def test_event_set_at():
    events = EventSet(masks=toy_masks(), table=make_table([]))
    xr.testing.assert_identical(events.at(forecast()), masks_at(toy_masks(), forecast()))


def test_combine_masks_is_a_union_by_label():
    a = toy_masks()
    b = a.sel(event_type=["heat"]).copy(data=~a.sel(event_type=["heat"]).values)
    c = b.assign_coords(event_type=["cold"])
    out = combine_masks(a, b, c)
    assert out.event_type.values.tolist() == ["hail", "heat", "cold"]
    assert out.sel(event_type="heat").all()
    np.testing.assert_array_equal(out.sel(event_type="hail").values, a.sel(event_type="hail").values)
    with pytest.raises(DataError, match="share their time"):
        combine_masks(a, a.isel(time=slice(0, 3)))


def test_masks_from_cases_default_times_span_the_table():
    table = make_table(
        [
            {
                "event_id": "a", "event_type": "wind", "start": "2020-06-01T03", "end": "2020-06-01T05",
                "y_min": 0, "y_max": 1, "x_min": 1, "x_max": 1, "lat_min": 0.0, "lat_max": 0.0,
                "lon_min": 0.0, "lon_max": 0.0, "source": "spc", "details": "Thunderstorm Wind",
            }
        ]
    )  # fmt: skip
    grid = toy_masks().isel(event_type=0, time=0, drop=True)
    grid = grid.assign_coords(
        latitude=(("y", "x"), np.zeros((3, 4))), longitude=(("y", "x"), np.zeros((3, 4)))
    )
    masks = masks_from_cases(table, grid)
    assert pd.DatetimeIndex(masks.time.values).hour.tolist() == [3, 4, 5]
    assert int(masks.sum()) == 3 * 2


def test_build_masks_nothing_found():
    lat, lon = np.arange(30.0, 33.0), np.arange(260.0, 264.0)
    truth = xr.Dataset(
        {"t2m": (("time", "latitude", "longitude"), np.full((5, 3, 4), 290.0), {"units": "K"})},
        coords={"time": TIMES[:5], "latitude": lat, "longitude": lon},
    )
    rules = "default"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match="no extreme events on truth's period"):
            build_masks(truth, thresholds=rules)
        empty = build_masks(truth, thresholds=rules, allow_empty=True)
    assert len(empty.table) == 0
    assert empty.masks.sizes["time"] == 5
    assert int(empty.masks.sum()) == 0
    with pytest.raises(DataError, match="nothing to build"):
        build_masks(truth, thresholds=None)
    with pytest.raises(DataError, match="thresholds must be"):
        build_masks(truth, thresholds="loud")


# --- the embedded sample -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_events(tiny_sample):
    from workbench.sample import open_sample

    truth = open_sample("hrrr", size="tiny", progress=False).load()
    storm_events = open_sample("reports", size="tiny", progress=False)
    spc = open_sample("spc", size="tiny", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zone-based reports (heat, high wind) carry no coordinates
        events = build_masks(truth, reports=storm_events, spc=spc, thresholds=None)
    return truth, events


def test_sample_report_masks_cover_the_sample_storms(sample_events):
    truth, events = sample_events
    table, masks = events.table, events.masks
    convective = table[table.event_type.str.contains("hail|wind|tornado")]
    assert len(convective) > 0
    # every storm case holds a severe cell (refc >= 50 dBZ or gust >= 50 kt) inside its box and hours
    for case in convective.itertuples():
        box = dict(time=slice(case.start, case.end), y=slice(case.y_min, case.y_max + 1))
        box["x"] = slice(case.x_min, case.x_max + 1)
        sub = truth[["refc", "gust"]].sel(time=box["time"]).isel(y=box["y"], x=box["x"])
        assert float(sub.refc.max()) >= 50.0 or float(sub.gust.max()) >= 25.7, case.event_id
    # and high reflectivity is far more frequent inside the storm masks than outside them
    labels = [t for t in ("tornado", "hail", "wind") if t in masks.event_type.values]
    storm = masks.sel(event_type=labels).any("event_type")
    high = truth.refc >= 50.0
    rate_in = float(high.where(storm).mean())
    rate_out = float(high.where(~storm).mean())
    assert 0 < float(storm.mean()) < 0.2
    assert rate_in > 10 * rate_out
