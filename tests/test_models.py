"""Model protocol, registry and baselines (persistence, climatology, NWP) against hand-computed values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench import models
from workbench.errors import CheckpointError, DataError


def hourly_truth(days: int = 3) -> xr.Dataset:
    """t2m = 100 * day + hour + 10 * y + x on a 2 x 3 grid, hourly from 2020-06-01T00."""
    times = pd.date_range("2020-06-01", periods=24 * days, freq="h")
    day = (times - times[0]).days.values
    hour = times.hour.values
    base = 100.0 * day + hour
    y = np.array([0.0, 3000.0])
    x = np.array([0.0, 3000.0, 6000.0])
    grid = 10.0 * np.arange(2)[:, None] + np.arange(3)[None, :]
    t2m = base[:, None, None] + grid[None]
    lat = np.array([[30.0, 30.0, 30.0], [31.0, 31.0, 31.0]])
    return xr.Dataset(
        {
            "t2m": (("time", "y", "x"), t2m, {"units": "K"}),
            "u10m": (("time", "y", "x"), -t2m, {"units": "m s-1"}),
        },
        coords={
            "time": times,
            "y": y,
            "x": x,
            "latitude": (("y", "x"), lat),
            "longitude": (("y", "x"), -lat),
        },
    )


def test_registry_lists_the_six_models():
    names = models.list_models()
    for name in ("persistence", "climatology", "nwp", "pangu", "climax", "hrheim"):
        assert name in names
    assert "pangu_weather" not in names  # needs user files: listed only on request
    assert "pangu_weather" in models.list_models(include_external=True)


def test_unknown_model_is_a_clear_error():
    with pytest.raises(KeyError, match="Unknown model 'gfs'.*persistence"):
        models.load("gfs")


def test_missing_weights_tell_how_to_train(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CHECKPOINTS", str(tmp_path))
    with pytest.raises(CheckpointError, match="workbench train hrheim"):
        models.load("hrheim")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        models.load("pangu", checkpoint=tmp_path / "nothing_here")


def test_baselines_meet_the_protocol():
    nwp_data = xr.Dataset(coords={"init_time": pd.date_range("2020-06-01", periods=1), "lead_time": [0]})
    for name, kw in (("persistence", {}), ("climatology", {}), ("nwp", {"data": nwp_data})):
        model = models.load(name, **kw)
        assert isinstance(model, models.Forecaster), name
        assert model.name == name


def test_lead_and_init_time_parsing():
    leads = models.as_lead_times([6, "1h", np.timedelta64(24, "h"), 6])
    assert list(leads) == [pd.Timedelta(hours=1), pd.Timedelta(hours=6), pd.Timedelta(hours=24)]
    inits = models.as_init_times("2020-06-01T12")
    assert inits[0] == pd.Timestamp("2020-06-01T12")
    with pytest.raises(DataError, match="negative"):
        models.as_lead_times([-1])


def test_lead_times_from_xarray_pandas_and_numpy():
    hours = [pd.Timedelta(hours=h) for h in (1, 6, 24)]
    values = np.array([24, 1, 6], dtype="timedelta64[h]").astype("timedelta64[us]")
    forecast = xr.Dataset(coords={"lead_time": values})
    assert list(models.as_lead_times(forecast.lead_time)) == hours  # a coordinate DataArray
    assert list(models.as_lead_times(forecast["lead_time"].variable)) == hours
    assert list(models.as_lead_times(xr.DataArray(values, dims="step"))) == hours
    assert list(models.as_lead_times(forecast.lead_time[1])) == hours[:1]  # a 0-d DataArray
    assert list(models.as_lead_times(forecast.indexes["lead_time"])) == hours  # a TimedeltaIndex
    assert list(models.as_lead_times(pd.to_timedelta([6, 1], unit="h"))) == hours[:2]
    assert list(models.as_lead_times(np.array([24, 6, 1]))) == hours  # ints are hours
    assert list(models.as_lead_times(np.timedelta64(90, "m"))) == [pd.Timedelta(minutes=90)]
    assert list(models.as_lead_times(12)) == [pd.Timedelta(hours=12)]
    with pytest.raises(DataError, match="NaT"):
        models.as_lead_times(xr.DataArray(np.array([1, "NaT"], dtype="timedelta64[h]"), dims="lead_time"))


def test_persistence_repeats_the_initial_state():
    truth = hourly_truth()
    fc = models.load("persistence").forecast(truth, ["2020-06-02T05"], [0, 1, 6])
    assert fc["t2m"].dims == ("init_time", "lead_time", "y", "x")
    # day 1, hour 5: 100 + 5, plus 10 * y + x
    expected = 105.0 + np.array([[0, 1, 2], [10, 11, 12]])
    for k in range(3):
        np.testing.assert_array_equal(fc["t2m"].values[0, k], expected)
    assert fc["valid_time"].values[0, 2] == np.datetime64("2020-06-02T11")
    assert fc["t2m"].attrs["units"] == "K"
    assert fc["latitude"].dims == ("y", "x")


def test_persistence_errors_name_the_problem():
    truth = hourly_truth()
    with pytest.raises(DataError, match="not in the initial data"):
        models.Persistence().forecast(truth, ["2021-01-01"], [1])
    with pytest.raises(DataError, match="lacks variables \\['refc'\\]"):
        models.Persistence(variables=["refc"]).forecast(truth, ["2020-06-01T03"], [1])


def test_climatology_is_mean_per_cell_and_hour_of_day():
    truth = hourly_truth(days=3)
    clim = models.Climatology(data=truth, period=("2020-06-01T00", "2020-06-02T23"), variables=["t2m"])
    # days 0 and 1: mean of 100 * day is 50; valid 2020-06-03T05 + 4 h -> hour 9
    fc = clim.forecast(truth, ["2020-06-03T05"], [4, 20])
    grid = np.array([[0, 1, 2], [10, 11, 12]])
    np.testing.assert_allclose(fc["t2m"].values[0, 0], 50.0 + 9 + grid)
    # 20 h later is 01 UTC the next day
    np.testing.assert_allclose(fc["t2m"].values[0, 1], 50.0 + 1 + grid)


def test_climatology_without_data_uses_only_the_past():
    truth = hourly_truth(days=3)
    clim = models.Climatology(variables=["t2m"])
    fc = clim.forecast(truth, ["2020-06-02T00"], [3])
    # only day 0 precedes the initial time: value = hour 3 + grid, no day-1 values leak in
    np.testing.assert_allclose(fc["t2m"].values[0, 0], 3.0 + np.array([[0, 1, 2], [10, 11, 12]]))
    with pytest.raises(DataError, match="at least 24"):
        clim.forecast(truth, ["2020-06-01T10"], [1])


def test_climatology_of_six_hourly_data_takes_the_nearest_hour():
    truth = hourly_truth(days=2)
    six = truth.sel(time=truth.time.dt.hour.isin([0, 6, 12, 18]))
    clim = models.Climatology(data=six, variables=["t2m"], min_hours=4)
    fc = clim.forecast(truth, ["2020-06-02T00"], [2, 4, 23])
    # means over days 0 and 1 at hours 0/6/12/18 are 50 + hour; hour 2 -> 0, hour 4 -> 6, hour 23 -> 0
    np.testing.assert_allclose(fc["t2m"].values[0, :, 0, 0], [50.0, 56.0, 50.0])


def test_nwp_selects_from_a_given_forecast():
    inits = pd.date_range("2020-06-01", periods=3, freq="12h")
    leads = pd.to_timedelta(np.arange(0, 25, 6), unit="h")
    values = np.arange(3 * 5 * 2 * 3, dtype=float).reshape(3, 5, 2, 3)
    data = xr.Dataset(
        {"t2m": (("init_time", "lead_time", "y", "x"), values)},
        coords={"init_time": inits, "lead_time": leads, "y": [0.0, 1.0], "x": [0.0, 1.0, 2.0]},
    )
    nwp = models.load("nwp", data=data)
    assert nwp.time_step == pd.Timedelta(hours=6)
    fc = nwp.forecast(None, ["2020-06-01T12"], [6, 24])
    np.testing.assert_array_equal(fc["t2m"].values, values[1:2][:, [1, 4]])
    assert fc["valid_time"].values[0, 1] == np.datetime64("2020-06-02T12")
    with pytest.raises(DataError, match="no lead times"):
        nwp.forecast(None, ["2020-06-01T12"], [5])
    with pytest.raises(DataError, match="no initial times"):
        nwp.forecast(None, ["2020-06-05"], [6])


def test_nwp_on_the_tiny_sample(request):
    sample = pytest.importorskip("workbench.sample")
    if not hasattr(sample, "open_sample"):
        pytest.skip("the embedded sample is not part of this checkout yet")
    request.getfixturevalue("tiny_sample")
    open_sample = sample.open_sample

    data = open_sample("nwp", size="tiny")
    nwp = models.NWPForecast(data=data)
    init = pd.Timestamp(data.init_time.values[0])
    fc = nwp.forecast(None, [init], [0, 6])
    assert fc.sizes["lead_time"] == 2
    assert set(fc.data_vars) == set(data.data_vars)
