"""The Intake catalog: entries, parameters, canonical outputs, errors, and the path gate for apps."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import workbench
from workbench.catalog import default_catalog_path, open_catalog, resolve_path
from workbench.errors import CatalogError, DataError

ENTRIES = {
    "sample_hrrr",
    "sample_era5",
    "sample_reports",
    "sample_nwp",
    "sample_analysis",
    "era5",
    "hrrr",
    "hrrr_forecast",
    "wb2_forecast",
    "aiwp_forecast",
    "hrrr_herbie",
    "earth2_data",
    "storm_events",
    "spc_reports",
    "forecasts",
}
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cat():
    return open_catalog()


def test_catalog_lists_the_entries(cat):
    assert set(workbench.open_catalog()) == ENTRIES
    assert set(cat) == ENTRIES
    for name in ENTRIES:
        assert cat[name].description


def test_repository_catalog_is_the_packaged_one():
    assert (REPO / "catalogs" / "workbench.yaml").resolve() == default_catalog_path().resolve()
    assert set(open_catalog(REPO / "catalogs" / "workbench.yaml")) == ENTRIES


def test_entries_declare_user_parameters(cat):
    params = {p["name"]: p for p in cat["era5"].describe()["user_parameters"]}
    assert {"resolution", "start", "end", "variables", "url", "step_hours"} <= set(params)
    assert params["resolution"]["allowed"] == ["5.625", "2.8125", "1.5", "0.25", "arco"]
    size = {p["name"]: p for p in cat["sample_hrrr"].describe()["user_parameters"]}["size"]
    assert size["default"] == "default" and size["allowed"] == ["tiny", "default", "full", "train", "validation"]
    assert {p["name"] for p in cat["storm_events"].describe()["user_parameters"]} == {"year", "path"}
    assert {p["name"] for p in cat["forecasts"].describe()["user_parameters"]} >= {"model"}
    with pytest.raises(ValueError, match="allowed"):
        cat["sample_hrrr"](size="huge")


def test_unknown_entry_names_the_nearest_and_all(cat):
    with pytest.raises(CatalogError) as err:
        cat["sample_hrr"]
    message = str(err.value)
    assert "'sample_hrr'" in message and "Did you mean 'sample_hrrr'?" in message
    assert all(name in message for name in ENTRIES)
    with pytest.raises(KeyError):  # a CatalogError is a KeyError, so generic handlers keep working
        cat["nothing_like_it"]
    with pytest.raises(AttributeError):
        cat.sample_hrr  # noqa: B018


def test_missing_catalog_file():
    with pytest.raises(CatalogError, match="No catalog file"):
        open_catalog("/nonexistent/catalog.yaml")


# ---------------------------------------------------------------------------------------------------
# Sample entries (the tiny sample, generated once per test session)
# ---------------------------------------------------------------------------------------------------

SAMPLE_VARIABLES = {"t2m", "u10m", "v10m", "msl", "tp", "refc", "gust", "z500", "t850", "u850", "v850"}


def test_sample_hrrr_entry(cat, tiny_sample):
    ds = cat.sample_hrrr(size="tiny").read()
    assert isinstance(ds, xr.Dataset)
    assert set(ds.data_vars) >= SAMPLE_VARIABLES
    assert ds["t2m"].dims == ("time", "y", "x")
    assert ds["latitude"].dims == ("y", "x")
    assert ds["t2m"].attrs["units"] == "K" and ds["z500"].attrs["units"] == "m2 s-2"
    assert ds["t2m"].chunks is not None  # lazy
    assert cat["sample_hrrr"](size="tiny").to_dask()["t2m"].shape == ds["t2m"].shape


def test_sample_era5_entry(cat, tiny_sample):
    ds = cat.sample_era5(size="tiny").read()
    assert {"t2m", "z500", "t850"} <= set(ds.data_vars)
    assert ds["t2m"].dims == ("time", "latitude", "longitude")
    assert ds.sizes["latitude"] == 32 and ds.sizes["longitude"] == 64
    assert np.all(np.diff(ds.latitude.values) > 0)
    assert pd.Timedelta(ds.time.values[1] - ds.time.values[0]) == pd.Timedelta(hours=6)


def test_sample_nwp_entry(cat, tiny_sample):
    ds = cat.sample_nwp(size="tiny").read()
    assert ds["t2m"].dims[:2] == ("init_time", "lead_time")
    assert ds["t2m"].dims[-2:] == ("y", "x")
    assert ds["valid_time"].dims == ("init_time", "lead_time")


def test_sample_analysis_entry(cat, tiny_sample):
    ds = cat.sample_analysis(size="tiny").read()
    nwp = cat.sample_nwp(size="tiny").read()
    assert ds["t2m"].dims == ("time", "y", "x")
    np.testing.assert_array_equal(ds.time.values, nwp.init_time.values)
    # the NWP's lead 0 is the analysis; the analysis is not the truth
    np.testing.assert_array_equal(ds.t2m.values, nwp.t2m.isel(lead_time=0).values)
    truth = cat.sample_hrrr(size="tiny").read().t2m.sel(time=ds.time).values
    err = float(np.sqrt(np.mean((ds.t2m.values - truth) ** 2)))
    assert err == pytest.approx(ds.attrs["analysis_error_rms"]["t2m"], rel=1e-3)


def test_sample_reports_entry(cat, tiny_sample):
    events = cat.sample_reports(size="tiny").read()
    assert isinstance(events, pd.DataFrame)
    assert {"EVENT_TYPE", "BEGIN_LAT", "EPISODE_ID", "begin_time", "end_time"} <= set(events.columns)
    assert events["begin_time"].dtype == "datetime64[ns]"
    spc = cat.sample_reports(size="tiny", table="spc").read()
    assert {"time", "event_type", "lat", "lon", "magnitude", "state", "source"} <= set(spc.columns)


def test_resolve_path_of_sample_entries(cat, tiny_sample):
    path = resolve_path("sample_hrrr", catalog=cat, size="tiny")
    assert path.exists()
    assert resolve_path(path, catalog=cat) == path  # a path inside the sample data is allowed


# ---------------------------------------------------------------------------------------------------
# Real-data entries on local files in the real layouts
# ---------------------------------------------------------------------------------------------------


def test_era5_entry_on_a_local_store(cat, tmp_path):
    from test_sources_era5 import wb2_store

    raw = wb2_store(tmp_path / "era5.zarr")
    ds = cat.era5(
        url=str(tmp_path / "era5.zarr"), variables=["t2m", "z500"], start="2020-06-01T06", end="2020-06-01T12"
    ).read()
    assert list(ds.data_vars) == ["t2m", "z500"]
    assert ds.sizes["time"] == 2
    np.testing.assert_array_equal(
        ds["z500"].values,
        raw["geopotential"].sel(level=500, time=slice("2020-06-01T06", "2020-06-01T12")).values,
    )


def test_hrrr_entries_on_local_files(cat, tmp_path):
    import test_sources_hrrr as h

    grib = tmp_path / "hrrr.t12z.wrfsfcf01.grib2"
    h.write_hrrr_grib(grib, 1)
    fcst = cat.hrrr_forecast(format="grib", files=str(grib), variables=["t2m", "tp"]).read()
    assert fcst["tp"].dims == ("init_time", "lead_time", "y", "x")
    np.testing.assert_allclose(fcst["tp"].values, 0.003, rtol=1e-5)
    run = pd.Timestamp("2020-06-01T00")
    store = h.hrrr_zarr_url(run, "anl", tmp_path / "archive")
    h.write_zarr_field(store, "2m_above_ground/TMP", np.full((h.NY, h.NX), 300.0, "f2"), run=run, kind="anl")
    anl = cat.hrrr(
        root=str(tmp_path / "archive"), start="2020-06-01T00", end="2020-06-01T00", variables=["t2m"]
    ).read()
    assert anl["t2m"].dims == ("time", "y", "x") and float(anl["t2m"].max()) == 300.0


def test_storm_events_and_spc_entries_on_local_files(cat, tmp_path):
    from test_sources_reports import HAIL, write_ncei

    path = write_ncei(tmp_path / "StormEvents_details-ftp_v1.0_d2020_c20240620.csv.gz")
    table = cat.storm_events(path=str(path)).read()
    assert table["begin_time"].iloc[0] == pd.Timestamp("2020-06-03T21:30")
    (tmp_path / "200603_rpts_hail.csv").write_text(HAIL)
    spc = cat.spc_reports(path=str(tmp_path)).read()
    assert spc["magnitude"].tolist() == [1.75]
    with pytest.raises(DataError, match="needs path"):
        cat.spc_reports().read()


def test_remote_entries_fail_fast_offline(cat, monkeypatch):
    monkeypatch.setenv("WORKBENCH_OFFLINE", "1")
    for name, params in [("era5", {}), ("hrrr", {}), ("storm_events", {"year": 2020})]:
        start = time.monotonic()
        with pytest.raises(DataError, match="WORKBENCH_OFFLINE"):
            cat[name](**params).read()
        assert time.monotonic() - start < 5, name


def test_remote_entry_without_the_filesystem_package_names_it(cat, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "gcsfs" else real(name, *a)
    )
    with pytest.raises(DataError, match="pip install gcsfs"):
        cat.era5().read()


def test_unreachable_host_fails_within_the_timeout(monkeypatch):
    """A resolver that never answers (offline, DNS hanging) still gives an error within seconds."""
    import socket
    import threading

    from workbench.sources import remote

    release = threading.Event()

    def hanging_resolver(*args, **kwargs):
        release.wait(30)
        raise socket.gaierror("resolver released by the test")

    monkeypatch.setattr(socket, "getaddrinfo", hanging_resolver)
    monkeypatch.setattr(remote, "_REACHABLE", set())
    start = time.monotonic()
    try:
        with pytest.raises(DataError, match="cannot be reached"):
            remote.check_remote("https://example.org/data.csv", needs_fsspec=False, timeout=1.0)
    finally:
        release.set()
    assert time.monotonic() - start < 5


# ---------------------------------------------------------------------------------------------------
# Forecast stores and the path gate
# ---------------------------------------------------------------------------------------------------


def write_forecast_store(path: Path, complete: bool = True) -> xr.Dataset:
    init = pd.to_datetime(["2020-06-01T00", "2020-06-01T12"])
    lead = pd.to_timedelta([0, 6, 12], unit="h")
    ds = xr.Dataset(
        {"t2m": (("init_time", "lead_time", "y", "x"), np.full((2, 3, 2, 2), 290.0, "f4"), {"units": "K"})},
        coords={"init_time": init, "lead_time": lead, "y": [0.0, 1.0], "x": [0.0, 1.0]},
    )
    ds = ds.assign_coords(valid_time=ds.init_time + ds.lead_time)
    ds.to_zarr(path, mode="w", zarr_format=2)
    if complete:
        (path / "_progress").mkdir()
        (path / "_progress" / "complete.json").write_text("{}")
    return ds


def test_forecasts_entry(cat, workbench_cache):
    folder = Path(workbench_cache) / "forecasts"
    folder.mkdir(exist_ok=True)
    write_forecast_store(folder / "toy.zarr")
    ds = cat.forecasts(model="toy").read()
    assert ds["t2m"].dims == ("init_time", "lead_time", "y", "x")
    assert float(ds["t2m"].mean()) == 290.0
    assert resolve_path("forecasts", catalog=cat, model="toy") == (folder / "toy.zarr").resolve()
    with pytest.raises(DataError, match="toy"):  # names the models that exist
        cat.forecasts(model="pangu").read()
    with pytest.raises(DataError, match="Invalid model name"):
        cat.forecasts(model="../sample").read()
    with pytest.raises(DataError, match="model="):
        cat.forecasts().read()
    write_forecast_store(folder / "partial.zarr", complete=False)
    with pytest.warns(UserWarning, match="not complete"):
        cat.forecasts(model="partial").read()
    with pytest.raises(DataError, match="not complete"):
        cat.forecasts(model="partial", require_complete=True).read()


def test_resolve_path_refuses_what_the_catalog_does_not_name(cat, workbench_cache, tmp_path):
    inside = Path(workbench_cache) / "forecasts" / "toy.zarr"
    assert resolve_path(inside, catalog=cat) == inside.resolve()
    for outside in [
        "/etc/passwd",
        tmp_path / "x.zarr",
        Path(workbench_cache) / "forecasts" / ".." / ".." / "x",
    ]:
        with pytest.raises(CatalogError, match="Refusing"):
            resolve_path(outside, catalog=cat)
    with pytest.raises(CatalogError, match="Refusing"):
        resolve_path("s3://somebody/else.zarr", catalog=cat)
    with pytest.raises(CatalogError, match="takes no parameters"):
        resolve_path("/etc/passwd", catalog=cat, model="x")
    assert resolve_path("era5", catalog=cat).startswith("gs://weatherbench2/")
