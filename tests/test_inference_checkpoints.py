"""The shipped checkpoints load and forecast on the tiny sample on a CPU; ``workbench infer`` writes a store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import workbench
from workbench.inference import ZarrSink, open_forecast, run_forecast
from workbench.models import load, load_ensemble
from workbench.models.protocol import step_models
from workbench.sample import open_sample
from workbench.workflow.start import driving_boundary, initial_state, run_from_analysis

CHECKPOINTS = Path(workbench.__file__).parent / "checkpoints"
H = pd.Timedelta(hours=1)


@pytest.mark.parametrize(
    ("name", "steps", "lead"),
    [("pangu", [H, 6 * H, 24 * H], 6), ("climax", [H, 6 * H, 24 * H], 1), ("hrheim", [H], 1)],
)
def test_shipped_checkpoint_forecasts_on_the_tiny_sample(name, steps, lead, tiny_sample, tiny_hrrr):
    doc = json.loads((CHECKPOINTS / f"{name if name != 'pangu' else 'pangu_6h'}.json").read_text())
    training = doc["metadata"]["training"]
    assert training["train_period"][0].startswith("2019-06-01")  # the independent training period
    assert training["heldout_period"][0].startswith("2021-06-01")  # validated on a third June
    config = doc["config"]
    assert "toa_insolation" in config["forcings"] and "land_sea_mask" in config["static"]
    assert config["boundary"]["variables"] and config["net"]["drop_rate"] == 0.1 and doc["storage"] == "fp16"
    model = load(name)
    assert sorted(step_models(model)) == steps
    assert len(load_ensemble(name)) == 3  # the deep ensemble ships with it
    analysis, nwp = initial_state("tiny"), open_sample("nwp", "tiny")
    init = analysis.time.values[1]
    fc = run_from_analysis(model, analysis, nwp, init, [lead], device="cpu", dtype="fp32", progress=False)
    assert dict(fc.sizes) == {"init_time": 1, "lead_time": 1, "y": tiny_hrrr.sizes["y"], "x": tiny_hrrr.sizes["x"]}
    assert set(fc.data_vars) == set(model.variables)
    t2m = fc["t2m"].values
    assert np.isfinite(t2m).all()
    # a trained model stays near the analysis it starts from (K), not wildly off
    truth = tiny_hrrr["t2m"].sel(time=fc.valid_time.values[0, 0]).values
    assert np.sqrt(np.mean((t2m[0, 0] - truth) ** 2)) < 10.0


def test_workbench_infer_writes_and_resumes_a_store(tiny_sample, tmp_path, capsys):
    from workbench.cli import main

    store = tmp_path / "persistence.zarr"
    args = ["infer", "persistence", "--size", "tiny", "--store", str(store), "--init-range", "2020-06-01T00",
            "2020-06-02T00", "12h", "--leads", "0:3:1", "--batch-size", "2", "--no-progress"]
    assert main(args) == 0
    assert "wrote" in capsys.readouterr().out
    fc = open_forecast(store, require_complete=True)
    assert fc.sizes["init_time"] == 3 and list(pd.TimedeltaIndex(fc.lead_time.values) / H) == [0, 1, 2, 3]
    # the sample's forecasts start from its analysis (truth + analysis error), not the truth
    analysis = xr.open_zarr(tiny_sample.analysis)
    np.testing.assert_array_equal(fc["t2m"].isel(init_time=1, lead_time=3).values,
                                  analysis["t2m"].sel(time="2020-06-01T12").values)
    # the same command again finds every block done
    assert main(args) == 0
    # another run into the same store is refused with a clear message
    other = [*args[:-3], "--batch-size", "3", "--no-progress"]
    assert main(other) == 2
    assert "different run" in capsys.readouterr().err


def test_workbench_infer_ensemble_with_a_shipped_model(tiny_sample, tmp_path):
    from workbench.cli import main

    store = tmp_path / "climax-ens.zarr"
    assert main(["infer", "climax", "--size", "tiny", "--store", str(store), "--init", "2020-06-01T12",
                 "--leads", "1", "--weight-members", "2", "--noise-members", "2", "--dtype", "fp32",
                 "--device", "cpu", "--no-progress"]) == 0
    fc = open_forecast(store)
    assert fc["u10m"].dims == ("init_time", "lead_time", "weight_member", "noise_member", "y", "x")
    spread = fc["u10m"].isel(init_time=0, lead_time=0)
    assert float(spread.mean("noise_member").std("weight_member").mean()) > 0  # MC dropout (drop_rate 0.1)
    assert float(spread.std("noise_member").mean()) > 0  # perturbed initial states


def test_workbench_infer_writes_the_catalog_store_by_default(tiny_sample, capsys):
    import shutil

    from workbench.catalog import forecast_store_path
    from workbench.cli import main

    store = forecast_store_path("persistence")
    assert not store.exists()
    try:
        assert main(["infer", "persistence", "--size", "tiny", "--init", "2020-06-01T00", "2020-06-01T12",
                     "--leads", "0", "2", "--no-progress"]) == 0
        assert str(store) in capsys.readouterr().out
        fc = workbench.open_catalog()["forecasts"](model="persistence", require_complete=True).to_dask()
        assert fc["t2m"].dims == ("init_time", "lead_time", "y", "x")
        assert fc.sizes["init_time"] == 2 and list(pd.TimedeltaIndex(fc.lead_time.values) / H) == [0, 2]
        analysis = xr.open_zarr(tiny_sample.analysis)
        np.testing.assert_array_equal(fc["t2m"].isel(init_time=1, lead_time=1).values,
                                      analysis["t2m"].sel(time="2020-06-01T12").values)
        # the API's catalog sink is the same store: the same run finds every block done there
        from workbench.models import load

        model = load("persistence")

        def refuse(*args, **kwargs):
            raise AssertionError("a finished block was forecast again")

        model.forecast = refuse
        again = run_forecast(model, analysis, ["2020-06-01T00", "2020-06-01T12"],
                             [0, 2], sink=ZarrSink.catalog("persistence"), progress=False)
        np.testing.assert_array_equal(again["t2m"].values, fc["t2m"].values)
    finally:
        shutil.rmtree(store, ignore_errors=True)


def test_importing_the_inference_package_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys, workbench.inference as inf\n"
        "from workbench.inference import open_forecast\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "assert sorted(inf.__all__) == ['EnsembleSpec', 'ForecastSink', 'MemorySink', 'ZarrSink', 'open_forecast', 'run_forecast']\n"
        "assert callable(inf.run_forecast) and inf.EnsembleSpec(weight_members=2).weight_members == 2\n"
        "assert 'torch' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", ["pangu", "hrheim"])
def test_mc_dropout_of_models_trained_with_dropout(name, tiny_sample, tmp_path):
    from workbench.inference import EnsembleSpec
    from workbench.inference.ensemble import EnsembleError, dropout_layers
    from workbench.models.protocol import torch_module

    model = load(name)
    # shipped trained with dropout 0.1 in the MLPs: MC dropout samples what the network learnt with
    for m in step_models(model).values():
        assert {float(layer.p) for layer in dropout_layers(torch_module(m))} == {0.1}
    analysis, nwp = initial_state("tiny"), open_sample("nwp", "tiny")
    init, store = analysis.time.values[1], tmp_path / f"{name}.zarr"
    edges = driving_boundary(nwp, [init], [1])
    with pytest.raises(EnsembleError, match="dropout"):
        run_forecast(model, analysis, init, [1], members=EnsembleSpec(weight_members=2, dropout=0.0), boundary=edges,
                     device="cpu", sink=ZarrSink(store), progress=False)
    assert not store.exists()  # refused before a store is made, so a corrected rerun is not blocked
    with pytest.raises(EnsembleError, match=r"\[0, 1\)"):
        EnsembleSpec(weight_members=2, dropout=1.0)
    # at the layers' own rate the members are distinct networks: epistemic spread, fixed per member
    spec = EnsembleSpec(weight_members=2, noise_members=2, noise_scale=0.0, seed=3)
    fc = run_forecast(model, analysis, init, [1], members=spec, boundary=edges, device="cpu", dtype="fp32",
                      progress=False)
    t2m = fc["t2m"].isel(init_time=0, lead_time=0)
    assert float(t2m.mean("noise_member").std("weight_member").mean()) > 1e-3
    np.testing.assert_array_equal(t2m.isel(noise_member=0).values, t2m.isel(noise_member=1).values)
