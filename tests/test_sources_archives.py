"""Forecast archives on small files the tests write in the real layouts: WeatherBench 2 forecast zarr,
the AI-model archive's netCDF runs, and HRRR GRIB2 subsets fetched through (a stand-in for) Herbie."""

from __future__ import annotations

import re
import sys
import types

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench.errors import DataError
from workbench.lexicon import GRAVITY
from workbench.sources.archives import (
    aiwp_url,
    herbie_search,
    open_aiwp_forecast,
    open_hrrr_herbie,
    open_wb2_forecast,
)

LAT = np.linspace(-90.0, 90.0, 7)
LON = np.arange(0.0, 360.0, 60.0)
LEVELS = [500, 850]


def wb2_forecast(path) -> xr.Dataset:
    """A WeatherBench 2 forecast store: time (init), prediction_timedelta, level, latitude, longitude."""
    inits = pd.date_range("2020-06-01", periods=3, freq="12h")
    leads = pd.to_timedelta([0, 6, 12, 18], "h")
    rng = np.random.default_rng(0)
    shape = (inits.size, leads.size, LAT.size, LON.size)
    ds = xr.Dataset(
        {
            "2m_temperature": (
                ("time", "prediction_timedelta", "latitude", "longitude"),
                280 + rng.random(shape),
                {"units": "K"},
            ),
            "total_precipitation_6hr": (
                ("time", "prediction_timedelta", "latitude", "longitude"),
                rng.random(shape) / 1000,
                {"units": "m"},
            ),
            "total_precipitation_24hr": (
                ("time", "prediction_timedelta", "latitude", "longitude"),
                rng.random(shape),
                {"units": "m"},
            ),
            "geopotential": (
                ("time", "prediction_timedelta", "level", "latitude", "longitude"),
                5e4 + rng.random((inits.size, leads.size, 2, LAT.size, LON.size)),
                {"units": "m**2 s**-2"},
            ),
        },
        coords={
            "time": inits,
            "prediction_timedelta": leads,
            "level": LEVELS,
            "latitude": LAT,
            "longitude": LON,
        },
    )
    ds.to_zarr(path, mode="w", zarr_format=2, consolidated=True)
    return ds


def test_wb2_forecast_layout_becomes_canonical(tmp_path):
    raw = wb2_forecast(tmp_path / "hres.zarr")
    ds = open_wb2_forecast(tmp_path / "hres.zarr", variables=["2t", "tp", "z500"])
    assert list(ds.data_vars) == ["t2m", "tp", "z500"]
    assert ds["t2m"].dims == ("init_time", "lead_time", "latitude", "longitude")
    assert ds.valid_time.values[1, 2] == np.datetime64("2020-06-01T12") + np.timedelta64(12, "h")
    np.testing.assert_array_equal(
        ds["tp"].values, raw["total_precipitation_6hr"].values.astype("f4")
    )  # 6-h leads
    np.testing.assert_allclose(ds["z500"].values, raw["geopotential"].sel(level=500).values, rtol=1e-6)
    part = open_wb2_forecast(tmp_path / "hres.zarr", variables=["t2m"], start="2020-06-01T12", lead_hours=6)
    assert part.sizes == {"init_time": 2, "lead_time": 2, "latitude": 7, "longitude": 6}
    with pytest.raises(DataError, match="none between"):
        open_wb2_forecast(tmp_path / "hres.zarr", start="2023-07-01")
    with pytest.raises(DataError, match="available: t2m, tp, z<level>"):
        open_wb2_forecast(tmp_path / "hres.zarr", variables=["cape"])
    with pytest.raises(DataError, match="prediction_timedelta"):
        open_wb2_forecast(raw.rename(prediction_timedelta="step"))


def aiwp_run(folder, init: str, *, name: str = "FOUR_v200_GFS") -> tuple[str, dict]:
    """One run file of the AI-model archive: 6-hourly valid times from f000, latitude 90 to -90."""
    t0 = pd.Timestamp(init)
    times = pd.date_range(t0, periods=5, freq="6h")
    lat = LAT[::-1]
    rng = np.random.default_rng(int(t0.hour))
    values = {
        "t2": 280 + rng.random((times.size, lat.size, LON.size)),
        "z": 5e4 + rng.random((times.size, 2, lat.size, LON.size)),
        "apcp": 10 * rng.random((times.size, lat.size, LON.size)),
    }
    ds = xr.Dataset(
        {
            "t2": (("time", "latitude", "longitude"), values["t2"].astype("f4"), {"units": "K"}),
            "u10": (
                ("time", "latitude", "longitude"),
                np.zeros((times.size, lat.size, LON.size), "f4"),
                {"units": "m s**-1"},
            ),
            "z": (
                ("time", "level", "latitude", "longitude"),
                values["z"].astype("f4"),
                {"units": "m**2 s**-2"},
            ),
            "apcp": (("time", "latitude", "longitude"), values["apcp"].astype("f4"), {"units": "kg m**-2"}),
        },
        coords={"time": times, "level": np.array(LEVELS, dtype="i4"), "latitude": lat, "longitude": LON},
    )
    path = folder / f"{name}_{t0:%Y%m%d%H}_f000_f240_06.nc"
    ds.to_netcdf(path)
    return str(path), values


def test_aiwp_runs_become_one_canonical_forecast(tmp_path):
    p1, v1 = aiwp_run(tmp_path, "2020-06-01T12")
    p0, v0 = aiwp_run(tmp_path, "2020-06-01T00")
    ds = open_aiwp_forecast(str(tmp_path / "FOUR_v200_GFS_*.nc"), variables=["t2m", "z", "tp"])
    assert set(ds.data_vars) == {"t2m", "tp", "z500", "z850"}
    assert list(ds.init_time.to_index()) == list(pd.to_datetime(["2020-06-01T00", "2020-06-01T12"]))
    assert list(ds.lead_time.to_index()) == list(pd.to_timedelta(np.arange(0, 25, 6), "h"))
    # latitude flipped to ascending: the file's first row (90 N) is the last
    np.testing.assert_allclose(ds["t2m"].isel(init_time=1, latitude=-1).values, v1["t2"][:, 0], rtol=1e-6)
    np.testing.assert_allclose(ds["z500"].isel(init_time=0, latitude=0).values, v0["z"][:, 0, -1], rtol=1e-6)
    # apcp in kg m-2 (mm) over 6 h -> tp in m
    np.testing.assert_allclose(
        ds["tp"].isel(init_time=0, latitude=-1).values, v0["apcp"][:, 0] / 1000, rtol=1e-6
    )
    assert ds["valid_time"].values[1, 4] == np.datetime64("2020-06-02T12")
    one = open_aiwp_forecast([p0, p1], variables=["2t"], end="2020-06-01T06", lead_hours=12)
    assert one.sizes["init_time"] == 1 and one.sizes["lead_time"] == 3
    with pytest.raises(DataError, match="4-5 GB"):
        open_aiwp_forecast(aiwp_url("FOUR_v200_GFS", "2023-10-01"))
    assert aiwp_url("GRAP_v100_IFS", "2023-10-01T12").endswith(
        "GRAP_v100_IFS/2023/1001/GRAP_v100_IFS_2023100112_f000_f240_06.nc"
    )


def test_aiwp_geopotential_height_is_converted(tmp_path):
    path, values = aiwp_run(tmp_path, "2020-06-01T00")
    with xr.open_dataset(path) as raw:
        gh = raw.load()
    gh["z"] = gh["z"] / GRAVITY
    gh["z"].attrs["units"] = "m"  # some runs carry geopotential height
    gh.to_netcdf(tmp_path / "PANG_v100_GFS_2020060100_f000_f240_06.nc")
    ds = open_aiwp_forecast(tmp_path / "PANG_v100_GFS_2020060100_f000_f240_06.nc", variables=["z500"])
    np.testing.assert_allclose(
        ds["z500"].isel(init_time=0, latitude=0).values, values["z"][:, 0, -1], rtol=1e-5
    )


def test_hrrr_through_herbie_reads_the_subsets_it_downloads(tmp_path, monkeypatch):
    """Herbie is replaced by a stand-in that writes each subset as HRRR's byte ranges would give it."""
    from test_sources_hrrr import INIT, NX, NY, expected_rotation, field, grib_message

    calls = []

    class FakeHerbie:
        def __init__(self, date, *, model, product, fxx, save_dir, **_):
            assert model == "hrrr" and product == "sfc"
            self.date, self.fxx, self.save_dir = pd.Timestamp(date), fxx, save_dir

        def download(self, search):
            calls.append((self.date, self.fxx, search))
            path = self.save_dir / f"subset_{self.date:%Y%m%d%H}_f{self.fxx:02d}.grib2"
            self.save_dir.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as out:
                if re.search(search, ":TMP:2 m above ground:"):
                    grib_message(out, "2t", "heightAboveGround", 2, field(280.0) + self.fxx, self.fxx)
                if re.search(search, ":UGRD:10 m above ground:"):
                    grib_message(out, "10u", "heightAboveGround", 10, np.full((NY, NX), 10.0), self.fxx)
                if re.search(search, ":VGRD:10 m above ground:"):
                    grib_message(out, "10v", "heightAboveGround", 10, np.zeros((NY, NX)), self.fxx)
            return path

    monkeypatch.setitem(sys.modules, "herbie", types.SimpleNamespace(Herbie=FakeHerbie))
    ds = open_hrrr_herbie(INIT, variables=["t2m", "u10m"], lead_hours=2, save_dir=tmp_path / "herbie")
    assert [(c[0], c[1]) for c in calls] == [(INIT, 1), (INIT, 2)]
    assert calls[0][2] == herbie_search(["t2m", "u10m", "v10m"])  # the partner component is fetched too
    assert list(ds.data_vars) == ["t2m", "u10m"]
    assert ds["t2m"].dims == ("init_time", "lead_time", "y", "x")
    np.testing.assert_allclose(ds["t2m"].isel(init_time=0, lead_time=1).values, field(282.0), atol=1e-3)
    cos, _sin = expected_rotation()
    np.testing.assert_allclose(ds["u10m"].isel(init_time=0, lead_time=0).values, 10 * cos, rtol=1e-5)
    with pytest.raises(DataError, match="No HRRR index search"):
        herbie_search(["cape"])


def test_herbie_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "herbie", None)
    with pytest.raises(DataError, match=r"workbench\[herbie\]"):
        open_hrrr_herbie("2020-06-01T12")


def test_archives_are_catalog_entries(tmp_path):
    import workbench

    wb2_forecast(tmp_path / "hres.zarr")
    aiwp_run(tmp_path, "2020-06-01T00")
    cat = workbench.open_catalog()
    ds = cat["wb2_forecast"](url=str(tmp_path / "hres.zarr"), variables=["t2m"], lead_hours=6).read()
    assert ds.sizes["lead_time"] == 2 and "valid_time" in ds.coords
    ds = cat["aiwp_forecast"](files=str(tmp_path / "FOUR_*.nc"), start="2020-06-01", end="2020-06-01").read()
    assert ds["t2m"].dims == ("init_time", "lead_time", "latitude", "longitude")
    with pytest.raises(DataError, match="needs url="):
        cat["wb2_forecast"]().read()
    with pytest.raises(DataError, match="none between"):
        cat["aiwp_forecast"](files=str(tmp_path / "FOUR_*.nc"), start="2023-07-01").read()
