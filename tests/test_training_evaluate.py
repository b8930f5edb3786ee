"""The skill table of trained models: area-weighted RMSE per lead, the markdown table, the whole evaluation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench.training import TrainConfig, build_for, load_training_data, train_model
from workbench.training.evaluate import evaluate_checkpoints, rmse, to_markdown
from workbench.training.recipes import Recipe

VARS = ("t2m", "u10m", "z500")


def wave_on_latlon(n: int = 36, ny: int = 8, nx: int = 12) -> xr.Dataset:
    """A wave moving east one cell per hour on a regular 1-degree mesh from 30N (cell area ~ cos(latitude))."""
    times = pd.date_range("2020-06-01", periods=n, freq="h")
    x, y = np.arange(nx), np.arange(ny)
    data = {}
    for i, v in enumerate(VARS):
        wave = np.sin(2 * np.pi * (x[None, None, :] - np.arange(n)[:, None, None] + 3 * i) / nx)
        field = {"t2m": 290.0, "u10m": 2.0, "z500": 55000.0}[v] + {"t2m": 5.0, "u10m": 3.0, "z500": 800.0}[v] * (
            wave * (1 + y[None, :, None] / ny))
        data[v] = (("time", "y", "x"), field.astype("float64"), {"units": "1"})
    lat, lon = np.meshgrid(30.0 + y, -100.0 + x, indexing="ij")
    return xr.Dataset(data, coords={"time": times, "y": y * 100e3, "x": x * 100e3,
                                    "latitude": (("y", "x"), lat), "longitude": (("y", "x"), lon)})


def cos_lat_rows(ds: xr.Dataset) -> np.ndarray:
    w = np.cos(np.deg2rad(ds.latitude.values[:, 0]))
    return w / w.mean()


def test_rmse_is_area_weighted_per_lead():
    truth = wave_on_latlon()
    inits = pd.DatetimeIndex(truth.time.values[[0, 5]])
    leads = pd.to_timedelta([1, 2], unit="h")
    row_error = np.linspace(0.0, 3.0, truth.sizes["y"])  # errors grow northward, where cells are smaller
    valid = inits.values[:, None] + leads.values[None, :]
    t2m = truth.t2m.sel(time=xr.DataArray(valid, dims=("init_time", "lead_time")))
    t2m = t2m + xr.DataArray(row_error, dims="y") * xr.DataArray([1.0, 2.0], dims="lead_time")
    forecast = xr.Dataset({"t2m": t2m.drop_vars("time")}, coords={
        "init_time": inits, "lead_time": leads, "valid_time": (("init_time", "lead_time"), valid)})
    scores = rmse(forecast, truth, ["t2m", "gust"])
    w = cos_lat_rows(truth)
    expected = np.sqrt((w * row_error**2).mean() / w.mean())
    np.testing.assert_allclose(scores.t2m.values, [expected, 2 * expected], rtol=1e-9)
    assert expected < np.sqrt((row_error**2).mean())  # the weights shrink the northern rows' share
    assert "gust" not in scores  # a variable the forecast lacks is skipped


def test_markdown_marks_the_best_model_per_column():
    columns = pd.MultiIndex.from_tuples([("t2m", "1h"), ("t2m", "6h")], names=["variable", "lead"])
    table = pd.DataFrame([[0.5, 3.25], [0.25, 123.4]], index=["a", "b"], columns=columns)
    text = to_markdown(table, {"t2m": "K"}, caption="Caption.")
    lines = text.splitlines()
    assert lines[0] == "Caption." and lines[2] == "| model | t2m 1h (K) | t2m 6h (K) |"
    assert lines[4] == "| a | 0.5000 | **3.25** |"
    assert lines[5] == "| b | **0.2500** | 123 |"


def test_evaluation_scores_trained_models_beside_persistence(tmp_path, tiny_sample):
    truth = wave_on_latlon()
    data = load_training_data(truth, variables=VARS)
    model = build_for(Recipe("climax", "climax", {"time_step_hours": 1.0}), data,
                      {"embed_dim": 16, "depth": 1, "decoder_depth": 1, "num_heads": 2, "patch_size": 4})
    train_model(model, data, tmp_path / "climax", config=TrainConfig(steps=2, batch_size=2, dtype="fp32"),
                device="cpu", progress=False)
    table, markdown = evaluate_checkpoints(str(tmp_path), data, size="tiny", leads_h=(1, 3), variables=VARS,
                                           device="cpu", models=("pangu", "climax"))
    assert list(table.index) == ["climax", "persistence"]  # no pangu weights; the tiny NWP is on another grid
    # persistence by hand: without an NWP forecast, initial times every 12 h from the held-out start while
    # the longest lead still verifies (here 06-02 00h only)
    start = data.heldout_period[0]
    inits = pd.date_range(start, truth.time.values[-1] - pd.Timedelta(hours=3), freq="12h")
    assert len(inits) == 1
    w = cos_lat_rows(truth)[:, None]
    for lead in (1, 3):
        err2 = [((truth.u10m.sel(time=t + pd.Timedelta(hours=lead)) - truth.u10m.sel(time=t)).values ** 2 * w).mean()
                for t in inits]
        assert table.loc["persistence", ("u10m", f"{lead}h")] == pytest.approx(np.sqrt(np.mean(err2)), rel=1e-6)
    assert np.isfinite(table.loc["climax"].values).all()
    assert f"{len(inits)} initial times" in markdown
    assert "training used 2020-06-01 00h to 2020-06-01 23h." in markdown
