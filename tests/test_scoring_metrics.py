"""The plain metrics against hand-computed values and brute-force formulas."""

import itertools

import numpy as np
import pytest
import xarray as xr

from workbench.errors import DataError
from workbench.scoring import (
    acc,
    bias,
    crps_ensemble,
    mae,
    mean_error,
    rank_histogram,
    rmse,
    spread,
    spread_skill_ratio,
    variance_split,
)


def _da(values, dims=("x",)):
    return xr.DataArray(np.asarray(values, dtype=float), dims=dims)


FCST = _da([1.0, 2.0, 3.0, 4.0])
OBS = _da([1.0, 1.0, 1.0, 1.0])
W = _da([1.0, 1.0, 2.0, 0.0])  # errors 0, 1, 2, 3 weighted 1, 1, 2, 0


def test_weighted_rmse_mae_bias_by_hand():
    # sum w e^2 = 0 + 1 + 8 + 0 = 9, sum w = 4
    assert float(rmse(FCST, OBS, weights=W)) == pytest.approx(1.5)
    assert float(mae(FCST, OBS, weights=W)) == pytest.approx(5 / 4)
    assert float(bias(FCST, OBS, weights=W)) == pytest.approx(5 / 4)
    assert mean_error is bias
    # unweighted: errors 0, 1, 2, 3
    assert float(rmse(FCST, OBS)) == pytest.approx(np.sqrt(14 / 4))
    assert float(bias(OBS, FCST)) == pytest.approx(-1.5)


def test_nan_is_skipped_not_averaged_as_zero():
    obs = _da([1.0, np.nan, 1.0, 1.0])
    # the NaN point leaves numerator and sum of weights: (0 + 8 + 0) / (1 + 2 + 0)
    assert float(rmse(FCST, obs, weights=W)) == pytest.approx(np.sqrt(8 / 3))
    assert float(mae(FCST, obs, weights=W)) == pytest.approx(4 / 3)


def test_weighted_acc_by_hand():
    clim = _da([0.0, 0.0, 0.0, 0.0])
    # f' = 1,2,3,4; o' = 1,1,1,1; w = 1,1,2,0: sum w f'o' = 9, sum w f'^2 = 23, sum w o'^2 = 4
    assert float(acc(FCST, OBS, clim, weights=W)) == pytest.approx(9 / np.sqrt(23 * 4))
    assert float(acc(FCST, FCST, clim)) == pytest.approx(1.0)
    assert float(acc(-FCST, FCST, clim)) == pytest.approx(-1.0)


def test_reduce_and_preserve_dims():
    f = xr.DataArray([[1.0, 3.0], [2.0, 2.0]], dims=("t", "x"))
    o = xr.zeros_like(f)
    np.testing.assert_allclose(rmse(f, o, preserve_dims="t").values, [np.sqrt(5), 2.0])
    np.testing.assert_allclose(rmse(f, o, reduce_dims=["x"]).values, [np.sqrt(5), 2.0])
    np.testing.assert_allclose(mae(f, o, preserve_dims="all").values, f.values)
    np.testing.assert_allclose(
        bias(f, o, reduce_dims="t", weights=_da([1.0, 3.0], ("t",))).values, [1.75, 2.25]
    )
    with pytest.raises(DataError, match="not both"):
        rmse(f, o, reduce_dims="t", preserve_dims="x")
    with pytest.raises(DataError, match="not dimensions"):
        rmse(f, o, reduce_dims="nope")
    with pytest.raises(DataError, match="NaN"):
        rmse(f, o, weights=_da([1.0, np.nan], ("x",)))
    with pytest.raises(DataError, match="negative"):
        rmse(f, o, weights=_da([1.0, -1.0], ("x",)))


def _brute_fair_crps(members, y):
    m = len(members)
    skill = np.mean([abs(x - y) for x in members])
    pairs = sum(abs(a - b) for a, b in itertools.product(members, members))
    return skill - pairs / (2 * m * (m - 1))


def test_fair_crps_by_hand_and_brute_force():
    # members 0 and 2, truth 1: skill 1, sum |xi - xj| = 4 -> 1 - 4 / (2*2*1) = 0
    ens = xr.DataArray([[0.0, 2.0]], dims=("x", "member"))
    assert float(crps_ensemble(ens, _da([1.0]))) == pytest.approx(0.0)
    # truth 3: skill (3 + 1) / 2 = 2, minus 4 / 4
    assert float(crps_ensemble(ens, _da([3.0]))) == pytest.approx(1.0)

    rng = np.random.default_rng(3)
    values = rng.normal(size=(7, 5))
    obs = rng.normal(size=7)
    weights = rng.uniform(0.1, 1.0, size=7)
    brute = np.array([_brute_fair_crps(values[i], obs[i]) for i in range(7)])
    ens = xr.DataArray(values, dims=("x", "member"))
    got = crps_ensemble(ens, _da(obs), preserve_dims="all")
    np.testing.assert_allclose(got.values, brute, rtol=1e-12)
    weighted = crps_ensemble(ens, _da(obs), weights=_da(weights))
    assert float(weighted) == pytest.approx(np.sum(weights * brute) / np.sum(weights), rel=1e-12)


def test_fair_crps_matches_scores_package():
    scores_probability = pytest.importorskip("scores.probability")
    rng = np.random.default_rng(4)
    ens = xr.DataArray(rng.normal(size=(6, 4, 8)), dims=("t", "x", "member"))
    obs = xr.DataArray(rng.normal(size=(6, 4)), dims=("t", "x"))
    ref = scores_probability.crps_for_ensemble(
        ens, obs, ensemble_member_dim="member", method="fair", preserve_dims="t"
    )
    np.testing.assert_allclose(crps_ensemble(ens, obs, preserve_dims="t").values, ref.values, rtol=1e-10)


def test_crps_pools_two_member_dims_and_needs_two_members():
    rng = np.random.default_rng(5)
    values = rng.normal(size=(3, 2, 4))
    ens = xr.DataArray(values, dims=("x", "weight_member", "noise_member"))
    obs = rng.normal(size=3)
    got = crps_ensemble(ens, _da(obs), member_dim=("weight_member", "noise_member"), preserve_dims="all")
    np.testing.assert_allclose(got.values, [_brute_fair_crps(values[i].ravel(), obs[i]) for i in range(3)])
    with pytest.raises(DataError, match="at least 2"):
        crps_ensemble(xr.DataArray([[1.0]], dims=("x", "member")), _da([1.0]))


def test_spread_and_spread_skill_ratio_by_hand():
    ens = xr.DataArray([[0.0, 2.0], [1.0, 1.0]], dims=("x", "member"))
    # unbiased variances 2 and 0, weights 1 and 1 -> spread sqrt(1)
    assert float(spread(ens)) == pytest.approx(1.0)
    assert float(spread(ens, ddof=0)) == pytest.approx(np.sqrt(0.5))
    # the obs NaN drops the second point: spread sqrt(2)
    assert float(spread(ens, _da([0.0, np.nan]))) == pytest.approx(np.sqrt(2.0))
    # ensemble means 1 and 1, truth 0 and 0: rmse 1; ssr = sqrt(3/2) * 1 / 1
    assert float(spread_skill_ratio(ens, _da([0.0, 0.0]))) == pytest.approx(np.sqrt(1.5))


def test_rank_histogram_by_hand():
    ens = xr.DataArray([[0.0, 2.0]] * 4, dims=("x", "member"))
    obs = _da([-1.0, 1.0, 3.0, 5.0])  # ranks 0, 1, 2, 2
    hist = rank_histogram(ens, obs)
    np.testing.assert_allclose(hist.values, [0.25, 0.25, 0.5])
    assert hist["rank"].values.tolist() == [0, 1, 2]
    weighted = rank_histogram(ens, obs, weights=_da([2.0, 1.0, 1.0, 0.0]))
    np.testing.assert_allclose(weighted.values, [0.5, 0.25, 0.25])
    # a tie with both members is split at random between ranks 0..2, reproducibly
    tied = rank_histogram(xr.DataArray([[1.0, 1.0]] * 3000, dims=("x", "member")), _da([1.0] * 3000))
    np.testing.assert_allclose(tied.values, [1 / 3] * 3, atol=0.03)
    assert np.array_equal(
        tied.values,
        rank_histogram(xr.DataArray([[1.0, 1.0]] * 3000, dims=("x", "member")), _da([1.0] * 3000)).values,
    )


def test_variance_split_is_the_law_of_total_variance():
    rng = np.random.default_rng(6)
    n_w, n_n = 3, 4
    values = rng.normal(size=(5, n_w, n_n)) * np.array([1.0, 2.0, 0.5])[None, :, None] + rng.normal(
        size=(5, n_w, 1)
    )
    ens = xr.DataArray(values, dims=("x", "weight_member", "noise_member"))
    parts = variance_split(ens, preserve_dims="all", estimator="population")
    direct_total = values.reshape(5, -1).var(axis=1)
    direct_alea = np.mean([values[:, a].var(axis=1) for a in range(n_w)], axis=0)
    direct_epi = values.mean(axis=2).var(axis=1)
    np.testing.assert_allclose(parts["total"].values, direct_total, rtol=1e-12)
    np.testing.assert_allclose(parts["aleatoric"].values, direct_alea, rtol=1e-12)
    np.testing.assert_allclose(parts["epistemic"].values, direct_epi, rtol=1e-12)
    np.testing.assert_allclose(direct_alea + direct_epi, direct_total, rtol=1e-12)
    w = _da(rng.uniform(0.5, 1.5, 5))
    reduced = variance_split(ens, weights=w)
    assert float(reduced["total"]) == pytest.approx(
        float(reduced["aleatoric"] + reduced["epistemic"]), rel=1e-12
    )
    # default: the unbiased one-way ANOVA components (ddof=1 within, between minus within / N)
    anova = variance_split(ens, preserve_dims="all")
    hand_alea = np.mean([values[:, a].var(axis=1, ddof=1) for a in range(n_w)], axis=0)
    hand_epi = values.mean(axis=2).var(axis=1, ddof=1) - hand_alea / n_n
    np.testing.assert_allclose(anova["aleatoric"].values, hand_alea, rtol=1e-12)
    np.testing.assert_allclose(anova["epistemic"].values, hand_epi, rtol=1e-12)
    np.testing.assert_allclose(anova["total"].values, hand_alea + hand_epi, rtol=1e-12)


def test_rank_histogram_and_variance_split_with_dask_observations():
    rng = np.random.default_rng(11)
    values = rng.normal(size=(4, 6, 2, 3))
    values[:, :3] = 0.0  # precipitation-like ties: members and observation all zero
    ens = xr.DataArray(values, dims=("init_time", "x", "weight_member", "noise_member"))
    obs = xr.DataArray(rng.normal(size=(4, 6)), dims=("init_time", "x"))
    obs[:, :3] = 0.0
    obs[1, 4] = np.nan
    w = _da(rng.uniform(0.5, 1.5, 6))
    members = ["weight_member", "noise_member"]
    hist = rank_histogram(ens, obs, member_dim=members, weights=w, preserve_dims="init_time")
    split = variance_split(ens, obs, weights=w, preserve_dims="init_time")
    assert hist.sizes == {"rank": 7, "init_time": 4}
    np.testing.assert_allclose(hist.sum("rank").values, 1.0)
    for fcst, truth in [
        (ens, obs.chunk()),
        (ens, obs.chunk({"init_time": 1, "x": 4})),
        (ens.chunk({"x": 2, "noise_member": 1}), obs.chunk({"init_time": 3})),
    ]:
        lazy_hist = rank_histogram(fcst, truth, member_dim=members, weights=w, preserve_dims="init_time")
        assert lazy_hist.chunks is not None
        np.testing.assert_array_equal(lazy_hist.values, hist.values)
        lazy_split = variance_split(fcst, truth, weights=w, preserve_dims="init_time")
        for name in ("total", "aleatoric", "epistemic"):
            np.testing.assert_allclose(lazy_split[name].values, split[name].values, rtol=1e-12)
