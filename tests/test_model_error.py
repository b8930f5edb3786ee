"""Stochastic model error: the noise's statistics, its use in a rollout, and the calibration's algebra."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from inference_standins import MEAN, STD, VARIABLES, LinearFamily, LinearForecaster

from workbench.inference import EnsembleSpec, run_forecast
from workbench.inference.model_error import (
    ModelError,
    ModelErrorError,
    ar1_coefficient,
    calibrated_variance,
    centred,
    correlation_length,
    step_noise,
)

INITS = [np.datetime64("2020-06-01T00"), np.datetime64("2020-06-01T12")]


def _noise(members=4, length=3.0, step_end_s=3600, seed=0, shape=(2, 96, 96)):
    return step_noise(INITS, members, shape, step_end_s, length_scale=length, seed=seed).numpy()


def test_step_noise_is_zero_mean_unit_variance_with_the_asked_correlation_length():
    x = _noise(members=8, length=3.0, shape=(3, 128, 128))
    assert x.shape == (len(INITS) * 8, 3, 128, 128)
    assert abs(x.mean()) < 0.05  # 48 fields of ~ (128 / 3)^2 independent blobs each
    assert x.var() == pytest.approx(1.0, abs=0.08)
    # the correlation at 4 cells of Gaussian-smoothed noise with kernel std 3 is exp(-16 / 36) = 0.64
    flat = x.reshape(-1, 128, 128)
    rho = (flat[:, 4:] * flat[:, :-4]).mean() / flat.var()
    assert rho == pytest.approx(np.exp(-16 / 36), abs=0.04)
    assert correlation_length(flat[:, None].squeeze(1)) == pytest.approx(3.0, rel=0.08)


def test_step_noise_is_seeded_and_members_steps_inits_are_independent():
    a, b = _noise(seed=3), _noise(seed=3)
    np.testing.assert_array_equal(a, b)  # reproducible
    assert not np.allclose(a, _noise(seed=4))
    assert not np.allclose(a, _noise(seed=3, step_end_s=7200))  # each step its own draw

    def corr(u, v):
        return float((u * v).mean() / np.sqrt((u * u).mean() * (v * v).mean()))

    assert abs(corr(a[0], a[1])) < 0.1  # two members of one init
    assert abs(corr(a[0], a[4])) < 0.1  # member 0 of two inits
    assert abs(corr(a[0], _noise(seed=3, step_end_s=7200)[0])) < 0.1
    # a block of one init draws what that init draws in a bigger block (no batch dependence)
    one = step_noise(INITS[1:], 4, (2, 96, 96), 3600, length_scale=3.0, seed=3).numpy()
    np.testing.assert_array_equal(one, a[4:])


def test_settings_are_validated():
    with pytest.raises(ModelErrorError, match="amplitude of t2m"):
        ModelError(amplitude={1: {"t2m": -1.0}})
    with pytest.raises(ModelErrorError, match="positive number of hours"):
        ModelError(amplitude={0: {"t2m": 1.0}})
    with pytest.raises(ModelErrorError, match="does not use"):
        ModelError(amplitude={1: {"q": 1.0}}).amplitudes(1, VARIABLES)
    assert ModelError(amplitude={6: {"t2m": 1.0}}).amplitudes(1, VARIABLES) is None  # no noise on 1-h steps
    assert ar1_coefficient(1, 6) == pytest.approx(np.exp(-1 / 6)) and ar1_coefficient(1, 0) == 0.0


def _identity_run(model_error, leads=(1, 2), members=64, weights=1, seed=0, ny=24, nx=24):
    """Forecasts of an identity network from a constant field: all that moves is the model error."""
    times = pd.date_range("2020-06-01", periods=4, freq="h")
    data = xr.Dataset({v: (("time", "y", "x"), np.full((4, ny, nx), MEAN[v], np.float32)) for v in VARIABLES},
                      coords={"time": times})
    eye = np.eye(len(VARIABLES))
    model = [LinearForecaster(eye) for _ in range(weights)] if weights > 1 else LinearForecaster(eye)
    spec = EnsembleSpec(weight_members=weights, noise_members=members, noise_scale=0.0, length_scale=0.0,
                        seed=seed, model_error=model_error)
    return run_forecast(model, data, times[:1], pd.to_timedelta(list(leads), unit="h"), members=spec,
                        progress=False)


def test_rollout_adds_noise_of_the_amplitude_with_ar1_memory_between_steps():
    me = ModelError(amplitude={1: {"t2m": 0.5, "z500": 0.25}}, length_scale=0.0, time_scale_h=3.0)
    fc = _identity_run(me)
    t2m = (fc.t2m - MEAN["t2m"]).isel(init_time=0, weight_member=0).values / STD["t2m"]  # (lead, member, y, x)
    d1, d2 = t2m[0], t2m[1] - t2m[0]  # the two steps' noise, in normalisation-std units
    # centred over the 64 members: each member's variance is 0.25 x 63/64, the ddof=1 spread 0.5
    assert d1.std(axis=0, ddof=1).mean() == pytest.approx(0.5, rel=0.05)
    assert d2.std(axis=0, ddof=1).mean() == pytest.approx(0.5, rel=0.05)
    np.testing.assert_allclose(d1.mean(axis=0), 0.0, atol=1e-5)  # the ensemble mean is not moved
    # consecutive steps' noise correlates as exp(-dt / tau)
    assert (d1 * d2).mean() / (d1.std() * d2.std()) == pytest.approx(np.exp(-1 / 3), abs=0.03)
    z = (fc.z500 - MEAN["z500"]).isel(init_time=0, weight_member=0, lead_time=0).values / STD["z500"]
    assert z.std(axis=0, ddof=1).mean() == pytest.approx(0.25, rel=0.05)
    assert float(np.abs(fc.u10m - MEAN["u10m"]).max()) < 1e-3  # not listed: not perturbed
    again = _identity_run(me)
    xr.testing.assert_equal(fc, again)  # seeded


def test_weight_members_share_the_noise_so_it_stays_aleatoric():
    me = ModelError(amplitude={1: {"t2m": 0.5}}, length_scale=2.0)
    fc = _identity_run(me, leads=(1,), members=3, weights=2)
    np.testing.assert_array_equal(fc.t2m.isel(weight_member=0).values, fc.t2m.isel(weight_member=1).values)
    assert float(fc.t2m.std("noise_member").mean()) > 1.0  # members differ (0.5 x 5 K)


def test_steps_not_calibrated_get_no_noise_and_hta_paths_continue_the_noise():
    family = LinearFamily(np.eye(len(VARIABLES)), steps=(1, 6))
    times = pd.date_range("2020-06-01", periods=2, freq="h")
    data = xr.Dataset({v: (("time", "y", "x"), np.full((2, 16, 16), MEAN[v], np.float32)) for v in VARIABLES},
                      coords={"time": times})
    me = ModelError(amplitude={6: {"t2m": 0.4}}, length_scale=0.0)
    spec = EnsembleSpec(noise_members=32, noise_scale=0.0, model_error=me)
    fc = run_forecast(family, data, times[:1], pd.to_timedelta([1, 6, 7], unit="h"), members=spec, progress=False)
    t = (fc.t2m - MEAN["t2m"]).isel(init_time=0, weight_member=0).values / STD["t2m"]
    assert np.abs(t[0]).max() < 1e-4  # the 1-h step has no amplitude
    assert t[1].std(axis=0, ddof=1).mean() == pytest.approx(0.4, rel=0.06)
    np.testing.assert_allclose(t[2], t[1], atol=1e-5)  # 7 h = 6 h + an unperturbed 1-h step


def test_calibrated_variance_by_hand():
    # W = 3, N = 3: MSE 10 = e (4/3) + a (4/3) + q -> q = 10 - 4 - 2 = 4
    assert calibrated_variance(10.0, 3.0, 1.5, 3, 3) == pytest.approx(4.0)
    assert calibrated_variance(1.0, 3.0, 1.5, 3, 3) == 0.0  # already dispersive: no noise
    assert calibrated_variance(5.0, 0.0, 2.0, 1, 4) == pytest.approx(5.0 - 2.0 * 1.25)
    with pytest.raises(ModelErrorError, match="mse"):
        calibrated_variance(float("nan"), 1.0, 1.0, 3, 3)


def test_calibration_recovers_a_known_model_error_on_a_synthetic_ensemble():
    """Truth = centre + weight error + initial error + model error of variance 2.25; the members know the
    first two only (crossed: every weight member sees each initial perturbation). The calibration must
    give back 2.25, and the ensemble with it must be consistent (spread-skill 1)."""
    rng = np.random.default_rng(0)
    n, w, m, q = 200_000, 3, 3, 2.25
    se, sa = 0.8, 0.5
    centre = rng.normal(0, 3, n)
    truth = centre + rng.normal(0, se, n) + rng.normal(0, sa, n) + rng.normal(0, np.sqrt(q), n)
    x = centre[:, None, None] + rng.normal(0, se, (n, w, 1)) + rng.normal(0, sa, (n, 1, m))
    mse = float(((x.mean(axis=(1, 2)) - truth) ** 2).mean())
    epi = float(x.mean(axis=2).var(axis=1, ddof=1).mean())
    ale = float(x.var(axis=2, ddof=1).mean())
    got = calibrated_variance(mse, epi, ale, w, m)
    assert got == pytest.approx(q, rel=0.03)
    # centred noise of that variance (shared by the weight members) raises the within-member variance by
    # q and leaves the mean, so the ensemble is consistent: MSE = e (1 + 1/W) + a (1 + 1/N) + q
    noise = torch.as_tensor(rng.normal(0, np.sqrt(got), (n * m, 1)))
    c = centred(noise, m).numpy().reshape(n, 1, m)
    x2 = x + c
    np.testing.assert_allclose(x2.mean(axis=(1, 2)), x.mean(axis=(1, 2)), atol=1e-12)
    ale2 = float(x2.var(axis=2, ddof=1).mean())
    assert ale2 - ale == pytest.approx(q, rel=0.03)
    assert (epi * (1 + 1 / w) + ale * (1 + 1 / m) + (ale2 - ale)) / mse == pytest.approx(1.0, abs=0.02)


def test_default_ensemble_reads_the_calibration_file(tmp_path, monkeypatch):
    from workbench.workflow.calibration import load_calibration, save_calibration
    from workbench.workflow.start import default_model, model_error_spec

    path = tmp_path / "cal.json"
    save_calibration("linear", {"model_error": {"amplitude": {"1": {"t2m": 2.5}}, "length_km": 48.0}},
                     default_model="linear", path=path)
    monkeypatch.setenv("WORKBENCH_ENSEMBLE_CALIBRATION", str(path))
    assert default_model() == "linear" and load_calibration()["models"]["linear"]["model_error"]["length_km"] == 48
    me = model_error_spec("linear", [LinearForecaster(np.eye(3))], spacing_km=24.0)
    assert me.amplitude == {1: {"t2m": 0.5}}  # 2.5 K / std 5 K
    assert me.length_scale == pytest.approx(2.0)
    assert model_error_spec("other", [LinearForecaster(np.eye(3))], 24.0) is None
    path.write_text(json.dumps({"models": {"linear": {"model_error": {"amplitude": {"1": {"q": 1.0}},
                                                                      "length_km": 10}}}}))
    with pytest.raises(Exception, match="does not\\s+forecast"):
        model_error_spec("linear", [LinearForecaster(np.eye(3))], 24.0)



def test_shipped_calibration_chooses_a_model_and_keeps_its_validation_numbers():
    from workbench.workflow.calibration import CALIBRATION_FILE, load_calibration

    doc = load_calibration(CALIBRATION_FILE)
    name = doc["default_model"]
    entry = doc["models"][name]
    assert entry["validation"]["sample"] == "validation"
    assert set(entry["model_error"]["amplitude"]) <= {"1", "6", "24"}
    assert "tp" not in entry["model_error"]["amplitude"]["24"]



def test_centred_initial_perturbations_leave_the_mean_at_the_analysis():
    times = pd.date_range("2020-06-01", periods=2, freq="h")
    data = xr.Dataset({v: (("time", "y", "x"), np.full((2, 24, 24), MEAN[v], np.float32)) for v in VARIABLES},
                      coords={"time": times})

    def run(centred):
        spec = EnsembleSpec(noise_members=3, noise_scale=0.2, length_scale=2.0, seed=5, centred=centred)
        fc = run_forecast(LinearForecaster(np.eye(3)), data, times[:1], pd.to_timedelta([1], unit="h"),
                          members=spec, progress=False)
        return (fc.t2m.isel(init_time=0, lead_time=0, weight_member=0).values - MEAN["t2m"]) / STD["t2m"]

    plain, centred = run(False), run(True)
    assert np.abs(plain.mean(axis=0)).mean() > 0.05  # three draws: their mean is ~0.2 / sqrt(3) off
    np.testing.assert_allclose(centred.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(centred, plain - plain.mean(axis=0), atol=1e-5)  # the same draws, centred
    assert EnsembleSpec(centred=True).signature()["centred"] is True and "centred" not in EnsembleSpec().signature()
