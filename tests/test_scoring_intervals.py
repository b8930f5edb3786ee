"""decompose with bootstrap bounds from its per-init statistics, the RMSE conventions, and the
unbiased (ANOVA) epistemic/aleatoric split."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from test_scoring_decompose import aligned, make_case

from workbench.errors import DataError
from workbench.scoring import ScoringWarning, decompose, rmse
from workbench.scoring.bootstrap import block_counts, interval_levels
from workbench.scoring.conventions import coarsen_mean, ensemble_mean, physical_mean


def test_confidence_bounds_equal_a_bootstrap_of_the_per_init_scores():
    fc, truth, masks, weights = make_case(n_init=8)
    out = decompose(
        fc, truth, masks, weights=weights, confidence=0.9, n_resamples=400, block_length=2, seed=7
    )
    assert {"rmse_low", "rmse_high", "mae_low", "csi_low"} & set(out.data_vars) == {
        "rmse_low",
        "rmse_high",
        "mae_low",
    }
    assert out.attrs["confidence"] == 0.9
    tr, regions = aligned(fc, truth, masks)
    counts = block_counts(8, 400, 2, seed=7).astype(float)
    levels = interval_levels(8, 2, 0.9)
    for name in ("all", "extreme", "hail"):
        r = rmse(
            fc["t2m"], tr["t2m"], weights=weights * regions[name], preserve_dims=["init_time", "lead_time"]
        )
        r = r.transpose("init_time", "lead_time").values
        ok = np.isfinite(r)
        boot = (counts @ np.where(ok, r, 0.0)) / (counts @ ok)
        low, high = np.quantile(boot, levels, axis=0)
        got = out.sel(variable="t2m", region=name)
        np.testing.assert_allclose(got["rmse_low"].values, low, rtol=1e-10)
        np.testing.assert_allclose(got["rmse_high"].values, high, rtol=1e-10)
        assert (got["rmse_low"] <= got["rmse"]).all() and (got["rmse"] <= got["rmse_high"]).all()
    # the point values do not change when bounds are asked for
    plain = decompose(fc, truth, masks, weights=weights)
    xr.testing.assert_allclose(plain["rmse"], out["rmse"], rtol=1e-12)
    with pytest.raises(DataError, match="confidence"):
        decompose(fc, truth, masks, weights=weights, confidence=90)
    with pytest.raises(DataError, match="rmse_average"):
        decompose(fc, truth, masks, weights=weights, rmse_average="mean")


def _hierarchical_case(w=3, n=4, sigma_e2=0.49, sigma_a2=0.25, n_points=40000, seed=0):
    """A perfect two-level ensemble: truth and members drawn from the same hierarchy."""
    rng = np.random.default_rng(seed)
    ny, nx = 200, n_points // 200
    centre = rng.normal(size=(ny, nx))

    epi = np.sqrt(sigma_e2) * rng.normal(size=(w, 1, ny, nx))
    members = centre + epi + np.sqrt(sigma_a2) * rng.normal(size=(w, n, ny, nx))
    truth = (
        centre + np.sqrt(sigma_e2) * rng.normal(size=(ny, nx)) + np.sqrt(sigma_a2) * rng.normal(size=(ny, nx))
    )
    t0 = pd.Timestamp("2020-06-01")
    coords = {"y": np.arange(ny) * 3000.0, "x": np.arange(nx) * 3000.0}
    fc = xr.Dataset(
        {
            "t2m": (
                ("init_time", "lead_time", "weight_member", "noise_member", "y", "x"),
                members[None, None] + 280,
            )
        },
        coords={"init_time": [t0], "lead_time": [np.timedelta64(0, "h")], **coords},
    )
    fc["t2m"].attrs["units"] = "K"
    fc = fc.assign_coords(valid_time=fc["init_time"] + fc["lead_time"])
    tr = xr.Dataset(
        {"t2m": (("time", "y", "x"), truth[None] + 280, {"units": "K"})}, coords={"time": [t0], **coords}
    )
    return fc, tr


def test_anova_split_recovers_the_true_epistemic_variance():
    fc, tr = _hierarchical_case()
    w = xr.ones_like(tr["t2m"].isel(time=0, drop=True))
    anova = decompose(fc, tr, weights=w).sel(variable="t2m", region="all").isel(lead_time=0)
    pop = decompose(fc, tr, weights=w, spread_estimator="population").sel(variable="t2m", region="all")
    pop = pop.isel(lead_time=0)
    # population variance of 3 member means: (W-1)/W (0.49 + 0.25/4) = 0.368, the biased value
    assert float(pop["spread_epistemic"]) == pytest.approx(2 / 3 * (0.49 + 0.25 / 4), abs=0.01)
    assert float(anova["spread_epistemic"]) == pytest.approx(0.49, abs=0.015)
    assert float(anova["spread_aleatoric"]) == pytest.approx(0.25, abs=0.005)
    # exact relation between the two estimators (W=3, N=4)
    alea = 4 / 3 * float(pop["spread_aleatoric"])
    assert float(anova["spread_aleatoric"]) == pytest.approx(alea, rel=1e-12)
    assert float(anova["spread_epistemic"]) == pytest.approx(
        1.5 * float(pop["spread_epistemic"]) - alea / 4, rel=1e-12
    )
    # a perfect ensemble has total spread-skill 1 with the per-part corrections
    assert float(anova["spread_skill_total"]) == pytest.approx(1.0, abs=0.02)
    np.testing.assert_allclose(
        float(anova["spread_skill_total"]) ** 2,
        float(anova["spread_skill_aleatoric"]) ** 2 + float(anova["spread_skill_epistemic"]) ** 2,
        rtol=1e-12,
    )


def test_acc_records_the_climatology_named_in_the_call_and_warns_when_unnamed():
    fc, truth, masks, weights = make_case()
    clim = truth.mean("time")
    out = decompose(
        fc, truth, masks, weights=weights, climatology=clim, climatology_name="sample mean, all times"
    )
    assert out["acc"].attrs["climatology"] == "sample mean, all times"
    named = clim.assign_attrs(climatology_name="hour-of-day mean")
    assert (
        decompose(fc, truth, masks, weights=weights, climatology=named).attrs["climatology"]
        == "hour-of-day mean"
    )
    with pytest.warns(ScoringWarning, match="unnamed climatology"):
        decompose(fc, truth, masks, weights=weights, climatology=clim)


def test_reflectivity_is_averaged_in_linear_units():
    dbz = xr.DataArray([[0.0, 20.0], [60.0, 20.0]], dims=("member", "x"), attrs={"units": "dBZ"})
    mean = ensemble_mean(dbz, "member")
    # 10 log10((1 + 1e6) / 2) = 57.0 dBZ, not the 30 dBZ of the arithmetic mean
    assert mean.values.tolist() == pytest.approx([10 * np.log10((1 + 1e6) / 2), 20.0], rel=1e-12)
    assert mean.attrs["units"] == "dBZ"
    w = xr.DataArray([3.0, 1.0], dims="x")
    assert float(physical_mean(dbz.isel(member=1), "x", weights=w)) == pytest.approx(
        10 * np.log10((3e6 + 1e2) / 4), rel=1e-12
    )
    kelvin = dbz.assign_attrs(units="K")
    assert ensemble_mean(kelvin, "member").values.tolist() == [30.0, 20.0]  # other units: arithmetic
    field = xr.DataArray(np.array([[0.0, 60.0, 10.0, 10.0]]), dims=("y", "x"), attrs={"units": "dBZ"})
    coarse = coarsen_mean(field, {"x": 2})
    assert coarse.values.ravel().tolist() == pytest.approx([10 * np.log10((1 + 1e6) / 2), 10.0], rel=1e-12)
    with pytest.raises(DataError, match="not dimensions"):
        physical_mean(dbz, "time")


@pytest.mark.parametrize("engine", ["numpy", "numba", "torch"])
@pytest.mark.parametrize("split", [False, True])
def test_decompose_takes_the_reflectivity_ensemble_mean_in_linear_units(engine, split):
    """Members 0 and 60 dBZ against a truth of 50 dBZ: the scored mean is 10 log10((1 + 1e6)/2) dBZ."""
    times = pd.date_range("2020-06-01", periods=2, freq="h")
    y, x = np.arange(2) * 3000.0, np.arange(3) * 3000.0
    members = np.zeros((2, 3))
    members[1] = 60.0  # half the members at 0 dBZ, half at 60 dBZ, in every cell
    if split:  # (weight_member 2, noise_member 2): members 0, 0 | 60, 60
        pairs = np.array([[0.0, 0.0], [60.0, 60.0]])[:, :, None, None]
        data = np.broadcast_to(pairs, (2, 2, 2, 3))[None, None].copy()
        dims = ("init_time", "lead_time", "weight_member", "noise_member", "y", "x")
    else:
        data = np.broadcast_to(members[:, :1, None], (2, 2, 3))[None, None].copy()
        dims = ("init_time", "lead_time", "member", "y", "x")
    fc = xr.Dataset(
        {"refc": (dims, data, {"units": "dBZ"})},
        coords={"init_time": times[:1], "lead_time": pd.to_timedelta([1], "h").values, "y": y, "x": x},
    )
    truth = xr.Dataset(
        {"refc": (("time", "y", "x"), np.full((2, 2, 3), 50.0), {"units": "dBZ"})},
        coords={"time": times, "y": y, "x": x},
    )
    clim = xr.Dataset(
        {"refc": (("y", "x"), np.full((2, 3), 20.0), {"units": "dBZ"})}, coords={"y": y, "x": x}
    )
    weights = xr.DataArray(np.ones((2, 3)), dims=("y", "x"))
    out = (
        decompose(fc, truth, weights=weights, climatology=clim, climatology_name="flat 20 dBZ", engine=engine)
        .sel(variable="refc", region="all")
        .isel(lead_time=0)
    )
    fbar = 10 * np.log10((1 + 1e6) / 2)  # 56.99 dBZ; the arithmetic mean would be 30 dBZ
    assert float(out["bias"]) == pytest.approx(fbar - 50.0, rel=1e-9)
    assert float(out["rmse"]) == pytest.approx(fbar - 50.0, rel=1e-9)
    # spread stays the members' dispersion in dB around their arithmetic mean: 30 dB, unbiased
    m = data.shape[2] * (data.shape[3] if split else 1)
    assert float(out["spread"]) == pytest.approx(30.0 * np.sqrt(m / (m - 1)), rel=1e-9)
    # a variable in other units (not a lexicon name, so its units are its own): the arithmetic mean
    other = decompose(
        fc.rename(refc="x_field").assign(x_field=lambda d: d["x_field"].assign_attrs(units="K")),
        truth.rename(refc="x_field").assign(x_field=lambda d: d["x_field"].assign_attrs(units="K")),
        weights=weights,
        engine=engine,
    ).sel(variable="x_field", region="all")
    assert float(other["bias"].isel(lead_time=0)) == pytest.approx(30.0 - 50.0, rel=1e-12)
