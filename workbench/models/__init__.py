"""Models: a protocol, a registry, baselines, torch architectures and weight I/O.

>>> from workbench import models
>>> models.list_models()
['persistence', 'climatology', 'nwp', 'pangu', 'climax', 'hrheim']
>>> persistence = models.load("persistence")
>>> net = models.build("pangu", {"time_step_hours": 6})      # untrained, for training

Every model keeps one of the contracts of :mod:`workbench.models.protocol`: a :class:`Forecaster`
forecasts by itself (the baselines), a :class:`StepForecaster` advances a state tensor by its time step
and a :class:`StepFamily` holds several of them (Pangu-like hierarchical temporal aggregation); torch
models (:class:`TorchForecaster`) are also ensemble members (:class:`EnsembleMember`). Every kind is run by
:func:`workbench.inference.run_forecast` into the layout ``(init_time, lead_time, y, x)`` with
``valid_time``.
"""

from __future__ import annotations

from workbench.errors import CheckpointError
from workbench.models.baselines import Climatology, NWPForecast, Persistence
from workbench.models.flops import count_flops, count_parameters
from workbench.models.hta import HierarchicalModel, hta_schedule
from workbench.models.normalization import Normalization
from workbench.models.protocol import (
    EnsembleMember,
    Forecaster,
    StepFamily,
    StepForecaster,
    as_init_times,
    as_lead_times,
    check_model,
    forecast_dataset,
    select_initial,
    spatial_dims,
)
from workbench.models.registry import (
    build,
    default_config,
    describe_models,
    find_checkpoints,
    list_models,
    load,
    register_model,
)
from workbench.models.torch_model import TorchForecaster
from workbench.models.weights import load_checkpoint, load_foreign_state_dict, save_checkpoint

__all__ = [
    "CheckpointError",
    "Climatology",
    "EnsembleMember",
    "Forecaster",
    "HierarchicalModel",
    "NWPForecast",
    "Normalization",
    "Persistence",
    "StepFamily",
    "StepForecaster",
    "TorchForecaster",
    "as_init_times",
    "as_lead_times",
    "build",
    "check_model",
    "count_flops",
    "count_parameters",
    "default_config",
    "describe_models",
    "find_checkpoints",
    "forecast_dataset",
    "hta_schedule",
    "list_models",
    "load",
    "load_checkpoint",
    "load_foreign_state_dict",
    "register_model",
    "save_checkpoint",
    "select_initial",
    "spatial_dims",
]
