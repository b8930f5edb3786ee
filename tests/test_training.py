"""The training loop: data split and statistics, checkpoints, resume, lead-conditioned and rollout losses."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from workbench.errors import CheckpointError, DataError
from workbench.inference import run_forecast
from workbench.models import build, load
from workbench.models.protocol import step_models
from workbench.training import TrainConfig, build_for, load_training_data, resolve_extra_size, train_model
from workbench.training.recipes import Recipe

VARS = ("t2m", "u10m", "z500")
SMALL_HRHEIM = {"channels": [4, 8, 8], "bottleneck_depth": 1, "heads": 2, "window_size": [4, 4], "head_hidden": 4}
SMALL_CLIMAX = {"embed_dim": 16, "depth": 1, "decoder_depth": 1, "num_heads": 2, "patch_size": 4}


def wave_analysis(n: int = 30, ny: int = 16, nx: int = 24) -> xr.Dataset:
    """``n`` hours of a wave travelling east one cell per hour (a learnable dynamics) from 2020-06-01."""
    times = pd.date_range("2020-06-01", periods=n, freq="h")
    x = np.arange(nx)
    data = {}
    for i, v in enumerate(VARS):
        scale = {"t2m": 5.0, "u10m": 3.0, "z500": 800.0}[v]
        base = {"t2m": 290.0, "u10m": 2.0, "z500": 55000.0}[v]
        wave = np.sin(2 * np.pi * (x[None, None, :] - np.arange(n)[:, None, None] + 3 * i) / nx)
        field = base + scale * wave * np.cos(np.arange(ny) / ny)[None, :, None]
        if v == "z500":  # a slow rise, so that statistics of the training hours differ from all hours
            field = field + 10.0 * np.arange(n)[:, None, None]
        data[v] = (("time", "y", "x"), field.astype("float32"), {"units": "1"})
    return xr.Dataset(data, coords={"time": times, "y": np.arange(ny) * 24e3, "x": x * 24e3})


@pytest.fixture(scope="module")
def source():
    """30 hours of the wave on 16 x 24 cells."""
    return wave_analysis()


def test_split_and_statistics_come_from_the_training_hours(source):
    data = load_training_data(source, variables=VARS, train_fraction=2 / 3)
    assert data.train_hours == 20 and data.heldout.sum() == 10
    assert data.train_period == (pd.Timestamp("2020-06-01T00"), pd.Timestamp("2020-06-01T19"))
    assert data.heldout_period[0] == pd.Timestamp("2020-06-01T20")
    train_mean = float(source["z500"].isel(time=slice(0, 20)).mean())
    assert data.normalization.mean["z500"] == pytest.approx(train_mean, rel=1e-9)
    assert data.normalization.mean["z500"] != pytest.approx(float(source["z500"].mean()), rel=1e-7)
    # pairs never reach across the split
    starts = data.pair_starts(3.0, "train")
    assert starts.max() + 3 < 20
    with pytest.raises(DataError, match="too short"):
        data.pair_starts(40.0, "train")
    with pytest.raises(DataError, match="lacks"):
        load_training_data(source, variables=("t2m", "gust"))


def test_extra_analyses_train_outside_a_gap_around_the_held_out_hours(source, tmp_path):
    longer = wave_analysis(60)  # the same run continued: its first 30 hours are the source's
    data = load_training_data(source, variables=VARS, extra=longer, gap_hours=5)
    # source: 06-01 00h .. 06-02 05h (20 train, 10 held out); extra kept after 06-02 10h: 06-02 11h .. 06-03 11h
    assert data.train_hours == 20 + 25 and data.heldout.sum() == 10
    assert data.train_periods == [
        (pd.Timestamp("2020-06-01T00"), pd.Timestamp("2020-06-01T19")),
        (pd.Timestamp("2020-06-02T11"), pd.Timestamp("2020-06-03T11")),
    ]
    assert data.heldout_period == (pd.Timestamp("2020-06-01T20"), pd.Timestamp("2020-06-02T05"))
    starts = data.pair_starts(3.0, "train")
    assert len(starts) == (20 - 3) + (25 - 3)  # no pair bridges the gap between the two runs
    assert ((data.times[starts + 3] - data.times[starts]) == pd.Timedelta(hours=3)).all()
    assert not data.heldout[starts].any() and not data.heldout[starts + 3].any()
    assert len(data.pair_starts(3.0, "heldout")) == 10 - 3
    # statistics over both training runs, none of the held-out or gap hours
    z = longer["z500"].values
    expected = np.concatenate([z[:20], z[35:]]).astype(np.float64).mean()
    assert data.normalization.mean["z500"] == pytest.approx(expected, rel=1e-6)
    # a short training run records the runs and the data's origin in the checkpoint
    model = build_for(Recipe("climax", "climax", {"time_step_hours": 1.0}), data, SMALL_CLIMAX)
    train_model(model, data, tmp_path / "c", config=TrainConfig(steps=1, batch_size=2, dtype="fp32"), device="cpu",
                progress=False)
    meta = json.loads((tmp_path / "c.json").read_text())["metadata"]["training"]
    assert meta["train_periods"] == [["2020-06-01 00:00:00", "2020-06-01 19:00:00"],
                                     ["2020-06-02 11:00:00", "2020-06-03 11:00:00"]]
    assert meta["data"] == {"size": None, "extra_size": None, "heldout_size": None, "extra_analyses": 1}


def test_extra_analyses_are_checked(source):
    with pytest.raises(DataError, match="grid"):
        load_training_data(source, variables=VARS, extra=wave_analysis(60, nx=12))
    with pytest.raises(DataError, match="no hours more than 48 h away"):
        load_training_data(source, variables=VARS, extra=wave_analysis(60))
    with pytest.raises(DataError, match=r"extra training analysis 1 lacks \['z500'\]"):
        load_training_data(source, variables=VARS, extra=wave_analysis(60).drop_vars("z500"), gap_hours=5)
    assert resolve_extra_size("default") == "long"
    assert resolve_extra_size("tiny") is None
    assert resolve_extra_size("default", "none") is None and resolve_extra_size("tiny", "long") == "long"


def test_fine_tuning_starts_from_a_checkpoint(source, tmp_path):
    data = load_training_data(source, variables=VARS)
    pretrain = Recipe("climax", "climax", {"time_step_hours": 1.0, "lead_hours": [1.0, 3.0]})
    cfg = TrainConfig(steps=2, batch_size=2, warmup=1, dtype="fp32", lead_hours=[1.0, 3.0])
    train_model(build_for(pretrain, data, SMALL_CLIMAX), data, tmp_path / "base", config=cfg, device="cpu",
                progress=False)
    base = load("climax", checkpoint=tmp_path / "base").net.state_dict()
    # a 3-hour network fine-tuned from it: with no steps it holds exactly the pretrained weights
    tuned = build_for(Recipe("climax", "climax_3h", {"time_step_hours": 3.0}), data, SMALL_CLIMAX)
    train_model(tuned, data, tmp_path / "climax_3h", device="cpu", progress=False,
                config=TrainConfig(steps=0, dtype="fp32", init_from=str(tmp_path / "base")))
    for key, value in load("climax", checkpoint=tmp_path / "climax_3h").net.state_dict().items():
        torch.testing.assert_close(value, base[key])
    # one step moves it away from them
    moved = build_for(Recipe("climax", "climax_3h", {"time_step_hours": 3.0}), data, SMALL_CLIMAX)
    train_model(moved, data, tmp_path / "moved", device="cpu", progress=False,
                config=TrainConfig(steps=1, batch_size=2, lr=1e-2, warmup=1, dtype="fp32",
                                   init_from=str(tmp_path / "base")))
    assert not torch.equal(moved.net.head[-1].weight.cpu(), base["head.2.weight"])
    with pytest.raises(CheckpointError, match="architecture"):
        other = build_for(Recipe("hrheim", "hrheim", {"time_step_hours": 1.0}), data, SMALL_HRHEIM)
        train_model(other, data, tmp_path / "x", device="cpu", progress=False,
                    config=TrainConfig(steps=0, dtype="fp32", init_from=str(tmp_path / "base")))
    with pytest.raises(CheckpointError, match="shape mismatches"):
        wider = build_for(Recipe("climax", "climax_3h", {"time_step_hours": 3.0}), data,
                          {**SMALL_CLIMAX, "embed_dim": 32})
        train_model(wider, data, tmp_path / "y", device="cpu", progress=False,
                    config=TrainConfig(steps=0, dtype="fp32", init_from=str(tmp_path / "base")))


def test_training_writes_a_checkpoint_that_loads_and_forecasts(source, tmp_path):
    data = load_training_data(source, variables=VARS)
    model = build_for(Recipe("hrheim", "hrheim", {"time_step_hours": 1.0}), data, SMALL_HRHEIM)
    cfg = TrainConfig(steps=4, batch_size=2, lr=3e-3, warmup=2, dtype="fp32", rollout_steps=2)
    result = train_model(model, data, tmp_path / "hrheim", config=cfg, device="cpu", progress=False)
    assert result.steps == 4 and np.isfinite(result.heldout_loss)
    assert len(result.losses) == 1  # the loss is read (a host sync) every 10 steps and at the end
    doc = json.loads((tmp_path / "hrheim.json").read_text())
    assert doc["metadata"]["training"]["train_period"][1].startswith("2020-06-01 19")
    assert doc["config"]["normalization"]["mean"]["t2m"] == pytest.approx(data.normalization.mean["t2m"])
    assert not (tmp_path / "hrheim.progress.pt").exists()
    loaded = load("hrheim", checkpoint=tmp_path)
    fc = run_forecast(loaded, source, ["2020-06-01T20", "2020-06-01T22"], [1, 2], device="cpu", dtype="fp32",
                      progress=False)
    assert np.isfinite(fc["z500"].values).all()
    trained = {k: v.cpu() for k, v in model.net.state_dict().items()}
    for key, value in loaded.net.state_dict().items():
        torch.testing.assert_close(value, trained[key])


class Interrupt(Exception):
    pass


def test_a_killed_training_resumes_from_its_progress_file(source, tmp_path):
    data = load_training_data(source, variables=VARS)
    recipe = Recipe("hrheim", "hrheim", {"time_step_hours": 1.0})
    cfg = TrainConfig(steps=4, batch_size=2, warmup=1, dtype="fp32", checkpoint_every=2, seed=3)

    torch.manual_seed(0)
    model = build_for(recipe, data, SMALL_HRHEIM)
    calls = {"n": 0}
    original = model.step

    def failing_step(*a, **k):
        calls["n"] += 1
        if calls["n"] == 4:  # during optimiser step 4: steps 1-3 done, progress saved at step 2
            raise Interrupt
        return original(*a, **k)

    model.step = failing_step
    with pytest.raises(Interrupt):
        train_model(model, data, tmp_path / "m", config=cfg, device="cpu", progress=False)
    assert (tmp_path / "m.progress.pt").exists() and not (tmp_path / "m.json").exists()

    torch.manual_seed(0)
    resumed = train_model(build_for(recipe, data, SMALL_HRHEIM), data, tmp_path / "m", config=cfg, device="cpu",
                          progress=False)
    assert resumed.resumed_from == 2 and resumed.steps == 4
    torch.manual_seed(0)
    straight = train_model(build_for(recipe, data, SMALL_HRHEIM), data, tmp_path / "n", config=cfg, device="cpu",
                           progress=False)
    assert straight.resumed_from == 0 and straight.steps == 4
    a = load("hrheim", checkpoint=tmp_path / "m").net.state_dict()
    b = load("hrheim", checkpoint=tmp_path / "n").net.state_dict()
    for key in a:  # same seed, same batches, same optimiser state: the same weights
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)


def test_lead_conditioned_training_runs_as_an_hta_family(source, tmp_path):
    data = load_training_data(source, variables=VARS)
    recipe = Recipe("climax", "climax", {"time_step_hours": 1.0, "lead_hours": [1.0, 3.0],
                                         "net": {"drop_rate": 0.1}})
    model = build_for(recipe, data, SMALL_CLIMAX)
    cfg = TrainConfig(steps=3, batch_size=2, warmup=1, dtype="fp32", lead_hours=[1.0, 3.0])
    train_model(model, data, tmp_path / "climax", config=cfg, device="cpu", progress=False)
    loaded = load("climax", checkpoint=tmp_path)
    assert sorted(step_models(loaded)) == [pd.Timedelta(hours=1), pd.Timedelta(hours=3)]
    fc = run_forecast(loaded, source, "2020-06-01T20", [1, 3, 4], device="cpu", dtype="fp32", progress=False)
    assert np.isfinite(fc["t2m"].values).all()
    with pytest.raises(DataError, match="rollout_steps=1"):
        train_model(model, data, tmp_path / "x", config=TrainConfig(steps=1, lead_hours=[1.0], rollout_steps=2,
                                                                   dtype="fp32"), device="cpu", progress=False)


@pytest.mark.slow
def test_training_learns_the_wave(source, tmp_path):
    """A few dozen steps already beat persistence on the held-out hours for this easy dynamics."""
    data = load_training_data(source, variables=VARS)
    model = build("hrheim", {"variables": list(VARS), "grid": {"shape": [16, 24]}, "net": SMALL_HRHEIM,
                             "forcings": []}, normalization=data.normalization)
    cfg = TrainConfig(steps=30, batch_size=4, lr=5e-3, warmup=3, dtype="fp32")
    result = train_model(model, data, tmp_path / "w", config=cfg, device="cpu", progress=False)
    # persistence's one-step normalised MSE on the held-out pairs
    arr = (data.array - data.normalization.arrays(VARS)[0][None, :, None, None]) / \
        data.normalization.arrays(VARS)[1][None, :, None, None]
    split = data.train_hours
    persistence = float(np.mean((arr[split + 1 :] - arr[split : -1]) ** 2))
    assert result.heldout_loss < persistence
