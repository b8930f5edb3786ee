"""Released ClimaX checkpoints mapped onto the ClimaX-like module.

ClimaX (github.com/microsoft/ClimaX) publishes PyTorch-Lightning checkpoints (``5.625deg.ckpt``,
``1.40625deg.ckpt``) whose ``state_dict`` holds the ``ClimaX`` module under the prefix ``net.``:

* ``token_embeds.<i>.proj.weight`` ``(D, 1, p, p)`` and ``.bias`` — one patch embedding per variable
  (or ``token_embeds.proj_weights`` ``(V, D, 1, p, p)`` / ``proj_biases`` with parallel patch embedding);
* ``var_embed`` ``(1, V, D)``, ``var_query`` ``(1, 1, D)``, ``var_agg.in_proj_weight`` ``(3D, D)``,
  ``var_agg.in_proj_bias``, ``var_agg.out_proj.weight``/``bias`` — variable aggregation (older files
  say ``channel`` for ``var``, which ClimaX itself renames);
* ``pos_embed`` ``(1, L, D)``, ``lead_time_embed.weight`` ``(D, 1)``/``bias``;
* ``blocks.<n>.norm1``, ``attn.qkv``, ``attn.proj``, ``norm2``, ``mlp.fc1``, ``mlp.fc2`` (timm Block),
  ``norm``, ``head.<0, 2, ...>`` (Linear/GELU pairs, last ``Linear(D, V * p * p)``).

:class:`~workbench.models.climax.ClimaXNet` has the same layout, so the tensors map one to one. The
loader reads the file with ``torch.load(weights_only=True)``, infers the dimensions from the tensors
(patch size, width, depth, MLP ratio, decoder depth, number of variables and patches) and either builds
a matching module or checks them against a given one, raising :class:`CheckpointError` with the
mismatching keys and shapes when they differ.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence

import torch

from workbench.errors import CheckpointError
from workbench.models.normalization import Normalization
from workbench.models.weights import check_state_dict, load_foreign_state_dict

__all__ = ["CLIMAX_ERA5_VARIABLES", "canonical_climax_name", "climax_state_dict", "load_climax_checkpoint"]

#: ``default_vars`` of ClimaX's global-forecast configuration (``configs/global_forecast_climax.yaml``).
CLIMAX_ERA5_VARIABLES = (
    "land_sea_mask",
    "orography",
    "lattitude",
    "2m_temperature",
    "10m_u_component_of_wind",
    "10m_v_component_of_wind",
    *(
        f"{f}_{lv}"
        for f in (
            "geopotential",
            "u_component_of_wind",
            "v_component_of_wind",
            "temperature",
            "relative_humidity",
            "specific_humidity",
        )
        for lv in (50, 250, 500, 600, 700, 850, 925)
    ),
)

_SINGLE = {
    "2m_temperature": "t2m",
    "10m_u_component_of_wind": "u10m",
    "10m_v_component_of_wind": "v10m",
    "mean_sea_level_pressure": "msl",
    "total_precipitation": "tp",
}
_LEVEL_FIELD = {
    "geopotential": "z",
    "u_component_of_wind": "u",
    "v_component_of_wind": "v",
    "temperature": "t",
    "relative_humidity": "r",
    "specific_humidity": "q",
}
_LEVEL_NAME = re.compile(r"^([a-z_]+)_(\d+)$")


def canonical_climax_name(name: str) -> str:
    """ClimaX's variable name -> canonical (``geopotential_500`` -> ``z500``); unknown names unchanged."""
    if name in _SINGLE:
        return _SINGLE[name]
    m = _LEVEL_NAME.match(name)
    if m and m.group(1) in _LEVEL_FIELD:
        return f"{_LEVEL_FIELD[m.group(1)]}{int(m.group(2))}"
    return name


def climax_state_dict(obj: Mapping, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The ``ClimaX`` module's tensors from a loaded checkpoint, in ClimaXNet's key layout.

    Accepts a Lightning checkpoint (``{"state_dict": {"net.<key>": ...}}``) or a bare state dict; strips
    the ``net.`` prefix, renames ``channel`` to ``var``, and splits parallel patch-embedding weights.
    """
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{source}: holds a {type(obj).__name__}, not a checkpoint dictionary.")
    state = obj.get("state_dict", obj)
    if not isinstance(state, Mapping) or not state:
        raise CheckpointError(f"{source}: no state_dict with tensors in it.")
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            continue
        k = key[4:] if key.startswith("net.") else key
        out[k.replace("channel", "var")] = value
    if "token_embeds.proj_weights" in out:
        weights = out.pop("token_embeds.proj_weights")
        biases = out.pop("token_embeds.proj_biases", None)
        for i in range(weights.shape[0]):
            out[f"token_embeds.{i}.proj.weight"] = weights[i]
            if biases is not None:
                out[f"token_embeds.{i}.proj.bias"] = biases[i]
    for required in ("var_embed", "var_query", "pos_embed", "token_embeds.0.proj.weight", "norm.weight"):
        if required not in out:
            raise CheckpointError(
                f"{source}: not a ClimaX checkpoint: no {required!r} tensor (keys start with "
                f"{sorted(out)[:5]})."
            )
    return out


def _infer_net_config(state: Mapping[str, torch.Tensor], grid_shape, num_heads: int, source: str) -> dict:
    d = state["var_query"].shape[-1]
    n_vars = state["var_embed"].shape[1]
    proj = state["token_embeds.0.proj.weight"]
    p = proj.shape[-1]
    n_tokens = state["pos_embed"].shape[1]
    depth = 1 + max((int(k.split(".")[1]) for k in state if k.startswith("blocks.")), default=-1)
    head_linears = sorted(
        int(k.split(".")[1]) for k in state if k.startswith("head.") and k.endswith(".weight")
    )
    if not head_linears:
        raise CheckpointError(f"{source}: no prediction head (head.N.weight) in the checkpoint.")
    head_out = state[f"head.{head_linears[-1]}.weight"].shape[0]
    if head_out != n_vars * p * p:
        raise CheckpointError(f"{source}: head predicts {head_out} values per patch, not {n_vars} x {p}^2.")
    mlp_ratio = state["blocks.0.mlp.fc1.weight"].shape[0] / d if depth else 4.0
    if grid_shape is None:
        # ClimaX's global grids are twice as wide as tall (32 x 64, 128 x 256)
        rows = math.isqrt(n_tokens // 2)
        if 2 * rows * rows != n_tokens:
            raise CheckpointError(
                f"{source}: cannot infer the grid from {n_tokens} patches; pass grid_shape=."
            )
        grid_shape = (rows * p, 2 * rows * p)
    elif (-(-grid_shape[0] // p)) * (-(-grid_shape[1] // p)) != n_tokens:
        raise CheckpointError(
            f"{source}: pos_embed has {n_tokens} patches, which does not fit grid_shape {tuple(grid_shape)} with "
            f"patch {p}."
        )
    if d % num_heads:
        raise CheckpointError(f"{source}: width {d} is not divisible by num_heads={num_heads}.")
    return {
        "patch_size": int(p),
        "embed_dim": int(d),
        "depth": int(depth),
        "decoder_depth": len(head_linears) - 1,
        "num_heads": int(num_heads),
        "mlp_ratio": float(mlp_ratio),
        "drop_path": 0.0,
        "drop_rate": 0.0,
        "grid_shape": [int(grid_shape[0]), int(grid_shape[1])],
        "lead_time_mlp": False,
        "lead_time_scale": 0.01,
        "residual": False,
    }


def load_climax_checkpoint(
    path: str | os.PathLike,
    model=None,
    variables: Sequence[str] | None = None,
    grid_shape: Sequence[int] | None = None,
    num_heads: int = 16,
    lead_hours: float = 6.0,
    normalization: Normalization | None = None,
    device: str | torch.device = "cpu",
):
    """Load a released ClimaX checkpoint into the ClimaX-like module.

    Parameters
    ----------
    path : path-like
        The ``.ckpt`` file (loaded with ``weights_only=True``).
    model : TorchForecaster or ClimaXNet, optional
        Map the weights onto this module (its dimensions must match). Default: build a matching one.
    variables : sequence of str, optional
        ClimaX's ``default_vars`` in the checkpoint's order (ClimaX names or canonical names). Default:
        the 48 variables of ClimaX's ERA5 configuration when the checkpoint has 48, else required.
        ClimaX names are mapped to canonical ones (``geopotential_500`` -> ``z500``); static inputs
        (``land_sea_mask``, ``orography``, ``lattitude``) keep their names.
    grid_shape : (int, int), optional
        The lat-lon grid (default: inferred from the number of patches for ClimaX's 1:2 global grids).
    num_heads : int
        Attention heads (not recorded in the tensors; 16 in ClimaX's configurations).
    lead_hours : float
        The lead time the returned forecaster steps by (ClimaX is lead-time conditioned).
    normalization : Normalization, optional
        ClimaX's data statistics (``normalize_mean.npz``/``normalize_std.npz`` of its pre-processing) in
        canonical names; identity when omitted.
    device : str or torch.device
        Where to put a newly built model.

    Returns
    -------
    TorchForecaster or the given model
        With the checkpoint's weights, in eval mode.

    Raises
    ------
    CheckpointError
        A missing, corrupt or non-ClimaX file, or dimensions that do not match ``model``.
    """
    from workbench.models.climax import ClimaXNet
    from workbench.models.torch_model import TorchForecaster

    source = str(path)
    state = climax_state_dict(load_foreign_state_dict(path), source)
    if model is not None:
        net = model.net if isinstance(model, TorchForecaster) else model
        if not isinstance(net, ClimaXNet):
            raise CheckpointError(
                f"{source}: ClimaX weights map onto a ClimaX-like model, not {type(net).__name__}."
            )
        check_state_dict(net, state, source)
        net.load_state_dict(state)
        return model.eval()

    n_vars = state["var_embed"].shape[1]
    if variables is None:
        if n_vars != len(CLIMAX_ERA5_VARIABLES):
            raise CheckpointError(
                f"{source}: the checkpoint has {n_vars} variables; pass variables= in its order (ClimaX's "
                "default_vars)."
            )
        variables = CLIMAX_ERA5_VARIABLES
    if len(variables) != n_vars:
        raise CheckpointError(
            f"{source}: {len(variables)} variable names given for {n_vars} variables in the file."
        )
    names = [canonical_climax_name(v) for v in variables]
    net_cfg = _infer_net_config(state, grid_shape, num_heads, source)
    net = ClimaXNet(variables=names, forcings=(), **net_cfg)
    check_state_dict(net, state, source)
    net.load_state_dict(state)
    rows, cols = net_cfg["grid_shape"]
    config = {
        "name": "climax_pretrained",
        "architecture": "climax",
        "variables": names,
        "forcings": [],
        "time_step_hours": float(lead_hours),
        "grid": {"kind": "latlon", "resolution": 360.0 / cols, "shape": [rows, cols]},
        "net": net_cfg,
        "source": source,
    }
    return TorchForecaster(net, config, normalization).to(device).eval()
