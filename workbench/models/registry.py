"""The model registry: names -> ready models (``load``) or untrained networks (``build``).

Torch models load their default weights from the package's ``workbench/checkpoints/`` directory
(``<name>*.safetensors`` with ``<name>*.json``), written by ``workbench train <name>``; several files of
one name with different time steps (``pangu_1h``, ``pangu_3h``, ...) load as one
:class:`~workbench.models.HierarchicalModel`.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import CheckpointError
from workbench.lexicon import SAMPLE_VARIABLES
from workbench.models.protocol import check_model

__all__ = [
    "CHECKPOINT_DIR",
    "DEFAULT_FORCINGS",
    "ModelEntry",
    "build",
    "default_config",
    "ensemble_members",
    "find_checkpoints",
    "list_models",
    "load",
    "model_entry",
    "load_ensemble",
    "member_dir",
    "register_model",
]

#: Where the shipped weights live (override with the ``WORKBENCH_CHECKPOINTS`` environment variable).
CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "checkpoints"

#: Time-of-day forcings the torch models take by default (the sample has a strong diurnal cycle).
DEFAULT_FORCINGS = ("hour_sin", "hour_cos")

#: Grid the default configurations are laid out for: the default sample's HRRR-like grid.
DEFAULT_GRID = {"kind": "hrrr", "spacing_km": 24.0, "shape": [133, 225]}


@dataclass(frozen=True)
class ModelEntry:
    """One registry entry.

    Attributes
    ----------
    name : str
        Registry name.
    kind : str
        ``"baseline"``, ``"torch"`` or ``"external"`` (needs files the user supplies).
    description : str
        One line for listings.
    loader : callable
        ``loader(checkpoint=None, **kw)`` -> a model meeting :class:`~workbench.models.Forecaster`.
    architecture : str or None
        For torch models, the architecture :func:`build` constructs.
    """

    name: str
    kind: str
    description: str
    loader: Callable[..., Any]
    architecture: str | None = None


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str,
    loader: Callable[..., Any],
    description: str = "",
    kind: str = "baseline",
    architecture: str | None = None,
    overwrite: bool = False,
) -> None:
    """Add a model to the registry (how a new model joins the workbench).

    Parameters
    ----------
    name : str
        Registry name.
    loader : callable
        ``loader(checkpoint=None, **kw)`` returning a model that meets one of the protocols of
        :mod:`workbench.models.protocol` (:class:`~workbench.models.protocol.Forecaster`,
        :class:`~workbench.models.protocol.StepForecaster` or :class:`~workbench.models.protocol.StepFamily`);
        :func:`load` checks every model it returns.
    description : str
        One line for listings.
    kind : str
        ``"baseline"``, ``"torch"`` or ``"external"``; external models are listed only on request.
    architecture : str, optional
        Architecture name for torch models (see :data:`workbench.models.torch_model.ARCHITECTURES`).
    overwrite : bool
        Replace an existing entry of that name.
    """
    if name in _REGISTRY and not overwrite:
        raise KeyError(f"A model named {name!r} is registered already; pass overwrite=True to replace it.")
    _REGISTRY[name] = ModelEntry(name, kind, description, loader, architecture)


def list_models(include_external: bool = False) -> list[str]:
    """Names of the registered models (external ones, which need user-supplied files, on request)."""
    return [n for n, e in _REGISTRY.items() if include_external or e.kind != "external"]


def describe_models(include_external: bool = True) -> dict[str, str]:
    """Name -> one-line description."""
    return {n: e.description for n, e in _REGISTRY.items() if include_external or e.kind != "external"}


def _entry(name: str) -> ModelEntry:
    if name not in _REGISTRY:
        raise KeyError(f"Unknown model {name!r}; known models: {list_models(include_external=True)}.")
    return _REGISTRY[name]


def model_entry(name: str) -> ModelEntry:
    """The registry entry of ``name``: its kind, description and architecture (``workbench models``)."""
    return _entry(name)


def load(name: str, checkpoint: str | os.PathLike | None = None, **kw) -> Any:
    """A ready model by name.

    Parameters
    ----------
    name : str
        One of :func:`list_models` (``persistence``, ``climatology``, ``nwp``, ``pangu``, ``climax``,
        ``hrheim``, or external ones such as ``pangu_weather``).
    checkpoint : path-like, optional
        For torch models: a checkpoint stem or file, or a directory holding ``<name>*.safetensors``
        files; default: the shipped weights in ``workbench/checkpoints``. For external models: the
        file(s) to load.
    **kw
        Passed to the model's loader: ``device``, ``steps`` (torch); ``data``, ``period`` (climatology);
        ``data``, ``size`` (nwp); ...

    Returns
    -------
    object meeting one of the protocols of :mod:`workbench.models.protocol`
        Checked by :func:`~workbench.models.protocol.check_model` (a ``DataError`` names what is missing).

    Raises
    ------
    CheckpointError
        When a torch model's weights are absent (the message says how to train them) or unreadable.
    """
    return check_model(_entry(name).loader(checkpoint=checkpoint, **kw), name)


def default_config(name: str) -> dict:
    """The default configuration of a torch model (what :func:`build` uses when given nothing)."""
    from workbench.models.torch_model import architecture

    entry = _entry(name)
    if entry.architecture is None:
        raise KeyError(f"{name!r} is not a torch model; build() makes torch models only.")
    _, net_defaults = architecture(entry.architecture)
    if "grid_shape" in net_defaults:
        net_defaults["grid_shape"] = list(DEFAULT_GRID["shape"])
    return {
        "name": name,
        "architecture": entry.architecture,
        "variables": list(SAMPLE_VARIABLES),
        "forcings": list(DEFAULT_FORCINGS),
        "time_step_hours": 1.0,
        "grid": copy.deepcopy(DEFAULT_GRID),
        "net": net_defaults,
    }


def build(name: str, config: dict | None = None, normalization=None, **overrides):
    """Construct an untrained torch model (for training) as a :class:`TorchForecaster`.

    Parameters
    ----------
    name : str
        ``pangu``, ``climax`` or ``hrheim`` (or a registered torch model).
    config : dict, optional
        Overrides of :func:`default_config`; ``config["net"]`` overrides network hyper-parameters key by
        key. When ``config["grid"]["shape"]`` is given, it also sets the network's ``grid_shape``
        (the layout of Pangu's Earth-specific bias and ClimaX's positional embedding).
    normalization : Normalization, optional
        Statistics of the variables (identity when omitted; see ``Normalization.from_dataset``).
    **overrides
        Top-level config keys, e.g. ``time_step_hours=6``, ``variables=[...]``, ``forcings=[]``, or
        ``lead_hours=[1, 6, 24]`` (the leads a lead-time conditioned network is trained for; see
        :attr:`TorchForecaster.steps`).

    Returns
    -------
    TorchForecaster
    """
    from workbench.models.normalization import Normalization
    from workbench.models.torch_model import TorchForecaster, architecture, input_channels

    cfg = default_config(name)
    user = {**copy.deepcopy(config or {}), **overrides}
    net_user = user.pop("net", {}) or {}
    if user.get("normalization") is not None and normalization is None:
        normalization = Normalization.from_json(user["normalization"])
    user.pop("normalization", None)
    cfg.update(user)
    grid = cfg.get("grid") or {}
    if "grid_shape" in cfg["net"] and grid.get("shape") and "grid_shape" not in net_user:
        cfg["net"]["grid_shape"] = list(grid["shape"])
    cfg["net"].update(net_user)
    cfg["variables"] = list(cfg["variables"])
    cfg["forcings"] = list(cfg.get("forcings") or [])
    net_cls, _ = architecture(cfg["architecture"])
    net = net_cls(variables=cfg["variables"], forcings=list(input_channels(cfg)), **cfg["net"])
    return check_model(TorchForecaster(net, cfg, normalization), name)


def find_checkpoints(name: str, checkpoint: str | os.PathLike | None = None) -> list[Path]:
    """The checkpoint stems for a torch model name (in a directory or the shipped directory)."""
    from workbench.models.weights import checkpoint_paths

    if checkpoint is not None and not Path(checkpoint).is_dir():
        weights, config = checkpoint_paths(checkpoint)
        if not weights.exists() and not config.exists():
            raise CheckpointError(
                f"{weights}: no such checkpoint (neither the .safetensors nor the .json exists)."
            )
        return [config.with_suffix("")]
    directory = (
        Path(checkpoint)
        if checkpoint is not None
        else Path(os.environ.get("WORKBENCH_CHECKPOINTS", CHECKPOINT_DIR))
    )
    stems = sorted(
        {p.with_suffix("") for p in directory.glob(f"{name}*.json")}
        | {p.with_suffix("") for p in directory.glob(f"{name}*.safetensors")}
    )
    # keep stems named exactly <name> or <name>_<suffix> ("climax" must not pick up "climaxfoo")
    stems = [s for s in stems if s.name == name or s.name.startswith(name + "_")]
    if not stems:
        raise CheckpointError(
            f"No weights for model {name!r} in {directory} (looked for {name}*.safetensors with {name}*.json). "
            f"Train them with `workbench train {name}` (or pass checkpoint= a file or directory)."
        )
    return stems


def member_dir(root: str | os.PathLike, member: int) -> Path:
    """Where member ``member`` of a deep ensemble lives under the checkpoint directory ``root``: the
    directory itself for the first (the deterministic model), ``members/<k>`` for the others."""
    if int(member) < 0:
        raise CheckpointError(f"ensemble member numbers start at 0, got {member}")
    return Path(root) if int(member) == 0 else Path(root) / "members" / str(int(member))


def ensemble_members(name: str, checkpoint: str | os.PathLike | None = None) -> list[int]:
    """The deep-ensemble members of torch model ``name`` found under a checkpoint directory (default:
    the shipped one), ``[0, 1, ...]``; ``[0]`` when it holds one member."""
    root = Path(checkpoint) if checkpoint is not None else Path(os.environ.get("WORKBENCH_CHECKPOINTS", CHECKPOINT_DIR))
    found = [0]
    for sub in sorted((root / "members").glob("*"), key=lambda p: (len(p.name), p.name)):
        if sub.name.isdigit() and any(sub.glob(f"{name}*.safetensors")):
            found.append(int(sub.name))
    return found


def load_ensemble(name: str, checkpoint: str | os.PathLike | None = None, members: int | None = None, **kw) -> list:
    """The deep ensemble of torch model ``name``: one loaded model per member (a list the inference
    engine runs as weight members). ``members`` caps how many (the first ones).

    Raises
    ------
    CheckpointError
        When fewer members than asked for exist.
    """
    root = Path(checkpoint) if checkpoint is not None else Path(os.environ.get("WORKBENCH_CHECKPOINTS", CHECKPOINT_DIR))
    found = ensemble_members(name, root)
    if members is not None:
        if members > len(found):
            raise CheckpointError(
                f"{name!r} has {len(found)} ensemble members in {root}, not {members}; train more with "
                f"`workbench train {name}`"
            )
        found = found[:members]
    return [load(name, checkpoint=member_dir(root, k), **kw) for k in found]


def _torch_loader(name: str) -> Callable[..., Any]:
    def loader(checkpoint=None, device="cpu", steps: Sequence[int] | None = None, **kw):
        from workbench.models.hta import HierarchicalModel
        from workbench.models.weights import load_checkpoint

        if kw:
            raise TypeError(
                f"Unexpected arguments for {name!r}: {sorted(kw)} (known: checkpoint, device, steps)."
            )
        models = [load_checkpoint(stem, device=device) for stem in find_checkpoints(name, checkpoint)]
        if steps is not None:
            wanted = {float(s) for s in steps}
            models = [m for m in models if m.step_hours in wanted]
            if not models:
                raise CheckpointError(f"No {name!r} weights with steps {sorted(wanted)} h.")
        if len(models) == 1:
            return models[0]
        return HierarchicalModel(models, name=name)

    return loader


def _baseline_loader(cls_name: str) -> Callable[..., Any]:
    def loader(checkpoint=None, **kw):
        from workbench.models import baselines

        if checkpoint is not None:
            raise TypeError(f"The {cls_name} baseline has no weights; do not pass checkpoint=.")
        return getattr(baselines, cls_name)(**kw)

    return loader


def _pangu_onnx_loader(checkpoint=None, **kw):
    from workbench.models.pangu_onnx import PanguWeatherONNX

    if checkpoint is None:
        raise CheckpointError(
            "pangu_weather runs Pangu-Weather's released ONNX files; pass checkpoint= the directory holding "
            "pangu_weather_1/3/6/24.onnx (or one .onnx file)."
        )
    return PanguWeatherONNX(checkpoint, **kw)


def _climax_pretrained_loader(checkpoint=None, **kw):
    from workbench.models.climax_checkpoint import load_climax_checkpoint

    if checkpoint is None:
        raise CheckpointError(
            "climax_pretrained maps a released ClimaX checkpoint; pass checkpoint= the .ckpt file."
        )
    return load_climax_checkpoint(checkpoint, **kw)


register_model(
    "persistence", _baseline_loader("Persistence"), "the initial state repeated at every lead time"
)
register_model(
    "climatology", _baseline_loader("Climatology"), "mean per grid cell and hour of day of a training period"
)
register_model(
    "nwp", _baseline_loader("NWPForecast"), "the NWP forecast from the catalog (sample_nwp by default)"
)
register_model(
    "pangu",
    _torch_loader("pangu"),
    "Pangu-like 3-D Earth-specific transformer, HTA over 1/3/6/24 h",
    kind="torch",
    architecture="pangu",
)
register_model(
    "climax",
    _torch_loader("climax"),
    "ClimaX-like ViT with variable tokenization and aggregation",
    kind="torch",
    architecture="climax",
)
register_model(
    "hrheim",
    _torch_loader("hrheim"),
    "HR-Heim-like U-Net / Swin V2 hybrid with per-variable heads",
    kind="torch",
    architecture="hrheim",
)
register_model(
    "pangu_weather",
    _pangu_onnx_loader,
    "Pangu-Weather's released ONNX files on the 0.25-degree grid",
    kind="external",
)
register_model(
    "climax_pretrained",
    _climax_pretrained_loader,
    "a released ClimaX checkpoint on its lat-lon grid",
    kind="external",
    architecture="climax",
)
