"""Torch models end to end: saved, loaded through the registry, forecasting on the tiny sample via the engine."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from workbench import models
from workbench.inference import run_forecast
from workbench.lexicon import SAMPLE_VARIABLES

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def truth(request):
    sample = pytest.importorskip("workbench.sample")
    if not hasattr(sample, "open_sample"):
        pytest.skip("the embedded sample is not part of this checkout yet")
    request.getfixturevalue("tiny_sample")
    return sample.open_sample("hrrr", size="tiny").load()


@pytest.fixture(scope="module")
def zoo(truth, tmp_path_factory):
    """Untrained small networks of the three architectures, saved as the registry expects them."""
    directory = tmp_path_factory.mktemp("checkpoints")
    norm = models.Normalization.from_dataset(truth, SAMPLE_VARIABLES)
    grid = {"kind": "hrrr", "shape": [truth.sizes["y"], truth.sizes["x"]]}
    torch.manual_seed(0)
    for hours in (1, 6):
        net = models.build("pangu", {"grid": grid, "time_step_hours": hours}, normalization=norm)
        models.save_checkpoint(net, directory / f"pangu_{hours}h")
    models.save_checkpoint(
        models.build("climax", {"grid": grid, "lead_hours": [1, 6]}, normalization=norm), directory / "climax"
    )
    small = {"channels": [8, 16, 32], "bottleneck_depth": 2, "heads": 2, "head_hidden": 4}
    models.save_checkpoint(
        models.build("hrheim", {"grid": grid, "net": small}, normalization=norm), directory / "hrheim"
    )
    return directory


@pytest.mark.parametrize("name", ["pangu", "climax", "hrheim"])
def test_loaded_models_forecast_the_sample(name, truth, zoo):
    model = models.load(name, checkpoint=zoo)
    inits = truth.time.values[[2, 9]]
    fc = run_forecast(model, truth, inits, [1, 7], device="cpu", dtype="fp32", progress=False)
    assert fc["t2m"].dims == ("init_time", "lead_time", "y", "x")
    assert set(SAMPLE_VARIABLES) <= set(fc.data_vars)
    assert fc["valid_time"].values[1, 1] == inits[1] + np.timedelta64(7, "h")
    assert all(np.isfinite(fc[v].values).all() for v in SAMPLE_VARIABLES)


def test_engine_step_is_the_models_step(truth, zoo):
    """One engine step equals denormalize(step(normalize(state))) with the input's valid time."""
    model = models.load("hrheim", checkpoint=zoo)
    init = pd.Timestamp(truth.time.values[5])
    fc = run_forecast(model, truth, [init], [1], device="cpu", dtype="fp32", progress=False)
    state = np.stack([truth[v].sel(time=init).values for v in model.variables])[None]
    with torch.no_grad():
        x = model.normalize(torch.as_tensor(state, dtype=torch.float32))
        expected = model.denormalize(model.step(x, valid_time=np.array([init.to_datetime64()])))
    for c, v in enumerate(model.variables):
        np.testing.assert_allclose(fc[v].values[0, 0], expected[0, c].numpy(), rtol=1e-4, atol=1e-3)


def test_pangu_family_reaches_leads_by_hta(truth, zoo):
    family = models.load("pangu", checkpoint=zoo)
    assert isinstance(family, models.HierarchicalModel) and family.steps == (6, 1)
    init = pd.Timestamp(truth.time.values[3])
    fc = run_forecast(family, truth, [init], [7], device="cpu", dtype="fp32", progress=False)
    state = np.stack([truth[v].sel(time=init).values for v in family.variables])[None]
    with torch.no_grad():
        x = family.normalize(torch.as_tensor(state, dtype=torch.float32))
        x = family.step(x, 6, valid_time=np.array([init.to_datetime64()]))  # 7 h = 6 + 1
        x = family.step(x, 1, valid_time=np.array([(init + pd.Timedelta(hours=6)).to_datetime64()]))
        expected = family.denormalize(x)
    np.testing.assert_allclose(
        fc["z500"].values[0, 0], expected[0, family.variables.index("z500")].numpy(), rtol=1e-4
    )
