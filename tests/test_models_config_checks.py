"""Checkpoint configs are validated before a network is built from them."""

from __future__ import annotations

import copy
import json
import shutil
from importlib import resources
from pathlib import Path

import pytest

from workbench.errors import CheckpointError
from workbench.models.config_checks import validate_config
from workbench.models.weights import load_checkpoint, read_config

SHIPPED = Path(str(resources.files("workbench") / "checkpoints"))


def shipped_config(name: str = "pangu_6h") -> dict:
    return json.loads((SHIPPED / f"{name}.json").read_text())["config"]


@pytest.mark.parametrize("name", ["pangu_1h", "pangu_6h", "pangu_24h", "climax", "hrheim"])
def test_shipped_configs_are_valid(name):
    validate_config(shipped_config(name), name)


BAD = {
    "negative width": (
        lambda c: c["net"].update(embed_dim=-48),
        "net.embed_dim is a size and must be at least 1",
    ),
    "negative depth in a list": (lambda c: c["net"].update(depths=[2, -2, 2, 2]), r"net.depths\[1\]"),
    "zero heads": (lambda c: c["net"].update(heads=[3, 0, 6, 3]), r"net.heads\[1\] is a size"),
    "NaN ratio": (lambda c: c["net"].update(mlp_ratio=float("nan")), "net.mlp_ratio must be a finite number"),
    "dropout 1.5": (lambda c: c["net"].update(drop_path=1.5), "dropout rate and must be in"),
    "zero time step": (lambda c: c.update(time_step_hours=0), "'time_step_hours' must be a number above 0"),
    "time step as text": (lambda c: c.update(time_step_hours="6"), "'time_step_hours' must be a number"),
    "unknown variable": (lambda c: c.update(variables=["t2m", "banana"]), "'banana' is not a canonical"),
    "repeated variable": (lambda c: c.update(variables=["t2m", "t2m"]), "repeats names"),
    "empty variables": (lambda c: c.update(variables=[]), "non-empty list"),
    "grid shape negative": (
        lambda c: c["grid"].update(shape=[-133, 225]),
        "'grid.shape' must be two positive",
    ),
    "net not an object": (lambda c: c.update(net=[1, 2]), "'net' must be a JSON object"),
    "name empty": (lambda c: c.update(name=" "), "'name' must be a non-empty string"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_configs_are_refused(case):
    config = copy.deepcopy(shipped_config())
    change, match = BAD[case]
    change(config)
    with pytest.raises(CheckpointError, match=match):
        validate_config(config, "pangu_6h.json")


def test_a_negative_size_stops_loading_with_one_line(tmp_path, capsys):
    """Before, a negative width reached torch and failed with its own traceback."""
    for suffix in (".json", ".safetensors"):
        shutil.copy(SHIPPED / f"pangu_6h{suffix}", tmp_path / f"neg{suffix}")
    document = json.loads((tmp_path / "neg.json").read_text())
    document["config"]["net"]["embed_dim"] = -48
    (tmp_path / "neg.json").write_text(json.dumps(document))
    with pytest.raises(
        CheckpointError, match="neg.json: config net.embed_dim is a size and must be at least 1"
    ):
        read_config(tmp_path / "neg")
    with pytest.raises(CheckpointError, match="net.embed_dim"):
        load_checkpoint(tmp_path / "neg", verify=False)
