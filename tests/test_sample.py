"""Tests of the embedded sample atmosphere (tiny size)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench.errors import DataError
from workbench.lexicon import SAMPLE_VARIABLES, check_units
from workbench.sample import VERSION, ensure_sample, open_sample, sample_dir
from workbench.sample.reports import HAIL_DBZ, NCEI_COLUMNS, WIND_GUST_MS

VARS = set(SAMPLE_VARIABLES)


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(a, float) - np.asarray(b, float)) ** 2)))


@pytest.fixture(scope="module")
def hrrr(tiny_sample) -> xr.Dataset:
    return xr.open_zarr(tiny_sample.hrrr).load()


@pytest.fixture(scope="module")
def nwp(tiny_sample) -> xr.Dataset:
    return xr.open_zarr(tiny_sample.nwp).load()


def test_hrrr_like_analysis_layout(tiny_sample, hrrr):
    assert set(hrrr.data_vars) == VARS
    assert hrrr["t2m"].dims == ("time", "y", "x")
    assert hrrr.sizes["time"] == 96 and hrrr.sizes["y"] == 34 and hrrr.sizes["x"] == 57
    assert hrrr["latitude"].dims == ("y", "x") and hrrr["longitude"].dims == ("y", "x")
    assert hrrr["time"].values[0] == np.datetime64("2020-06-01T00")
    assert np.all(np.diff(hrrr["time"].values) == np.timedelta64(1, "h"))
    for name in VARS:
        assert hrrr[name].dtype == np.float32
        check_units(hrrr[name], name)
        assert np.isfinite(hrrr[name].values).all(), name
    # physically sensible ranges
    assert 260 < float(hrrr.t2m.mean()) < 310
    assert float(hrrr.msl.min()) > 95000 and float(hrrr.msl.max()) < 106000
    assert float(hrrr.tp.min()) >= 0 and float(hrrr.refc.min()) >= -10.0
    assert 5.2e4 < float(hrrr.z500.mean()) < 5.9e4  # about 5300-6000 gpm


def test_era5_like_analysis_layout(tiny_sample, hrrr):
    era5 = open_sample("era5", size="tiny")
    assert set(era5.data_vars) == VARS
    assert era5["t2m"].dims == ("time", "latitude", "longitude")
    assert era5.sizes["latitude"] == 32 and era5.sizes["longitude"] == 64
    assert np.all(np.diff(era5.latitude.values) > 0)
    assert np.all(np.diff(era5["time"].values) == np.timedelta64(6, "h"))
    for name in VARS:
        check_units(era5[name], name)
    # the global run shares the large-scale flow: its z500 matches the HRRR-like z500 over CONUS
    t = hrrr.time.values[12]
    g = era5.z500.sel(time=t)
    lat = hrrr.latitude.values.ravel()
    lon = hrrr.longitude.values.ravel() % 360
    gi = g.interp(latitude=xr.DataArray(lat), longitude=xr.DataArray(lon)).values
    hi = hrrr.z500.sel(time=t).values.ravel()
    assert np.corrcoef(gi, hi)[0, 1] > 0.9


def test_nwp_layout(tiny_sample, nwp):
    assert set(nwp.data_vars) == VARS
    assert nwp["t2m"].dims == ("init_time", "lead_time", "y", "x")
    assert nwp["lead_time"].dtype.kind == "m"
    assert list(nwp.lead_time.values.astype("timedelta64[h]").astype(int)) == list(range(49))
    assert np.all(np.diff(nwp.init_time.values) == np.timedelta64(12, "h"))
    expected = nwp.init_time.values[:, None] + nwp.lead_time.values[None, :]
    np.testing.assert_array_equal(nwp.valid_time.values, expected)
    for name in VARS:
        check_units(nwp[name], name)


def _persistence_rmse(truth: xr.DataArray, lag: int) -> float:
    v = truth.values
    return _rmse(v[lag:], v[:-lag])


@pytest.mark.parametrize("name", ["t2m", "z500"])
def test_persistence_error_grows_with_lead(hrrr, name):
    r1, r6, r24 = (_persistence_rmse(hrrr[name], lag) for lag in (1, 6, 24))
    assert r1 < r6 < r24, (r1, r6, r24)
    assert r24 > 1.5 * r1


def _nwp_vs_persistence(hrrr: xr.Dataset, nwp: xr.Dataset, name: str, lead_h: int) -> tuple[float, float]:
    lead = np.timedelta64(lead_h, "h")
    fc, pers, obs = [], [], []
    for init in nwp.init_time.values:
        valid = init + lead
        if valid > hrrr.time.values[-1]:
            continue
        fc.append(nwp[name].sel(init_time=init, lead_time=lead).values)
        pers.append(hrrr[name].sel(time=init).values)
        obs.append(hrrr[name].sel(time=valid).values)
    assert fc, "no verifiable forecasts"
    return _rmse(np.array(fc), np.array(obs)), _rmse(np.array(pers), np.array(obs))


@pytest.mark.parametrize("name", ["t2m", "z500", "msl"])
def test_nwp_beats_persistence_at_24h(hrrr, nwp, name):
    rmse_nwp, rmse_pers = _nwp_vs_persistence(hrrr, nwp, name, 24)
    assert rmse_nwp < 0.7 * rmse_pers, (rmse_nwp, rmse_pers)


@pytest.mark.parametrize("name", ["t2m", "z500"])
def test_nwp_error_grows_with_lead(hrrr, nwp, name):
    e = [_nwp_vs_persistence(hrrr, nwp, name, h)[0] for h in (1, 6, 24, 48)]
    # four initial times only: by 48 h the error is near saturation and may dip below the 24 h one
    assert e[0] < e[1] < e[2] and e[3] > e[1], e


def test_nwp_starts_close_to_the_analysis(hrrr, nwp):
    e0, pers1 = _nwp_vs_persistence(hrrr, nwp, "z500", 0)[0], _persistence_rmse(hrrr.z500, 1)
    assert e0 < pers1


def test_analysis_is_the_truth_plus_its_modelled_error(tiny_sample, hrrr, nwp):
    ana = open_sample("analysis", size="tiny", progress=False).load()
    assert set(ana.data_vars) == VARS and ana["t2m"].dims == ("time", "y", "x")
    np.testing.assert_array_equal(ana.time.values, nwp.init_time.values)
    # the NWP starts from exactly the stored analysis
    for name in VARS:
        np.testing.assert_array_equal(nwp[name].isel(lead_time=0).values, ana[name].values)
    truth = hrrr.sel(time=ana.time)
    rms = ana.attrs["analysis_error_rms"]
    for name in ("t2m", "t850", "z500", "u850"):
        measured = _rmse(ana[name], truth[name])
        assert measured == pytest.approx(rms[name], rel=1e-3, abs=1e-3)
        assert measured > 0, name  # an analysis is not the truth
    # the documented size of the error: 0.5 K of correlated 850 hPa temperature noise
    assert 0.3 < rms["t850"] < 0.8
    # and it is smaller than an hour's change of the truth
    assert rms["z500"] < _persistence_rmse(hrrr.z500, 1)


def test_periods_have_independent_seeds_and_years():
    from workbench.sample.params import SIZES, TEST_SIZES, TRAINING_SIZES, VALIDATION_SIZES

    train, val, test = SIZES[TRAINING_SIZES[0]], SIZES[VALIDATION_SIZES[0]], SIZES["default"]
    assert "default" in TEST_SIZES and not set(TRAINING_SIZES) & set(TEST_SIZES)
    assert len({train.seed, val.seed, test.seed}) == 3
    assert (train.period, val.period, test.period) == ("train", "validation", "test")
    # all on the default grid, in June, in different years: no hour of one lies near another's
    assert train.spacing_km == val.spacing_km == test.spacing_km == 24.0
    years = {int(str(s.start)[:4]) for s in (train, val, test)}
    assert len(years) == 3 and all(str(s.start)[5:10] == "06-01" for s in (train, val, test))


def test_another_seed_makes_other_weather(tiny_sample, hrrr, tmp_path):
    import dataclasses
    import shutil

    from workbench.sample.generate import generate
    from workbench.sample.params import TRAIN_SEED, TRAIN_START, size_spec

    (tmp_path / "sample").mkdir()
    for f in tiny_sample.root.parent.glob("*.npz"):
        shutil.copy(f, tmp_path / "sample" / f.name)
    spec = dataclasses.replace(size_spec("tiny"), hours=24, nwp_inits=1, seed=TRAIN_SEED, start=TRAIN_START)
    out = tmp_path / "sample" / "other"
    out.mkdir()
    generate(spec, out, progress=False)
    other = xr.open_zarr(out / "hrrr.zarr").load()
    assert other.time.values[0] == TRAIN_START
    assert other.attrs["seed"] == TRAIN_SEED and other.attrs["period"] == "test"
    # the same climate, other weather: z500 anomalies from the time mean do not match
    a = hrrr.z500.isel(time=slice(0, 24)).values
    b = other.z500.values
    corr = np.corrcoef((a - a.mean(0)).ravel(), (b - b.mean(0)).ravel())[0, 1]
    assert abs(corr) < 0.5, corr
    assert abs(float(a.mean()) - float(b.mean())) < 0.02 * float(a.mean())


def test_storms_favour_the_central_us_and_are_reported_from_near_towns(tiny_sample):
    events = open_sample("reports", size="tiny", progress=False)
    conv = events[events["CZ_TYPE"] == "C"]
    assert len(conv) > 20
    # the June convective maximum of the Plains and Midwest (version 2 had 10 of 3,384 there)
    assert (conv["CZ_TIMEZONE"] == "CST-6").mean() > 0.5
    # reports come from people, near towns: real BEGIN_RANGE is mostly 0-10 miles
    assert pd.to_numeric(conv["BEGIN_RANGE"]).median() <= 5


def test_sample_has_storms(hrrr):
    assert float(hrrr.refc.max()) > 55.0
    assert float(hrrr.gust.max()) > WIND_GUST_MS
    assert float(hrrr.tp.max()) > 0.01
    # storms move and die: the strongest echo is not in the same place every hour
    strongest = hrrr.refc.argmax(dim=("y", "x"))
    assert (
        len({(int(a), int(b)) for a, b in zip(strongest["y"].values, strongest["x"].values, strict=True)})
        > 20
    )


def test_storm_events_layout(tiny_sample):
    header = tiny_sample.storm_events.read_text().splitlines()[0].split(",")
    assert tuple(header) == NCEI_COLUMNS
    assert len(NCEI_COLUMNS) == 51
    ev = open_sample("reports", size="tiny")
    assert {"Thunderstorm Wind", "Hail"} <= set(ev.EVENT_TYPE)
    assert ev.EVENT_ID.is_unique
    assert set(ev.CZ_TIMEZONE) <= {"EST-5", "CST-6", "MST-7", "PST-8"}
    # real formats: HHMM integers and dd-MON-yy hh:mm:ss strings that agree with them
    first = ev.iloc[0]
    stamp = pd.to_datetime(first.BEGIN_DATE_TIME, format="%d-%b-%y %H:%M:%S")
    assert stamp.hour * 100 + stamp.minute == first.BEGIN_TIME
    assert stamp.year * 100 + stamp.month == first.BEGIN_YEARMONTH and stamp.day == first.BEGIN_DAY
    assert ev.STATE.str.isupper().all()
    conv = ev[ev.CZ_TYPE == "C"]
    assert conv.BEGIN_LAT.notna().all() and conv.BEGIN_RANGE.notna().all()
    # one storm system is one episode: episodes hold several reports
    assert conv.groupby("EPISODE_ID").size().max() > 1


def _utc(ev: pd.DataFrame) -> pd.Series:
    local = pd.to_datetime(ev.BEGIN_DATE_TIME, format="%d-%b-%y %H:%M:%S")
    offset = ev.CZ_TIMEZONE.str.split("-").str[1].astype(int)
    return local + pd.to_timedelta(offset, unit="h")


@pytest.mark.parametrize(("event_type", "field", "threshold"), [
    ("Thunderstorm Wind", "gust", WIND_GUST_MS),
    ("Hail", "refc", HAIL_DBZ),
])  # fmt: skip
def test_reports_lie_where_the_fields_were_extreme(tiny_sample, hrrr, event_type, field, threshold):
    from workbench.grids import hrrr_grid

    ev = open_sample("reports", size="tiny")
    ev = ev[ev["EVENT_TYPE"].eq(event_type)]
    assert len(ev) > 3
    grid = hrrr_grid(96.0)
    iy, ix = grid.nearest_index(ev.BEGIN_LAT.to_numpy(), ev.BEGIN_LON.to_numpy())
    hours = _utc(ev).dt.floor("h").to_numpy()
    values = hrrr[field].values
    times = hrrr.time.values
    for h, y, x in zip(hours, iy, ix, strict=True):
        k = int(np.searchsorted(times, h))
        assert times[k] == h
        window = values[k, max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2]
        assert window.max() >= threshold
    # but not every exceedance is reported
    exceed_hours = int((values.reshape(values.shape[0], -1).max(axis=1) >= threshold).sum())
    assert exceed_hours > 0


def test_spc_daily_files(tiny_sample):
    files = sorted(tiny_sample.spc_dir.glob("*.csv"))
    names = {f.name for f in files}
    assert {"200531_rpts_torn.csv", "200601_rpts_hail.csv", "200603_rpts_wind.csv"} <= names
    columns = {"torn": "F_Scale", "hail": "Size", "wind": "Speed"}
    n = 0
    for f in files:
        df = pd.read_csv(f, dtype={"Time": str})
        kind = f.stem.split("_")[-1]
        assert list(df.columns) == [
            "Time",
            columns[kind],
            "Location",
            "County",
            "State",
            "Lat",
            "Lon",
            "Comments",
        ]
        if df.empty:
            continue
        n += len(df)
        assert df.Time.str.fullmatch(r"\d{4}").all()
        # SPC day D runs 12 UTC on D to 12 UTC on D + 1
        day = pd.Timestamp("20" + f.name[:6])
        hhmm = df.Time.astype(int)
        late = hhmm >= 1200
        assert ((late) | (hhmm < 1200)).all()
        stamps = [day + pd.Timedelta(hours=t // 100, minutes=t % 100) + pd.Timedelta(days=0 if t >= 1200 else 1)
                  for t in hhmm]  # fmt: skip
        assert all(day + pd.Timedelta(hours=12) <= s < day + pd.Timedelta(hours=36) for s in stamps)
    assert n > 0
    spc = open_sample("spc", size="tiny")
    assert len(spc) == n and set(spc.kind) <= {"torn", "hail", "wind"}


def test_second_call_uses_the_cache(tiny_sample):
    marker = tiny_sample.root / "COMPLETE.json"
    before = marker.stat().st_mtime_ns
    t0 = time.perf_counter()
    again = ensure_sample("tiny", progress=False)
    elapsed = time.perf_counter() - t0
    assert again == tiny_sample
    assert elapsed < 0.5
    assert marker.stat().st_mtime_ns == before
    info = json.loads(marker.read_text())
    assert info["version"] == VERSION and info["size"] == "tiny"
    assert tiny_sample.root.name == f"tiny-v{VERSION}"


def test_generation_is_deterministic(tiny_sample, hrrr, nwp, tmp_path):
    import shutil

    # reuse the rasterised states and counties (a cache of static geography, not of the sample)
    (tmp_path / "sample").mkdir()
    for f in tiny_sample.root.parent.glob("*.npz"):
        shutil.copy(f, tmp_path / "sample" / f.name)
    other = ensure_sample("tiny", cache_dir=tmp_path, progress=False)
    assert other.root != tiny_sample.root
    h2 = xr.open_zarr(other.hrrr).load()
    n2 = xr.open_zarr(other.nwp).load()
    for name in VARS:
        np.testing.assert_array_equal(h2[name].values, hrrr[name].values)
        np.testing.assert_array_equal(n2[name].values, nwp[name].values)
    assert other.storm_events.read_bytes() == tiny_sample.storm_events.read_bytes()


def test_unknown_size_and_bad_cache_dir(tmp_path):
    with pytest.raises(DataError, match="Unknown sample size 'huge'"):
        ensure_sample("huge", cache_dir=tmp_path)
    with pytest.raises(DataError, match="Unknown sample product"):
        open_sample("radar", size="tiny")
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(DataError, match="not a directory|Cannot create"):
        ensure_sample("tiny", cache_dir=not_a_dir, progress=False)


_KILL_SCRIPT = """
import sys
from workbench.sample import ensure_sample
ensure_sample("tiny", cache_dir=sys.argv[1], progress=False)
"""


def test_killed_generation_leaves_no_sample_and_is_recovered(tmp_path, tiny_sample, monkeypatch):
    cache = tmp_path / "cache"
    proc = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, str(cache)], env=os.environ.copy())
    parent = cache / "sample"
    deadline = time.time() + 60
    # kill it once it has started writing
    while time.time() < deadline and not list(parent.glob(".tiny-v*.tmp.*/hrrr.zarr")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list(parent.glob(".tiny-v*.tmp.*")), "the killed run should have left its temporary directory"
    root = sample_dir("tiny", cache)
    assert not root.exists()
    # the next call removes the leftovers and produces a complete sample; to keep the test fast it
    # copies the session's tiny sample instead of running the generator again
    import shutil

    import workbench.sample.generate as gen

    def copy_generate(spec, out: Path, progress: bool = True) -> dict:
        for item in tiny_sample.root.iterdir():
            if item.name != "COMPLETE.json":
                (shutil.copytree if item.is_dir() else shutil.copy)(item, out / item.name)
        return {}

    monkeypatch.setattr(gen, "generate", copy_generate)
    paths = ensure_sample("tiny", cache_dir=cache, progress=False)
    assert (paths.root / "COMPLETE.json").is_file()
    assert not list(parent.glob(".tiny-v*.tmp.*"))
    assert xr.open_zarr(paths.hrrr).sizes["time"] == 96


def test_failed_generation_leaves_nothing(tmp_path, monkeypatch):
    import workbench.sample.generate as gen

    def failing(spec, out: Path, progress: bool = True) -> dict:
        (out / "hrrr.zarr").mkdir()
        raise RuntimeError("disk full")

    monkeypatch.setattr(gen, "generate", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        ensure_sample("tiny", cache_dir=tmp_path, progress=False)
    left = [p.name for p in (tmp_path / "sample").iterdir() if not p.name.endswith(".lock")]
    assert left == []


def test_concurrent_callers_generate_once(tmp_path, tiny_sample, monkeypatch):
    import shutil
    import threading

    import workbench.sample.generate as gen

    calls = []

    def slow_copy(spec, out: Path, progress: bool = True) -> dict:
        calls.append(out)
        time.sleep(0.5)
        for item in tiny_sample.root.iterdir():
            if item.name != "COMPLETE.json":
                (shutil.copytree if item.is_dir() else shutil.copy)(item, out / item.name)
        return {}

    monkeypatch.setattr(gen, "generate", slow_copy)
    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(ensure_sample("tiny", cache_dir=tmp_path, progress=False))
        )
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert len(results) == 2 and results[0] == results[1]
