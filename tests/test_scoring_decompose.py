"""The one-pass decomposition against per-region calls of the plain metrics, on every engine and backend."""

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench.errors import DataError, GridError, UnitsError
from workbench.scoring import (
    ScoringWarning,
    acc,
    bias,
    crps_ensemble,
    decompose,
    mae,
    rmse,
    spread,
    spread_skill_ratio,
    variance_split,
)

EVENTS = ("hail", "tornado", "heat")


def make_case(members=None, n_init=3, n_lead=4, ny=5, nx=6, seed=0, truth_nans=0, dtype=np.float64):
    """Small forecast / truth / masks / weights with two variables; ``members`` is a dict of member dims."""
    rng = np.random.default_rng(seed)
    y = np.arange(ny) * 3000.0
    x = np.arange(nx) * 3000.0
    inits = pd.date_range("2020-06-01", periods=n_init, freq="2h")
    leads = pd.to_timedelta(np.arange(n_lead), "h").values
    times = pd.date_range(inits[0], inits[-1] + pd.Timedelta(hours=n_lead - 1), freq="h")
    units = {"t2m": "K", "u10m": "m s-1"}
    truth = xr.Dataset(coords={"time": times, "y": y, "x": x})
    fc = xr.Dataset(coords={"init_time": inits, "lead_time": leads, "y": y, "x": x})
    member_shape = tuple((members or {}).values())
    member_dims = tuple((members or {}).keys())
    for k, (name, unit) in enumerate(units.items()):
        base = 280.0 if name == "t2m" else 0.0
        t = (base + rng.normal(size=(len(times), ny, nx))).astype(dtype)
        if truth_nans and k == 0:
            flat = t.reshape(-1)
            flat[rng.choice(flat.size, truth_nans, replace=False)] = np.nan
        truth[name] = (("time", "y", "x"), t, {"units": unit})
        shape = (n_init, n_lead, *member_shape, ny, nx)
        f = base + rng.normal(size=shape) * (1 + k)
        fc[name] = (("init_time", "lead_time", *member_dims, "y", "x"), f.astype(dtype), {"units": unit})
    fc = fc.assign_coords(valid_time=fc["init_time"] + fc["lead_time"])
    masks = xr.DataArray(
        rng.random((len(EVENTS), len(times), ny, nx)) < 0.25,
        dims=("event_type", "time", "y", "x"),
        coords={"event_type": list(EVENTS), "time": times, "y": y, "x": x},
        name="mask",
    )
    weights = xr.DataArray(rng.uniform(0.5, 1.5, size=(ny, nx)), dims=("y", "x"), coords={"y": y, "x": x})
    return fc, truth, masks, weights


def aligned(fc, truth, masks):
    """Truth and masks at the forecast's valid times, for the per-region reference calls."""
    vt = fc["valid_time"]
    tr = truth.sel(time=vt).drop_vars("time")
    mk = masks.sel(time=vt).drop_vars("time")
    regions = {"all": xr.ones_like(mk.isel(event_type=0, drop=True)), "extreme": mk.any("event_type")}
    regions["non_extreme"] = ~regions["extreme"]
    for event in EVENTS:
        regions[event] = mk.sel(event_type=event, drop=True)
    return tr, regions


def test_decomposition_equals_per_region_metric_calls():
    fc, truth, masks, weights = make_case()
    out = decompose(fc, truth, masks, weights=weights)
    pooled = decompose(fc, truth, masks, weights=weights, rmse_average="pooled")
    assert out["region"].values.tolist() == ["all", "extreme", "non_extreme", *EVENTS]
    assert out["rmse"].dims == ("variable", "lead_time", "region")
    assert out["variable"].values.tolist() == ["t2m", "u10m"]
    assert out.attrs["rmse_average"] == "per_init" and pooled.attrs["rmse_average"] == "pooled"
    tr, regions = aligned(fc, truth, masks)
    cases = [("t2m", name) for name in regions] + [("u10m", "all"), ("u10m", "hail")]
    for var, name in cases:
        region = regions[name]
        got = out.sel(variable=var, region=name)
        for metric, fn in (("rmse", rmse), ("mae", mae), ("bias", bias)):
            ref = fn(fc[var], tr[var], weights=weights * region, preserve_dims="lead_time")
            have = pooled.sel(variable=var, region=name) if metric == "rmse" else got
            np.testing.assert_allclose(
                have[metric].values, ref.values, rtol=1e-12, err_msg=f"{var} {name} {metric}"
            )
        # WeatherBench 2's convention: the RMSE of each initial time, then the mean over the inits
        per_init = rmse(fc[var], tr[var], weights=weights * region, preserve_dims=["init_time", "lead_time"])
        np.testing.assert_allclose(
            got["rmse"].values,
            per_init.mean("init_time", skipna=True).values,
            rtol=1e-12,
            err_msg=f"{var} {name}",
        )
        np.testing.assert_array_equal(got["n_valid"].values, region.sum(["init_time", "y", "x"]).values)


def test_error_budget_sums_to_one():
    fc, truth, masks, weights = make_case()
    out = decompose(fc, truth, masks, weights=weights)
    parts = out.sel(region=["extreme", "non_extreme"])
    np.testing.assert_allclose(parts["area_fraction"].sum("region").values, 1.0, rtol=1e-12)
    np.testing.assert_allclose(parts["error_share"].sum("region").values, 1.0, rtol=1e-12)
    np.testing.assert_allclose(out["area_fraction"].sel(region="all").values, 1.0)
    # direct: the region's weighted squared error over the total
    tr, regions = aligned(fc, truth, masks)
    sq = (fc["t2m"] - tr["t2m"]) ** 2 * weights
    share = (sq * regions["hail"]).sum(["init_time", "y", "x"]) / sq.sum(["init_time", "y", "x"])
    np.testing.assert_allclose(
        out["error_share"].sel(variable="t2m", region="hail").values, share.values, rtol=1e-12
    )
    area = (weights * regions["hail"]).sum(["init_time", "y", "x"]) / (weights * regions["all"]).sum(
        ["init_time", "y", "x"]
    )
    np.testing.assert_allclose(
        out["area_fraction"].sel(variable="t2m", region="hail").values, area.values, rtol=1e-12
    )
    ratio = out["error_share"] / out["area_fraction"]
    np.testing.assert_allclose(out["error_ratio"].values, ratio.values, rtol=1e-10)


def test_acc_with_hour_of_day_climatology():
    fc, truth, masks, weights = make_case()
    clim = truth.groupby("time.hour").mean() * 0.5
    out = decompose(fc, truth, masks, weights=weights, climatology=clim)
    tr, regions = aligned(fc, truth, masks)
    c_at = clim.sel(hour=fc["valid_time"].dt.hour).drop_vars("hour")
    for name in ("all", "extreme", "tornado"):
        ref = acc(
            fc["t2m"], tr["t2m"], c_at["t2m"], weights=weights * regions[name], preserve_dims="lead_time"
        )
        np.testing.assert_allclose(out["acc"].sel(variable="t2m", region=name).values, ref.values, rtol=1e-12)


def test_ensemble_crps_spread_per_region():
    fc, truth, masks, weights = make_case(members={"member": 4})
    out = decompose(fc, truth, masks, weights=weights, rmse_average="pooled")
    tr, regions = aligned(fc, truth, masks)
    for name in ("all", "non_extreme", "heat"):
        w = weights * regions[name]
        got = out.sel(variable="u10m", region=name)
        kw = {"weights": w, "preserve_dims": "lead_time"}
        np.testing.assert_allclose(
            got["crps"].values, crps_ensemble(fc["u10m"], tr["u10m"], **kw).values, rtol=1e-12
        )
        np.testing.assert_allclose(got["spread"].values, spread(fc["u10m"], **kw).values, rtol=1e-12)
        np.testing.assert_allclose(
            got["spread_skill_ratio"].values,
            spread_skill_ratio(fc["u10m"], tr["u10m"], **kw).values,
            rtol=1e-12,
        )
        ref_rmse = rmse(fc["u10m"].mean("member"), tr["u10m"], **kw)
        np.testing.assert_allclose(got["rmse"].values, ref_rmse.values, rtol=1e-12)


def test_epistemic_aleatoric_split_against_direct_computation():
    fc, truth, masks, weights = make_case(members={"weight_member": 3, "noise_member": 5}, seed=2)
    out = decompose(fc, truth, masks, weights=weights, rmse_average="pooled", spread_estimator="population")
    got = out.sel(variable="t2m")
    # the law of total variance holds exactly in every region
    np.testing.assert_allclose(
        got["spread_total"].values, (got["spread_aleatoric"] + got["spread_epistemic"]).values, rtol=1e-12
    )
    np.testing.assert_allclose(
        got["spread_skill_total"].values ** 2,
        (got["spread_skill_aleatoric"] ** 2 + got["spread_skill_epistemic"] ** 2).values,
        rtol=1e-12,
    )
    np.testing.assert_allclose(got["spread_skill_total"].values, got["spread_skill_ratio"].values, rtol=1e-12)
    tr, regions = aligned(fc, truth, masks)
    values = fc["t2m"].values  # (init, lead, w, n, y, x)
    direct_total = values.reshape(*values.shape[:2], -1, *values.shape[-2:]).var(axis=2)
    direct_epi = values.mean(axis=3).var(axis=2)
    direct_alea = values.var(axis=3).mean(axis=2)
    for name in ("all", "extreme", "hail"):
        w = (weights * regions[name]).transpose("init_time", "lead_time", "y", "x").values
        for part, direct in (("total", direct_total), ("aleatoric", direct_alea), ("epistemic", direct_epi)):
            expect = (w * direct).sum(axis=(0, 2, 3)) / w.sum(axis=(0, 2, 3))
            np.testing.assert_allclose(got[f"spread_{part}"].sel(region=name).values, expect, rtol=1e-12)
        parts = variance_split(
            fc["t2m"], weights=weights * regions[name], preserve_dims="lead_time", estimator="population"
        )
        np.testing.assert_allclose(
            got["spread_epistemic"].sel(region=name).values, parts["epistemic"].values, rtol=1e-12
        )


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_engines_agree_with_numba(engine):
    fc, truth, masks, weights = make_case(members={"weight_member": 2, "noise_member": 3}, truth_nans=20)
    clim = truth.mean("time")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScoringWarning)
        ref = decompose(fc, truth, masks, weights=weights, climatology=clim, engine="numba")
        got = decompose(fc, truth, masks, weights=weights, climatology=clim, engine=engine)
    for name in ref.data_vars:
        np.testing.assert_allclose(got[name].values, ref[name].values, rtol=1e-10, err_msg=name)


def test_torch_device_cpu_and_float32():
    fc, truth, masks, weights = make_case(dtype=np.float32)
    ref = decompose(fc, truth, masks, weights=weights, engine="numpy")
    got = decompose(fc, truth, masks, weights=weights, device="cpu")
    assert got.attrs["engine"] == "torch"
    np.testing.assert_allclose(got["rmse"].values, ref["rmse"].values, rtol=1e-5)
    fast = decompose(fc, truth, masks, weights=weights)
    np.testing.assert_allclose(fast["rmse"].values, ref["rmse"].values, rtol=1e-5)


def test_cuda_request_without_gpu_falls_back_with_warning():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    fc, truth, masks, weights = make_case(n_init=1, n_lead=2)
    with pytest.warns(ScoringWarning, match="no GPU"):
        out = decompose(fc, truth, masks, weights=weights, device="cuda")
    assert np.isfinite(out["rmse"].values).all()


def test_dask_chunks_and_blocks_give_the_numpy_result():
    fc, truth, masks, weights = make_case(members={"member": 3})
    ref = decompose(fc, truth, masks, weights=weights)
    lazy = decompose(
        fc.chunk({"init_time": 2, "lead_time": 3}),
        truth.chunk({"time": 5}),
        masks.chunk({"time": 4}),
        weights=weights,
    )
    blocks = decompose(
        fc, truth, masks, weights=weights, chunk={"init_time": 2, "lead_time": 3}, num_threads=1
    )
    for name in ref.data_vars:
        np.testing.assert_allclose(lazy[name].values, ref[name].values, rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(blocks[name].values, ref[name].values, rtol=1e-12, err_msg=name)


def test_distributed_client_gives_the_same_result():
    distributed = pytest.importorskip("distributed")
    fc, truth, masks, weights = make_case(members={"member": 2})
    clim = truth.mean("time")
    ref = decompose(fc, truth, masks, weights=weights, climatology=clim)
    with distributed.Client(
        processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None
    ) as client:
        got = decompose(
            fc.chunk({"init_time": 1}), truth, masks, weights=weights, climatology=clim, client=client
        )
    for name in ref.data_vars:
        np.testing.assert_allclose(got[name].values, ref[name].values, rtol=1e-12, err_msg=name)


def test_nans_in_truth_are_skipped_and_counted():
    fc, truth, masks, weights = make_case(truth_nans=15, seed=5)
    with pytest.warns(ScoringWarning, match=r"cell-times of 't2m' have NaN"):
        out = decompose(fc, truth, masks, weights=weights, rmse_average="pooled")
    tr, regions = aligned(fc, truth, masks)
    nan_cells = tr["t2m"].isnull()
    for name in ("all", "extreme", "non_extreme"):
        region = regions[name]
        got = out.sel(variable="t2m", region=name)
        np.testing.assert_array_equal(
            got["n_nan"].values, (nan_cells & region).sum(["init_time", "y", "x"]).values
        )
        np.testing.assert_array_equal(
            got["n_valid"].values, (~nan_cells & region).sum(["init_time", "y", "x"]).values
        )
        ref = rmse(fc["t2m"], tr["t2m"], weights=weights * region, preserve_dims="lead_time")
        np.testing.assert_allclose(got["rmse"].values, ref.values, rtol=1e-12)
    assert int(out["n_nan"].sel(variable="u10m").sum()) == 0
    assert int(out["n_nan"].sel(variable="t2m", region="all").sum()) > 0


def test_valid_times_outside_truth_are_left_out_with_warning():
    fc, truth, masks, weights = make_case()
    short = truth.isel(time=slice(0, -2))
    with pytest.warns(ScoringWarning, match="outside the truth"):
        out = decompose(fc, short, masks, weights=weights, rmse_average="pooled")
    assert out.attrs["fields_without_truth"] == 2  # valid times 06 and 07 h of the last init
    keep = fc["valid_time"] <= short["time"][-1]
    tr, regions = aligned(fc.where(keep), truth, masks)
    ref = rmse(fc["t2m"].where(keep), tr["t2m"], weights=weights, preserve_dims="lead_time")
    np.testing.assert_allclose(out["rmse"].sel(variable="t2m", region="all").values, ref.values, rtol=1e-12)


def test_several_models_and_no_masks():
    fc, truth, masks, weights = make_case()
    other = fc.copy(deep=True)
    other["t2m"] = other["t2m"] + 1.0
    out = decompose({"nwp": fc, "biased": other}, truth, masks, weights=weights, variables=["t2m"])
    assert out["model"].values.tolist() == ["nwp", "biased"]
    assert out["rmse"].dims == ("variable", "lead_time", "region", "model")
    single = decompose(other, truth, masks, weights=weights, variables=["t2m"])
    np.testing.assert_allclose(out["bias"].sel(model="biased").values, single["bias"].values, rtol=1e-12)
    plain = decompose(fc, truth, weights=weights)
    assert plain["region"].values.tolist() == ["all"]
    np.testing.assert_allclose(
        plain["rmse"].sel(variable="t2m", region="all").values,
        out["rmse"].sel(model="nwp", variable="t2m", region="all").values,
        rtol=1e-12,
    )


def test_default_weights_are_area_weights():
    from workbench.grids import area_weights, hrrr_grid

    grid = hrrr_grid(96.0)
    fc, truth, masks, _ = make_case(ny=grid.shape[0], nx=grid.shape[1], n_init=1, n_lead=2)
    coords = grid.coords()
    truth = truth.assign_coords(
        y=coords["y"][1], x=coords["x"][1], latitude=coords["latitude"][:2], longitude=coords["longitude"][:2]
    )
    fc = fc.assign_coords(y=truth["y"], x=truth["x"])
    masks = masks.assign_coords(y=truth["y"], x=truth["x"])
    out = decompose(fc, truth, masks)
    ref = decompose(fc, truth, masks, weights=area_weights(truth))
    np.testing.assert_allclose(out["rmse"].values, ref["rmse"].values, rtol=1e-12)
    assert "area" in out.attrs["weights"]


# ---------------------------------------------------------------------------------------------------
# bad input


def test_mismatched_grids_are_refused():
    fc, truth, masks, weights = make_case()
    with pytest.raises(GridError, match="points along 'x'"):
        decompose(fc.isel(x=slice(0, 5)), truth, masks, weights=weights)
    with pytest.raises(GridError, match="coordinate differs"):
        decompose(fc.assign_coords(x=fc["x"] + 1500.0), truth, masks, weights=weights)
    with pytest.raises(GridError, match="masks"):
        decompose(fc, truth, masks.isel(y=slice(0, 4)), weights=weights)
    with pytest.raises(GridError, match="weights"):
        decompose(fc, truth, masks, weights=weights.isel(y=slice(0, 3)))
    with pytest.raises(GridError, match="lacks the grid"):
        decompose(fc.rename(x="lon"), truth, masks, weights=weights)


def test_masks_must_cover_the_forecast_times():
    fc, truth, masks, weights = make_case()
    with pytest.raises(DataError, match="masks do not cover 2 forecast valid time"):
        decompose(fc, truth, masks.isel(time=slice(0, -2)), weights=weights)


def test_wrong_units_are_refused():
    fc, truth, masks, weights = make_case()
    celsius = truth.copy()
    celsius["t2m"] = (truth["t2m"] - 273.15).assign_attrs(units="degC")
    with pytest.raises(UnitsError, match="degC"):
        decompose(fc, celsius, masks, weights=weights)
    odd = fc.copy()
    odd["foo"] = fc["t2m"].assign_attrs(units="K")
    odd_truth = truth.copy()
    odd_truth["foo"] = truth["t2m"].assign_attrs(units="m")
    with pytest.raises(UnitsError, match="'K' in the forecast but 'm' in the truth"):
        decompose(odd, odd_truth, masks, weights=weights, variables=["foo"])


def test_missing_variables_are_refused():
    fc, truth, masks, weights = make_case()
    with pytest.raises(DataError, match=r"\['u10m'\] of the forecast are missing from the truth"):
        decompose(fc, truth.drop_vars("u10m"), masks, weights=weights)
    with pytest.raises(DataError, match="not in the forecast"):
        decompose(fc, truth, masks, weights=weights, variables=["msl"])
    out = decompose(fc, truth.drop_vars("u10m"), masks, weights=weights, variables=["t2m"])
    assert out["variable"].values.tolist() == ["t2m"]


def test_other_bad_inputs():
    fc, truth, masks, weights = make_case()
    with pytest.raises(DataError, match="NaN"):
        decompose(fc, truth, masks, weights=weights.where(weights > 0.6))
    with pytest.raises(DataError, match="negative"):
        decompose(fc, truth, masks, weights=weights - 1.0)
    with pytest.raises(DataError, match="lead_time"):
        decompose(fc.isel(lead_time=0, drop=True), truth, masks, weights=weights)
    with pytest.raises(DataError, match="climatology does not cover"):
        decompose(fc, truth, masks, weights=weights, climatology=truth.isel(time=slice(0, 3)))
    with pytest.raises(DataError, match="None of the forecast"):
        decompose(fc, truth.assign_coords(time=truth["time"] + pd.Timedelta(days=9)), masks, weights=weights)
    with pytest.raises(DataError, match="no time steps"):
        decompose(fc, truth.isel(time=slice(0, 0)), masks, weights=weights)
    with pytest.raises(DataError, match="engine"):
        decompose(fc, truth, masks, weights=weights, engine="fortran")
    with pytest.raises(DataError, match="not 'all'"):
        decompose(fc, truth, masks.assign_coords(event_type=["all", "b", "c"]), weights=weights)
    three = fc.expand_dims(a=2, b=2, c=2).transpose("init_time", "lead_time", ...)
    with pytest.raises(DataError, match="at most two member"):
        decompose(three, truth, masks, weights=weights)


def test_many_event_types_and_overlaps():
    """Ten event types (wider bit codes) with heavy overlap: numba and torch equal the NumPy reference."""
    fc, truth, masks, weights = make_case(seed=7)
    rng = np.random.default_rng(8)
    types = [f"type{k}" for k in range(10)]
    many = xr.DataArray(
        rng.random((10, *masks.shape[1:])) < 0.4,
        dims=masks.dims,
        coords={**{k: v for k, v in masks.coords.items() if k != "event_type"}, "event_type": types},
    )
    ref = decompose(fc, truth, many, weights=weights, engine="numpy")
    for engine in ("numba", "torch"):
        got = decompose(fc, truth, many, weights=weights, engine=engine)
        assert got["region"].values.tolist()[3:] == types
        for name in ref.data_vars:
            np.testing.assert_allclose(
                got[name].values, ref[name].values, rtol=1e-10, err_msg=f"{engine} {name}"
            )
