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
    from workbench.inference.sinks import ZarrSink

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
            model, data, inits, [6, 12], sink=ZarrSink(store), batch_size=1, progress=False, callback=interrupt
        )
    interrupted = len(calls)
    assert interrupted < 3  # the run stopped before the last block
    resumed = run_forecast(model, data, inits, [6, 12], sink=ZarrSink(store), batch_size=1, progress=False)
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


def big_domain() -> OrderedDict:
    return OrderedDict(lat=np.arange(90.0, -90.1, -2.0), lon=np.arange(0.0, 360.0, 2.0))


def smooth_state(lat: np.ndarray, lon: np.ndarray, periods: int = 3) -> xr.Dataset:
    """Fields of known spatial spread: t2m = 280 + 10 cos(lat) sin(lon), and the others scaled."""
    times = pd.date_range("2020-06-01", periods=periods, freq="6h")
    la, lo = np.meshgrid(np.deg2rad(lat), np.deg2rad(lon), indexing="ij")
    base = np.cos(la) * np.sin(lo)
    fields = {"t2m": 280 + 10 * base, "u10m": 5 * base, "z500": 5.5e4 + 1e3 * base}
    return xr.Dataset(
        {v: (("time", "latitude", "longitude"), np.repeat(f[None], periods, 0).astype("f4")) for v, f in fields.items()},
        coords={"time": times, "latitude": lat, "longitude": lon},
    )


def test_earth2studio_perturbation_gives_seeded_members_through_run_forecast():
    import torch
    from earth2studio.perturbation import Gaussian

    from workbench.inference import run_forecast
    from workbench.inference.perturb import noise_key

    dom = big_domain()
    model = Earth2Forecaster(
        Persistence(VARIABLES, dom), perturbation=lambda seed: Gaussian(noise_amplitude=0.5, seed=seed)
    )
    data = smooth_state(dom["lat"][::-1], dom["lon"])
    fc = run_forecast(model, data, ["2020-06-01T06"], [6, 12], members=3, progress=False)
    assert fc["t2m"].dims == ("init_time", "lead_time", "member", "latitude", "longitude")
    # Persistence returns its perturbed start at every lead: each member is the state plus Gaussian's
    # draw from the generator seeded with the member's key, bit for bit (latitude back to ascending).
    shape = (1, 1, len(VARIABLES), dom["lat"].size, dom["lon"].size)
    for m in range(3):
        gen = torch.Generator().manual_seed(noise_key(0, np.datetime64("2020-06-01T06"), m))
        draw = 0.5 * torch.randn(shape, generator=gen).numpy()[0, 0]
        for c, v in enumerate(VARIABLES):
            expected = data[v].isel(time=1).values + draw[c][::-1]
            np.testing.assert_allclose(fc[v].isel(init_time=0, lead_time=1, member=m).values, expected, atol=1e-3)
    spread = (fc["t2m"] - data["t2m"].isel(time=1)).std().item()
    assert abs(spread - 0.5) < 0.01  # 3 x 2 x 8100 draws of N(0, 0.5^2)


def test_workbench_noise_members_when_no_perturbation_is_given():
    from workbench.inference import run_forecast
    from workbench.inference.ensemble import EnsembleError, EnsembleSpec

    dom = big_domain()
    model = Earth2Forecaster(Persistence(VARIABLES, dom))
    data = smooth_state(dom["lat"][::-1], dom["lon"])
    spec = EnsembleSpec(noise_members=4, noise_scale={"t2m": 0.1}, length_scale=0.0, seed=3)
    fc = run_forecast(model, data, ["2020-06-01T06"], [6], members=spec, progress=False)
    assert fc["t2m"].dims == ("init_time", "lead_time", "weight_member", "noise_member", "latitude", "longitude")
    # amplitude 0.1 x the spatial std of t2m (10 cos(lat) sin(lon) has std 10 sqrt(mean cos^2 / 2))
    field_std = float(data["t2m"].isel(time=1).std())
    diff = fc["t2m"] - data["t2m"].isel(time=1)
    assert abs(float(diff.std()) / (0.1 * field_std) - 1) < 0.02
    np.testing.assert_array_equal(fc["u10m"].values[0, 0, 0, 0], data["u10m"].isel(time=1).values)  # unperturbed
    assert float(diff.isel(noise_member=0).std()) > 0 and not np.allclose(
        diff.isel(noise_member=0).values, diff.isel(noise_member=1).values
    )
    with pytest.raises(EnsembleError, match="noise members only"):
        run_forecast(model, data, ["2020-06-01T06"], [6], members=(2, 2), progress=False)


def test_an_ensemble_store_resumes_to_the_same_members(tmp_path):
    from earth2studio.perturbation import Gaussian

    from workbench.inference import run_forecast
    from workbench.inference.sinks import ZarrSink

    model = Earth2Forecaster(
        Persistence(VARIABLES, domain()), perturbation=lambda seed: Gaussian(noise_amplitude=0.2, seed=seed)
    )
    data = initial_state()
    inits = ["2020-06-01T00", "2020-06-01T06", "2020-06-01T12"]
    whole = run_forecast(model, data, inits, [6, 12], members=2, batch_size=1, progress=False)

    def interrupt(block):
        raise KeyboardInterrupt

    store = tmp_path / "ens.zarr"
    with pytest.raises(KeyboardInterrupt):
        run_forecast(model, data, inits, [6, 12], members=2, batch_size=1, progress=False,
                     sink=ZarrSink(store), callback=interrupt)
    resumed = run_forecast(model, data, inits, [6, 12], members=2, batch_size=1, progress=False,
                           sink=ZarrSink(store))
    for v in VARIABLES:
        np.testing.assert_array_equal(resumed[v].values, whole[v].values)


def test_one_table_maps_earth2studio_names_to_the_workbench():
    from earth2studio.lexicon.base import E2STUDIO_VOCAB

    from workbench import lexicon

    # the table lists only the names that differ; every other canonical name is Earth2Studio's own
    assert set(lexicon.EARTH2_NAMES) <= set(E2STUDIO_VOCAB)
    differing = set(lexicon.EARTH2_NAMES.values())
    assert sorted(v for v in lexicon.VARIABLES if v not in E2STUDIO_VOCAB) == sorted(differing)
    for name in E2STUDIO_VOCAB:
        mapped = lexicon.earth2_name(name)
        assert mapped is None or mapped == lexicon.EARTH2_NAMES.get(name, name), name
    assert lexicon.earth2_name("fg10m") == "gust" and lexicon.earth2_name("z500") == "z500"
