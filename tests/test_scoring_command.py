"""``workbench score`` end to end, the atomic scores writer, and the HR-Extreme result on the sample."""

import argparse
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench.errors import CatalogError, DataError
from workbench.scoring import decompose, open_scores, write_scores
from workbench.scoring.command import register


def _files(tmp_path):
    rng = np.random.default_rng(0)
    y, x = np.arange(4) * 3000.0, np.arange(5) * 3000.0
    times = pd.date_range("2020-06-01", periods=8, freq="h")
    truth = xr.Dataset(
        {"t2m": (("time", "y", "x"), 280 + rng.normal(size=(8, 4, 5)), {"units": "K"})},
        coords={"time": times, "y": y, "x": x},
    )
    fc = xr.Dataset(
        {"t2m": (("init_time", "lead_time", "y", "x"), 280 + rng.normal(size=(2, 3, 4, 5)), {"units": "K"})},
        coords={"init_time": times[:2], "lead_time": pd.to_timedelta([0, 1, 2], "h").values, "y": y, "x": x},
    )
    masks = xr.DataArray(
        rng.random((2, 8, 4, 5)) < 0.3,
        dims=("event_type", "time", "y", "x"),
        coords={"event_type": ["hail", "wind"], "time": times, "y": y, "x": x},
        name="mask",
    )
    paths = {"forecast": tmp_path / "fc.zarr", "truth": tmp_path / "truth.nc", "masks": tmp_path / "masks.nc"}
    fc.to_zarr(paths["forecast"], mode="w", zarr_format=2)
    truth.to_netcdf(paths["truth"])
    masks.to_netcdf(paths["masks"])
    return fc, truth, masks, paths


def _cli(argv):
    parser = argparse.ArgumentParser(prog="workbench")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_score_command_writes_the_decomposition(tmp_path, suffix, capsys):
    fc, truth, masks, paths = _files(tmp_path)
    out = tmp_path / f"scores{suffix}"
    argv = ["score", str(paths["forecast"]), "--truth", str(paths["truth"]), "--masks", str(paths["masks"])]
    argv += ["-o", str(out), "--model", "nwp"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # equal weights: the test grid has no latitude
        assert _cli(argv) == 0
    printed = capsys.readouterr().out
    written = open_scores(out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = decompose({"nwp": fc}, truth, masks)
    # the summary has one row per region, with the RMSE averaged over lead times and its units
    mean = expected.isel(model=0).sel(variable="t2m").mean("lead_time")
    for region in ("all", "extreme", "non_extreme"):
        row = [ln.split() for ln in printed.splitlines() if ln.split()[:2] == ["t2m", region]]
        assert len(row) == 1, printed
        rmse, units, area, share = row[0][2:]
        assert float(rmse) == pytest.approx(float(mean["rmse"].sel(region=region)), rel=1e-3)
        assert units == "K"
        assert float(area) == pytest.approx(100 * float(mean["area_fraction"].sel(region=region)), abs=0.006)
        assert float(share) == pytest.approx(100 * float(mean["error_share"].sel(region=region)), abs=0.006)
    np.testing.assert_allclose(written["rmse"].values, expected["rmse"].values, rtol=1e-12)
    assert written["region"].values.tolist() == ["all", "extreme", "non_extreme", "hail", "wind"]
    assert np.issubdtype(written["lead_time"].dtype, np.timedelta64)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind
    with pytest.raises(DataError, match="--overwrite"):
        _cli(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _cli([*argv, "--overwrite", "--quiet"]) == 0


def test_score_command_refuses_bad_arguments(tmp_path):
    _, _, _, paths = _files(tmp_path)
    base = ["score", str(paths["forecast"]), "--truth", str(paths["truth"])]
    with pytest.raises(DataError, match=r"\.nc or \.zarr"):
        _cli([*base, "-o", str(tmp_path / "scores.csv")])
    with pytest.raises(CatalogError, match="neither an existing file nor a catalog entry"):
        _cli(["score", "no_such_entry", "--truth", str(paths["truth"]), "-o", str(tmp_path / "s.nc")])
    with pytest.raises(DataError, match="KEY=VALUE"):
        _cli([*base, "-o", str(tmp_path / "s.nc"), "--param", "size"])
    with pytest.raises(DataError, match="No masks file"):
        _cli([*base, "-o", str(tmp_path / "s.nc"), "--masks", str(tmp_path / "missing.nc")])


def test_write_scores_replaces_atomically(tmp_path):
    ds = xr.Dataset({"rmse": ("region", [1.0, 2.0])}, coords={"region": ["all", "extreme"]})
    for name in ("a.nc", "a.zarr"):
        path = write_scores(ds, tmp_path / name)
        write_scores(ds * 2, path, overwrite=True)
        np.testing.assert_allclose(open_scores(path)["rmse"].values, [2.0, 4.0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nc", "a.zarr"]
    with pytest.raises(DataError, match="exists"):
        write_scores(ds, tmp_path / "a.nc")
    with pytest.raises(DataError, match=r"\*\.nc"):
        write_scores(ds, tmp_path / "a.txt")


def test_sample_nwp_errs_more_inside_report_cases(tiny_sample):
    """The HR-Extreme finding on the sample: storm cells are a small area carrying a large share of error."""
    from workbench.events import build_masks
    from workbench.sample import open_sample

    truth = open_sample("hrrr", size="tiny")
    nwp = open_sample("nwp", size="tiny")
    reports = open_sample("reports", size="tiny")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        events = build_masks(truth, reports=reports, thresholds=None)
        scores = decompose(nwp, truth, events.masks, variables=["refc", "gust", "tp"])
    mean = scores.mean("lead_time")
    for var in ("refc", "gust", "tp"):
        row = mean.sel(variable=var)
        assert float(row["rmse"].sel(region="extreme")) > 1.3 * float(row["rmse"].sel(region="all")), var
        area = float(row["area_fraction"].sel(region="extreme"))
        share = float(row["error_share"].sel(region="extreme"))
        # the sample's synoptic and mesoscale eddies give the NWP errors everywhere, so the storms' share
        # is a little smaller than on a smooth flow, but still well above their area
        assert area < 0.1 and share > 2.5 * area, (var, area, share)


def test_score_regrids_a_latlon_forecast_onto_the_truth_grid(tmp_path, tiny_sample):
    """A global model's forecast on a 1-degree lat-lon grid, scored against HRRR-grid truth with --regrid."""
    from workbench.errors import GridError
    from workbench.regrid import regrid
    from workbench.sample import open_sample
    from workbench.scoring.inputs import prepare_forecast

    truth = open_sample("hrrr", size="tiny")[["t2m", "tp"]].compute()
    inits = truth.time.values[:2]
    leads = pd.to_timedelta([0, 1, 2], "h").values
    lat, lon = np.arange(90.0, -90.001, -1.0), np.arange(0.0, 360.0, 1.0)  # ERA5-like: latitude descending

    def t2m(la, lo):
        return 290.0 + 10.0 * np.cos(np.deg2rad(la)) * np.sin(np.deg2rad(2 * lo))

    field = t2m(lat[:, None], lon[None, :])
    rng = np.random.default_rng(3)
    fc = xr.Dataset(
        {
            "t2m": (
                ("init_time", "lead_time", "latitude", "longitude"),
                np.broadcast_to(field, (2, 3, *field.shape)).copy(),
                {"units": "K"},
            ),
            "tp": (
                ("init_time", "lead_time", "latitude", "longitude"),
                rng.gamma(0.5, 1e-3, (2, 3, *field.shape)),
                {"units": "m"},
            ),
        },
        coords={"init_time": inits, "lead_time": leads, "latitude": lat, "longitude": lon},
    )
    path = tmp_path / "global_model.zarr"
    fc.to_zarr(path, mode="w", zarr_format=2)
    truth_path = tmp_path / "truth.nc"
    truth.to_netcdf(truth_path)
    out = tmp_path / "scores.nc"
    with pytest.raises(GridError, match="grid"):
        _cli(["score", str(path), "--truth", str(truth_path), "-o", str(out), "--quiet"])
    assert _cli(["score", str(path), "--truth", str(truth_path), "--regrid", "-o", str(out), "--quiet"]) == 0
    written = open_scores(out)
    on_hrrr = regrid(prepare_forecast(xr.open_zarr(path)), truth)
    assert on_hrrr["tp"].attrs["regrid_method"] == "conservative"  # 1 degree (~98 km) onto ~96 km
    assert on_hrrr["t2m"].attrs["regrid_method"] == "bilinear" and not on_hrrr["t2m"].isnull().any()
    lat2, lon2 = truth.latitude.values, truth.longitude.values
    np.testing.assert_allclose(
        on_hrrr["t2m"].isel(init_time=0, lead_time=0).values, t2m(lat2, lon2), rtol=1e-4
    )
    expected = decompose(on_hrrr, truth, None, progress=False)
    np.testing.assert_allclose(written["rmse"].values, expected["rmse"].values, rtol=1e-6)


def test_score_command_passes_the_bootstrap_and_rmse_options(tmp_path, capsys):
    """--confidence/--resamples/--seed/--rmse-average reach decompose; the summary prints the intervals."""
    fc, truth, masks, paths = _files(tmp_path)
    out = tmp_path / "scores.nc"
    argv = ["score", str(paths["forecast"]), "--truth", str(paths["truth"]), "--masks", str(paths["masks"])]
    argv += ["-o", str(out), "--confidence", "0.8", "--resamples", "200", "--seed", "7"]
    argv += ["--rmse-average", "pooled"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _cli(argv) == 0
        expected = decompose(fc, truth, masks, confidence=0.8, n_resamples=200, seed=7, rmse_average="pooled")
    written = open_scores(out)
    for name in ("rmse", "rmse_low", "rmse_high"):
        np.testing.assert_allclose(written[name].values, expected[name].values, rtol=1e-12)
    assert written.attrs["rmse_average"] == "pooled" and written.attrs["n_resamples"] == 200
    # pooled RMSE of t2m at lead 0 over both inits, by hand from the data
    err = fc["t2m"].isel(lead_time=0).values - truth["t2m"].isel(time=[0, 1]).values
    assert float(written["rmse"].sel(region="all").isel(variable=0, lead_time=0)) == pytest.approx(
        np.sqrt(np.mean(err**2)), rel=1e-12
    )
    row = expected.sel(variable="t2m", region="all").isel(lead_time=1)
    cell = (
        f"rmse all {float(row['rmse']):.4g} K [{float(row['rmse_low']):.4g}, "
        f"{float(row['rmse_high']):.4g}] (80%)"
    )
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.split()[:2] == ["t2m", "+1h"]]
    assert len(lines) == 1 and cell in lines[0], lines
    # every region's interval, in the variable's units
    for region in ("extreme", "non_extreme"):
        row = expected.sel(variable="t2m", region=region).isel(lead_time=1)
        cell = (
            f"{region} {float(row['rmse']):.4g} K [{float(row['rmse_low']):.4g}, "
            f"{float(row['rmse_high']):.4g}] (80%)"
        )
        assert cell in lines[0], lines


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--confidence", "1.5"], r"--confidence must be between 0 and 1 \(e.g. 0.9\), not 1.5\."),
        (["--confidence", "0"], "--confidence must be between 0 and 1"),
        (["--confidence", "0.9", "--resamples", "3"], "--resamples must be at least 10"),
        (["--rmse-average", "median"], "--rmse-average must be 'per_init' or 'pooled', not 'median'"),
    ],
)
def test_score_command_refuses_bad_bootstrap_options(tmp_path, capsys, extra, message):
    from workbench.cli import main

    _, _, _, paths = _files(tmp_path)
    argv = ["score", str(paths["forecast"]), "--truth", str(paths["truth"]), "-o", str(tmp_path / "s.nc")]
    with pytest.raises(DataError, match=message):
        _cli([*argv, *extra])
    assert main([*argv, *extra]) == 2  # one line on stderr, no traceback
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("workbench score: error: --")
    assert not (tmp_path / "s.nc").exists()
