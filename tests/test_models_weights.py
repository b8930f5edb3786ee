"""Weight I/O: safetensors + JSON round trips, registry loading, corrupt and mismatched files."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest
import torch

from workbench import models
from workbench.errors import CheckpointError
from workbench.lexicon import SAMPLE_VARIABLES
from workbench.models.weights import checkpoint_paths

TIMES = np.array(["2020-06-01T03"], dtype="datetime64[ns]")
SMALL_HRHEIM = {"net": {"channels": [8, 16, 32], "bottleneck_depth": 2, "heads": 2, "head_hidden": 4}}


pytestmark = pytest.mark.usefixtures("one_thread")


def small(name: str = "hrheim", **kw) -> models.TorchForecaster:
    torch.manual_seed(1)
    norm = models.Normalization(
        {v: 1.0 + i for i, v in enumerate(SAMPLE_VARIABLES)},
        {v: 0.5 + i for i, v in enumerate(SAMPLE_VARIABLES)},
    )
    return models.build(name, SMALL_HRHEIM if name == "hrheim" else None, normalization=norm, **kw).eval()


def test_round_trip_gives_the_same_forecaster(tmp_path):
    model = small()
    weights, config = models.save_checkpoint(model, tmp_path / "hrheim", metadata={"epochs": 3})
    assert weights.name == "hrheim.safetensors" and config.name == "hrheim.json"
    loaded = models.load_checkpoint(tmp_path / "hrheim.safetensors")
    assert loaded.variables == model.variables and loaded.time_step == model.time_step
    assert loaded.normalization == model.normalization
    assert loaded.checkpoint_metadata == {"epochs": 3}
    x = torch.randn(1, 11, 12, 20)
    with torch.no_grad():
        torch.testing.assert_close(loaded.step(x, valid_time=TIMES), model.step(x, valid_time=TIMES))
    assert json.loads(config.read_text())["config"]["net"]["channels"] == [8, 16, 32]


def test_registry_loads_one_file_or_a_hierarchy(tmp_path, monkeypatch):
    for hours in (1, 6):
        models.save_checkpoint(small("pangu", time_step_hours=hours), tmp_path / f"pangu_{hours}h")
    models.save_checkpoint(small(), tmp_path / "hrheim")
    monkeypatch.setenv("WORKBENCH_CHECKPOINTS", str(tmp_path))
    assert isinstance(models.load("hrheim"), models.TorchForecaster)
    family = models.load("pangu")
    assert isinstance(family, models.HierarchicalModel) and family.steps == (6, 1)
    single = models.load("pangu", steps=[1])
    assert isinstance(single, models.TorchForecaster) and single.step_hours == 1.0
    assert models.load("pangu", checkpoint=tmp_path / "pangu_6h.json").step_hours == 6.0


def test_truncated_weights_are_reported(tmp_path):
    weights, _ = models.save_checkpoint(small(), tmp_path / "m")
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"m\.safetensors.*SHA-256"):
        models.load_checkpoint(tmp_path / "m")
    with pytest.raises(CheckpointError, match=r"m\.safetensors: not a readable safetensors file"):
        models.load_checkpoint(tmp_path / "m", verify=False)


def test_garbage_and_missing_files_are_reported(tmp_path):
    weights, config = models.save_checkpoint(small(), tmp_path / "m")
    weights.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        models.load_checkpoint(tmp_path / "m", verify=False)
    config.write_text("{not json")
    with pytest.raises(CheckpointError, match=r"m\.json: not valid JSON"):
        models.load_checkpoint(tmp_path / "m")
    config.write_text(json.dumps({"format": "workbench-checkpoint", "config": {"name": "x"}}))
    with pytest.raises(CheckpointError, match="lacks \\['architecture'"):
        models.load_checkpoint(tmp_path / "m")
    weights.unlink()
    models.save_checkpoint(small(), tmp_path / "n")
    checkpoint_paths(tmp_path / "n")[0].unlink()
    with pytest.raises(CheckpointError, match=r"n\.safetensors: the weights file does not exist"):
        models.load_checkpoint(tmp_path / "n")


def test_mismatched_weights_name_keys_and_shapes(tmp_path):
    from safetensors.torch import load_file, save_file

    weights, config = models.save_checkpoint(small(), tmp_path / "m")
    doc = json.loads(config.read_text())
    doc["config"]["net"]["channels"] = [8, 16, 64]  # the bottleneck no longer matches the file
    config.write_text(json.dumps(doc))
    with pytest.raises(
        CheckpointError,
        match=r"m\.safetensors: weights do not match.*shape mismatches.*file \(32,\) vs model \(64,\)",
    ):
        models.load_checkpoint(tmp_path / "m", verify=False)  # the checksum would refuse the edit first

    weights, config = models.save_checkpoint(small(), tmp_path / "k")
    state = load_file(str(weights))
    del state["stem.weight"]
    state["extra.bias"] = torch.zeros(3)
    save_file(state, str(weights))
    with pytest.raises(
        CheckpointError, match=r"missing keys \['stem\.weight'\]; unexpected keys \['extra\.bias'\]"
    ):
        models.load_checkpoint(tmp_path / "k", verify=False)


def test_foreign_checkpoints_load_weights_only(tmp_path):
    path = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.ones(2)}, "epoch": 3}, path)
    obj = models.load_foreign_state_dict(path)
    assert obj["epoch"] == 3 and torch.equal(obj["state_dict"]["w"], torch.ones(2))


class Payload:
    """An arbitrary object: the weights-only loader must refuse to build it."""


def test_foreign_checkpoint_with_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"obj": Payload()}, path)
    with pytest.raises(CheckpointError, match="refused by the weights-only loader"):
        models.load_foreign_state_dict(path)


def test_truncated_foreign_checkpoint(tmp_path):
    path = tmp_path / "cut.pt"
    torch.save({"w": torch.ones(1000)}, path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(CheckpointError, match=r"cut\.pt: not a readable torch checkpoint"):
        models.load_foreign_state_dict(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        models.load_foreign_state_dict(tmp_path / "absent.pt")


def test_lightning_hyperparameters_load_without_lightning(tmp_path, monkeypatch):
    # Lightning checkpoints carry an AttributeDict; stand in for the module while saving only
    names = ["lightning_fabric", "lightning_fabric.utilities", "lightning_fabric.utilities.data"]
    fake = {n: types.ModuleType(n) for n in names}
    attribute_dict = type("AttributeDict", (dict,), {"__module__": "lightning_fabric.utilities.data"})
    fake["lightning_fabric.utilities.data"].AttributeDict = attribute_dict
    for n, m in fake.items():
        monkeypatch.setitem(sys.modules, n, m)
    path = tmp_path / "lightning.ckpt"
    torch.save({"hyper_parameters": attribute_dict(lr=5e-4), "state_dict": {"net.w": torch.ones(1)}}, path)
    for n in names:
        monkeypatch.delitem(sys.modules, n)
    obj = models.load_foreign_state_dict(path)
    assert obj["hyper_parameters"]["lr"] == 5e-4
