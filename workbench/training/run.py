"""Training the workbench's models by their recipes: :func:`train` (``workbench train <model>``)."""

from __future__ import annotations

import os
from dataclasses import replace

from workbench.training.data import TrainingData, load_training_data
from workbench.training.loop import TrainConfig, TrainResult, train_model
from workbench.training.recipes import (
    BOUNDARY_VARIABLES,
    EXTRA_TRAINING,
    INPUTS,
    MEMBER_STORAGE,
    MEMBERS,
    TRAINING_PERIODS,
    Recipe,
    member_dir,
    recipes_for,
)

__all__ = ["build_for", "default_training_data", "resolve_extra_size", "train"]


def resolve_extra_size(size: str, extra_size: str | None = "auto") -> str | None:
    """The extra training sample for ``size``: ``"auto"`` -> the recipes' choice, ``"none"`` -> None."""
    if extra_size == "auto":
        return EXTRA_TRAINING.get(size)
    return None if extra_size in (None, "none") else extra_size


def default_training_data(size: str = "default", extra_size: str | None = "auto") -> TrainingData:
    """The training data of the models evaluated on sample ``size``: its independent training and
    validation periods (:data:`TRAINING_PERIODS`) where the sample has them, else ``size`` split in time
    plus ``extra_size``; with the global analysis for the lateral boundaries."""
    from workbench.sample.params import SIZES

    periods = TRAINING_PERIODS.get(size)
    if periods and all(p in SIZES for p in periods):
        return load_training_data(size=periods[0], heldout_size=periods[1], boundary_variables=BOUNDARY_VARIABLES)
    return load_training_data(size=size, extra_size=resolve_extra_size(size, extra_size),
                              boundary_variables=BOUNDARY_VARIABLES)


def build_for(recipe: Recipe, data: TrainingData, net: dict | None = None):
    """The untrained model of ``recipe`` on ``data``'s grid, normalised with its training statistics."""
    import copy

    from workbench.models import build
    from workbench.models.inputs import available_static

    overrides = {**copy.deepcopy(INPUTS), **dict(recipe.overrides)}
    net_cfg = {**overrides.pop("net", {}), **(net or {})}
    grid = {"kind": "hrrr", "shape": list(data.shape)}
    spacing = None
    if "y" in data.source.coords and len(data.source.y) > 1:
        spacing = float(abs(data.source.y.values[1] - data.source.y.values[0])) / 1000.0
        grid["spacing_km"] = round(spacing, 3)
    # inputs the training analysis cannot give are left out (orography before sample version 3; every
    # static field and the insolation without latitude/longitude); the config records what the network
    # takes, and inference refuses data that lacks it
    can = available_static(data.source)
    overrides["static"] = [n for n in overrides.get("static", []) if n in can]
    if not {"latitude", "longitude"} <= set(data.source.coords):
        overrides["forcings"] = [f for f in overrides.get("forcings", []) if f != "toa_insolation"]
    bnd = overrides.get("boundary")
    if bnd and "width_km" in bnd:
        # the strip is a distance; in cells on this grid, at least one and less than half the domain
        cells = round(bnd.pop("width_km") / spacing) if spacing else 2
        bnd["width"] = int(min(max(cells, 1), min(data.shape) // 2 - 1))
    if bnd and not set(bnd["variables"]) <= set(data.boundary_variables):
        overrides.pop("boundary")  # training data without a global analysis: no boundary block
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
    members: int | None = None,
    member_ids: list[int] | None = None,
    storage: str = MEMBER_STORAGE,
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
    members
        Deep-ensemble members to train (default :data:`MEMBERS`): member ``k`` has seed ``k`` and goes
        to :func:`member_dir` ``(out, k)``.
    member_ids
        Train only these members (parallel processes on one GPU each take some).
    storage
        ``fp16`` or ``fp32`` weights on disk.
    **train_options
        Further :class:`TrainConfig` fields for every network.

    Returns
    -------
    list of TrainResult
    """
    recipes = recipes_for(name)
    if data is None:
        data = default_training_data(size, extra_size)
    ids = list(member_ids) if member_ids is not None else list(range(MEMBERS if members is None else members))
    total_share = sum(r.budget for r in recipes) * len(ids)
    results = []
    for k in ids:
        target = member_dir(out, k)
        target.mkdir(parents=True, exist_ok=True)
        for recipe in recipes:
            cfg = TrainConfig(dtype=dtype, **{**recipe.train, **train_options})
            cfg = replace(cfg, seed=cfg.seed + k, storage=storage)
            if steps is not None:
                cfg = replace(cfg, steps=int(steps))
            if time_budget_s is not None:
                cfg = replace(cfg, time_budget_s=time_budget_s * recipe.budget / total_share)
            model = build_for(recipe, data, net)
            result = train_model(model, data, target / recipe.stem, config=cfg, device=device, work_dir=work_dir,
                                 progress=progress, metadata={"recipe": recipe.stem, "member": k})
            results.append(result)
    return results
