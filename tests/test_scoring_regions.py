"""Forecast-conditioned and two-sided regions in decompose, against hand values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench.errors import DataError
from workbench.events import ThresholdRule, forecast_event_masks
from workbench.scoring import decompose
from workbench.scoring.regions import conditioned_regions

TIMES = pd.date_range("2020-06-01T00", periods=4, freq="h")
INITS = TIMES[:2]
LEADS = pd.to_timedelta([1, 2], unit="h")
NY, NX = 2, 5


LATLON = {
    "latitude": (("y", "x"), 30.0 + np.mgrid[0:NY, 0:NX][0]),
    "longitude": (("y", "x"), -100.0 + np.mgrid[0:NY, 0:NX][1]),
}


def setup():
    """Truth 0 everywhere; an observed event in column 0 at every time; the forecast's own events differ
    per initial time: init 0 forecasts the event in column 0 (a hit), init 1 in column 4 (a miss in
    column 0 and a false alarm in column 4)."""
    truth = xr.Dataset(
        {"gust": (("time", "y", "x"), np.zeros((4, NY, NX)), {"units": "m s-1"})},
        coords={"time": TIMES, **LATLON},
    )
    fc = np.zeros((2, 2, NY, NX))
    fc[0, :, :, 0] = 30.0  # init 0: 30 m/s in column 0 (error 30)
    fc[1, :, :, 4] = 40.0  # init 1: 40 m/s in column 4 (error 40)
    fc[:, :, :, 1:4] += 1.0  # error 1 elsewhere
    forecast = xr.Dataset(
        {"gust": (("init_time", "lead_time", "y", "x"), fc, {"units": "m s-1"})},
        coords={"init_time": INITS, "lead_time": LEADS, **LATLON},
    )
    obs = np.zeros((1, 4, NY, NX), dtype=bool)
    obs[0, :, :, 0] = True
    observed = xr.DataArray(
        obs, dims=("event_type", "time", "y", "x"), coords={"event_type": ["gust"], "time": TIMES}
    )
    return truth, forecast, observed


def test_forecast_masks_and_conditioned_regions_by_hand():
    truth, forecast, observed = setup()
    fm = forecast_event_masks(
        forecast, rules=[ThresholdRule("gust", "gust", ">=", value=25.7, units="m s-1")]
    )
    assert fm.dims == ("event_type", "init_time", "lead_time", "y", "x")
    assert fm.isel(init_time=0).sel(event_type="gust").values[..., 0].all()
    assert fm.isel(init_time=1).sel(event_type="gust").values[..., 4].all()
    assert int(fm.sum()) == 2 * 2 * NY  # 2 inits x 2 leads x one column
    regions = conditioned_regions(observed, fm)
    assert regions.event_type.values.tolist()[:5] == [
        "extreme_forecast",
        "extreme_either",
        "hit",
        "miss",
        "false_alarm",
    ]
    assert "gust|false_alarm" in regions.event_type.values

    scores = decompose(
        forecast, truth, observed, forecast_masks=fm, weights=xr.ones_like(truth.gust.isel(time=0))
    )
    lead = scores.sel(variable="gust", lead_time=LEADS[0])
    # per lead: 2 fields x 10 cells; squared errors: init 0 -> 900 x2 cells, 1 x6, 0 x2 ; init 1 -> 0 x2
    # (column 0, a miss with error 0), 1 x6, 1600 x2
    total = 2 * 900 + 6 + 6 + 2 * 1600
    frac = {r: float(lead.area_fraction.sel(region=r)) for r in ("extreme", "hit", "miss", "false_alarm")}
    assert frac == pytest.approx({"extreme": 0.2, "hit": 0.1, "miss": 0.1, "false_alarm": 0.1})
    assert float(lead.area_fraction.sel(region="extreme_either")) == pytest.approx(0.3)
    assert float(lead.rmse.sel(region="hit")) == pytest.approx(30.0)
    assert float(lead.rmse.sel(region="miss")) == pytest.approx(0.0)
    assert float(lead.rmse.sel(region="false_alarm")) == pytest.approx(40.0)
    # RMSE per initial time, then averaged over them (the default): init 0 has 30 in its two extreme
    # cells, init 1 has 0 in its two; pooled over both inits it is sqrt(2 x 900 / 4)
    assert float(lead.rmse.sel(region="extreme")) == pytest.approx((30.0 + 0.0) / 2)
    pooled = decompose(
        forecast, truth, observed, forecast_masks=fm, weights=xr.ones_like(truth.gust.isel(time=0)),
        rmse_average="pooled",
    ).sel(variable="gust", lead_time=LEADS[0])
    assert float(pooled.rmse.sel(region="extreme")) == pytest.approx(np.sqrt(2 * 900 / 4))
    # init 0: a hit with error 30 in two cells; init 1: a false alarm with error 40 in two cells
    assert float(lead.rmse.sel(region="extreme_forecast")) == pytest.approx((30.0 + 40.0) / 2)
    assert float(pooled.rmse.sel(region="extreme_forecast")) == pytest.approx(np.sqrt((1800 + 3200) / 4))
    assert float(lead.error_share.sel(region="false_alarm")) == pytest.approx(3200 / total)
    # extreme = hit + miss and extreme_forecast = hit + false_alarm
    for metric in ("area_fraction", "error_share"):
        v = lead[metric]
        assert float(v.sel(region="hit") + v.sel(region="miss")) == pytest.approx(
            float(v.sel(region="extreme"))
        )
        assert float(v.sel(region="gust|hit") + v.sel(region="gust|false_alarm")) == pytest.approx(
            float(v.sel(region="gust|forecast"))
        )


def test_per_field_masks_in_one_block_equal_one_init_at_a_time():
    truth, forecast, observed = setup()
    fm = forecast_event_masks(
        forecast, rules=[ThresholdRule("gust", "gust", ">=", value=25.7, units="m s-1")]
    )
    regions = conditioned_regions(observed, fm)
    # one block holds both inits; valid time 02 UTC is shared by (init 0, lead 2) and (init 1, lead 1),
    # whose masks differ: the grouping must keep them apart
    together = decompose(forecast, truth, regions, chunk={"init_time": 2})
    apart = decompose(forecast, truth, regions, chunk={"init_time": 1})
    xr.testing.assert_allclose(together, apart)


def test_bad_forecast_masks():
    truth, forecast, observed = setup()
    with pytest.raises(DataError, match="need the observed masks"):
        decompose(forecast, truth, None, forecast_masks=observed)
    fm = forecast_event_masks(
        forecast, rules=[ThresholdRule("gust", "gust", ">=", value=25.7, units="m s-1")]
    )
    with pytest.raises(DataError, match="lack the model"):
        decompose({"a": forecast, "b": forecast}, truth, observed, forecast_masks={"a": fm})
    with pytest.raises(DataError, match="lack 2 of the forecast's fields"):
        decompose(forecast, truth, conditioned_regions(observed, fm).isel(lead_time=[0]))
