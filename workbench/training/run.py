"""Training the workbench's models by their recipes: :func:`train` (``workbench train <model>``)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from workbench.training.data import TrainingData, load_training_data
from workbench.training.loop import TrainConfig, TrainResult, train_model
from workbench.training.recipes import EXTRA_TRAINING, Recipe, recipes_for

__all__ = ["build_for", "resolve_extra_size", "train"]


def resolve_extra_size(size: str, extra_size: str | None = "auto") -> str | None:
    """The extra training sample for ``size``: ``"auto"`` -> the recipes' choice, ``"none"`` -> None."""
    if extra_size == "auto":
        return EXTRA_TRAINING.get(size)
    return None if extra_size in (None, "none") else extra_size


def build_for(recipe: Recipe, data: TrainingData, net: dict | None = None):
    """The untrained model of ``recipe`` on ``data``'s grid, normalised with its training statistics."""
    from workbench.models import build

    overrides = dict(recipe.overrides)
    net_cfg = {**overrides.pop("net", {}), **(net or {})}
    grid = {"kind": "hrrr", "shape": list(data.shape)}
    if "y" in data.source.coords and len(data.source.y) > 1:
        spacing = float(abs(data.source.y.values[1] - data.source.y.values[0])) / 1000.0
        grid["spacing_km"] = round(spacing, 3)
    return build(
        recipe.model,
        {"variables": list(data.variables), "grid": grid, "net": net_cfg, **overrides},
        normalization=data.normalization,
    )


def train(
    name: str,
    out: str | os.PathLike,
    *,
    data: TrainingData | None = None,
    size: str = "default",
    time_budget_s: float | None = None,
    steps: int | None = None,
    device: str = "auto",
    dtype: str = "bf16",
    net: dict | None = None,
    work_dir: str | os.PathLike | None = None,
    progress: bool = True,
    extra_size: str | None = "auto",
    **train_options,
) -> list[TrainResult]:
    """Train the networks of model ``name`` (``pangu``, ``climax``, ``hrheim`` or ``all``) by its recipe.

    Parameters
    ----------
    name
        Model name, or ``"all"``.
    out
        Directory for the checkpoints (``<stem>.safetensors`` + ``<stem>.json``).
    data
        Training data (default: the sample of ``size``, with ``extra_size``'s further hours).
    time_budget_s
        Wall-clock seconds for all networks together, shared by the recipes' budgets.
    steps
        Maximum optimiser steps per network (default: the recipe's).
    device, dtype
        Where and in what precision to train.
    net
        Network hyper-parameter overrides for every network (e.g. smaller for tests).
    work_dir
        Where resumable progress files go (default: ``out``).
    extra_size
        When ``data`` is not given: a sample whose further hours also train; ``"auto"`` takes the
        recipes' choice (:data:`EXTRA_TRAINING`: ``long`` for ``default``), None none.
    **train_options
        Further :class:`TrainConfig` fields for every network.

    Returns
    -------
    list of TrainResult
    """
    recipes = recipes_for(name)
    if data is None:
        data = load_training_data(size=size, extra_size=resolve_extra_size(size, extra_size))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    total_share = sum(r.budget for r in recipes)
    results = []
    for recipe in recipes:
        cfg = TrainConfig(dtype=dtype, **{**recipe.train, **train_options})
        if steps is not None:
            cfg = replace(cfg, steps=int(steps))
        if time_budget_s is not None:
            cfg = replace(cfg, time_budget_s=time_budget_s * recipe.budget / total_share)
        model = build_for(recipe, data, net)
        result = train_model(model, data, out / recipe.stem, config=cfg, device=device, work_dir=work_dir,
                             progress=progress, metadata={"recipe": recipe.stem})
        results.append(result)
    return results
