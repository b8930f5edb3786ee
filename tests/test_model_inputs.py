"""Static, insolation and lateral-boundary inputs; deep-ensemble members; fp16 storage; calibrated noise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from workbench.errors import CheckpointError, DataError
from workbench.inference import run_forecast
from workbench.inference.perturb import calibrated_scale
from workbench.models import build, load, load_checkpoint, load_ensemble, member_dir, save_checkpoint
from workbench.models.inputs import (
    STATIC,
    BoundarySource,
    attach_inputs,
    boundary_mask,
    static_fields,
    toa_insolation,
)
from workbench.models.normalization import Normalization

VARS = ("t2m", "u10m", "z500")
SMALL_HRHEIM = {"channels": [4, 8, 8], "bottleneck_depth": 1, "heads": 2, "window_size": [4, 4], "head_hidden": 4}
BOUNDARY = {"variables": ["t2m", "z500"], "width": 2}


def grid_analysis(n: int = 6, ny: int = 16, nx: int = 24) -> xr.Dataset:
    """``n`` hours of smooth fields on a small grid with latitude/longitude, orography and a land mask."""
    rng = np.random.default_rng(0)
    times = pd.date_range("2020-06-01", periods=n, freq="h")
    lat = np.linspace(30.0, 45.0, ny)[:, None] + np.zeros((1, nx))
    lon = np.linspace(-110.0, -85.0, nx)[None, :] + np.zeros((ny, 1))
    base = {"t2m": 295.0, "u10m": 2.0, "z500": 55500.0}
    data = {v: (("time", "y", "x"), (base[v] + rng.standard_normal((n, ny, nx))).astype("float32")) for v in VARS}
    data["orography"] = (("y", "x"), np.full((ny, nx), 1000.0))
    data["land_sea_mask"] = (("y", "x"), np.where(lon > -100.0, 1.0, 0.0))
    return xr.Dataset(
        data,
        coords={"time": times, "y": np.arange(ny) * 24e3, "x": np.arange(nx) * 24e3,
                "latitude": (("y", "x"), lat), "longitude": (("y", "x"), lon)},
    )


def small_model(boundary: dict | None = BOUNDARY, static=STATIC, seed: int = 0):
    torch.manual_seed(seed)
    src = grid_analysis()
    norm = Normalization.from_dataset(src, list(VARS))
    config = {"variables": list(VARS), "forcings": ["hour_sin", "hour_cos", "toa_insolation"],
              "static": list(static), "net": SMALL_HRHEIM, "grid": {"kind": "hrrr", "shape": [16, 24]}}
    if boundary:
        config["boundary"] = boundary
    return build("hrheim", config, normalization=norm), src


def test_static_fields_are_the_grid_s_own(monkeypatch):
    src = grid_analysis()
    f = static_fields(src, STATIC)
    assert f.shape == (6, 16, 24) and f.dtype == np.float32
    np.testing.assert_allclose(f[0], 0.5)  # 1000 m / 2000 m
    np.testing.assert_array_equal(f[1], src["land_sea_mask"].values)
    np.testing.assert_allclose(f[2], np.sin(np.deg2rad(src.latitude.values)), rtol=1e-6)
    np.testing.assert_allclose(f[5], np.cos(np.deg2rad(src.longitude.values)), rtol=1e-6)
    # without a field of its own and without the sample's geography to fall back on: refused
    monkeypatch.setattr("workbench.models.inputs._sample_geography", lambda name: None)
    with pytest.raises(DataError, match="'orography', which the data does not hold"):
        static_fields(src.drop_vars("orography"), ["orography"])
    with pytest.raises(DataError, match="unknown static inputs"):
        static_fields(src, ["albedo"])
    with pytest.raises(DataError, match="no 'latitude'"):
        static_fields(src.drop_vars(["latitude", "longitude"]), ["lat_sin"])


def _hours(stamp: str) -> torch.Tensor:
    return torch.tensor([pd.Timestamp(stamp).value / 3.6e12], dtype=torch.float64)


def test_insolation_matches_hand_values():
    lat = torch.deg2rad(torch.tensor([[0.0, 90.0, 23.44]], dtype=torch.float64))
    lon = torch.zeros_like(lat)
    # equinox noon on the equator: the sun overhead, Earth-Sun distance factor 1 + 0.033 cos(77 days) ~ 1.008
    noon = toa_insolation(_hours("2020-03-20 12:00"), lat, lon)[0, 0, 0]
    assert float(noon[0]) == pytest.approx(1.008, abs=0.01)
    # midnight on the equator: night
    assert float(toa_insolation(_hours("2020-03-20 00:00"), lat, lon)[0, 0, 0, 0]) == 0.0
    # June solstice: the pole gets sin(23.44 deg) x 0.967 all day, the tropic the overhead sun at noon
    june = toa_insolation(_hours("2020-06-21 12:00"), lat, lon)[0, 0, 0]
    assert float(june[1]) == pytest.approx(np.sin(np.deg2rad(23.44)) * 0.967, abs=0.01)
    assert float(june[2]) == pytest.approx(0.967, abs=0.01)
    # local solar time: at 12 UTC it is day at 0 E and night at 180 E
    lons = torch.deg2rad(torch.tensor([[0.0, 180.0]], dtype=torch.float64))
    both = toa_insolation(_hours("2020-06-01 12:00"), torch.zeros_like(lons), lons)[0, 0, 0]
    assert float(both[0]) > 0.9 and float(both[1]) == 0.0


def test_the_boundary_reaches_the_network_only_in_its_strip():
    model, src = small_model()
    attach_inputs(model, src)
    model.eval()
    x = torch.zeros(1, 3, 16, 24)
    rng = np.random.default_rng(1)
    bnd = torch.as_tensor(src[["t2m", "z500"]].isel(time=[1]).to_array().transpose("time", ...).values)
    with torch.no_grad():
        ref = model.step(x, valid_time=_hours("2020-06-01 00:00"), boundary=bnd)
        inner = bnd.clone()
        inner[..., 2:-2, 2:-2] += torch.as_tensor(rng.standard_normal((14 - 2, 22 - 2)), dtype=torch.float32)
        same = model.step(x, valid_time=_hours("2020-06-01 00:00"), boundary=inner)
        edge = bnd.clone()
        edge[..., 0, :] += 50.0
        moved = model.step(x, valid_time=_hours("2020-06-01 00:00"), boundary=edge)
    torch.testing.assert_close(same, ref)  # the interior of the boundary field is never seen
    assert (moved - ref).abs().max() > 1e-4  # the strip is
    assert boundary_mask((16, 24), 2).sum() == 16 * 24 - 12 * 20
    with pytest.raises(DataError, match="conditioned on lateral boundaries"):
        model.step(x, valid_time=_hours("2020-06-01 00:00"))


def test_engine_feeds_static_and_boundary_and_refuses_what_is_missing(tmp_path):
    model, src = small_model()
    save_checkpoint(model, tmp_path / "hrheim")
    loaded = load_checkpoint(tmp_path / "hrheim")
    # the boundary as an analysis on the model grid: the engine takes it at each step's valid time
    fc = run_forecast(loaded, src, src.time.values[:2], [1, 2], boundary=src, device="cpu", progress=False)
    assert dict(fc.sizes)["lead_time"] == 2 and np.isfinite(fc.t2m.values).all()
    with pytest.raises(DataError, match="pass boundary="):
        run_forecast(loaded, src, src.time.values[:2], [1], device="cpu", progress=False)
    with pytest.raises(DataError, match="no 'latitude'"):
        run_forecast(loaded, src.drop_vars(["latitude", "longitude"]), src.time.values[:2], [1], boundary=src,
                     device="cpu", progress=False)


def test_a_checkpoint_without_inputs_runs_as_before(tmp_path):
    # an older config: time-of-day forcings only, no static or boundary keys
    torch.manual_seed(0)
    src = grid_analysis()
    old = build("hrheim", {"variables": list(VARS), "net": SMALL_HRHEIM, "grid": {"kind": "hrrr", "shape": [16, 24]}},
                normalization=Normalization.from_dataset(src, list(VARS)))
    assert "static" not in old.config and not old.needs_static and not old.boundary_variables
    save_checkpoint(old, tmp_path / "old")
    again = load_checkpoint(tmp_path / "old")
    a = run_forecast(old, src.drop_vars(["latitude", "longitude"]), src.time.values[:1], [1], device="cpu",
                     progress=False)
    b = run_forecast(again, src, src.time.values[:1], [1], device="cpu", progress=False)
    np.testing.assert_array_equal(a.t2m.values, b.t2m.values)


def test_a_config_with_a_bad_boundary_is_refused_with_one_line(tmp_path):
    model, _ = small_model()
    save_checkpoint(model, tmp_path / "m")
    import json

    doc = json.loads((tmp_path / "m.json").read_text())
    doc["config"]["boundary"] = {"variables": ["t2m", "refc"], "width": 2}
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    (tmp_path / "bad.safetensors").write_bytes((tmp_path / "m.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match=r"bad.json: config boundary variables .* among the model's variables"):
        load_checkpoint(tmp_path / "bad")


def test_boundary_sources_interpolate_in_time():
    src = grid_analysis()
    analysis = BoundarySource(src)
    t0, t1 = src.time.values[0], src.time.values[1]
    half = t0 + (t1 - t0) / 2
    got = analysis.fields([t0], [half], ["t2m"])[0, 0]
    np.testing.assert_allclose(got, 0.5 * (src.t2m.values[0] + src.t2m.values[1]), rtol=1e-6)
    # a driving forecast: the run from the same initial time, between its leads
    fc = xr.Dataset({"t2m": (("init_time", "lead_time", "y", "x"), np.stack([src.t2m.values[:3], src.t2m.values[:3] + 1]))},
                    coords={"init_time": [t0, t1], "lead_time": pd.to_timedelta([0, 2, 4], unit="h")})
    got = BoundarySource(fc).fields([t1], [t1 + np.timedelta64(3, "h")], ["t2m"])[0, 0]
    np.testing.assert_allclose(got, 0.5 * (src.t2m.values[1] + src.t2m.values[2]) + 1, rtol=1e-6)
    with pytest.raises(DataError, match="does not cover"):
        analysis.fields([t0], [t0 + np.timedelta64(30, "h")], ["t2m"])
    with pytest.raises(DataError, match="no run from"):
        BoundarySource(fc).fields([src.time.values[4]], [src.time.values[5]], ["t2m"])


def test_fp16_storage_halves_the_file_and_round_trips(tmp_path):
    model, src = small_model()
    w32, _ = save_checkpoint(model, tmp_path / "a32")
    w16, _ = save_checkpoint(model, tmp_path / "a16", storage="fp16")
    assert w16.stat().st_size < 0.65 * w32.stat().st_size  # half the tensors; the header stays
    m16, m32 = load_checkpoint(tmp_path / "a16", verify=True), load_checkpoint(tmp_path / "a32")
    for p16, p32 in zip(m16.net.parameters(), m32.net.parameters(), strict=True):
        assert p16.dtype == torch.float32
        torch.testing.assert_close(p16, p32, rtol=1e-3, atol=1e-4)
    with pytest.raises(CheckpointError, match="storage"):
        save_checkpoint(model, tmp_path / "x", storage="int8")


def test_deep_ensemble_members_load_from_their_directories(tmp_path):
    for k in range(2):
        model, _ = small_model(seed=k)
        member_dir(tmp_path, k).mkdir(parents=True, exist_ok=True)
        save_checkpoint(model, member_dir(tmp_path, k) / "hrheim")
    members = load_ensemble("hrheim", checkpoint=tmp_path)
    assert len(members) == 2
    assert not torch.equal(members[0].net.stem.weight, members[1].net.stem.weight)  # independent draws
    assert len(load_ensemble("hrheim", checkpoint=tmp_path, members=1)) == 1
    with pytest.raises(CheckpointError, match="has 2 ensemble members"):
        load_ensemble("hrheim", checkpoint=tmp_path, members=3)
    assert load("hrheim", checkpoint=member_dir(tmp_path, 1)).name == "hrheim"


def test_perturbations_are_calibrated_to_the_analysis_error():
    norm = Normalization({"t2m": 290.0, "z500": 55000.0}, {"t2m": 4.0, "z500": 250.0})
    scale = calibrated_scale(["t2m", "z500"], norm, {"t2m": 0.5, "z500": 20.0, "refc": 1.0})
    assert scale == pytest.approx({"t2m": 0.125, "z500": 0.08})
    with pytest.raises(ValueError, match="t2m"):
        calibrated_scale(["t2m"], norm, {"t2m": float("nan")})


def test_training_boundary_is_the_global_analysis_on_the_grid(tiny_sample):
    from workbench.regrid import regrid
    from workbench.sample import open_sample
    from workbench.training import load_training_data
    from workbench.workflow.start import analysis_error_rms, driving_boundary, initial_state

    data = load_training_data(size="tiny", boundary_variables=("t2m", "z500"))
    era5, hrrr = open_sample("era5", "tiny"), open_sample("hrrr", "tiny")
    t6 = pd.Timestamp(era5.time.values[1])  # a 6-hourly analysis time: the regridded analysis itself
    i = int(np.flatnonzero(data.times == t6)[0])
    expected = regrid(era5[["t2m", "z500"]].sel(time=t6), hrrr, method="bilinear")
    np.testing.assert_allclose(data.boundary[i, 0], expected.t2m.values, rtol=1e-6)
    # three hours later: halfway between the two global analyses
    j = int(np.flatnonzero(data.times == t6 + pd.Timedelta(hours=3))[0])
    later = regrid(era5[["z500"]].sel(time=t6 + pd.Timedelta(hours=6)), hrrr, method="bilinear")
    np.testing.assert_allclose(data.boundary[j, 1], 0.5 * (expected.z500.values + later.z500.values), rtol=1e-6)
    # inference: the analysis holds every NWP initial time, and the driving forecast starts from it
    nwp = open_sample("nwp", "tiny")
    inits = nwp.init_time.values[:2]
    analysis = initial_state("tiny", inits)
    assert analysis_error_rms(analysis)["t2m"] > 0
    edges = driving_boundary(nwp, inits, [1, 6])
    assert set(edges.init_time.values) == set(inits) and pd.Timedelta(edges.lead_time.values.max()) == pd.Timedelta("6h")
    with pytest.raises(DataError, match="has no state at"):
        initial_state("tiny", [pd.Timestamp("2020-06-01 01:00")])


def _climax(forcing_time: str | None):
    torch.manual_seed(0)
    src = grid_analysis()
    config = {"variables": list(VARS), "forcings": ["hour_sin", "hour_cos", "toa_insolation"], "static": list(STATIC),
              "lead_hours": [1, 6, 24], "grid": {"kind": "hrrr", "shape": [16, 24]},
              "net": {"patch_size": 4, "embed_dim": 16, "depth": 1, "decoder_depth": 1, "num_heads": 2,
                      "grid_shape": [16, 24]}}
    if forcing_time is not None:
        config["forcing_time"] = forcing_time
    model = build("climax", config, normalization=Normalization.from_dataset(src, list(VARS)))
    attach_inputs(model, src)
    return model.eval(), src


def test_forcings_at_the_output_time_are_an_option_and_the_input_time_stays_the_default():
    shipped = load("climax")
    assert shipped.forcing_time == "input" and "forcing_time" not in shipped.config  # shipped: unchanged
    old, src = _climax(None)
    new, _ = _climax("output")
    assert old.forcing_time == "input" and new.config["forcing_time"] == "output"
    x = torch.randn(2, len(VARS), 16, 24)
    t0 = torch.tensor([438_000.0, 438_012.0], dtype=torch.float64)  # hours since 1970, 00 and 12 UTC
    seen = []
    for m in (old, new):
        m.net.register_forward_pre_hook(lambda _mod, args, _kw: seen.append(args[0].clone()), with_kwargs=True)
    with torch.no_grad():
        a = new.step(x, valid_time=t0, lead_hours=6.0)
        b = old.step(x, valid_time=t0 + 6.0, lead_hours=6.0)
        old.step(x, valid_time=t0, lead_hours=6.0)
    # the output-time network at lead 6 sees exactly what the input-time one sees 6 h later
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(seen[0], seen[1])
    sun = len(VARS) + 2  # hour_sin, hour_cos, then the insolation
    # and not what it sees at the input time: 00 UTC (evening in CONUS) -> 06 UTC (night), 12 -> 18 UTC (noon)
    assert (seen[0][:, :2] - seen[2][:, :2]).abs().max() == 0  # the state is the same
    assert float(seen[2][1, sun].mean()) < float(seen[0][1, sun].mean()) - 0.3  # 12 UTC morning vs 18 UTC noon
    assert float(seen[0][0, sun].max()) == 0.0  # 06 UTC is night over the whole domain
    with pytest.raises(CheckpointError, match="forcing_time must be one of"):
        _climax("valid")
