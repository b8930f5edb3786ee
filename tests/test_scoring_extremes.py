"""Categorical, neighbourhood and probabilistic scores against the ``scores`` package (named in each
test) or a hand formula, on random data with NaNs and weights, to 1e-10 relative."""

import numpy as np
import pytest
import xarray as xr
from scores.categorical import BinaryContingencyManager, probability_of_detection
from scores.probability import brier_score as scores_brier_score
from scores.probability import crps_for_ensemble, roc_curve_data, tail_tw_crps_for_ensemble
from scores.spatial import fss_2d

from workbench.errors import DataError
from workbench.scoring.categorical import contingency_scores, contingency_table, thresholds_from_rules
from workbench.scoring.neighbourhood import fss, fss_scales, window_cells
from workbench.scoring.probabilistic import (
    brier_decomposition,
    brier_score,
    energy_score,
    probability_of_exceedance,
    reliability_diagram,
    roc,
    tw_crps,
)

RTOL = 1e-10
rng = np.random.default_rng(20261203)
FCST = xr.DataArray(rng.gamma(0.5, 2.0, (5, 24, 32)), dims=("time", "y", "x"))
OBS = xr.DataArray(rng.gamma(0.5, 2.0, (5, 24, 32)), dims=("time", "y", "x"))
FCST_NAN = FCST.where(rng.random(FCST.shape) > 0.05)
OBS_NAN = OBS.where(rng.random(OBS.shape) > 0.05)
W = xr.DataArray(rng.random((24, 32)), dims=("y", "x"))
ENS = xr.DataArray(rng.normal(size=(4, 12, 16, 7)), dims=("time", "y", "x", "member"))
TRUTH = xr.DataArray(rng.normal(size=(4, 12, 16)), dims=("time", "y", "x")).where(
    rng.random((4, 12, 16)) > 0.05
)
W_ENS = xr.DataArray(rng.random((12, 16)), dims=("y", "x"))


def _close(a, b):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=RTOL, atol=1e-14)


# --- categorical -----------------------------------------------------------------------------------


@pytest.mark.parametrize("t", [0.5, 1.0, 3.0])
def test_contingency_scores_match_scores_binary_contingency_manager(t):
    ds = contingency_scores(FCST_NAN, OBS_NAN, [0.5, 1.0, 3.0], preserve_dims="time").sel(threshold=t)
    valid = FCST_NAN.notnull() & OBS_NAN.notnull()
    ref = BinaryContingencyManager((t <= FCST_NAN).where(valid), (t <= OBS_NAN).where(valid))
    ref = ref.transform(preserve_dims=["time"])
    _close(ds["pod"], ref.probability_of_detection())
    _close(ds["far"], ref.false_alarm_ratio())
    _close(ds["pofd"], ref.probability_of_false_detection())
    _close(ds["csi"], ref.critical_success_index())
    _close(ds["ets"], ref.equitable_threat_score())
    _close(ds["frequency_bias"], ref.frequency_bias())
    _close(ds["sedi"], ref.symmetric_extremal_dependence_index())
    counts = ref.get_counts()
    _close(ds["hits"], counts["tp_count"])
    _close(ds["misses"], counts["fn_count"])
    _close(ds["false_alarms"], counts["fp_count"])
    _close(ds["correct_negatives"], counts["tn_count"])


def test_weighted_contingency_matches_scores_probability_of_detection_and_hand_formula():
    ds = contingency_scores(FCST_NAN, OBS_NAN, 1.0, reduce_dims=("y", "x"), weights=W).squeeze("threshold")
    valid = FCST_NAN.notnull() & OBS_NAN.notnull()
    fe, oe = (FCST_NAN >= 1).where(valid), (OBS_NAN >= 1).where(valid)
    _close(ds["pod"], probability_of_detection(fe, oe, reduce_dims=("y", "x"), weights=W))
    # hand: weighted counts, ETS with the chance hits
    a = ((fe == 1) & (oe == 1)).astype(float).__mul__(W).sum(("y", "x"))
    b = ((fe == 1) & (oe == 0)).astype(float).__mul__(W).sum(("y", "x"))
    c = ((fe == 0) & (oe == 1)).astype(float).__mul__(W).sum(("y", "x"))
    d = ((fe == 0) & (oe == 0)).astype(float).__mul__(W).sum(("y", "x"))
    ar = (a + b) * (a + c) / (a + b + c + d)
    _close(ds["ets"], (a - ar) / (a + b + c - ar))
    _close(ds["frequency_bias"], (a + b) / (a + c))


def test_contingency_table_by_hand_and_empty_cases():
    f = xr.DataArray([1.0, 1.0, 0.0, 0.0, np.nan], dims="x")
    o = xr.DataArray([1.0, 0.0, 1.0, 0.0, 1.0], dims="x")
    t = contingency_table(f, o, 0.5).squeeze("threshold")
    assert [float(t[k]) for k in ("hits", "false_alarms", "misses", "correct_negatives")] == [1, 1, 1, 1]
    ds = contingency_scores(xr.zeros_like(o), xr.zeros_like(o), 0.5).squeeze("threshold")
    assert np.isnan(float(ds["pod"])) and np.isnan(float(ds["csi"]))  # never 0 or 1 when undefined


def test_compiled_table_scores_equal_the_array_formulas_and_a_hand_sedi():
    # the compiled loop (NumPy tables) and the array formulas (xarray, Dask) must agree bit for bit,
    # NaN where a denominator is 0 included: empty tables, no events, perfect forecasts
    from workbench.scoring.categorical import _table_scores_array, table_scores

    cells = np.random.default_rng(5).integers(0, 4, size=(4, 20000)).astype(float)
    cells[:, :40] = 0.0  # empty tables
    cells[0, 40:80] = cells[2, 40:80] = 0.0  # no observed event
    cells[1, 80:120] = cells[2, 80:120] = 0.0  # perfect
    fast, ref = table_scores(*cells), _table_scores_array(*cells)
    assert set(fast) == set(ref)
    for name in ref:
        np.testing.assert_array_equal(fast[name], ref[name], err_msg=name)
    assert np.isnan(fast["pod"][:80]).all() and np.isnan(fast["sedi"][80:120]).all()
    # a = 20, b = 10, c = 5, d = 65: H = 0.8, F = 10/75
    h, f = 0.8, 10 / 75
    sedi = (np.log(f) - np.log(h) - np.log(1 - f) + np.log(1 - h)) / (
        np.log(f) + np.log(h) + np.log(1 - f) + np.log(1 - h)
    )
    one = table_scores(*(np.array([v]) for v in (20.0, 10.0, 5.0, 65.0)))
    assert one["sedi"][0] == pytest.approx(sedi, rel=1e-14) and one["ets"][0] == pytest.approx(
        (20 - 30 * 25 / 100) / (35 - 30 * 25 / 100), rel=1e-14
    )


def test_contingency_scores_of_datasets_with_thresholds_from_rules():
    class Rule:
        def __init__(self, variable, value):
            self.variable, self.value = variable, value

    thr = thresholds_from_rules([Rule("tp", 1.0), Rule("gust", 2.0), Rule("t2m", None)])
    assert thr == {"tp": [1.0], "gust": [2.0]}
    f = xr.Dataset({"tp": FCST, "gust": FCST * 2})
    o = xr.Dataset({"tp": OBS, "gust": OBS * 2})
    ds = contingency_scores(f, o, thr)
    assert list(ds["variable"].values) == ["tp", "gust"]
    _close(ds["csi"].sel(variable="tp").squeeze(), ds["csi"].sel(variable="gust").squeeze())
    with pytest.raises(DataError, match="mapping"):
        contingency_scores(f, o, 1.0)
    with pytest.raises(DataError, match="operator"):
        contingency_table(FCST, OBS, 1.0, operator="=>")


def test_contingency_scores_with_dask_equal_numpy():
    ds = contingency_scores(FCST_NAN.chunk(time=2), OBS_NAN, [1.0], preserve_dims="time", weights=W)
    ref = contingency_scores(FCST_NAN, OBS_NAN, [1.0], preserve_dims="time", weights=W)
    assert ds["ets"].chunks is not None
    _close(ds["ets"].compute(), ref["ets"])


# --- neighbourhood ---------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 3, 7, 11])
def test_fss_matches_scores_fss_2d(n):
    ours = fss(FCST, OBS, 1.0, [1.0, 3.0, 7.0, 11.0], grid_spacing_km=1.0, preserve_dims="time")
    ref = fss_2d(
        FCST, OBS, event_threshold=1.0, window_size=(n, n), spatial_dims=("y", "x"), preserve_dims=["time"]
    )
    _close(ours.sel(window_km=float(n)), ref)
    pooled = fss(FCST, OBS, 1.0, float(n), grid_spacing_km=1.0)
    _close(pooled, fss_2d(FCST, OBS, event_threshold=1.0, window_size=(n, n), spatial_dims=("y", "x")))


def test_fss_with_nans_and_weights_matches_brute_force():
    n, t = 3, 1.0
    ours = fss(FCST_NAN, OBS_NAN, t, 3.0, grid_spacing_km=1.0, weights=W)
    f, o, w = FCST_NAN.values, OBS_NAN.values, W.values
    num = den = 0.0
    for k in range(f.shape[0]):
        for i in range(f.shape[1] - n + 1):
            for j in range(f.shape[2] - n + 1):
                fw, ow = f[k, i : i + n, j : j + n], o[k, i : i + n, j : j + n]
                ok = ~np.isnan(fw) & ~np.isnan(ow)
                if not ok.any():
                    continue
                pf, po = (fw[ok] >= t).mean(), (ow[ok] >= t).mean()
                wc = w[i + n // 2, j + n // 2]
                num += wc * (pf - po) ** 2
                den += wc * (pf**2 + po**2)
    _close(ours, 1 - num / den)


def test_fss_useful_scale_and_window_cells():
    assert window_cells(9.0, 3.0) == 3 and window_cells(12.0, 3.0) == 5 and window_cells(1.0, 3.0) == 1
    shifted = OBS.roll(x=2, roll_coords=False)  # a displaced forecast: useless at 1 cell, useful wider
    ds = fss_scales(shifted, OBS, 1.0, [1.0, 5.0, 9.0, 15.0], grid_spacing_km=1.0)
    f0 = float(ds["base_rate"])
    assert float(ds["fss_target"]) == pytest.approx(0.5 + f0 / 2)
    fss_vals = ds["fss"].values
    k = int(np.flatnonzero(fss_vals >= float(ds["fss_target"]))[0])
    widths = ds["window_km"].values
    expected = widths[k - 1] + (float(ds["fss_target"]) - fss_vals[k - 1]) / (
        fss_vals[k] - fss_vals[k - 1]
    ) * (widths[k] - widths[k - 1])
    assert float(ds["useful_scale_km"]) == pytest.approx(expected, rel=RTOL)
    with pytest.raises(DataError, match="window"):
        fss(FCST, OBS, 1.0, 100.0, grid_spacing_km=1.0)


def test_fss_reads_the_grid_spacing_from_projected_coordinates():
    f = FCST.assign_coords(x=np.arange(32) * 3000.0, y=np.arange(24) * 3000.0)
    o = OBS.assign_coords(x=f.x, y=f.y)
    _close(fss(f, o, 1.0, 9.0), fss(FCST, OBS, 1.0, 3.0, grid_spacing_km=1.0))


# --- probabilistic ---------------------------------------------------------------------------------


def _prob_and_event(t=0.5):
    p = probability_of_exceedance(ENS, t)
    o = (t <= TRUTH).astype(float).where(TRUTH.notnull())
    return p, o


def test_probability_of_exceedance_matches_hand_count():
    p = probability_of_exceedance(ENS, 0.5)
    _close(p, (ENS >= 0.5).sum("member") / ENS.sizes["member"])


def test_brier_score_matches_scores_brier_score():
    p, o = _prob_and_event()
    _close(
        brier_score(p, o, preserve_dims="time", weights=W_ENS),
        scores_brier_score(p, o, preserve_dims=["time"], weights=W_ENS),
    )


def test_brier_decomposition_identity_and_hand_reliability():
    p, o = _prob_and_event()
    m = ENS.sizes["member"]
    # one bin per possible ensemble probability k/M: the within-bin terms vanish
    edges = (np.arange(m + 2) - 0.5) / m
    d = brier_decomposition(p, o, bins=edges, preserve_dims="time", weights=W_ENS)
    _close(d["reliability"] - d["resolution"] + d["uncertainty"], d["brier_score"])
    assert float(abs(d["within_bin_variance"]).max()) < 1e-12
    d10 = brier_decomposition(p, o, bins=4, weights=W_ENS)
    _close(
        d10["reliability"]
        - d10["resolution"]
        + d10["uncertainty"]
        + d10["within_bin_variance"]
        - 2 * d10["within_bin_covariance"],
        d10["brier_score"],
    )
    # hand reliability from the diagram data
    rd = reliability_diagram(p, o, bins=edges, weights=W_ENS)
    share = rd["fraction"].fillna(0)
    rel = float((share * (rd["forecast_probability"] - rd["observed_frequency"]).fillna(0) ** 2).sum())
    _close(brier_decomposition(p, o, bins=edges, weights=W_ENS)["reliability"], rel)


def test_roc_matches_scores_roc_curve_data():
    p, o = _prob_and_event()
    thr = np.linspace(0, 1, 8)
    ours = roc(p, o, thr, preserve_dims="time", weights=W_ENS)
    ref = roc_curve_data(p, o, thr, preserve_dims=["time"], weights=W_ENS).sel(threshold=thr)
    _close(ours["pod"], ref["POD"].transpose(*ours["pod"].dims))
    _close(ours["pofd"], ref["POFD"].transpose(*ours["pofd"].dims))
    _close(ours["auc"], roc_curve_data(p, o, thr, preserve_dims=["time"], weights=W_ENS)["AUC"])


@pytest.mark.parametrize("method", ["ecdf", "fair"])
@pytest.mark.parametrize("tail", ["upper", "lower"])
def test_tw_crps_matches_scores_tail_tw_crps_for_ensemble(method, tail):
    ours = tw_crps(ENS, TRUTH, 0.3, "member", tail=tail, method=method, preserve_dims="time", weights=W_ENS)
    ref = tail_tw_crps_for_ensemble(
        ENS, TRUTH, "member", 0.3, tail=tail, method=method, preserve_dims=["time"], weights=W_ENS
    )
    _close(ours, ref)


def test_tw_crps_with_an_unreachable_threshold_is_the_crps_of_scores_crps_for_ensemble():
    ours = tw_crps(ENS, TRUTH, -1e9, "member", method="fair", weights=W_ENS)
    _close(ours, crps_for_ensemble(ENS, TRUTH, "member", method="fair", weights=W_ENS))


def test_energy_score_by_hand_and_reduces_to_crps():
    f = ENS.isel(x=slice(0, 3)).rename(x="component")
    o = TRUTH.isel(x=slice(0, 3)).rename(x="component")
    es = energy_score(f, o, "component", preserve_dims="all")
    fv, ov = (
        f.transpose("time", "y", "member", "component").values,
        o.transpose("time", "y", "component").values,
    )
    ti, yi = 1, 5
    x, y = fv[ti, yi], ov[ti, yi]
    m = x.shape[0]
    hand = np.mean([np.linalg.norm(x[i] - y) for i in range(m)]) - sum(
        np.linalg.norm(x[i] - x[j]) for i in range(m) for j in range(m)
    ) / (2 * m * (m - 1))
    _close(es.isel(time=ti, y=yi), hand if not np.isnan(y).any() else np.nan)
    one = energy_score(ENS.expand_dims(c=1), TRUTH.expand_dims(c=1), "c", weights=W_ENS)
    _close(one, crps_for_ensemble(ENS, TRUTH, "member", method="fair", weights=W_ENS))
