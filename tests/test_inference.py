"""The rollout engine: shapes, valid times, HTA, precision, ensembles, baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from inference_standins import (
    VARIABLES,
    LinearFamily,
    LinearForecaster,
    apply_linear,
    rotation_matrix,
)

from workbench.errors import DataError
from workbench.inference import EnsembleSpec, ZarrSink, run_forecast
from workbench.inference.ensemble import EnsembleError
from workbench.inference.plan import count_steps, make_plan

H = pd.Timedelta(hours=1)


def test_rollout_shapes_valid_time_and_values(linear_source):
    A = rotation_matrix(1)
    model = LinearForecaster(A)
    inits = pd.DatetimeIndex(["2020-06-01T00", "2020-06-01T12", "2020-06-02T00"])
    fc = run_forecast(model, linear_source, inits, [1, 2, 5], device="cpu", dtype="fp32", batch_size=2,
                      progress=False)
    assert dict(fc.sizes) == {"init_time": 3, "lead_time": 3, "y": 6, "x": 8}
    assert list(fc.data_vars) == list(VARIABLES)
    assert fc["t2m"].dims == ("init_time", "lead_time", "y", "x")
    assert fc["t2m"].attrs["units"] == "K"
    assert fc.valid_time.dims == ("init_time", "lead_time")
    assert fc.valid_time.values[1, 2] == np.datetime64("2020-06-01T17:00")
    assert "latitude" in fc.coords and fc.latitude.dims == ("y", "x")
    # 5 h from the second init = A^5 applied in normalised space
    exact = apply_linear(A, linear_source, inits[1], 5)
    got = np.stack([fc[v].isel(init_time=1, lead_time=2).values for v in VARIABLES])
    np.testing.assert_allclose(got, exact, rtol=1e-5)
    # one call per step per block: leads 1, 2, 5 need 5 steps, two blocks
    assert model.calls == 10


def test_lead_zero_is_the_analysis(linear_source):
    fc = run_forecast(LinearForecaster(rotation_matrix()), linear_source, "2020-06-01T03", [0, 1], device="cpu",
                      dtype="fp32", progress=False)
    np.testing.assert_allclose(
        fc["z500"].isel(init_time=0, lead_time=0).values, linear_source["z500"].sel(time="2020-06-01T03").values,
        rtol=1e-6,
    )


def test_hta_plan_uses_fewest_steps():
    ops = make_plan([H * k for k in (1, 6, 7, 24, 31)], [H, 6 * H, 24 * H])
    # 1: [1]; 6: [6]; 7: [6,1]; 24: [24]; 31: [24,6,1] -> reuses states of 6 and 24
    assert count_steps(ops) == {H: 3, 6 * H: 2, 24 * H: 1}
    single = make_plan([H * k for k in (1, 6, 7, 24, 31)], [H, 6 * H, 24 * H], hta=False)
    assert count_steps(single) == {H: 31}
    with pytest.raises(DataError, match="cannot be reached"):
        make_plan([pd.Timedelta(minutes=90)], [H, 6 * H])


def test_hta_equals_single_step_for_a_linear_model(linear_source):
    A = rotation_matrix(2)
    leads = [1, 6, 7, 13, 24, 31]
    fam = LinearFamily(A)
    hta = run_forecast(fam, linear_source, ["2020-06-01T00", "2020-06-01T05"], leads, device="cpu", dtype="fp32",
                       progress=False)
    # six leads cost 1 + 1 + (1) + (1 + 1) ... : 1h x4, 6h x3, 24h x1 with state reuse
    assert fam.calls() == {1: 4, 6: 3, 24: 1}
    fam1 = LinearFamily(A)
    single = run_forecast(fam1, linear_source, ["2020-06-01T00", "2020-06-01T05"], leads, device="cpu", dtype="fp32",
                          hta=False, progress=False)
    assert fam1.calls() == {1: 31, 6: 0, 24: 0}
    for v in VARIABLES:
        np.testing.assert_allclose(hta[v].values, single[v].values, rtol=2e-5, atol=1e-3)
    exact = apply_linear(A, linear_source, pd.Timestamp("2020-06-01T05"), 31)
    np.testing.assert_allclose(hta["u10m"].isel(init_time=1, lead_time=-1).values, exact[1], rtol=1e-4,
                               atol=1e-4)


def test_engine_feeds_the_valid_time_of_each_input(linear_source):
    # y = 0 * x + gain * hour_of_day(valid time of the input), in normalised units
    model = LinearForecaster(np.zeros((3, 3)), clock_gain=1.0)
    fc = run_forecast(model, linear_source, "2020-06-01T05", [1, 2, 3], device="cpu", dtype="fp32", progress=False)
    t2m_norm = (fc["t2m"].isel(init_time=0).values - 290.0) / 5.0
    # the input to lead 3's step is valid at 07 UTC
    np.testing.assert_allclose(t2m_norm[:, 0, 0], [5.0, 6.0, 7.0], atol=1e-4)


def test_bf16_autocast_runs_on_cpu(linear_source):
    A = rotation_matrix(3)
    fp32 = run_forecast(LinearForecaster(A), linear_source, "2020-06-01T00", [1, 2], device="cpu", dtype="fp32",
                        progress=False)
    bf16 = run_forecast(LinearForecaster(A), linear_source, "2020-06-01T00", [1, 2], device="cpu", dtype="bf16",
                        progress=False)
    assert bf16["t2m"].dtype == np.float32
    diff = np.abs((bf16["t2m"] - fp32["t2m"]).values) / 5.0  # in normalised units
    assert 0 < diff.max() < 0.05  # bf16 rounding, not garbage, and not silently fp32
    assert np.isfinite(bf16["z500"].values).all()


def test_default_precision_is_auto_fp32_on_cpu(linear_source, tmp_path):
    from workbench.inference.device import DeviceError, resolve_precision

    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    # on a GPU too, unless every model declares bf16 accurate enough (tests/test_inference_precision.py)
    assert resolve_precision("auto", torch.device("cuda"), [LinearForecaster(rotation_matrix())]) == "fp32"
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"
    with pytest.raises(DeviceError, match="'auto' or one of"):
        resolve_precision("fp16", torch.device("cpu"))
    A = rotation_matrix(3)
    default = run_forecast(LinearForecaster(A), linear_source, "2020-06-01T00", [1, 2], device="cpu",
                           sink=ZarrSink(tmp_path / "auto.zarr"), progress=False)
    fp32 = run_forecast(LinearForecaster(A), linear_source, "2020-06-01T00", [1, 2], device="cpu", dtype="fp32",
                        progress=False)
    bf16 = run_forecast(LinearForecaster(A), linear_source, "2020-06-01T00", [1, 2], device="cpu", dtype="bf16",
                        progress=False)
    np.testing.assert_array_equal(default["t2m"].values, fp32["t2m"].values)
    assert not np.array_equal(default["t2m"].values, bf16["t2m"].values)
    # the store records the precision it resolved to, so an explicit fp32 run resumes it
    again = run_forecast(LinearForecaster(A), linear_source, "2020-06-01T00", [1, 2], device="cpu", dtype="fp32",
                         sink=ZarrSink(tmp_path / "auto.zarr"), progress=False)
    np.testing.assert_array_equal(again["t2m"].values, fp32["t2m"].values)


def test_ensemble_dims_and_noise_statistics(linear_source):
    A = rotation_matrix(4)
    spec = EnsembleSpec(weight_members=3, noise_members=4, noise_scale=0.1, length_scale=1.0, dropout=0.3,
                        seed=7)
    fc = run_forecast(LinearForecaster(A), linear_source, ["2020-06-01T00", "2020-06-01T06"], [0, 1], members=spec,
                      device="cpu", dtype="fp32", progress=False)
    assert fc["t2m"].dims == ("init_time", "lead_time", "weight_member", "noise_member", "y", "x")
    assert fc.sizes["weight_member"] == 3 and fc.sizes["noise_member"] == 4
    # lead 0: the perturbation itself, amplitude 0.1 std; identical across weight members
    p0 = (fc["t2m"].isel(lead_time=0) - linear_source["t2m"].sel(time=fc.init_time.values).rename(time="init_time"))
    assert np.allclose(p0.isel(weight_member=0), p0.isel(weight_member=2))
    assert 0.3 < float(p0.std()) / (0.1 * 5.0) < 1.7
    # members differ from each other (aleatoric) and weight members differ after a step (MC dropout)
    lead1 = fc["u10m"].isel(lead_time=1)
    assert float(lead1.std("noise_member").mean()) > 0
    assert float(lead1.mean("noise_member").std("weight_member").mean()) > 0


def test_epistemic_spread_is_zero_for_identical_weight_members(linear_source):
    A = rotation_matrix(5)
    models = [LinearForecaster(A, name="a"), LinearForecaster(A, name="b")]
    fc = run_forecast(models, linear_source, "2020-06-01T00", [1, 3], members=EnsembleSpec(noise_members=3),
                      device="cpu", dtype="fp32", progress=False)
    assert fc.sizes["weight_member"] == 2 and fc.sizes["noise_member"] == 3
    epistemic = fc["t2m"].mean("noise_member").var("weight_member")
    aleatoric = fc["t2m"].var("noise_member").mean("weight_member")
    assert float(epistemic.max()) == 0.0
    assert float(aleatoric.mean()) > 0


def test_mc_dropout_masks_are_fixed_per_weight_member(linear_source):
    A = rotation_matrix(6)
    spec = EnsembleSpec(weight_members=2, noise_members=1, noise_scale=0.0, dropout=0.5, seed=1)
    a = run_forecast(LinearForecaster(A), linear_source, ["2020-06-01T00", "2020-06-01T01"], [1, 2], members=spec,
                     device="cpu", dtype="fp32", batch_size=1, progress=False)
    b = run_forecast(LinearForecaster(A), linear_source, ["2020-06-01T00", "2020-06-01T01"], [1, 2], members=spec,
                     device="cpu", dtype="fp32", batch_size=2, progress=False)
    # same masks whatever the batching: the draw depends on (seed, member, layer) only
    np.testing.assert_array_equal(a["t2m"].values, b["t2m"].values)
    # a dropped channel is dropped everywhere: the mask is over channels, shared by all points
    d = (a["t2m"].isel(weight_member=0, lead_time=0) - 290.0) / 5.0
    assert (np.isclose(d.values, 0).all() or not np.isclose(d.values, 0).any())


def test_mc_dropout_needs_dropout_layers(linear_source):
    class NoDropout(LinearForecaster):
        pass

    m = NoDropout(rotation_matrix())
    m.net.drop = torch.nn.Identity()
    with pytest.raises(EnsembleError, match="no dropout layers"):
        run_forecast(m, linear_source, "2020-06-01T00", [1], members=(2, 1), device="cpu", progress=False)


class _Persistence:
    """A baseline in the protocol's shape (forecast() returns the layout directly)."""

    name = "persistence-standin"
    variables = ("t2m",)
    input_variables = ("t2m",)
    time_step = None
    grid = None

    def __init__(self):
        self.calls = 0

    def forecast(self, initial, init_times, lead_times):
        from workbench.models.protocol import forecast_dataset, select_initial

        self.calls += 1
        sel = select_initial(initial, init_times, ["t2m"])
        values = np.repeat(sel["t2m"].values[:, None], len(lead_times), axis=1)
        return forecast_dataset({"t2m": values}, init_times, lead_times, initial)


def test_baselines_go_through_the_same_api(linear_source, tmp_path):
    model = _Persistence()
    fc = run_forecast(model, linear_source, ["2020-06-01T00", "2020-06-01T01", "2020-06-01T02"], [1, 6],
                      batch_size=2, sink=ZarrSink(tmp_path / "p.zarr"), progress=False)
    assert model.calls == 2
    np.testing.assert_array_equal(
        fc["t2m"].isel(init_time=2, lead_time=1).values, linear_source["t2m"].sel(time="2020-06-01T02").values
    )
    with pytest.raises(EnsembleError, match="baseline"):
        run_forecast(model, linear_source, "2020-06-01T00", [1], members=3, progress=False)


def test_bad_input_is_refused(linear_source):
    model = LinearForecaster(rotation_matrix())
    with pytest.raises(DataError, match="not in the initial data"):
        run_forecast(model, linear_source, "2021-01-01", [1], device="cpu", progress=False)
    with pytest.raises(DataError, match="lacks variables"):
        run_forecast(model, linear_source.drop_vars("z500"), "2020-06-01", [1], device="cpu", progress=False)
    with pytest.raises(DataError, match="not a multiple|cannot be reached"):
        run_forecast(model, linear_source, "2020-06-01", ["90min"], device="cpu", progress=False)
    bad = linear_source.copy(deep=True)
    bad["t2m"][0, 0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        run_forecast(model, bad, "2020-06-01T00", [1], device="cpu", progress=False)
