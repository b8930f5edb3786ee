"""Earth2Studio's weight-free models and random data source through the workbench (needs the earth2 extra)."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench.errors import DataError, GridError

earth2studio = pytest.importorskip("earth2studio")

from earth2studio.data import Random  # noqa: E402
from earth2studio.models.px import Persistence  # noqa: E402

from workbench.models.earth2 import Earth2Forecaster  # noqa: E402
from workbench.sources.earth2 import from_earth2_source  # noqa: E402

LAT = np.arange(90.0, -90.1, -22.5)  # Earth2Studio's orientation: 90 N first
LON = np.arange(0.0, 360.0, 45.0)
VARIABLES = ["t2m", "u10m", "z500"]


def domain() -> OrderedDict:
    return OrderedDict(lat=LAT, lon=LON)


def test_random_source_becomes_canonical():
    ds = from_earth2_source(Random(domain()), ["2020-06-01T00", "2020-06-01T06"], VARIABLES)
    assert list(ds.data_vars) == VARIABLES
    assert ds["t2m"].dims == ("time", "latitude", "longitude")
    assert ds.latitude.values[0] == -90.0 and ds["z500"].attrs["units"] == "m2 s-2"
    with pytest.raises(DataError, match="no workbench name"):
        from_earth2_source(Random(domain()), "2020-06-01", ["t2m", "not_a_field"])


def initial_state() -> xr.Dataset:
    times = pd.date_range("2020-06-01", periods=5, freq="6h")
    rng = np.random.default_rng(0)
    lat = LAT[::-1]
    return xr.Dataset(
        {
            v: (
                ("time", "latitude", "longitude"),
                rng.random((5, lat.size, LON.size)).astype("f4"),
                {"units": u},
            )
            for v, u in zip(VARIABLES, ["K", "m s-1", "m2 s-2"], strict=True)
        },
        coords={"time": times, "latitude": lat, "longitude": LON},
    )


def test_persistence_through_the_forecaster_protocol():
    model = Earth2Forecaster(Persistence(VARIABLES, domain()))
    assert model.variables == tuple(VARIABLES) and model.time_step == pd.Timedelta(hours=6)
    data = initial_state()
    fc = model.forecast(data, ["2020-06-01T00", "2020-06-01T06"], [6, 12])
    assert fc["t2m"].dims == ("init_time", "lead_time", "latitude", "longitude")
    # persistence: every lead is the initial state, on the workbench's (ascending) latitude
    np.testing.assert_array_equal(
        fc["z500"].isel(init_time=1, lead_time=1).values, data["z500"].isel(time=1).values
    )
    assert fc.valid_time.values[0, 1] == np.datetime64("2020-06-01T12")
    with pytest.raises(DataError, match="multiples"):
        model.forecast(data, ["2020-06-01"], [3])
    with pytest.raises(GridError, match="regrid"):
        model.forecast(data.isel(longitude=slice(0, 4)), ["2020-06-01"], [6])


def test_run_forecast_writes_and_resumes_a_store(tmp_path):
    from workbench.inference import run_forecast

    model = Earth2Forecaster(Persistence(VARIABLES, domain(), history=2), name="e2s-persistence")
    assert list(model.history) == [pd.Timedelta(hours=-6), pd.Timedelta(0)]
    data = initial_state()
    inits = ["2020-06-01T06", "2020-06-01T12", "2020-06-01T18"]
    store = tmp_path / "e2s.zarr"
    calls = []
    original = model.forecast

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    model.forecast = counted

    def interrupt(block):
        raise KeyboardInterrupt  # stop after the first block is written

    with pytest.raises(KeyboardInterrupt):
        run_forecast(
            model, data, inits, [6, 12], store=store, batch_size=1, progress=False, callback=interrupt
        )
    interrupted = len(calls)
    assert interrupted < 3  # the run stopped before the last block
    resumed = run_forecast(model, data, inits, [6, 12], store=store, batch_size=1, progress=False)
    assert len(calls) == 3  # every block computed once: the resumed run did only the missing ones
    np.testing.assert_array_equal(
        resumed["t2m"].isel(init_time=0, lead_time=0).values, data["t2m"].sel(time="2020-06-01T06").values
    )
    np.testing.assert_array_equal(
        resumed["u10m"].isel(init_time=1, lead_time=1).values, data["u10m"].sel(time="2020-06-01T12").values
    )


def test_catalog_entry_uses_an_earth2studio_source(monkeypatch):
    import earth2studio.data as e2s_data

    import workbench

    monkeypatch.setattr(e2s_data, "GFS", lambda: Random(domain()), raising=False)
    ds = workbench.open_catalog()["earth2_data"](
        start="2021-06-02", end="2021-06-02T12", variables=["t2m"]
    ).read()
    assert ds.sizes == {"time": 3, "latitude": LAT.size, "longitude": LON.size}
