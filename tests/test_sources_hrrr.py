"""HRRR readers on files the tests write in the real layouts: GRIB2 (written with eccodes) and the zarr archive."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench.errors import DataError, GridError
from workbench.grids import hrrr_grid
from workbench.lexicon import GRAVITY
from workbench.sources.hrrr import (
    hrrr_grib_url,
    hrrr_zarr_url,
    open_hrrr_grib,
    open_hrrr_zarr,
    rotate_to_earth,
)

eccodes = pytest.importorskip("eccodes")

GRID = hrrr_grid(3.0)
IY0, IX0, NY, NX = 400, 100, 5, 6  # a window in the west of the domain, where winds turn noticeably
INIT = pd.Timestamp("2020-06-01T12")
CONE = np.sin(np.deg2rad(38.5))


def window_lat_lon():
    return GRID.latitude[IY0 : IY0 + NY, IX0 : IX0 + NX], GRID.longitude[IY0 : IY0 + NY, IX0 : IX0 + NX]


def field(offset: float, scale: float = 1.0) -> np.ndarray:
    """A (NY, NX) field with distinct, exactly representable values."""
    return offset + scale * np.arange(NY * NX, dtype=np.float64).reshape(NY, NX)


# ---------------------------------------------------------------------------------------------------
# GRIB2
# ---------------------------------------------------------------------------------------------------

_LEVEL_TYPES = {
    "heightAboveGround": 103,
    "meanSea": 101,
    "surface": 1,
    "atmosphere": 10,
    "isobaricInhPa": 100,
}


def grib_message(out, short, level_type, level, values, lead, *, accumulation=None, lov=262.5):
    """One HRRR-like GRIB2 message: NCEP centre, HRRR Lambert projection, grid-relative winds."""
    lat, lon = window_lat_lon()
    h = eccodes.codes_grib_new_from_samples("GRIB2")
    try:
        settings = {
            "centre": 7,
            "gridType": "lambert",
            "Nx": NX,
            "Ny": NY,
            "shapeOfTheEarth": 6,  # sphere of radius 6371229 m, as HRRR
            "latitudeOfFirstGridPointInDegrees": float(lat[0, 0]),
            "longitudeOfFirstGridPointInDegrees": float(lon[0, 0]) % 360.0,
            "LaDInDegrees": 38.5,
            "LoVInDegrees": lov,
            "Latin1InDegrees": 38.5,
            "Latin2InDegrees": 38.5,
            "DxInMetres": 3000,
            "DyInMetres": 3000,
            "iScansNegatively": 0,
            "jScansPositively": 1,  # HRRR rows run south to north
            "resolutionAndComponentFlags": 8,  # u, v relative to the grid
            "dataDate": int(f"{INIT:%Y%m%d}"),
            "dataTime": int(f"{INIT:%H%M}"),
        }
        for key, value in settings.items():
            eccodes.codes_set(h, key, value)
        if accumulation is not None:
            eccodes.codes_set(h, "productDefinitionTemplateNumber", 8)
        eccodes.codes_set(h, "typeOfFirstFixedSurface", _LEVEL_TYPES[level_type])
        eccodes.codes_set(h, "shortName", short)
        eccodes.codes_set(h, "typeOfLevel", level_type)
        eccodes.codes_set(h, "level", level)
        if accumulation is not None:
            eccodes.codes_set(h, "typeOfStatisticalProcessing", 1)
            eccodes.codes_set(h, "stepUnits", 1)
            eccodes.codes_set(h, "startStep", accumulation[0])
            eccodes.codes_set(h, "endStep", accumulation[1])
        else:
            eccodes.codes_set(h, "forecastTime", lead)
        eccodes.codes_set(h, "bitsPerValue", 24)
        eccodes.codes_set_values(h, np.asarray(values, dtype=np.float64).ravel())
        eccodes.codes_write(h, out)
    finally:
        eccodes.codes_release(h)


def write_hrrr_grib(path, lead: int, *, lov: float = 262.5) -> None:
    """A small wrfsfcfFF.grib2: the messages the reader uses, as HRRR writes them."""
    with open(path, "wb") as out:
        grib_message(out, "2t", "heightAboveGround", 2, field(280.0) + lead, lead, lov=lov)
        grib_message(out, "10u", "heightAboveGround", 10, np.full((NY, NX), 10.0), lead, lov=lov)
        grib_message(out, "10v", "heightAboveGround", 10, np.zeros((NY, NX)), lead, lov=lov)
        grib_message(out, "mslma", "meanSea", 0, field(100000.0, 10.0), lead, lov=lov)
        grib_message(out, "refc", "atmosphere", 0, field(-10.0, 2.0), lead, lov=lov)
        grib_message(out, "gust", "surface", 0, field(5.0, 0.5), lead, lov=lov)
        grib_message(out, "gh", "isobaricInhPa", 500, field(5600.0), lead, lov=lov)
        grib_message(out, "t", "isobaricInhPa", 850, field(285.0), lead, lov=lov)
        grib_message(out, "u", "isobaricInhPa", 850, np.zeros((NY, NX)), lead, lov=lov)
        grib_message(out, "v", "isobaricInhPa", 850, np.full((NY, NX), 20.0), lead, lov=lov)
        if lead >= 1:
            # Run-total first, then the last hour, as in the real files (identical at f01).
            grib_message(out, "tp", "surface", 0, np.full((NY, NX), 3.0 * lead), lead, accumulation=(0, lead))
            if lead > 1:
                grib_message(out, "tp", "surface", 0, field(0.5, 0.25), lead, accumulation=(lead - 1, lead))


@pytest.fixture(scope="module")
def grib_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hrrr-grib")
    paths = {}
    for lead in (0, 1, 2):
        paths[lead] = folder / f"hrrr.t{INIT:%H}z.wrfsfcf{lead:02d}.grib2"
        write_hrrr_grib(paths[lead], lead)
    return paths


def expected_rotation():
    lat, lon = window_lat_lon()
    alpha = CONE * np.deg2rad(lon + 97.5)
    return np.cos(alpha), np.sin(alpha)


def test_grib_analysis_is_canonical_on_the_hrrr_grid(grib_files):
    ds = open_hrrr_grib(grib_files[0])
    assert ds.attrs["kind"] == "analysis"
    assert set(ds.data_vars) == {"t2m", "u10m", "v10m", "msl", "refc", "gust", "z500", "t850", "u850", "v850"}
    assert ds["t2m"].dims == ("time", "y", "x")
    assert ds.time.values.tolist() == [INIT.value]
    np.testing.assert_array_equal(ds.y.values, GRID.y[IY0 : IY0 + NY])
    np.testing.assert_array_equal(ds.x.values, GRID.x[IX0 : IX0 + NX])
    lat, lon = window_lat_lon()
    np.testing.assert_allclose(ds.latitude.values, lat, atol=1e-4)
    np.testing.assert_allclose(ds.longitude.values, lon, atol=1e-4)
    np.testing.assert_allclose(ds["t2m"].isel(time=0).values, field(280.0), atol=1e-3)
    np.testing.assert_allclose(ds["msl"].isel(time=0).values, field(100000.0, 10.0), atol=1e-2)
    np.testing.assert_allclose(ds["refc"].isel(time=0).values, field(-10.0, 2.0), atol=1e-3)
    # geopotential height (gpm) becomes geopotential: 5600 gpm -> 54917.24 m2 s-2
    np.testing.assert_allclose(ds["z500"].isel(time=0).values, field(5600.0) * GRAVITY, rtol=1e-6)
    assert float(ds["z500"].isel(time=0, y=0, x=0)) == pytest.approx(54917.24, abs=0.01)
    units = {v: ds[v].attrs["units"] for v in ds.data_vars}
    assert units["z500"] == "m2 s-2" and units["refc"] == "dBZ" and units["u10m"] == "m s-1"
    assert ds["t2m"].chunks is not None  # lazy


def test_grib_winds_are_rotated_from_grid_to_earth_relative(grib_files):
    ds = open_hrrr_grib(grib_files[0], variables=["u10m", "v850"])
    assert list(ds.data_vars) == ["u10m", "v850"]  # partners read for the rotation, then dropped
    cos, sin = expected_rotation()
    assert sin.max() < -0.2  # west of 97.5 W the grid's y axis points east of north
    # (u, v) = (10, 0) on the grid -> (10 cos a, -10 sin a) east/north
    np.testing.assert_allclose(ds["u10m"].isel(time=0).values, 10 * cos, rtol=1e-5)
    # (u, v) = (0, 20) on the grid -> v_north = 20 cos a
    np.testing.assert_allclose(ds["v850"].isel(time=0).values, 20 * cos, rtol=1e-5)
    full = open_hrrr_grib(grib_files[0], variables=["u10m", "v10m"])
    speed = np.hypot(full["u10m"], full["v10m"])
    np.testing.assert_allclose(speed.values, 10.0, rtol=1e-5)  # rotation keeps the speed
    np.testing.assert_allclose(full["v10m"].isel(time=0).values, -10 * sin, rtol=1e-5)


def test_grib_forecasts_take_the_last_hour_of_precipitation(grib_files):
    ds = open_hrrr_grib([grib_files[2], grib_files[1]], variables=["t2m", "tp"])
    assert ds.attrs["kind"] == "forecast"
    assert ds["tp"].dims == ("init_time", "lead_time", "y", "x")
    assert ds.lead_time.values.tolist() == [pd.Timedelta(hours=1).value, pd.Timedelta(hours=2).value]
    assert ds.valid_time.values[0, 1] == np.datetime64("2020-06-01T14:00")
    # f01: the 0-1 h accumulation, 3 kg m-2 = 3 mm = 0.003 m; f02: the 1-2 h message, not the 0-2 h total
    np.testing.assert_allclose(ds["tp"].isel(init_time=0, lead_time=0).values, 0.003, rtol=1e-5)
    np.testing.assert_allclose(
        ds["tp"].isel(init_time=0, lead_time=1).values, field(0.5, 0.25) / 1000, rtol=1e-5
    )
    assert ds["tp"].attrs["units"] == "m"
    np.testing.assert_allclose(ds["t2m"].isel(init_time=0, lead_time=1).values, field(282.0), atol=1e-3)


def test_grib_analysis_has_no_precipitation(grib_files):
    with pytest.raises(DataError, match="f01"):
        open_hrrr_grib(grib_files[0], variables=["t2m", "tp"])


def test_grib_on_another_projection_is_refused(tmp_path):
    path = tmp_path / "other.grib2"
    write_hrrr_grib(path, 0, lov=265.0)
    with pytest.raises(GridError, match="262.5"):
        open_hrrr_grib(path, variables=["t2m"])


def test_grib_missing_files_and_unknown_variables(tmp_path, grib_files):
    with pytest.raises(DataError, match="No GRIB2 file"):
        open_hrrr_grib(tmp_path / "missing.grib2")
    with pytest.raises(DataError, match="No GRIB2 files match"):
        open_hrrr_grib(str(tmp_path / "*.grib2"))
    with pytest.raises(DataError, match="available"):
        open_hrrr_grib(grib_files[0], variables=["t2m", "cape"])


def test_rotation_by_hand():
    lat, lon = window_lat_lon()
    u = xr.DataArray(np.ones((NY, NX)), dims=("y", "x"), coords={"longitude": (("y", "x"), lon)})
    v = xr.zeros_like(u)
    ue, vn = rotate_to_earth(u, v, GRID)
    a = 0.6225146366376195 * np.deg2rad(lon + 97.5)  # sin(38.5 deg) = 0.62251...
    np.testing.assert_allclose(ue.values, np.cos(a))
    np.testing.assert_allclose(vn.values, -np.sin(a))


def test_public_urls():
    assert hrrr_grib_url("2020-06-01T12", 3).endswith("hrrr.20200601/conus/hrrr.t12z.wrfsfcf03.grib2")
    assert hrrr_zarr_url("2020-06-01T05", "fcst") == "s3://hrrrzarr/sfc/20200601/20200601_05z_fcst.zarr"


# ---------------------------------------------------------------------------------------------------
# The HRRR zarr archive
# ---------------------------------------------------------------------------------------------------

ZARR_FIELDS = {  # group path -> (analysis value, dtype as in the archive)
    "2m_above_ground/TMP": (290.5, "f2"),
    "10m_above_ground/UGRD": (10.0, "f2"),
    "10m_above_ground/VGRD": (0.0, "f2"),
    "500mb/HGT": (5600.0, "f2"),
    "entire_atmosphere/REFC": (35.5, "f2"),
}


def write_zarr_field(store, path, values, *, run: pd.Timestamp, kind: str):
    """Write one field in the archive's nested layout: coordinates in <level>/<VAR>, data in <level>/<VAR>/<level>."""
    level, var = path.split("/")
    x = GRID.x[IX0 : IX0 + NX]
    y = GRID.y[IY0 : IY0 + NY]
    if kind == "anl":
        coords = xr.Dataset(
            coords={
                "projection_x_coordinate": ("projection_x_coordinate", x),
                "projection_y_coordinate": ("projection_y_coordinate", y),
                "time": run,
                "forecast_period": pd.Timedelta(0),
                "forecast_reference_time": run,
            }
        )
        data = xr.Dataset({var: (("projection_y_coordinate", "projection_x_coordinate"), values)})
    else:
        n = values.shape[0]
        leads = pd.to_timedelta(np.arange(1, n + 1), unit="h")
        coords = xr.Dataset(
            coords={
                "projection_x_coordinate": ("projection_x_coordinate", x),
                "projection_y_coordinate": ("projection_y_coordinate", y),
                "time": ("time", run + leads),
                "forecast_period": ("time", leads),
                "forecast_reference_time": run,
            }
        )
        data = xr.Dataset({var: (("time", "projection_y_coordinate", "projection_x_coordinate"), values)})
    coords.to_zarr(store, group=path, mode="a", zarr_format=2, consolidated=False)
    data.to_zarr(store, group=f"{path}/{level}", mode="a", zarr_format=2, consolidated=False)


@pytest.fixture(scope="module")
def zarr_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("hrrrzarr")
    for hour in (0, 1):
        run = pd.Timestamp("2020-06-01") + pd.Timedelta(hours=hour)
        store = hrrr_zarr_url(run, "anl", root)
        for path, (value, dtype) in ZARR_FIELDS.items():
            write_zarr_field(
                store, path, np.full((NY, NX), value + 4 * hour, dtype=dtype), run=run, kind="anl"
            )
    # float16, as in the archive: whole numbers up to 2048 and multiples of 4 up to 8192 are exact.
    # Forecast runs: the 23z run gives the 00z analysis hour its precipitation, 00z the 01z hour.
    for run in (pd.Timestamp("2020-05-31T23"), pd.Timestamp("2020-06-01T00")):
        store = hrrr_zarr_url(run, "fcst", root)
        apcp = np.stack([np.full((NY, NX), 1.5 * (k + 1) + run.hour / 23, dtype="f2") for k in range(3)])
        write_zarr_field(store, "surface/APCP_1hr_acc_fcst", apcp, run=run, kind="fcst")
        series = np.stack([np.full((NY, NX), 290.5 + k + 1, dtype="f2") for k in range(3)])
        write_zarr_field(store, "2m_above_ground/TMP", series, run=run, kind="fcst")
    return root


def test_zarr_analyses(zarr_root):
    ds = open_hrrr_zarr(
        "2020-06-01T00", "2020-06-01T01", variables=["t2m", "z500", "tp", "u10m", "refc"], root=zarr_root
    )
    assert list(ds.data_vars) == ["t2m", "z500", "tp", "u10m", "refc"]
    assert ds["t2m"].dims == ("time", "y", "x")
    assert ds.sizes == {"time": 2, "y": NY, "x": NX}
    np.testing.assert_array_equal(ds.x.values, GRID.x[IX0 : IX0 + NX])
    lat, _ = window_lat_lon()
    np.testing.assert_allclose(ds.latitude.values, lat, atol=1e-4)
    np.testing.assert_array_equal(ds["t2m"].values[:, 0, 0], [290.5, 294.5])
    assert ds["t2m"].dtype == np.float32  # float16 in the archive
    np.testing.assert_allclose(ds["z500"].values[:, 0, 0], np.array([5600.0, 5604.0]) * GRAVITY, rtol=1e-6)
    # tp at 00z = first hour of the 23z run (1.5 + 1 kg m-2); at 01z = first hour of the 00z run (1.5)
    np.testing.assert_allclose(ds["tp"].values[:, 0, 0], np.array([2.5, 1.5]) / 1000, rtol=1e-3)
    cos, _sin = expected_rotation()
    np.testing.assert_allclose(ds["u10m"].values[0], 10 * cos, rtol=1e-5)
    assert ds["refc"].attrs["units"] == "dBZ" and ds["tp"].attrs["units"] == "m"


def test_zarr_forecasts(zarr_root):
    ds = open_hrrr_zarr("2020-06-01T00", variables=["t2m", "tp"], kind="fcst", root=zarr_root, lead_hours=2)
    assert ds["t2m"].dims == ("init_time", "lead_time", "y", "x")
    assert ds.lead_time.values.tolist() == [pd.Timedelta(hours=h).value for h in (1, 2)]
    assert ds.valid_time.values[0, 1] == np.datetime64("2020-06-01T02:00")
    np.testing.assert_array_equal(ds["t2m"].values[0, :, 0, 0], [291.5, 292.5])
    np.testing.assert_allclose(ds["tp"].values[0, :, 0, 0], [0.0015, 0.003], rtol=1e-3)


def test_zarr_missing_run_names_the_store(zarr_root):
    with pytest.raises(DataError, match="20200602_00z_anl.zarr"):
        open_hrrr_zarr("2020-06-02T00", variables=["t2m"], root=zarr_root)
    with pytest.raises(DataError, match="available"):
        open_hrrr_zarr("2020-06-01T00", variables=["t2m", "cape"], root=zarr_root)


def test_zarr_archive_offline_is_fast():
    import time

    start = time.monotonic()
    with pytest.raises(DataError, match="s3fs|cannot be reached"):
        open_hrrr_zarr("2020-06-01T00", variables=["t2m"])
    assert time.monotonic() - start < 5


# ---------------------------------------------------------------------------------------------------
# Byte-range subsets: lone wind components, files holding different variables, catalog parameters
# ---------------------------------------------------------------------------------------------------


def write_subset(path, messages, lead: int = 0) -> None:
    """A GRIB2 subset of a wrfsfcfFF file: only ``messages`` ((short, level type, level, values) each)."""
    with open(path, "wb") as out:
        for short, level_type, level, values in messages:
            grib_message(out, short, level_type, level, values, lead)


U_ONLY = [("10u", "heightAboveGround", 10, np.full((NY, NX), 10.0))]
V_ONLY = [("10v", "heightAboveGround", 10, np.zeros((NY, NX)))]
T_ONLY = [("2t", "heightAboveGround", 2, field(280.0))]


def test_a_lone_grid_relative_component_is_refused(tmp_path):
    path = tmp_path / "u_only.grib2"
    write_subset(path, U_ONLY)
    with pytest.raises(DataError, match="without 'v10m'.*rotate"):
        open_hrrr_grib(path, variables=["u10m"])
    # By default the lone component is left out rather than returned unrotated as eastward wind.
    write_subset(tmp_path / "u_and_t.grib2", U_ONLY + T_ONLY)
    ds = open_hrrr_grib(tmp_path / "u_and_t.grib2")
    assert list(ds.data_vars) == ["t2m"]


def test_a_lone_component_is_rotated_with_its_partner_from_another_file(tmp_path):
    write_subset(tmp_path / "u.grib2", U_ONLY)
    write_subset(tmp_path / "v.grib2", V_ONLY)
    ds = open_hrrr_grib([tmp_path / "u.grib2", tmp_path / "v.grib2"], variables=["u10m"])
    cos, _sin = expected_rotation()
    # Grid (10, 0) is (10 cos a, -10 sin a) east/north: 9.62 here, 0.38 m s-1 off the unrotated 10.
    assert list(ds.data_vars) == ["u10m"]
    np.testing.assert_allclose(ds["u10m"].isel(time=0).values, 10 * cos, rtol=1e-5)
    assert np.abs(ds["u10m"].values - 10.0).min() > 0.37


def test_files_holding_different_variables_are_merged(tmp_path):
    write_subset(tmp_path / "t.grib2", T_ONLY)
    write_subset(tmp_path / "refc.grib2", [("refc", "atmosphere", 0, field(-10.0, 2.0))])
    ds = open_hrrr_grib(str(tmp_path / "*.grib2"))
    assert set(ds.data_vars) == {"t2m", "refc"}
    assert ds.sizes["time"] == 1
    np.testing.assert_allclose(ds["refc"].isel(time=0).values, field(-10.0, 2.0), atol=1e-3)
    np.testing.assert_allclose(ds["t2m"].isel(time=0).values, field(280.0), atol=1e-3)


def test_files_without_a_common_variable_are_an_error_not_an_empty_dataset(tmp_path):
    write_subset(tmp_path / "t_f00.grib2", T_ONLY, lead=0)
    write_subset(tmp_path / "refc_f01.grib2", [("refc", "atmosphere", 0, field(-10.0, 2.0))], lead=1)
    with pytest.raises(DataError, match="held at every time.*t2m.*refc"):
        open_hrrr_grib(str(tmp_path / "*.grib2"), kind="forecast")
    with pytest.raises(DataError, match=r"no message for \['refc'\]"):
        open_hrrr_grib(str(tmp_path / "*.grib2"), kind="forecast", variables=["t2m", "refc"])


def test_ecmwf_short_names_are_accepted_and_errors_list_valid_names(grib_files):
    ds = open_hrrr_grib(grib_files[0], variables=["2t", "msl"])
    assert list(ds.data_vars) == ["t2m", "msl"]
    with pytest.raises(DataError, match=r"available: t2m, d2m.*z<level> for levels.*ECMWF short names"):
        open_hrrr_grib(grib_files[0], variables=["cape"])


def test_grib_honours_start_end_and_lead_hours(grib_files):
    files = [grib_files[1], grib_files[2]]
    ds = open_hrrr_grib(files, kind="forecast", variables=["t2m"], lead_hours=1)
    assert ds.lead_time.values.tolist() == [pd.Timedelta(hours=1).value]
    with pytest.raises(DataError, match=r"2020-06-01 12:00:00.*none between 2023-07-01"):
        open_hrrr_grib(files, kind="forecast", variables=["t2m"], start="2023-07-01", end="2023-07-31")
    with pytest.raises(DataError, match="none up to lead_hours=0"):
        open_hrrr_grib(files, kind="forecast", variables=["t2m"], lead_hours=0)
    ds = open_hrrr_grib(grib_files[0], start="2020-06-01T12", end="2020-06-01T12", variables=["t2m"])
    assert ds.sizes["time"] == 1


def test_catalog_grib_entry_honours_every_parameter(grib_files):
    import workbench

    cat = workbench.open_catalog()
    files = f"{grib_files[1]},{grib_files[2]}"
    src = cat["hrrr_forecast"](
        format="grib", files=files, start="2020-06-01T12", end="2020-06-01T12", lead_hours=1, variables=["2t"]
    )
    ds = src.read()
    assert list(ds.data_vars) == ["t2m"]
    assert ds.lead_time.values.tolist() == [pd.Timedelta(hours=1).value]
    # The catalog's default dates (June 2020) match these files; another month is refused, not ignored.
    with pytest.raises(DataError, match="none between"):
        cat["hrrr_forecast"](format="grib", files=files, start="2023-07-01", end="2023-07-02").read()
    with pytest.raises(DataError, match="none between"):
        cat["hrrr"](format="grib", files=str(grib_files[0]), start="2020-06-02", end="2020-06-02").read()
    # a parameter of the other format is refused, not ignored
    with pytest.raises(DataError, match="root= is the zarr archive's"):
        cat["hrrr"](format="grib", files=str(grib_files[0]), root="/data/hrrrzarr").read()
    with pytest.raises(DataError, match="files= is for format='grib'"):
        cat["hrrr"](files=str(grib_files[0])).read()
