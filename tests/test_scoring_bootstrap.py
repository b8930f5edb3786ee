"""Block bootstrap over initial times and paired tests: coverage at the nominal rate on synthetic
data with a known answer, and the Diebold-Mariano statistic against ``scores``."""

import time

import numpy as np
import pytest
import xarray as xr
from scores.stats.statistical_tests import diebold_mariano as scores_diebold_mariano

from workbench.errors import DataError
from workbench.scoring.bootstrap import (
    auto_block_length,
    block_bootstrap,
    block_counts,
    interval_levels,
    resample_sums,
)
from workbench.scoring.significance import diebold_mariano, paired_bootstrap


def _ar1(n, phi, rng):
    e = rng.normal(size=n)
    z = np.empty(n)
    z[0] = e[0]
    for i in range(1, n):
        z[i] = phi * z[i - 1] + np.sqrt(1 - phi**2) * e[i]
    return z


def _per_init_sums(n, phi, rng, n_points=200):
    """Per-init sums of squared errors whose level follows a regime (AR(1) over inits)."""
    scale = np.exp(0.2 * _ar1(n, phi, rng))
    err = rng.normal(size=(n, n_points)) * scale[:, None]
    return xr.Dataset(
        {
            "swe2": ("init_time", (err**2).sum(1)),
            "sw": ("init_time", np.full(n, float(n_points))),
        }
    )


def _rmse(sums):
    return np.sqrt(sums["swe2"] / sums["sw"])


def test_block_counts_draw_blocks_of_consecutive_inits():
    counts = block_counts(20, 300, block_length=5, seed=3)
    assert counts.shape == (300, 20) and (counts.sum(1) == 20).all()
    # circular blocks: every init is drawn equally often on average
    assert np.allclose(counts.mean(0), 1.0, atol=0.15)
    assert np.array_equal(counts, block_counts(20, 300, block_length=5, seed=3))  # seeded
    one = block_counts(6, 1, block_length=6, seed=0)
    assert (one == 1).all()  # a single block of all inits is the sample itself
    s = resample_sums(np.arange(6.0)[:, None] * [1, 2], one)
    assert s.tolist() == [[15.0, 30.0]]
    with pytest.raises(DataError, match="block_length"):
        block_counts(5, 10, block_length=9)


def test_auto_block_length_grows_with_autocorrelation():
    rng = np.random.default_rng(0)
    white = auto_block_length(_ar1(200, 0.0, rng))
    red = auto_block_length(_ar1(200, 0.6, rng))
    assert white <= 7 and red >= 2 * white
    lo, hi = interval_levels(60, 4, 0.9)
    assert lo < 0.05 and hi == pytest.approx(1 - lo)  # expanded: wider than the plain 5-95 %
    assert interval_levels(60, 4, 0.9, "percentile") == pytest.approx((0.05, 0.95))


def test_bootstrap_interval_covers_the_truth_at_its_nominal_rate():
    """500 seeded trials of 60 inits with autocorrelated error levels; RMSE from per-init sums."""
    # CPU time, not wall time: the 30 s budget is the work's, whatever else shares the machine
    start = time.process_time()
    truth = np.sqrt(np.exp(2 * 0.2**2))  # E[scale^2] of the lognormal scale, unit-variance errors
    covered = 0
    n_trials = 500
    for trial in range(n_trials):
        rng = np.random.default_rng(trial)
        sums = _per_init_sums(60, 0.3, rng)
        out = block_bootstrap(sums, _rmse, n_resamples=1000, confidence=0.9, seed=trial)
        covered += float(out.sel(bound="low")) <= truth <= float(out.sel(bound="high"))
    rate = covered / n_trials
    assert abs(rate - 0.9) <= 0.03, rate
    assert time.process_time() - start < 30


def test_block_bootstrap_estimate_is_the_pooled_score_and_bounds_bracket_it():
    sums = _per_init_sums(30, 0.0, np.random.default_rng(1))
    out = block_bootstrap(sums, _rmse, n_resamples=500, seed=0)
    est = float(np.sqrt(sums["swe2"].sum() / sums["sw"].sum()))
    assert float(out.sel(bound="estimate")) == pytest.approx(est, rel=1e-12)
    assert float(out.sel(bound="low")) < est < float(out.sel(bound="high"))
    assert out.attrs["n_resamples"] == 500
    with pytest.raises(DataError, match="init_time"):
        block_bootstrap(sums.rename(init_time="t"), _rmse)


@pytest.mark.parametrize("h", [1, 2, 3])
def test_diebold_mariano_matches_scores_hln(h):
    rng = np.random.default_rng(h)
    a = xr.DataArray(rng.normal(0.2, 1, (3, 40)), dims=("lead", "init_time"))
    b = xr.DataArray(rng.normal(0.0, 1, (3, 40)), dims=("lead", "init_time"))
    ours = diebold_mariano(a, b, h=h, distribution="normal")
    ref = scores_diebold_mariano((a - b).assign_coords(h=("lead", [h] * 3)), "lead", "h", method="HLN")
    np.testing.assert_allclose(ours["dm_statistic"], ref["dm_test_stat"], rtol=1e-10)
    # two-sided p from the one-sided confidence of scores
    conf = ref["confidence_gt_0"].values
    np.testing.assert_allclose(ours["p_value"], 2 * np.minimum(conf, 1 - conf), rtol=1e-10)


def test_paired_tests_find_a_real_difference_and_not_a_false_one():
    rng = np.random.default_rng(5)
    common = rng.normal(size=60)  # shared weather: cancels in the pairing
    ref = xr.DataArray(2 + common + 0.1 * rng.normal(size=60), dims="init_time")
    better = ref - 0.1 + 0.1 * rng.normal(size=60)
    same = ref + 0.1 * rng.normal(size=60)
    res = paired_bootstrap(better, ref, seed=0)
    assert bool(res["significant"]) and float(res["high"]) < 0 and float(res["p_value"]) < 0.01
    assert float(diebold_mariano(better, ref)["p_value"]) < 0.01
    res = paired_bootstrap(same, ref, seed=0)
    assert not bool(res["significant"]) and float(res["low"]) < 0 < float(res["high"])
    assert float(diebold_mariano(same, ref, kernel="bartlett", h=2)["p_value"]) > 0.1
    with pytest.raises(DataError, match="kernel"):
        diebold_mariano(same, ref, kernel="parzen")
