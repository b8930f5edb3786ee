"""Climatology and threshold events on small synthetic fields with planted extremes."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench.errors import DataError, UnitsError
from workbench.events import ThresholdRule, climatology, threshold_events
from workbench.events.climatology import nanquantile

NY, NX = 8, 10


def grid_truth(nt: int = 6, freq: str = "h", start: str = "2020-06-01", **fields) -> xr.Dataset:
    """A (time, y, x) Dataset on a small projected-style grid, t2m = 290 K unless given."""
    times = pd.date_range(start, periods=nt, freq=freq)
    j, i = np.meshgrid(np.arange(NX), np.arange(NY))
    data = {"t2m": (("time", "y", "x"), np.full((nt, NY, NX), 290.0), {"units": "K"})}
    for name, (values, units) in fields.items():
        data[name] = (("time", "y", "x"), values, {"units": units})
    return xr.Dataset(
        data,
        coords={
            "time": times,
            "y": np.arange(NY) * 3e3,
            "x": np.arange(NX) * 3e3,
            "latitude": (("y", "x"), 35.0 + 0.03 * i),
            "longitude": (("y", "x"), -97.0 + 0.03 * j),
        },
    )


def planted() -> xr.Dataset:
    truth = grid_truth()
    t2m = truth["t2m"].values
    t2m[1:4, 2:4, 3:6] = 320.0  # the blob: 3 steps x 2 rows x 3 columns
    t2m[4, 6, 8] = 320.0  # a one-cell blip
    return truth


def test_hot_blob_is_found_exactly():
    events = threshold_events(planted(), rules=[ThresholdRule("heat", "t2m", ">", value=311.15, units="K")])
    expected = np.zeros((6, NY, NX), dtype=bool)
    expected[1:4, 2:4, 3:6] = True
    assert events.masks.dims == ("event_type", "time", "y", "x")
    assert events.masks.event_type.values.tolist() == ["heat"]
    np.testing.assert_array_equal(events.masks.sel(event_type="heat").values, expected)
    assert len(events.table) == 1
    row = events.table.iloc[0]
    assert (row.y_min, row.y_max, row.x_min, row.x_max) == (2, 3, 3, 5)
    assert (row.start, row.end) == (pd.Timestamp("2020-06-01T01"), pd.Timestamp("2020-06-01T03"))
    assert row.source == "threshold" and row.event_id == "thr-heat-0000"
    assert "peak 320 K; 18 cell-steps, up to 6 cells" in row.details
    assert (row.lat_min, row.lat_max) == pytest.approx((35.06, 35.09))


def test_size_filter_removes_the_blip_and_min_cells_1_keeps_it():
    rules = [ThresholdRule("heat", "t2m", ">", value=311.15, units="K")]
    assert len(threshold_events(planted(), rules=rules, min_cells=2).table) == 1
    kept = threshold_events(planted(), rules=rules, min_cells=1)
    assert len(kept.table) == 2
    assert bool(kept.masks.sel(event_type="heat").values[4, 6, 8])


def test_duration_filter():
    truth = grid_truth()
    truth["t2m"].values[2, 0:2, 0:2] = 320.0  # 4 cells, one step
    rules = [ThresholdRule("heat", "t2m", ">", value=311.15, units="K")]
    assert len(threshold_events(truth, rules=rules).table) == 1
    assert len(threshold_events(truth, rules=rules, min_duration=2).table) == 0


def moving_blob() -> xr.Dataset:
    truth = grid_truth(nt=6)
    for t in range(6):  # a 2x2 blob moving one cell east-north-east each step
        truth["t2m"].values[t, 1 + t // 2 : 3 + t // 2, t : t + 2] = 320.0
    return truth


@pytest.mark.parametrize("block", [1, 2, 4])
def test_objects_are_stitched_across_time_blocks(block):
    rules = [ThresholdRule("heat", "t2m", ">", value=311.15, units="K")]
    whole = threshold_events(moving_blob(), rules=rules, block=24)
    blocked = threshold_events(moving_blob(), rules=rules, block=block)
    assert len(whole.table) == 1
    pd.testing.assert_frame_equal(blocked.table, whole.table)
    np.testing.assert_array_equal(blocked.masks.values, whole.masks.values)
    row = whole.table.iloc[0]
    assert (row.y_min, row.y_max, row.x_min, row.x_max) == (1, 4, 0, 6)


def test_dask_backed_truth_gives_lazy_equal_masks():
    rules = [ThresholdRule("heat", "t2m", ">", value=311.15, units="K")]
    eager = threshold_events(moving_blob(), rules=rules, block=2)
    lazy = threshold_events(moving_blob().chunk({"time": 3}), rules=rules, block=2)
    assert lazy.masks.chunks is not None
    np.testing.assert_array_equal(lazy.masks.values, eager.masks.values)
    pd.testing.assert_frame_equal(lazy.table, eager.table)


def test_objects_join_across_the_longitude_seam():
    lat, lon = np.arange(-80.0, 81.0, 20.0), np.arange(0.0, 360.0, 30.0)  # 9 x 12, global
    t2m = np.full((2, lat.size, lon.size), 290.0)
    t2m[:, 4, 0] = t2m[:, 4, -1] = 320.0  # at 0 E and 330 E, neighbours across the seam
    truth = xr.Dataset(
        {"t2m": (("time", "latitude", "longitude"), t2m, {"units": "K"})},
        coords={"time": pd.date_range("2020-06-01", periods=2, freq="6h"), "latitude": lat, "longitude": lon},
    )
    rules = [ThresholdRule("heat", "t2m", ">", value=311.15, units="K")]
    events = threshold_events(truth, rules=rules, min_cells=2)
    assert len(events.table) == 1
    assert events.masks.dims == ("event_type", "time", "latitude", "longitude")


def test_default_rules_fixed_thresholds():
    nt = 3
    gust = np.zeros((nt, NY, NX))
    gust[1, 0:2, 0] = 25.7  # exactly 50 kt counts (>=)
    u = np.zeros((nt, NY, NX))
    u[2, 5:7, 5:7] = 18.0  # 18 m/s >= 17.9
    refc = np.full((nt, NY, NX), 10.0)
    refc[0, 3, 3:5] = 50.0
    tp = np.zeros((nt, NY, NX))
    tp[0, 7, 0:3] = 0.03  # 30 mm in an hour
    tp[1, 7, 0:3] = 0.02  # 20 mm: not heavy
    truth = grid_truth(
        nt=nt,
        gust=(gust, "m s-1"),
        u10m=(u, "m s-1"),
        v10m=(np.zeros_like(u), "m s-1"),
        refc=(refc, "dBZ"),
        tp=(tp, "m"),
    )
    events = threshold_events(truth)
    counts = {k: int(events.masks.sel(event_type=k).sum()) for k in events.masks.event_type.values}
    assert counts == {"wind": 4, "gust": 2, "heavy_rain": 3, "reflectivity": 2, "heat": 0, "cold": 0}
    assert sorted(events.table.event_type) == ["gust", "heavy_rain", "reflectivity", "wind"]


def test_precipitation_threshold_scales_with_the_time_step():
    tp = np.zeros((3, NY, NX))
    tp[1, 0, 0:2] = 0.1  # 100 mm in 6 h = 16.7 mm/h: below 25.4 mm/h
    tp[2, 0, 0:2] = 0.16  # 160 mm in 6 h = 26.7 mm/h
    truth = grid_truth(nt=3, freq="6h", tp=(tp, "m"))
    rules = [ThresholdRule("heavy_rain", "tp", ">=", value=0.0254, units="m", per_hour=True)]
    events = threshold_events(truth, rules=rules)
    mask = events.masks.sel(event_type="heavy_rain").values
    assert mask[2, 0, 0:2].all() and mask.sum() == 2
    assert "0.1524 m (0.0254 per hour over a 6 h step)" in events.table.details.iloc[0]


def diurnal_truth(days: int = 3) -> xr.Dataset:
    nt = 24 * days
    truth = grid_truth(nt=nt)
    hours = np.arange(nt) % 24
    cycle = 295.0 + 8.0 * np.sin(2 * np.pi * (hours - 9) / 24)
    truth["t2m"].values[:] = cycle[:, None, None] + 0.1 * np.arange(NX)[None, None, :]
    return truth


def test_climatology_hand_values():
    times = pd.date_range("2020-06-01", periods=48, freq="h")
    values = (times.hour + 100 * (times.day - 1)).to_numpy(dtype=float)
    truth = xr.Dataset(
        {
            "t2m": (
                ("time", "latitude", "longitude"),
                np.broadcast_to(values[:, None, None], (48, 2, 3)).copy(),
            )
        },
        coords={"time": times, "latitude": [30.0, 31.0], "longitude": [260.0, 261.0, 262.0]},
    )
    with pytest.warns(UserWarning, match="only 6 samples"):
        clim = climatology(truth, quantiles=(0.5, 0.99), window=1)
    assert clim["t2m"].dims == ("quantile", "hour", "latitude", "longitude")
    # hour 0 pools hours 23, 0 and 1 of both days: 23, 0, 1, 123, 100, 101
    pool = np.array([23, 0, 1, 123, 100, 101], dtype=float)
    assert float(clim["t2m"].sel(hour=0, quantile=0.5)[0, 0]) == pytest.approx(61.5)
    assert float(clim["t2m"].sel(hour=0, quantile=0.99)[1, 2]) == pytest.approx(np.quantile(pool, 0.99))
    # hour 12 pools 11, 12, 13 and 111, 112, 113
    assert float(clim["t2m"].sel(hour=12, quantile=0.5)[0, 0]) == pytest.approx(62.0)
    assert clim["n_samples"].values.tolist() == [6] * 24
    every = climatology(truth, quantiles=(0.5,), by=None)
    assert float(every["t2m"].sel(quantile=0.5)[0, 0]) == pytest.approx(np.median(values))
    with pytest.warns(UserWarning, match="only 1 samples"):
        sub = climatology(
            truth, reference=slice("2020-06-01T00", "2020-06-01T23"), quantiles=(0.5,), window=0
        )
    assert float(sub["t2m"].sel(hour=5, quantile=0.5)[0, 0]) == 5.0


def test_nanquantile_matches_numpy():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(4, 5, 37))
    a[0, 0, :10] = np.nan
    a[1, 1, :] = np.nan
    q = np.array([0.01, 0.5, 0.99])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.moveaxis(np.nanquantile(a, q, axis=-1), 0, -1)
    np.testing.assert_allclose(nanquantile(a, q), expected, equal_nan=True)


def test_percentile_heat_against_a_reference_period():
    truth = diurnal_truth(days=3)
    t2m = truth["t2m"].values
    t2m[50:53, 4:6, 2:5] += 6.0  # day 3, 02-04 UTC: 6 K above the usual cycle
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few samples per bin in a 2-day reference
        clim = climatology(truth, reference=slice("2020-06-01", "2020-06-02"), window=1)
    day3 = truth.sel(time="2020-06-03")  # evaluated out of sample: the day after the reference
    events = threshold_events(day3, clim, rules=[ThresholdRule("heat", "t2m", ">", quantile=0.99)])
    expected = np.zeros(t2m.shape, dtype=bool)
    expected[50:53, 4:6, 2:5] = True
    np.testing.assert_array_equal(events.masks.sel(event_type="heat").values, expected[48:])
    assert "99th percentile (climatology 2020-06-01 to 2020-06-02)" in events.table.details.iloc[0]
    assert events.masks.attrs["reference_period"] == "2020-06-01T00/2020-06-02T23"
    assert events.masks.attrs["in_sample"] == 0


def test_percentile_on_lazy_data_whose_coordinates_are_chunked_otherwise():
    """A lazily opened forecast: the data in 4-row blocks, its latitude/longitude in 3-row ones."""
    truth = diurnal_truth(days=3)
    t2m = truth["t2m"].values
    t2m[50:53, 4:6, 2:5] += 6.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clim = climatology(truth, reference=slice("2020-06-01", "2020-06-02"), window=1)
    day3 = truth.sel(time="2020-06-03")
    lazy = day3.chunk({"time": 12, "y": 4})
    lazy = lazy.assign_coords(
        latitude=lazy.latitude.chunk({"y": 3}), longitude=lazy.longitude.chunk({"y": 3})
    )
    with pytest.raises(ValueError, match="inconsistent chunks"):
        lazy["t2m"].chunksizes  # noqa: B018  (what the threshold used to read)
    rules = [ThresholdRule("heat", "t2m", ">", quantile=0.99)]
    events = threshold_events(lazy, clim, rules=rules)
    expected = threshold_events(day3, clim, rules=rules)
    np.testing.assert_array_equal(events.masks.values, expected.masks.values)
    assert events.masks.sel(event_type="heat").values.sum() == 3 * 2 * 3


def test_in_sample_climatology_is_refused_unless_allowed():
    truth = diurnal_truth(days=3)
    rule = [ThresholdRule("heat", "t2m", ">", quantile=0.99)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clim = climatology(truth, reference=slice("2020-06-02", "2020-06-03"), window=1)
    # the reference (2-3 June) overlaps the evaluated period (1-3 June)
    with pytest.raises(
        DataError, match=r"reference period 2020-06-02T00/2020-06-03T23 overlaps the evaluated"
    ):
        threshold_events(truth, clim, rules=rule)
    # touching by one hour is an overlap too
    with pytest.raises(DataError, match="overlaps"):
        threshold_events(truth.sel(time=slice("2020-06-01", "2020-06-02T00")), clim, rules=rule)
    allowed = threshold_events(truth, clim, rules=rule, allow_in_sample=True)
    assert allowed.masks.attrs["in_sample"] == 1
    assert allowed.masks.attrs["reference_period"] == "2020-06-02T00/2020-06-03T23"
    # build_masks never computes an in-sample climatology silently
    from workbench.events import build_masks

    with pytest.raises(DataError, match="overlaps the evaluated period"):
        build_masks(truth, thresholds="percentile", reference=slice("2020-06-01", "2020-06-01"))
    # a climatology that does not say where it comes from cannot be checked, so it is refused
    anonymous = clim.copy()
    anonymous.attrs = {}
    with pytest.raises(DataError, match="does not record its reference period"):
        threshold_events(truth.sel(time="2020-06-01"), anonymous, rules=rule)


def test_reference_of_several_periods_and_default_masks_attrs():
    truth = diurnal_truth(days=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clim = climatology(
            truth, reference=[slice("2020-06-01", "2020-06-01"), slice("2020-06-05", None)], by=None
        )
    assert clim.attrs["reference_period"] == "2020-06-01T00/2020-06-01T23; 2020-06-05T00/2020-06-05T23"
    assert int(clim["n_samples"]) == 48
    events = threshold_events(
        truth.sel(time=slice("2020-06-02", "2020-06-04")),
        clim,
        rules=[ThresholdRule("heat", "t2m", ">", quantile=0.99)],
    )
    assert events.masks.attrs["reference_period"] == clim.attrs["reference_period"]
    # without a climatology the default rules use their fixed values and say so
    fixed = threshold_events(truth)
    assert fixed.masks.attrs["reference_period"] == "none"
    assert "heat: t2m > 311.15 K" in fixed.masks.attrs["thresholds"]


def test_cold_percentile_needs_frost_too():
    # a cool June day: 1st-percentile cold for the cell, but far above freezing, is not a cold extreme
    truth = diurnal_truth(days=3)
    truth["t2m"].values[60:62, 1:3, 1:3] -= 8.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clim = climatology(truth, reference=slice("2020-06-01", "2020-06-02"), window=1)
    day3 = truth.sel(time="2020-06-03")
    from workbench.events import DEFAULT_RULES

    cold = [r for r in DEFAULT_RULES if r.label == "cold"]
    assert float(day3["t2m"].min()) > 273.15
    assert not threshold_events(day3, clim, rules=cold).masks.any()
    unbounded = [ThresholdRule("cold", "t2m", "<", quantile=0.01)]
    assert int(threshold_events(day3, clim, rules=unbounded).masks.sum()) == 8


def test_wind_speed_is_derived_for_the_climatology():
    u = np.ones((4, NY, NX)) * 3.0
    truth = grid_truth(nt=4, u10m=(u, "m s-1"), v10m=(u * 4 / 3, "m s-1"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clim = climatology(truth, by=None)
    assert float(clim["ws10m"].isel(quantile=0)[0, 0]) == pytest.approx(5.0)


# --- bad input --------------------------------------------------------------------------------------


def test_wrong_units_for_a_fixed_threshold():
    truth = planted()
    truth["t2m"].attrs["units"] = "degC"
    with pytest.raises(UnitsError, match="t2m has units 'degC'"):
        threshold_events(truth, rules=[ThresholdRule("heat", "t2m", ">", value=311.15, units="K")])


def test_missing_variable_for_an_explicit_rule():
    with pytest.raises(DataError, match="needs variable 'gust'"):
        threshold_events(planted(), rules=[ThresholdRule("gust", "gust", ">=", value=25.7)])
    with pytest.warns(UserWarning, match="skipped.*gust \\(gust\\)"):
        threshold_events(planted())


def test_quantile_rule_needs_a_climatology():
    with pytest.raises(DataError, match="pass a climatology"):
        threshold_events(planted(), rules=[ThresholdRule("heat", "t2m", ">", quantile=0.99)])


def test_climatology_missing_hours_or_quantiles():
    truth = diurnal_truth(days=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clim = climatology(truth.isel(time=slice(0, 12)), window=0)
    with pytest.raises(DataError, match=r"no values for hours \[12, 13"):
        threshold_events(
            truth.isel(time=slice(24, 48)), clim, rules=[ThresholdRule("heat", "t2m", ">", quantile=0.99)]
        )
    with pytest.raises(DataError, match="not 0.95"):
        threshold_events(
            truth.isel(time=slice(24, 36)), clim, rules=[ThresholdRule("heat", "t2m", ">", quantile=0.95)]
        )


def test_bad_climatology_arguments():
    truth = diurnal_truth(days=1)
    with pytest.raises(DataError, match="holds no times"):
        climatology(truth, reference=slice("2021-01-01", "2021-01-02"))
    with pytest.raises(DataError, match="quantiles must be"):
        climatology(truth, quantiles=(0.5, 1.5))
    with pytest.raises(DataError, match="by must be"):
        climatology(truth, by="month")
    with pytest.raises(DataError, match="comparison must be"):
        ThresholdRule("heat", "t2m", "=>", value=1.0)


def test_lazy_climatology_is_computed_once_not_per_time_block(monkeypatch):
    import sys

    from workbench.events import build_masks

    module = sys.modules["workbench.events.climatology"]
    quantile_calls, original = [], module.nanquantile

    def counted_nanquantile(a, q):
        quantile_calls.append(a.shape)
        return original(a, q)

    monkeypatch.setattr(module, "nanquantile", counted_nanquantile)
    truth = diurnal_truth(days=4)  # 96 hours
    truth["t2m"].values[74:77, 4:6, 2:5] += 6.0  # day 4, 02-04 UTC: 6 K above the usual cycle
    lazy = truth.chunk({"time": 12})  # 8 time blocks
    reference = slice("2020-06-01", "2020-06-03")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few samples per climatology bin
        events = build_masks(lazy, thresholds="percentile", reference=reference, allow_in_sample=True)
        masks = events.masks.load()
        # one quantile computation per hour-of-day bin (24), not one per bin for every time block of
        # the heat and cold comparisons and again when the lazy masks are loaded
        assert len(quantile_calls) == 24
        expected = build_masks(truth, thresholds="percentile", reference=reference, allow_in_sample=True)
    np.testing.assert_array_equal(masks.values, expected.masks.values)
    heat = masks.sel(event_type="heat").values
    assert heat[74:77, 4:6, 2:5].all() and heat.sum() == 18
