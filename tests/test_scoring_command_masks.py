"""``workbench score --regrid`` with event masks on another grid than the truth's (the forecast's lat-lon
grid, or a third one): the masks become area fractions on the truth's grid, thresholded."""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench.errors import DataError, GridError
from workbench.grids import hrrr_grid
from workbench.regrid import regrid, regrid_mask
from workbench.scoring import decompose, open_scores
from workbench.scoring.command import register

GRID = hrrr_grid(150.0)  # the HRRR domain at 150 km: a Lambert truth grid small enough for a test
TIMES = pd.date_range("2020-06-01", periods=4, freq="h")
BOX = {"lat": (33.0, 43.0), "lon": (255.0, 270.0)}  # the event: a 10 x 15 degree box


def _cli(argv):
    parser = argparse.ArgumentParser(prog="workbench")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def latlon(step: float) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(15.0, 60.0 + step / 2, step), np.arange(220.0, 310.0 + step / 2, step)


def box_mask(step: float) -> xr.DataArray:
    lat, lon = latlon(step)
    inside = (
        (lat[:, None] > BOX["lat"][0]) & (lat[:, None] < BOX["lat"][1])
        & (lon[None, :] > BOX["lon"][0]) & (lon[None, :] < BOX["lon"][1])
    )
    return xr.DataArray(
        np.broadcast_to(inside, (1, TIMES.size, *inside.shape)).copy(),
        dims=("event_type", "time", "latitude", "longitude"),
        coords={"event_type": ["box"], "time": TIMES, "latitude": lat, "longitude": lon},
        name="mask",
    )


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(1)
    coords = GRID.coords()
    ny, nx = GRID.shape
    truth = xr.Dataset(
        {"t2m": (("time", "y", "x"), 290 + rng.normal(size=(TIMES.size, ny, nx)).astype("f4"), {"units": "K"})},
        coords={"time": TIMES, **coords},
    )
    lat, lon = latlon(0.5)
    fc = xr.Dataset(
        {
            "t2m": (
                ("init_time", "lead_time", "latitude", "longitude"),
                (290 + rng.normal(size=(2, 2, lat.size, lon.size))).astype("f4"),
                {"units": "K"},
            )
        },
        coords={"init_time": TIMES[:2], "lead_time": pd.to_timedelta([0, 1], "h").values,
                "latitude": lat, "longitude": lon},
    )
    paths = {k: tmp_path / f"{k}.nc" for k in ("truth", "forecast")}
    truth.to_netcdf(paths["truth"])
    fc.to_netcdf(paths["forecast"])
    return truth, fc, paths


def score(paths, masks_path, out, *extra):
    argv = ["score", str(paths["forecast"]), "--truth", str(paths["truth"]), "--masks", str(masks_path),
            "--regrid", *extra, "-o", str(out), "--quiet"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _cli(argv) == 0
    return open_scores(out)


@pytest.mark.parametrize("mask_step", [0.5, 1.0])  # the forecast's grid, and a third one
def test_masks_on_another_grid_are_regridded_as_area_fractions(files, tmp_path, mask_step):
    truth, fc, paths = files
    masks = box_mask(mask_step)
    masks.to_netcdf(tmp_path / "masks.nc")
    written = score(paths, tmp_path / "masks.nc", tmp_path / "scores.nc")
    on_truth, fraction = regrid_mask(masks, truth)
    # by hand: truth cells whose centre lies well inside the box are in the event, those well outside not
    lat, lon = GRID.latitude, np.mod(GRID.longitude, 360.0)
    deep = (lat > 35) & (lat < 41) & (lon > 257.5) & (lon < 267.5)
    far = (lat < 30) | (lat > 46) | (lon < 252) | (lon > 273)
    got = on_truth.isel(event_type=0, time=0).values
    assert got[deep].all() and not got[far].any() and deep.any()
    # the event keeps its area: covered fraction times cell area summed is the area of the mask's cells
    # on the sphere (each cell: R^2 dlon (sin lat_north - sin lat_south))
    r = 6371229.0
    mlat = masks["latitude"].values[masks.isel(event_type=0, time=0).any("longitude").values]
    n_lon = int(masks.isel(event_type=0, time=0).any("latitude").sum())
    half = np.deg2rad(mask_step / 2)
    rows = np.sin(np.deg2rad(mlat) + half) - np.sin(np.deg2rad(mlat) - half)
    box_area = r**2 * np.deg2rad(mask_step) * n_lon * rows.sum()
    area = float((fraction.isel(event_type=0, time=0).fillna(0) * GRID.cell_area()).sum())
    assert abs(area / box_area - 1) < 0.03
    # the scores are those of the regridded forecast on the regridded masks
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = decompose(regrid(fc, truth), truth, on_truth, progress=False)
    np.testing.assert_allclose(written["rmse"].values, expected["rmse"].values, rtol=1e-5)
    assert "box" in written["region"].values


def test_the_threshold_decides_which_cells_are_in(files, tmp_path):
    truth, fc, paths = files
    box_mask(0.5).to_netcdf(tmp_path / "masks.nc")
    on_truth = regrid(fc, truth)
    fractions = {}
    for threshold in ("0.05", "0.95"):
        written = score(paths, tmp_path / "masks.nc", tmp_path / f"s{threshold}.nc", "--mask-threshold", threshold)
        fractions[threshold] = float(written["area_fraction"].sel(region="box").isel(lead_time=0, variable=0))
        masks = regrid_mask(box_mask(0.5), truth, threshold=float(threshold))[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = decompose(on_truth, truth, masks, progress=False)
        assert fractions[threshold] == pytest.approx(
            float(expected["area_fraction"].sel(region="box").isel(lead_time=0, variable=0)), rel=1e-6
        )
    assert fractions["0.05"] > fractions["0.95"] > 0  # a lower threshold takes in the box's edge cells


def test_mask_regridding_errors_are_one_line(files, tmp_path):
    _, _, paths = files
    box_mask(0.5).to_netcdf(tmp_path / "masks.nc")
    box_mask(0.5).astype("f4").to_netcdf(tmp_path / "float_masks.nc")
    base = ["score", str(paths["forecast"]), "--truth", str(paths["truth"]), "-o", str(tmp_path / "s.nc")]
    with pytest.raises(DataError, match="add --regrid"):
        _cli([*base, "--masks", str(tmp_path / "masks.nc"), "--mask-threshold", "0.3"])
    with pytest.raises(DataError, match="must be bool"):
        _cli([*base, "--masks", str(tmp_path / "float_masks.nc"), "--regrid"])
    with pytest.raises(GridError, match="threshold"):
        _cli([*base, "--masks", str(tmp_path / "masks.nc"), "--regrid", "--mask-threshold", "0"])
