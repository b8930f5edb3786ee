"""ERA5 reader on small stores written in the real WeatherBench 2 and ARCO-ERA5 layouts."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench.errors import DataError
from workbench.sources.era5 import ARCO_ERA5_URL, WB2_ERA5_URLS, era5_url, open_era5

LEVELS = [500, 850]


def wb2_store(path, *, lon_first: bool = False) -> xr.Dataset:
    """A 5.625-degree WeatherBench 2 store: 6-hourly, latitude ascending, ERA5 long names and units."""
    times = pd.date_range("2020-06-01", periods=8, freq="6h")
    lat = -87.1875 + 5.625 * np.arange(32)
    lon = 5.625 * np.arange(64)
    rng = np.random.default_rng(0)
    shape = (times.size, lat.size, lon.size)
    lshape = (times.size, len(LEVELS), lat.size, lon.size)

    def surface(base, scale):
        return (("time", "latitude", "longitude"), (base + scale * rng.standard_normal(shape)).astype("f4"))

    def upper(base, scale):
        return (
            ("time", "level", "latitude", "longitude"),
            (base + scale * rng.standard_normal(lshape)).astype("f4"),
        )

    ds = xr.Dataset(
        {
            "2m_temperature": surface(288.0, 5.0),
            "10m_u_component_of_wind": surface(0.0, 5.0),
            "10m_v_component_of_wind": surface(0.0, 5.0),
            "mean_sea_level_pressure": surface(101325.0, 800.0),
            "total_precipitation_6hr": (
                ("time", "latitude", "longitude"),
                rng.gamma(0.5, 0.002, shape).astype("f4"),
            ),
            "geopotential": upper(50000.0, 500.0),
            "temperature": upper(260.0, 5.0),
            "u_component_of_wind": upper(5.0, 5.0),
            "v_component_of_wind": upper(0.0, 5.0),
        },
        coords={
            "time": times,
            "level": ("level", np.array(LEVELS, dtype="i8")),
            "latitude": lat,
            "longitude": lon,
        },
    )
    units = {
        "2m_temperature": "K",
        "10m_u_component_of_wind": "m s**-1",
        "10m_v_component_of_wind": "m s**-1",
        "mean_sea_level_pressure": "Pa",
        "total_precipitation_6hr": "m",
        "geopotential": "m**2 s**-2",
        "temperature": "K",
        "u_component_of_wind": "m s**-1",
        "v_component_of_wind": "m s**-1",
    }
    for name, u in units.items():
        ds[name].attrs["units"] = u
    if lon_first:  # some WB2 stores order the horizontal dims (longitude, latitude)
        ds = ds.transpose("time", "level", "longitude", "latitude")
    ds.to_zarr(path, mode="w", zarr_format=2, consolidated=True)  # WB2 stores are consolidated zarr v2
    return ds


def test_wb2_store_gives_canonical_names_units_and_dims(tmp_path):
    raw = wb2_store(tmp_path / "era5.zarr")
    ds = open_era5(
        tmp_path / "era5.zarr",
        variables=["t2m", "z500", "t850", "u850", "msl", "tp"],
        start="2020-06-01T06",
        end="2020-06-02T00",
    )
    assert list(ds.data_vars) == ["t2m", "z500", "t850", "u850", "msl", "tp"]
    assert ds["t2m"].dims == ("time", "latitude", "longitude")
    assert ds.sizes == {"time": 4, "latitude": 32, "longitude": 64}
    assert ds.time.values[0] == np.datetime64("2020-06-01T06")
    assert ds["z500"].chunks is not None  # lazy
    sel = {"time": slice("2020-06-01T06", "2020-06-02T00")}
    np.testing.assert_array_equal(ds["t2m"].values, raw["2m_temperature"].sel(sel).values)
    np.testing.assert_array_equal(ds["z500"].values, raw["geopotential"].sel(level=500, **sel).values)
    np.testing.assert_array_equal(ds["t850"].values, raw["temperature"].sel(level=850, **sel).values)
    np.testing.assert_array_equal(ds["tp"].values, raw["total_precipitation_6hr"].sel(sel).values)
    assert {v: ds[v].attrs["units"] for v in ds.data_vars} == {
        "t2m": "K",
        "z500": "m2 s-2",
        "t850": "K",
        "u850": "m s-1",
        "msl": "Pa",
        "tp": "m",
    }
    assert "level" not in ds.coords


def test_default_variables_are_the_sample_set_the_store_has(tmp_path):
    wb2_store(tmp_path / "era5.zarr")
    ds = open_era5(tmp_path / "era5.zarr")
    assert list(ds.data_vars) == ["t2m", "u10m", "v10m", "msl", "tp", "z500", "t850", "u850", "v850"]


def test_longitude_first_store_is_transposed(tmp_path):
    raw = wb2_store(tmp_path / "era5.zarr", lon_first=True)
    ds = open_era5(tmp_path / "era5.zarr", variables="t2m,v850")
    assert ds["v850"].dims == ("time", "latitude", "longitude")
    np.testing.assert_array_equal(
        ds["v850"].values,
        raw["v_component_of_wind"].sel(level=850).transpose("time", "latitude", "longitude").values,
    )


def test_arco_layout_hourly_descending_latitude_summed_to_six_hours(tmp_path):
    times = pd.date_range("2020-06-01", periods=13, freq="h")
    lat = np.array([90.0, 45.0, 0.0, -45.0, -90.0])  # ARCO-ERA5 runs north to south
    lon = np.array([0.0, 90.0, 180.0, 270.0])
    tp = np.arange(times.size, dtype="f4")[:, None, None] * 1e-4 + np.zeros((1, lat.size, lon.size), "f4")
    t2m = 280.0 + np.arange(lat.size, dtype="f4")[None, :, None] + np.zeros((times.size, 1, lon.size), "f4")
    raw = xr.Dataset(
        {
            "total_precipitation": (("time", "latitude", "longitude"), tp, {"units": "m"}),
            "2m_temperature": (("time", "latitude", "longitude"), t2m, {"units": "K"}),
        },
        coords={"time": times, "latitude": lat, "longitude": lon},
    )
    raw.to_zarr(tmp_path / "arco.zarr", zarr_format=3, consolidated=False)  # ARCO's "zarr-v3" store
    ds = open_era5(tmp_path / "arco.zarr", variables=["t2m", "tp"], start="2020-06-01T06", step_hours=6)
    assert list(ds.time.values) == list(pd.to_datetime(["2020-06-01T06", "2020-06-01T12"]).values)
    np.testing.assert_array_equal(ds.latitude.values, lat[::-1])
    # tp at 06 UTC: the hourly accumulations ending at 01..06 UTC; at 12 UTC those ending 07..12 UTC.
    np.testing.assert_allclose(ds["tp"].isel(latitude=0, longitude=0).values, [21e-4, 57e-4], rtol=1e-5)
    # latitude flipped together with the data: the southernmost row carries 284 K
    assert float(ds["t2m"].isel(time=0, latitude=0, longitude=0)) == 284.0


def test_negative_longitudes_are_wrapped_to_0_360(tmp_path):
    raw = xr.Dataset(
        {
            "2m_temperature": (
                ("time", "latitude", "longitude"),
                np.arange(8, dtype="f4").reshape(2, 1, 4),
                {"units": "K"},
            )
        },
        coords={
            "time": pd.date_range("2020-06-01", periods=2, freq="6h"),
            "latitude": [0.0],
            "longitude": [-180.0, -90.0, 0.0, 90.0],
        },
    )
    ds = open_era5(raw, variables=["t2m"])
    np.testing.assert_array_equal(ds.longitude.values, [0.0, 90.0, 180.0, 270.0])
    np.testing.assert_array_equal(ds["t2m"].isel(time=0, latitude=0).values, [2.0, 3.0, 0.0, 1.0])


def test_missing_variable_names_what_is_available(tmp_path):
    wb2_store(tmp_path / "era5.zarr")
    with pytest.raises(DataError) as err:
        open_era5(tmp_path / "era5.zarr", variables=["t2m", "z300", "refc"])
    message = str(err.value)
    assert "['z300', 'refc']" in message
    assert "t2m" in message and "z<level> for levels [500, 850]" in message


def test_levels_without_canonical_names_are_left_out():
    raw = xr.Dataset(
        {
            "temperature": (
                ("time", "level", "latitude", "longitude"),
                np.zeros((1, 3, 1, 2), "f4"),
                {"units": "K"},
            )
        },
        coords={
            "time": [np.datetime64("2020-06-01")],
            "level": [1, 50, 850],
            "latitude": [0.0],
            "longitude": [0.0, 180.0],
        },
    )
    with pytest.raises(DataError, match=r"t<level> for levels \[50, 850\]"):
        open_era5(raw, variables=["t1"])
    assert list(open_era5(raw, variables=["t50"]).data_vars) == ["t50"]


def test_empty_time_range_and_bad_step_are_errors(tmp_path):
    wb2_store(tmp_path / "era5.zarr")
    with pytest.raises(DataError, match="No ERA5 times"):
        open_era5(tmp_path / "era5.zarr", start="2021-01-01", end="2021-01-02")
    with pytest.raises(DataError, match="not a multiple"):
        open_era5(tmp_path / "era5.zarr", step_hours=4)


def test_public_store_urls():
    assert era5_url("5.625").endswith("64x32_equiangular_conservative.zarr")
    assert era5_url(5.625) == WB2_ERA5_URLS["5.625"]
    assert era5_url("arco") == ARCO_ERA5_URL
    with pytest.raises(DataError, match="5.625"):
        era5_url("7")


def test_remote_store_fails_fast_without_network_or_package(monkeypatch):
    start = time.monotonic()
    with pytest.raises(DataError) as err:
        open_era5(resolution="5.625", variables=["t2m"])
    assert time.monotonic() - start < 5
    # gcsfs is not a dependency: either it is missing (named) or the host is unreachable here.
    assert "gcsfs" in str(err.value) or "cannot be reached" in str(err.value)


# ---------------------------------------------------------------------------------------------------
# Files from the Copernicus data store: netCDF (current layout) and GRIB
# ---------------------------------------------------------------------------------------------------

CDS_LAT = np.array([90.0, 60.0, 30.0, 0.0, -30.0, -60.0, -90.0])  # descending, with the poles
CDS_LON = np.arange(-180.0, 180.0, 60.0)  # the data store's netCDF runs from -180


def cds_netcdf(path, *, expver_dim: bool = False) -> dict:
    """An ERA5 netCDF in the data store's layout since 2024: ``valid_time``, ``pressure_level``,
    a scalar ``number`` and ``expver`` along ``valid_time``; ECMWF short names and units."""
    times = pd.date_range("2020-06-01", periods=6, freq="h")
    rng = np.random.default_rng(1)
    shape = (times.size, CDS_LAT.size, CDS_LON.size)
    values = {
        "t2m": 288.0 + rng.standard_normal(shape),
        "u10": rng.standard_normal(shape),
        "tp": rng.gamma(0.5, 0.001, shape),
        "z_sfc": 100.0 * rng.random(shape),
        "z": 50000.0 + rng.standard_normal((times.size, 2, CDS_LAT.size, CDS_LON.size)),
    }
    ds = xr.Dataset(
        {
            "t2m": (("valid_time", "latitude", "longitude"), values["t2m"].astype("f4"), {"units": "K"}),
            "u10": (
                ("valid_time", "latitude", "longitude"),
                values["u10"].astype("f4"),
                {"units": "m s**-1"},
            ),
            "tp": (("valid_time", "latitude", "longitude"), values["tp"].astype("f4"), {"units": "m"}),
            "z": (
                ("valid_time", "pressure_level", "latitude", "longitude"),
                values["z"].astype("f4"),
                {"units": "m**2 s**-2"},
            ),
        },
        coords={
            "number": 0,
            "valid_time": times,
            "pressure_level": ("pressure_level", np.array([850.0, 500.0])),
            "latitude": CDS_LAT,
            "longitude": CDS_LON,
            "expver": ("valid_time", np.array(["0001"] * 3 + ["0005"] * 3)),
        },
    )
    if expver_dim:  # the older layout: an expver dimension when a request spans ERA5 and ERA5T
        base = ds.drop_vars("expver")
        era5 = base.where(base.valid_time < times[3])
        era5t = base.where(base.valid_time >= times[3])
        ds = xr.concat([era5, era5t], dim=pd.Index([1, 5], name="expver")).rename(valid_time="time")
    ds.to_netcdf(path)
    return values


def test_cds_netcdf_current_layout(tmp_path):
    values = cds_netcdf(tmp_path / "era5.nc")
    ds = open_era5(tmp_path / "era5.nc", variables=["2t", "10u", "tp", "z"])
    assert list(ds.data_vars) == ["t2m", "u10m", "tp", "z850", "z500"]
    assert ds["t2m"].dims == ("time", "latitude", "longitude")
    assert ds.sizes["time"] == 6
    np.testing.assert_array_equal(ds.latitude.values, CDS_LAT[::-1])
    np.testing.assert_array_equal(ds.longitude.values, [0, 60, 120, 180, 240, 300])
    # (lat 90 -> last row, lon -180 -> 180) of the file is (last row, lon index 3) of the result
    assert float(ds["t2m"].isel(time=4, latitude=-1, longitude=3)) == pytest.approx(
        values["t2m"][4, 0, 0], rel=1e-6
    )
    assert float(ds["z500"].isel(time=0, latitude=3, longitude=0)) == pytest.approx(
        values["z"][0, 1, 3, 3], rel=1e-6
    )
    assert ds["tp"].attrs["units"] == "m" and ds["u10m"].attrs["units"] == "m s-1"
    np.testing.assert_allclose(
        ds["tp"].isel(latitude=0, longitude=3).values, values["tp"][:, -1, 0], rtol=1e-6
    )
    part = open_era5(tmp_path / "era5.nc", variables=["t2m"], start="2020-06-01T02", end="2020-06-01T03")
    assert part.sizes["time"] == 2


def test_cds_netcdf_older_expver_dimension_prefers_era5_then_era5t(tmp_path):
    values = cds_netcdf(tmp_path / "era5.nc", expver_dim=True)
    ds = open_era5(tmp_path / "era5.nc", variables=["t2m"])
    assert ds.sizes["time"] == 6 and not ds["t2m"].isnull().any()
    np.testing.assert_allclose(
        ds["t2m"].isel(latitude=-1, longitude=3).values, values["t2m"][:, 0, 0], rtol=1e-6
    )


def test_era5_short_names_and_unknown_names_list_what_is_valid(tmp_path):
    cds_netcdf(tmp_path / "era5.nc")
    with pytest.raises(
        DataError, match=r"\['cape'\].*available: t2m, u10m, tp, z<level> for levels \[500, 850\]"
    ):
        open_era5(tmp_path / "era5.nc", variables=["cape"])
    with pytest.raises(DataError, match="No ERA5 data at"):
        open_era5(tmp_path / "missing.nc")


def write_era5_grib(path) -> None:
    """An ERA5 GRIB file as the data store delivers it: ECMWF centre, regular lat-lon, 2t and z on levels."""
    eccodes = pytest.importorskip("eccodes")
    with open(path, "wb") as out:
        for hour in (0, 1):
            for short, sample, level, base in (
                ("2t", "regular_ll_sfc_grib2", 0, 280.0),
                ("z", "regular_ll_pl_grib2", 500, 5.0e4),
            ):
                h = eccodes.codes_grib_new_from_samples(sample)
                try:
                    for key, value in {
                        "centre": 98,
                        "Ni": CDS_LON.size,
                        "Nj": CDS_LAT.size,
                        "latitudeOfFirstGridPointInDegrees": 90.0,
                        "longitudeOfFirstGridPointInDegrees": 0.0,
                        "latitudeOfLastGridPointInDegrees": -90.0,
                        "longitudeOfLastGridPointInDegrees": 300.0,
                        "iDirectionIncrementInDegrees": 60.0,
                        "jDirectionIncrementInDegrees": 30.0,
                        "dataDate": 20200601,
                        "dataTime": hour * 100,
                        "shortName": short,
                    }.items():
                        eccodes.codes_set(h, key, value)
                    if level:
                        eccodes.codes_set(h, "level", level)
                    values = base + hour + np.arange(CDS_LAT.size * CDS_LON.size, dtype=np.float64)
                    eccodes.codes_set_values(h, values)
                    eccodes.codes_write(h, out)
                finally:
                    eccodes.codes_release(h)


def write_era5_grib_precipitation(path) -> None:
    """ERA5 ``tp`` as GRIB delivers it: 1-hour accumulations from the 18 UTC run of the day before."""
    eccodes = pytest.importorskip("eccodes")
    with open(path, "ab") as out:
        for end_step in (6, 7):  # valid 2020-06-01T00 and T01
            h = eccodes.codes_grib_new_from_samples("regular_ll_sfc_grib2")
            try:
                for key, value in {
                    "centre": 98,
                    "Ni": CDS_LON.size,
                    "Nj": CDS_LAT.size,
                    "latitudeOfFirstGridPointInDegrees": 90.0,
                    "longitudeOfFirstGridPointInDegrees": 0.0,
                    "latitudeOfLastGridPointInDegrees": -90.0,
                    "longitudeOfLastGridPointInDegrees": 300.0,
                    "iDirectionIncrementInDegrees": 60.0,
                    "jDirectionIncrementInDegrees": 30.0,
                    "dataDate": 20200531,
                    "dataTime": 1800,
                    "productDefinitionTemplateNumber": 8,
                }.items():
                    eccodes.codes_set(h, key, value)
                eccodes.codes_set(h, "shortName", "tp")
                eccodes.codes_set(h, "typeOfStatisticalProcessing", 1)
                eccodes.codes_set(h, "stepUnits", 1)
                eccodes.codes_set(h, "startStep", end_step - 1)
                eccodes.codes_set(h, "endStep", end_step)
                eccodes.codes_set_values(h, np.full(CDS_LAT.size * CDS_LON.size, 0.001 * end_step))
                eccodes.codes_write(h, out)
            finally:
                eccodes.codes_release(h)


def test_era5_grib_from_the_data_store(tmp_path):
    write_era5_grib(tmp_path / "era5.grib")
    write_era5_grib_precipitation(tmp_path / "era5.grib")
    tp = open_era5(tmp_path / "era5.grib", variables=["tp"])["tp"]
    assert list(tp.time.to_index()) == list(pd.to_datetime(["2020-06-01T00", "2020-06-01T01"]))
    np.testing.assert_allclose(tp.isel(latitude=0, longitude=0).values, [0.006, 0.007], rtol=1e-5)
    ds = open_era5(tmp_path / "era5.grib", variables=["2t", "z500"])
    assert list(ds.data_vars) == ["t2m", "z500"] and ds.sizes["time"] == 2
    # first GRIB point (90 N, 0 E) is the last latitude row after sorting south to north
    assert float(ds["t2m"].isel(time=1, latitude=-1, longitude=0)) == pytest.approx(281.0, abs=1e-2)
    assert float(ds["z500"].isel(time=0, latitude=-1, longitude=1)) == pytest.approx(50001.0, abs=1.0)
