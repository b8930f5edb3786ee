"""Loaders for published weights on tiny files written here: Pangu-Weather ONNX and ClimaX checkpoints."""

from __future__ import annotations

import math

import numpy as np
import onnx
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import xarray as xr
from onnx import TensorProto, helper, numpy_helper

from workbench import models
from workbench.errors import CheckpointError, GridError
from workbench.models.climax_checkpoint import canonical_climax_name, load_climax_checkpoint
from workbench.models.pangu_onnx import PanguWeatherONNX, pangu_variables

NY, NX = 5, 8  # a reduced lat-lon grid; the real files are 721 x 1440


pytestmark = pytest.mark.usefixtures("one_thread")


# --------------------------------------------------------------------------------------------------
# Pangu-Weather ONNX
# --------------------------------------------------------------------------------------------------
def write_pangu_onnx(path, hours: float, ny=NY, nx=NX, input_names=("input", "input_surface")):
    """A network with Pangu-Weather's signature: upper + hours; surface + hours * (row from the north)."""
    upper = helper.make_tensor_value_info(input_names[0], TensorProto.FLOAT, [5, 13, ny, nx])
    surface = helper.make_tensor_value_info(input_names[1], TensorProto.FLOAT, [4, ny, nx])
    out = helper.make_tensor_value_info("output", TensorProto.FLOAT, [5, 13, ny, nx])
    out_surface = helper.make_tensor_value_info("output_surface", TensorProto.FLOAT, [4, ny, nx])
    rows = (
        np.arange(ny, dtype=np.float32).reshape(1, ny, 1)
        if isinstance(ny, int)
        else np.zeros((1, 1, 1), np.float32)
    )
    inits = [
        numpy_helper.from_array(np.array(hours, dtype=np.float32), "step"),
        numpy_helper.from_array(rows * np.float32(hours), "rows"),
    ]
    nodes = [
        helper.make_node("Add", [input_names[0], "step"], ["output"]),
        helper.make_node("Add", [input_names[1], "rows"], ["output_surface"]),
    ]
    graph = helper.make_graph(nodes, "pangu_like", [upper, surface], [out, out_surface], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def era5_like(ny=NY, nx=NX, times=2) -> xr.Dataset:
    lat = np.linspace(-90, 90, ny)  # ascending, as the workbench's ERA5-like layout
    lon = np.arange(nx) * 360.0 / nx
    rng = np.random.default_rng(0)
    data = {
        v: (("time", "latitude", "longitude"), rng.normal(size=(times, ny, nx)).astype(np.float32))
        for v in pangu_variables()
    }
    return xr.Dataset(
        data,
        coords={
            "time": pd.date_range("2020-06-01", periods=times, freq="6h"),
            "latitude": lat,
            "longitude": lon,
        },
    )


@pytest.fixture()
def pangu_dir(tmp_path):
    for hours in (1, 3, 6, 24):
        write_pangu_onnx(tmp_path / f"pangu_weather_{hours}.onnx", hours)
    return tmp_path


def test_pangu_onnx_signature_and_grid_from_the_files(pangu_dir):
    model = models.load("pangu_weather", checkpoint=pangu_dir)
    assert isinstance(model, PanguWeatherONNX) and isinstance(model, models.Forecaster)
    assert model.steps == (24, 6, 3, 1) and model.time_step == pd.Timedelta(hours=1)
    assert model.grid_shape == (NY, NX)
    assert len(model.variables) == 69 and model.variables[:2] == ("z1000", "z925")
    assert model.variables[-4:] == ("msl", "u10m", "v10m", "t2m")


def test_pangu_onnx_accepts_the_real_shapes(tmp_path):
    write_pangu_onnx(tmp_path / "pangu_weather_24.onnx", 24, ny=721, nx=1440)
    assert PanguWeatherONNX(tmp_path / "pangu_weather_24.onnx").grid_shape == (721, 1440)


def test_pangu_onnx_forecast_uses_hta_and_pangu_orientation(pangu_dir):
    model = PanguWeatherONNX(pangu_dir, threads=1)
    truth = era5_like()
    init = truth.time.values[0]
    fc = model.forecast(truth, [init], [1, 24, 25, 31])
    # prefixes (1), (24), (24, 1), (24, 6), (24, 6, 1): five network calls for four lead times
    assert model.model_calls == 5
    z500 = truth["z500"].values[0]
    for k, hours in enumerate((1, 24, 25, 31)):
        np.testing.assert_allclose(fc["z500"].values[0, k], z500 + hours, rtol=1e-6)
    # the surface network adds hours x (row counted from the north); the data run south to north
    north_rows = (NY - 1 - np.arange(NY))[:, None]
    np.testing.assert_allclose(fc["t2m"].values[0, 0], truth["t2m"].values[0] + 1.0 * north_rows, rtol=1e-6)
    np.testing.assert_allclose(fc["msl"].values[0, 3], truth["msl"].values[0] + 31.0 * north_rows, rtol=1e-5)
    assert fc["valid_time"].values[0, 3] == init + np.timedelta64(31, "h")


def test_pangu_onnx_errors(tmp_path, pangu_dir):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "pangu_weather_6.onnx").write_bytes(b"definitely not protobuf" * 10)
    with pytest.raises(CheckpointError, match=r"pangu_weather_6\.onnx: not a loadable ONNX model"):
        PanguWeatherONNX(bad)
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    write_pangu_onnx(renamed / "pangu_weather_1.onnx", 1, input_names=("x", "x_surface"))
    with pytest.raises(CheckpointError, match="not a Pangu-Weather network"):
        PanguWeatherONNX(renamed)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="no pangu_weather_<hours>.onnx"):
        PanguWeatherONNX(empty)
    model = PanguWeatherONNX(pangu_dir)
    with pytest.raises(GridError, match="not the networks' grid"):
        model.forecast(era5_like(ny=7), ["2020-06-01"], [6])


# --------------------------------------------------------------------------------------------------
# ClimaX checkpoints
# --------------------------------------------------------------------------------------------------
CLIMAX_VARS = [
    "land_sea_mask",
    "2m_temperature",
    "10m_u_component_of_wind",
    "geopotential_500",
    "temperature_850",
]
D, P, DEPTH, HEADS = 32, 2, 2, 4
GRID = (8, 16)


N_VARS = len(CLIMAX_VARS)


def climax_layout(n_vars=N_VARS, d=D, p=P, depth=DEPTH, grid=GRID, channel_names=False) -> dict:
    """Random tensors under the key names and shapes of ClimaX's ``ClimaX`` module (src/climax/arch.py)."""
    g = torch.Generator().manual_seed(0)

    def r(*shape):
        return torch.randn(*shape, generator=g) * 0.1

    n_tokens = (grid[0] // p) * (grid[1] // p)
    var = "channel" if channel_names else "var"
    sd = {}
    for i in range(n_vars):
        sd[f"token_embeds.{i}.proj.weight"] = r(d, 1, p, p)
        sd[f"token_embeds.{i}.proj.bias"] = r(d)
    sd[f"{var}_embed"] = r(1, n_vars, d)
    sd[f"{var}_query"] = r(1, 1, d)
    sd[f"{var}_agg.in_proj_weight"] = r(3 * d, d)
    sd[f"{var}_agg.in_proj_bias"] = r(3 * d)
    sd[f"{var}_agg.out_proj.weight"] = r(d, d)
    sd[f"{var}_agg.out_proj.bias"] = r(d)
    sd["pos_embed"] = r(1, n_tokens, d)
    sd["lead_time_embed.weight"] = r(d, 1)
    sd["lead_time_embed.bias"] = r(d)
    for n in range(depth):
        b = f"blocks.{n}."
        sd[b + "norm1.weight"], sd[b + "norm1.bias"] = 1 + r(d), r(d)
        sd[b + "attn.qkv.weight"], sd[b + "attn.qkv.bias"] = r(3 * d, d), r(3 * d)
        sd[b + "attn.proj.weight"], sd[b + "attn.proj.bias"] = r(d, d), r(d)
        sd[b + "norm2.weight"], sd[b + "norm2.bias"] = 1 + r(d), r(d)
        sd[b + "mlp.fc1.weight"], sd[b + "mlp.fc1.bias"] = r(4 * d, d), r(4 * d)
        sd[b + "mlp.fc2.weight"], sd[b + "mlp.fc2.bias"] = r(d, 4 * d), r(d)
    sd["norm.weight"], sd["norm.bias"] = 1 + r(d), r(d)
    sd["head.0.weight"], sd["head.0.bias"] = r(d, d), r(d)
    sd["head.2.weight"], sd["head.2.bias"] = r(d, d), r(d)
    sd["head.4.weight"], sd["head.4.bias"] = r(n_vars * p * p, d), r(n_vars * p * p)
    return sd


def save_lightning(path, sd):
    torch.save(
        {
            "epoch": 4,
            "global_step": 100,
            "state_dict": {f"net.{k}": v for k, v in sd.items()},
            "hyper_parameters": {"lr": 5e-4},
        },
        path,
    )


def reference_climax(sd, x, lead_hours, ids, heads=HEADS, p=P):
    """ClimaX's forward (arch.py: forward_encoder, head, unpatchify) written out on the raw tensors."""
    b, _, h, w = x.shape
    tokens = torch.stack(
        [
            F.conv2d(
                x[:, j : j + 1],
                sd[f"token_embeds.{i}.proj.weight"],
                sd[f"token_embeds.{i}.proj.bias"],
                stride=p,
            )
            .flatten(2)
            .transpose(1, 2)
            for j, i in enumerate(ids)
        ],
        dim=1,
    )
    tokens = tokens + sd["var_embed"][:, ids].unsqueeze(2)
    _, v, length, d = tokens.shape
    kv = tokens.permute(0, 2, 1, 3).reshape(b * length, v, d).transpose(0, 1)  # (V, B*L, D)
    q = sd["var_query"].expand(b * length, 1, d).transpose(0, 1)
    agg, _ = F.multi_head_attention_forward(
        q,
        kv,
        kv,
        d,
        heads,
        sd["var_agg.in_proj_weight"],
        sd["var_agg.in_proj_bias"],
        None,
        None,
        False,
        0.0,
        sd["var_agg.out_proj.weight"],
        sd["var_agg.out_proj.bias"],
        training=False,
        need_weights=False,
    )
    z = agg.transpose(0, 1).reshape(b, length, d) + sd["pos_embed"]
    z = (
        z
        + F.linear(
            torch.full((b, 1), lead_hours / 100.0), sd["lead_time_embed.weight"], sd["lead_time_embed.bias"]
        )[:, None]
    )
    for n in range(DEPTH):
        pre = f"blocks.{n}."
        y = F.layer_norm(z, (d,), sd[pre + "norm1.weight"], sd[pre + "norm1.bias"])
        qkv = F.linear(y, sd[pre + "attn.qkv.weight"], sd[pre + "attn.qkv.bias"]).reshape(
            b, length, 3, heads, d // heads
        )
        qh, kh, vh = qkv.permute(2, 0, 3, 1, 4)
        att = torch.softmax(qh @ kh.transpose(-1, -2) / math.sqrt(d // heads), dim=-1) @ vh
        z = z + F.linear(
            att.transpose(1, 2).reshape(b, length, d),
            sd[pre + "attn.proj.weight"],
            sd[pre + "attn.proj.bias"],
        )
        y = F.layer_norm(z, (d,), sd[pre + "norm2.weight"], sd[pre + "norm2.bias"])
        y = F.linear(
            F.gelu(F.linear(y, sd[pre + "mlp.fc1.weight"], sd[pre + "mlp.fc1.bias"])),
            sd[pre + "mlp.fc2.weight"],
            sd[pre + "mlp.fc2.bias"],
        )
        z = z + y
    z = F.layer_norm(z, (d,), sd["norm.weight"], sd["norm.bias"])
    z = F.gelu(F.linear(z, sd["head.0.weight"], sd["head.0.bias"]))
    z = F.gelu(F.linear(z, sd["head.2.weight"], sd["head.2.bias"]))
    z = F.linear(z, sd["head.4.weight"], sd["head.4.bias"])
    c = sd["var_embed"].shape[1]
    z = z.reshape(b, h // p, w // p, p, p, c)
    return torch.einsum("nhwpqc->nchpwq", z).reshape(b, c, h, w)


def test_climax_checkpoint_maps_onto_the_module(tmp_path):
    sd = climax_layout()
    path = tmp_path / "5.625deg.ckpt"
    save_lightning(path, sd)
    model = models.load(
        "climax_pretrained", checkpoint=path, variables=CLIMAX_VARS, num_heads=HEADS, lead_hours=72
    )
    assert isinstance(model, models.TorchForecaster)
    assert model.variables == ("land_sea_mask", "t2m", "u10m", "z500", "t850")
    assert model.time_step == pd.Timedelta(hours=72)
    assert model.grid["shape"] == list(GRID)  # inferred from 32 patches on ClimaX's 1:2 global grid
    torch.testing.assert_close(model.net.var_agg.in_proj_weight, sd["var_agg.in_proj_weight"])
    x = torch.randn(2, len(CLIMAX_VARS), *GRID)
    with torch.no_grad():
        ours = model.step(x)
        expected = reference_climax(sd, x, 72.0, list(range(len(CLIMAX_VARS))))
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-5)
    # a subset of the variables, tokenized by their own embeddings
    subset = ["t2m", "z500"]
    with torch.no_grad():
        ours = model.step(x[:, [1, 3]], variables=subset)
        expected = reference_climax(sd, x[:, [1, 3]], 72.0, [1, 3])
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-5)


def test_older_channel_names_are_renamed(tmp_path):
    path = tmp_path / "old.ckpt"
    save_lightning(path, climax_layout(channel_names=True))
    model = load_climax_checkpoint(path, variables=CLIMAX_VARS, num_heads=HEADS)
    assert model.net.var_query.shape == (1, 1, D)


def test_climax_checkpoint_dimension_mismatch_is_clear(tmp_path):
    path = tmp_path / "ckpt.ckpt"
    save_lightning(path, climax_layout())
    names = [canonical_climax_name(v) for v in CLIMAX_VARS]
    grid = {"kind": "latlon", "shape": list(GRID)}
    same = {"embed_dim": D, "patch_size": P, "depth": DEPTH, "num_heads": HEADS, "residual": False}
    default = models.build("climax", {"variables": names, "forcings": [], "grid": grid})
    with pytest.raises(
        CheckpointError,
        match=r"ckpt\.ckpt: weights do not match the network: missing keys "
        r"\['blocks\.2.*shape mismatches.*file \(32,\) vs model \(128,\)",
    ):
        load_climax_checkpoint(path, model=default)
    with_mlp = models.build("climax", {"variables": names, "forcings": [], "grid": grid, "net": same})
    with pytest.raises(
        CheckpointError, match=r"missing keys \['lead_time_mlp\.1\.bias', 'lead_time_mlp\.1\.weight'\]"
    ):
        load_climax_checkpoint(path, model=with_mlp)
    matching = models.build(
        "climax", {"variables": names, "forcings": [], "grid": grid, "net": {**same, "lead_time_mlp": False}}
    )
    assert load_climax_checkpoint(path, model=matching) is matching
    torch.testing.assert_close(matching.net.pos_embed, climax_layout()["pos_embed"])


def test_climax_checkpoint_bad_files(tmp_path):
    with pytest.raises(CheckpointError, match="pass variables="):
        path = tmp_path / "a.ckpt"
        save_lightning(path, climax_layout())
        load_climax_checkpoint(path, num_heads=HEADS)
    not_climax = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"net.conv.weight": torch.ones(2)}}, not_climax)
    with pytest.raises(CheckpointError, match="not a ClimaX checkpoint"):
        load_climax_checkpoint(not_climax)
    cut = tmp_path / "cut.ckpt"
    save_lightning(cut, climax_layout())
    cut.write_bytes(cut.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r"cut\.ckpt: not a readable torch checkpoint"):
        load_climax_checkpoint(cut, variables=CLIMAX_VARS)
