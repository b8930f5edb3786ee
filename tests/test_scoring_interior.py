"""The interior-only region: decompose(edge_km=...) and ``workbench score --interior``."""

import argparse
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scores.continuous import rmse

from workbench.errors import DataError
from workbench.scoring import decompose
from workbench.scoring.command import register
from workbench.scoring.interior import DEFAULT_EDGE_KM, interior_slices


def _case():
    rng = np.random.default_rng(4)
    y, x = np.arange(8) * 3000.0, np.arange(10) * 3000.0
    times = pd.date_range("2020-06-01", periods=4, freq="h")
    truth = xr.Dataset(
        {"t2m": (("time", "y", "x"), 280 + rng.normal(size=(4, 8, 10)), {"units": "K"})},
        coords={"time": times, "y": y, "x": x},
    )
    err = rng.normal(size=(2, 2, 8, 10))
    err[..., :, :2] += 5.0  # a large error at the western edge, as a model blind at its boundary has
    fc = xr.Dataset(
        {"t2m": (("init_time", "lead_time", "y", "x"), 280 + err, {"units": "K"})},
        coords={"init_time": times[:2], "lead_time": pd.to_timedelta([0, 1], "h").values, "y": y, "x": x},
    )
    masks = xr.DataArray(
        rng.random((1, 4, 8, 10)) < 0.4,
        dims=("event_type", "time", "y", "x"),
        coords={"event_type": ["hail"], "time": times, "y": y, "x": x},
        name="mask",
    )
    weights = xr.DataArray(rng.uniform(0.5, 1.5, (8, 10)), dims=("y", "x"), coords={"y": y, "x": x})
    return fc, truth, masks, weights


def test_interior_leaves_out_the_cells_near_the_edge():
    fc, truth, masks, weights = _case()
    # 6 km on a 3-km grid: the two outer cells on each side (0 and 3 km from the edge) are left out
    assert interior_slices(truth, ("y", "x"), 6.0) == {"y": slice(2, 6), "x": slice(2, 8)}
    out = decompose(fc, truth, masks, weights=weights, edge_km=6.0, rmse_average="pooled")
    assert out.attrs["edge_km"] == 6.0 and "interior only" in out.attrs["regions"]
    inner = {"y": slice(2, 6), "x": slice(2, 8)}
    f, w = fc["t2m"].isel(inner), weights.isel(inner)
    o = truth["t2m"].isel(time=xr.DataArray([[0, 1], [1, 2]], dims=("init_time", "lead_time")), **inner)
    o = o.drop_vars("time")
    hail = masks.sel(event_type="hail").isel(
        time=xr.DataArray([[0, 1], [1, 2]], dims=("init_time", "lead_time")), **inner
    )
    dims = ["init_time", "y", "x"]
    for region, rw in (("all", w), ("hail", w * hail.drop_vars("time"))):
        expected = rmse(f, o, reduce_dims=dims, weights=rw.broadcast_like(f)).values  # scores.continuous.rmse
        np.testing.assert_allclose(
            out["rmse"].sel(variable="t2m", region=region).values, expected, rtol=1e-10
        )
    whole = decompose(fc, truth, masks, weights=weights, rmse_average="pooled")
    # the edge error is gone from the interior scores
    assert float(whole["rmse"].sel(variable="t2m", region="all").max()) > 2.0
    assert float(out["rmse"].sel(variable="t2m", region="all").max()) < 1.5
    assert int(out["n_valid"].sel(variable="t2m", region="all").sum()) == 4 * 4 * 6


@pytest.mark.parametrize(
    ("edge", "message"),
    [
        (-1.0, "at least 0 km"),
        (float("nan"), "finite"),
        ("wide", "a number of kilometres"),
        (20.0, "leaves no interior: the domain is 21 km along 'y'"),
    ],
)
def test_interior_refuses_bad_widths(edge, message):
    fc, truth, masks, weights = _case()
    with pytest.raises(DataError, match=message):
        decompose(fc, truth, masks, weights=weights, edge_km=edge)


def test_interior_needs_a_projected_grid():
    times = pd.date_range("2020-06-01", periods=2, freq="h")
    lat, lon = np.arange(30.0, 34.0), np.arange(250.0, 255.0)
    truth = xr.Dataset(
        {"t2m": (("time", "latitude", "longitude"), np.zeros((2, 4, 5)), {"units": "K"})},
        coords={"time": times, "latitude": lat, "longitude": lon},
    )
    with pytest.raises(DataError, match="projected grid"):
        interior_slices(truth, ("latitude", "longitude"), 100.0)


def _cli(argv):
    parser = argparse.ArgumentParser(prog="workbench")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_score_command_interior(tmp_path, capsys):
    fc, truth, masks, _ = _case()
    paths = {"fc": tmp_path / "fc.zarr", "truth": tmp_path / "truth.nc"}
    fc.to_zarr(paths["fc"], mode="w", zarr_format=2)
    truth.to_netcdf(paths["truth"])
    base = ["score", str(paths["fc"]), "--truth", str(paths["truth"])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # equal weights: the test grid has no latitude
        assert _cli([*base, "-o", str(tmp_path / "a.nc"), "--interior", "6"]) == 0
        expected = decompose(fc, truth, edge_km=6.0)
    assert "interior only: cells at least 6 km from the domain edge" in capsys.readouterr().out
    got = xr.open_dataset(tmp_path / "a.nc")
    np.testing.assert_allclose(got["rmse"].values, expected["rmse"].values, rtol=1e-12)
    assert got.attrs["edge_km"] == 6.0
    with pytest.raises(DataError, match="leaves no interior"):  # the default 200 km on a 27-km domain
        _cli([*base, "-o", str(tmp_path / "b.nc"), "--interior"])
    assert DEFAULT_EDGE_KM == 200.0
    for bad in ("-3", "wide", "inf"):
        with pytest.raises(DataError, match="--interior"):
            _cli([*base, "-o", str(tmp_path / "c.nc"), "--interior", bad])
