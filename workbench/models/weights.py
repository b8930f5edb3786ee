"""Weight files: safetensors + JSON for the workbench's own models, guarded ``torch.load`` for foreign ones.

A workbench checkpoint is a pair of files with one stem:

* ``<stem>.safetensors`` — the network's ``state_dict`` (no pickled code, safe to open from anywhere);
* ``<stem>.json`` — ``{"format": "workbench-checkpoint", "format_version": 2, "config": {...},
  "weights_sha256": "<hash of the safetensors file>", "metadata": {...}, "sha256": "<checksum>"}``;
  ``config`` is :attr:`TorchForecaster.config` (architecture, variables, forcings, time step, grid,
  network hyper-parameters and normalisation statistics).

The checksum ``sha256`` covers the weights *and* the whole JSON document: it is the SHA-256 of the
canonical serialisation (:func:`canonical_json`: sorted keys, no whitespace, ASCII) of the document
without its own ``sha256`` field, and that document holds ``weights_sha256``. So a weights file from
another run, a truncated one, or a config edited by hand (variables swapped, a statistic changed) are all
refused. The checksum is required for format version 2 and for every checkpoint shipped in
``workbench/checkpoints/``; files of format version 1 (weights-only hash, optional) still load.

Every failure — a missing, truncated or corrupt file, a config that does not parse, weights that do not
fit the network (missing or unexpected keys, shape mismatches) — raises :class:`CheckpointError`
naming the file and the problem.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from workbench._io import atomic_write
from workbench.errors import CheckpointError
from workbench.models.config_checks import validate_config

__all__ = [
    "FORMAT",
    "canonical_json",
    "check_state_dict",
    "checksum",
    "checkpoint_paths",
    "load_checkpoint",
    "load_foreign_state_dict",
    "read_config",
    "save_checkpoint",
]

FORMAT = "workbench-checkpoint"
FORMAT_VERSION = 2
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "checkpoints"


def checkpoint_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """The ``(.safetensors, .json)`` pair for a stem or for either file of the pair."""
    p = Path(path)
    stem = p.with_suffix("") if p.suffix in (".safetensors", ".json") else p
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _atomic_write(path: Path, write) -> None:
    atomic_write(path, lambda tmp: write(str(tmp)))


def canonical_json(document: Mapping[str, Any]) -> str:
    """The canonical serialisation the checksum is taken of: sorted keys, no whitespace, ASCII only."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True)


def checksum(document: Mapping[str, Any]) -> str:
    """SHA-256 of a checkpoint document without its ``sha256`` field (which holds ``weights_sha256``)."""
    body = {k: v for k, v in document.items() if k != "sha256"}
    return hashlib.sha256(canonical_json(body).encode("ascii")).hexdigest()


def _is_shipped(path: Path) -> bool:
    try:
        return path.resolve().parent == SHIPPED_DIR
    except OSError:
        return False


def verify_checksum(document: Mapping[str, Any], weights_path: Path, config_path: Path) -> None:
    """Raise CheckpointError unless the checksum of ``document`` and the weights file agree.

    Format version 2 and shipped checkpoints must carry the checksum; version 1 files are checked
    against their optional weights-only hash.
    """
    version = document.get("format_version", 1)
    if version < 2:
        if _is_shipped(config_path):
            raise CheckpointError(
                f"{config_path}: a shipped checkpoint must carry a checksum of weights and config (format "
                "version 2); this file is version 1. Reinstall the workbench."
            )
        if document.get("sha256") and _sha256(weights_path) != document["sha256"]:
            raise CheckpointError(
                f"{weights_path}: SHA-256 differs from the one recorded in {config_path.name}; the file is "
                "corrupt, truncated or from another training run."
            )
        return
    recorded = document.get("sha256")
    if not isinstance(recorded, str) or not recorded:
        raise CheckpointError(f"{config_path}: no checksum (\"sha256\"); the checkpoint cannot be trusted.")
    weights_hash = _sha256(weights_path)
    if document.get("weights_sha256") != weights_hash:
        raise CheckpointError(
            f"{weights_path}: SHA-256 differs from the one recorded in {config_path.name}; the weights file "
            "is corrupt, truncated or from another training run."
        )
    if checksum(document) != recorded:
        raise CheckpointError(
            f"{config_path}: the checksum does not match the config; it was edited after saving (e.g. "
            "variables reordered or statistics changed), and the weights would forecast garbage with it. "
            "Restore the original file, or re-save the model with save_checkpoint."
        )


def save_checkpoint(
    model, path: str | os.PathLike, metadata: Mapping[str, Any] | None = None, *, storage: str = "fp32"
) -> tuple[Path, Path]:
    """Write ``model`` (a :class:`TorchForecaster`) as ``<stem>.safetensors`` + ``<stem>.json``.

    Parameters
    ----------
    model : TorchForecaster
        The model; its network's ``state_dict`` and its ``config`` are written.
    path : path-like
        The stem, or either file name of the pair.
    metadata : mapping, optional
        Extra JSON-ready information (training period, scores, ...), stored under ``"metadata"``.
    storage : {"fp32", "fp16"}
        Precision of the floating-point weights on disk. ``fp16`` halves the shipped files (the deep
        ensembles' members); loading casts them back to the network's float32 parameters, and the
        checksum covers the file as written.

    Returns
    -------
    (Path, Path)
        The weights file and the config file. Both are written atomically (temporary file + rename).
    """
    from safetensors.torch import save_file

    weights_path, config_path = checkpoint_paths(path)
    if storage not in ("fp32", "fp16"):
        raise CheckpointError(f"storage must be 'fp32' or 'fp16', not {storage!r}")

    def stored(v: torch.Tensor) -> torch.Tensor:
        v = v.detach().to("cpu")
        return (v.half() if storage == "fp16" and v.is_floating_point() else v).contiguous()

    state = {k: stored(v) for k, v in model.net.state_dict().items()}
    _atomic_write(weights_path, lambda tmp: save_file(state, tmp, metadata={"format": FORMAT}))
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config,
        "weights_sha256": _sha256(weights_path),
        "storage": storage,
        "metadata": dict(metadata or {}),
    }
    # Through a JSON round trip first, so the checksum is taken of exactly what a reader will parse.
    document = json.loads(json.dumps(document))
    document["sha256"] = checksum(document)

    def write_json(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(document, f, indent=2, sort_keys=True)

    _atomic_write(config_path, write_json)
    return weights_path, config_path


def read_config(path: str | os.PathLike) -> dict:
    """Read and check the JSON document of a checkpoint; returns it whole (``config`` inside)."""
    _, config_path = checkpoint_paths(path)
    if not config_path.exists():
        raise CheckpointError(f"{config_path}: the checkpoint's config file does not exist.")
    try:
        document = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{config_path}: not valid JSON ({exc}).") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CheckpointError(f'{config_path}: not a workbench checkpoint config (no "format": "{FORMAT}").')
    if document.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{config_path}: format version {document.get('format_version')} is newer than this workbench "
            f"reads ({FORMAT_VERSION}); upgrade the workbench."
        )
    config = document.get("config")
    required = ("name", "architecture", "variables", "time_step_hours", "net")
    if not isinstance(config, dict) or any(k not in config for k in required):
        missing = [k for k in required if not isinstance(config, dict) or k not in config]
        raise CheckpointError(f"{config_path}: the config lacks {missing}.")
    validate_config(config, str(config_path))
    return document


def check_state_dict(module: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Raise CheckpointError listing missing/unexpected keys and shape mismatches against ``module``."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(expected) & set(state))
        if tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"missing keys {_short(missing)}")
        if unexpected:
            parts.append(f"unexpected keys {_short(unexpected)}")
        if mismatched:
            parts.append(f"shape mismatches {_short(mismatched)}")
        raise CheckpointError(f"{source}: weights do not match the network: " + "; ".join(parts) + ".")


def _short(items: list[str], n: int = 6) -> str:
    return str(items[:n])[:-1] + (f", ... ({len(items)} in all)]" if len(items) > n else "]")


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu", verify: bool = True):
    """Load a workbench checkpoint into a ready :class:`TorchForecaster` (in eval mode).

    Parameters
    ----------
    path : path-like
        Stem or either file of the pair.
    device : str or torch.device
        Where to put the model.
    verify : bool
        Check the checksum of weights and config (always done for the shipped checkpoints).

    Raises
    ------
    CheckpointError
        Naming the file and the problem.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from workbench.models.normalization import Normalization
    from workbench.models.torch_model import TorchForecaster, architecture, input_channels

    weights_path, config_path = checkpoint_paths(path)
    document = read_config(config_path)
    config = document["config"]
    if not weights_path.exists():
        raise CheckpointError(
            f"{weights_path}: the weights file does not exist (its config {config_path.name} does)."
        )
    if verify or _is_shipped(config_path):
        verify_checksum(document, weights_path, config_path)
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{weights_path}: not a readable safetensors file ({exc}).") from exc
    net_cls, defaults = architecture(config["architecture"])
    kwargs = {**defaults, **config["net"]}
    try:
        net = net_cls(variables=config["variables"], forcings=list(input_channels(config)), **kwargs)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(
            f"{config_path}: the network cannot be built from this config ({exc})."
        ) from exc
    check_state_dict(net, state, str(weights_path))
    net.load_state_dict(state)
    normalization = None
    if config.get("normalization") is not None:
        normalization = Normalization.from_json(config["normalization"], str(config_path))
    model = TorchForecaster(net, config, normalization)
    model.checkpoint_metadata = document.get("metadata", {})
    return model.to(device).eval()


# Lightning stores hyper-parameters in dict subclasses; the weights-only unpickler admits them as plain
# dicts, which keeps foreign checkpoints loadable without importing (or trusting) Lightning.
_DICT_STANDINS = (
    "pytorch_lightning.utilities.parsing.AttributeDict",
    "lightning_fabric.utilities.data.AttributeDict",
    "lightning.fabric.utilities.data.AttributeDict",
)


def load_foreign_state_dict(path: str | os.PathLike) -> dict:
    """Load a foreign ``torch.save`` checkpoint with ``weights_only=True`` (no arbitrary code runs).

    Returns the unpickled object (usually a dict with a ``state_dict`` or the state dict itself).

    Raises
    ------
    CheckpointError
        If the file is missing, truncated, corrupt, or holds objects other than tensors and plain
        containers.
    """
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"{p}: the checkpoint file does not exist.")
    standins = [(dict, name) for name in _DICT_STANDINS]
    try:
        with torch.serialization.safe_globals(standins):
            return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{p}: refused by the weights-only loader, the file holds objects other than tensors and plain "
            f"containers ({str(exc).splitlines()[0]}). Re-save only its state_dict with torch.save."
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError) as exc:
        raise CheckpointError(f"{p}: not a readable torch checkpoint, corrupt or truncated ({exc}).") from exc
