"""One-pass categorical and FSS statistics per region equal the per-region function calls."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench.errors import DataError
from workbench.scoring.categorical import contingency_scores
from workbench.scoring.neighbourhood import fss
from workbench.scoring.onepass import event_scores, event_statistics

THRESHOLDS = [0.5, 1.0, 2.0]
WINDOWS = [3.0, 9.0]


def _case(seed=0, n_init=5, n_lead=3, ny=20, nx=24, nan=0.03):
    rng = np.random.default_rng(seed)
    inits = pd.date_range("2021-05-01", periods=n_init, freq="6h")
    leads = pd.to_timedelta(np.arange(n_lead) * 3, "h")
    times = pd.date_range(inits[0], inits[-1] + leads[-1], freq="h")
    coords = {"y": np.arange(ny) * 3000.0, "x": np.arange(nx) * 3000.0}
    truth = xr.DataArray(
        rng.gamma(0.6, 1.5, (len(times), ny, nx)), dims=("time", "y", "x"), coords={"time": times, **coords}
    )
    truth = truth.where(rng.random(truth.shape) >= nan)
    vt = inits.values[:, None] + leads.values[None, :]
    fc = truth.sel(time=vt.ravel()).values.reshape(n_init, n_lead, ny, nx) * rng.lognormal(
        0, 0.5, (n_init, n_lead, ny, nx)
    )
    fc = xr.DataArray(
        fc,
        dims=("init_time", "lead_time", "y", "x"),
        coords={"init_time": inits, "lead_time": leads, **coords},
    ).assign_coords(valid_time=(("init_time", "lead_time"), vt))
    masks = xr.DataArray(
        rng.random((2, len(times), ny, nx)) < 0.2,
        dims=("event_type", "time", "y", "x"),
        coords={"event_type": ["hail", "tornado"], "time": times, **coords},
    )
    weights = xr.DataArray(rng.uniform(0.5, 1.5, (ny, nx)), dims=("y", "x"), coords=coords)
    return fc, truth, masks, weights


@pytest.mark.parametrize("engine", ["auto", "numpy"])
@pytest.mark.parametrize("nan", [0.03, 0.0])  # without NaN the compiled FSS takes its packed-table path
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_one_pass_equals_contingency_scores_and_fss_per_region(engine, nan, dtype):
    fc, truth, masks, weights = _case(nan=nan)
    fc, truth = fc.astype(dtype), truth.astype(dtype)
    # float32 data: the compiled loop takes the weights in float32 too (the reference sums in float64)
    rtol = 1e-10 if dtype == np.float64 else 1e-5
    stats = event_statistics(
        fc, truth, THRESHOLDS, masks, fss_threshold=1.0, windows_km=WINDOWS, weights=weights, engine=engine
    )
    out = event_scores(stats)
    o = truth.sel(time=fc["valid_time"]).drop_vars("time")
    m = masks.sel(time=fc["valid_time"]).drop_vars("time")
    regions = {"all": xr.ones_like(m.isel(event_type=0, drop=True)), "extreme": m.any("event_type")}
    regions["non_extreme"] = ~regions["extreme"]
    regions.update({e: m.sel(event_type=e, drop=True) for e in ("hail", "tornado")})
    for name, region in regions.items():
        ref = contingency_scores(fc, o, THRESHOLDS, preserve_dims="lead_time", weights=weights * region)
        for score in ("pod", "far", "csi", "ets", "frequency_bias", "sedi"):
            np.testing.assert_allclose(
                out[score].sel(region=name).transpose("lead_time", "threshold").values,
                ref[score].transpose("lead_time", "threshold").values,
                rtol=rtol,
                err_msg=f"{name} {score}",
            )
    ref_fss = fss(fc, o, 1.0, WINDOWS, grid_spacing_km=3.0, preserve_dims="lead_time", weights=weights)
    np.testing.assert_allclose(
        out["fss"].transpose("lead_time", "window_km").values,
        ref_fss.transpose("lead_time", "window_km").values,
        rtol=rtol,
    )


def test_one_pass_bounds_bracket_the_scores_and_checks_inputs():
    fc, truth, masks, weights = _case(n_init=10)
    stats = event_statistics(fc, truth, THRESHOLDS, masks, windows_km=WINDOWS, weights=weights)
    out = event_scores(stats, confidence=0.9, n_resamples=300, seed=1)
    for score in ("csi", "fss"):
        lo, est, hi = out[f"{score}_low"], out[score], out[f"{score}_high"]
        ok = np.isfinite(est)
        assert (lo.values[ok] <= est.values[ok] + 1e-12).all() and (
            est.values[ok] <= hi.values[ok] + 1e-12
        ).all()
    with pytest.raises(DataError, match="does not fit"):
        event_statistics(fc, truth, THRESHOLDS, windows_km=[300.0])
    with pytest.raises(DataError, match="truth lacks"):
        event_statistics(fc, truth.isel(time=slice(0, 3)), THRESHOLDS)


def test_event_metrics_lay_out_like_decompose_and_merge():
    from workbench.scoring import decompose
    from workbench.scoring.onepass import event_metrics

    fc, truth, masks, weights = _case()
    fc, truth = fc * 1e-3, truth * 1e-3  # precipitation in metres: the scorer checks plausible values
    fcs = {"a": fc.to_dataset(name="tp").assign_attrs(), "b": (fc * 1.5).to_dataset(name="tp")}
    for ds in fcs.values():
        ds["tp"].attrs["units"] = "m"
    tr = truth.to_dataset(name="tp")
    tr["tp"].attrs["units"] = "m"
    out = event_metrics(fcs, tr, masks, {"tp": 1e-3}, window_km=9.0, weights=weights)
    assert out["csi"].dims == ("variable", "lead_time", "region", "model")
    ref = contingency_scores(
        fc,
        truth.sel(time=fc["valid_time"]).drop_vars("time"),
        [1e-3],
        preserve_dims="lead_time",
        weights=weights,
    )
    np.testing.assert_allclose(
        out["csi"].sel(model="a", variable="tp", region="all").values,
        ref["csi"].squeeze("threshold").values,
        rtol=1e-10,
    )
    assert np.isnan(out["fss"].sel(region="hail")).all() and np.isfinite(out["fss"].sel(region="all")).all()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = decompose(fcs, tr, masks.rename(), weights=weights)
    merged = xr.merge([scores, out], join="left")
    assert {"rmse", "csi", "fss"} <= set(merged.data_vars)


@pytest.mark.parametrize("nan", [0.03, 0.0])
@pytest.mark.parametrize("weight", [None, 2.0])
def test_uniform_weights_count_exactly_and_match_the_numpy_engine(nan, weight):
    # uniform weights take the compiled loop's integer path (exact counts times the weight): its tables
    # equal the NumPy engine's float64 sums exactly, its FSS sums to rounding
    fc, truth, masks, weights = _case(seed=3, nan=nan, ny=40, nx=44)
    w = None if weight is None else xr.full_like(weights, weight)
    kw = {"fss_threshold": 1.0, "windows_km": [3.0, 9.0, 27.0], "weights": w}
    ours = event_statistics(fc, truth, THRESHOLDS, masks, engine="auto", **kw)
    ref = event_statistics(fc, truth, THRESHOLDS, masks, engine="numpy", **kw)
    np.testing.assert_array_equal(ours["table"].values, ref["table"].values)
    np.testing.assert_allclose(ours["fss_sums"].values, ref["fss_sums"].values, rtol=1e-12)
    # the counts are whole numbers of cells (times the weight)
    cells = ours["table"].values / (1.0 if weight is None else weight)
    np.testing.assert_array_equal(cells, np.round(cells))


def test_truth_read_in_place_gives_the_per_init_results_bit_for_bit():
    # the compiled loop reads each valid time's truth in place for every (init, lead) verifying then,
    # in memory or loaded lazily: the same numbers as scoring each initial time on its own
    fc, truth, masks, weights = _case(seed=4, nan=0.0, n_init=4, n_lead=5, ny=36, nx=40)
    kw = {"fss_threshold": 1.0, "windows_km": [3.0, 9.0], "weights": weights}
    whole = event_statistics(fc, truth, THRESHOLDS, masks, **kw)
    lazy = event_statistics(fc, truth.chunk({"time": 3}), THRESHOLDS, masks, **kw)
    for i in range(fc.sizes["init_time"]):
        one = event_statistics(fc.isel(init_time=[i]), truth, THRESHOLDS, masks, **kw)
        for name in ("table", "fss_sums"):
            np.testing.assert_array_equal(
                whole[name].isel(init_time=i).values, one[name].isel(init_time=0).values
            )
    for name in ("table", "fss_sums"):
        np.testing.assert_array_equal(whole[name].values, lazy[name].values)


def test_row_sum_plan_builds_each_width_from_few_passes():
    # the compiled FSS sums a row over each window width from "nodes", each up to four shifted earlier
    # nodes: every node's sums must equal the direct window sums, and nested widths take one pass each
    from workbench.scoring.onepass import _row_sum_plan

    widths = [3, 9, 27, 5, 31, 45, 1, 2, 16, 13]
    plan, wnode = _row_sum_plan(widths)
    assert _row_sum_plan([3, 9, 27])[0].shape[0] == 4  # the row, then 3 = 1+1+1, 9 = 3+3+3, 27 = 9+9+9
    assert (plan[:, :, 0] < np.arange(plan.shape[0])[:, None]).all()  # sources come earlier
    row = np.random.default_rng(0).integers(-1, 3, 120)
    sums = [row]
    for q in range(1, plan.shape[0]):
        m = row.size - plan[q, 0, 2] + 1
        sums.append(sum(sums[src][off : off + m] for src, off, _ in plan[q] if src >= 0))
    for n, q in zip(widths, wnode, strict=True):
        direct = np.convolve(row, np.ones(n, int), mode="valid")
        np.testing.assert_array_equal(sums[q][: direct.size], direct)


@pytest.mark.parametrize("nan_row", [None, 150])
def test_every_fss_path_matches_the_numpy_engine(nan_row):
    # uniform weights: windows up to 45 cells take the int16 row sums, up to 255 the packed summed-area
    # table, larger ones (and fields with NaN) the three-table kernel; all equal the NumPy engine. A
    # 261-cell window overflowed the packed table's 16-bit counts before it was routed to the general one.
    fc, truth, masks, _ = _case(seed=5, n_init=2, n_lead=2, ny=270, nx=280, nan=0.0)
    if nan_row is not None:  # NaN in one late row: the int16 sums are dropped, the general kernel recounts
        truth[1, nan_row, :5] = np.nan
    cells = [3, 9, 27, 31, 45, 47, 101, 261]  # odd: windows are centred on a cell
    kw = {"fss_threshold": 1.0, "windows_km": [3.0 * n for n in cells], "grid_spacing_km": 3.0}
    ours = event_statistics(fc, truth, THRESHOLDS, masks, engine="auto", **kw)
    ref = event_statistics(fc, truth, THRESHOLDS, masks, engine="numpy", **kw)
    assert list(ours["window_cells"].values) == cells
    np.testing.assert_array_equal(ours["table"].values, ref["table"].values)
    np.testing.assert_allclose(ours["fss_sums"].values, ref["fss_sums"].values, rtol=1e-12)
    assert (ours["fss_sums"].sel(term="num").values > 0).all()


@pytest.mark.parametrize("n_events", [1, 3, 8, 9, 17, 63])
def test_event_codes_and_runs_match_numpy_on_strided_masks(n_events):
    # the compiled codes read one valid time of (type, time, cell) masks in place (rows apart, cells
    # adjacent) and the compiled loop counts runs sorted by code: both as the NumPy definitions
    from workbench.scoring import kernels
    from workbench.scoring.onepass import _runs_by_code

    rng = np.random.default_rng(n_events)
    masks = rng.random((n_events, 3, 2000)) < 0.1
    view = masks[:, 1]
    assert n_events == 1 or not view.flags.c_contiguous
    code = kernels.event_codes(view)
    expected = sum(view[e].astype(np.uint64) << np.uint64(e) for e in range(n_events))
    np.testing.assert_array_equal(code.astype(np.uint64), expected)
    starts, ends, codes = _runs_by_code(view)
    assert (np.diff(codes) >= 0).all()
    covered = np.zeros(2000, np.uint64)
    for s, e, c in zip(starts, ends, codes, strict=True):
        assert (expected[s:e] == c).all() and c != 0
        covered[s:e] = c
    np.testing.assert_array_equal(covered, expected)


def test_nan_quantiles_equal_numpy_with_and_without_nan():
    # without NaN the quantiles come from a partial sort; with NaN from a full sort of the valid values
    from workbench.scoring.bootstrap import nan_quantiles

    rng = np.random.default_rng(2)
    x = rng.normal(size=(1000, 6, 4))
    levels = [0.0, 0.04, 0.5, 0.96, 1.0]
    np.testing.assert_array_equal(nan_quantiles(x, levels), np.quantile(x, levels, axis=0))
    x[rng.random(x.shape) < 0.2] = np.nan
    x[:, 0, 0] = np.nan
    with pytest.warns(RuntimeWarning, match="All-NaN"):  # NumPy's reference on the all-NaN column
        expected = np.nanquantile(x, levels, axis=0)
    np.testing.assert_allclose(nan_quantiles(x, levels), expected, rtol=1e-14)


def test_masks_must_be_bool_or_zero_one():
    # float masks may hide NaN (which would count as inside an event): refused in one line, as by
    # decompose; 0/1 integers read as bool and give the bool masks' tables
    fc, truth, masks, _ = _case()
    with pytest.raises(DataError, match="must be bool"):
        event_statistics(fc, truth, THRESHOLDS, masks.astype(float), windows_km=[9.0])
    ints = event_statistics(fc, truth, THRESHOLDS, masks.astype(np.int8), windows_km=[9.0])
    bools = event_statistics(fc, truth, THRESHOLDS, masks, windows_km=[9.0])
    np.testing.assert_array_equal(ints["table"].values, bools["table"].values)
