"""Models: a protocol, a registry, baselines, torch architectures and weight I/O.

>>> from workbench import models
>>> models.list_models()
['persistence', 'climatology', 'nwp', 'pangu', 'climax', 'hrheim']
>>> persistence = models.load("persistence")
>>> net = models.build("pangu", {"time_step_hours": 6})      # untrained, for training

Every model meets :class:`Forecaster`: ``name``, ``variables``, ``input_variables``, ``time_step``,
``grid`` and ``forecast(initial, init_times, lead_times) -> xr.Dataset`` in the layout
``(init_time, lead_time, y, x)`` with ``valid_time``. Torch models (:class:`TorchForecaster`) also
offer ``step``/``normalize``/``denormalize`` on tensors for the inference engine.
"""

from __future__ import annotations

from workbench.errors import CheckpointError
from workbench.models.baselines import Climatology, NWPForecast, Persistence
from workbench.models.flops import count_flops, count_parameters
from workbench.models.hta import HierarchicalModel, hta_schedule
from workbench.models.normalization import Normalization
from workbench.models.protocol import (
    Forecaster,
    as_init_times,
    as_lead_times,
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
    "Forecaster",
    "HierarchicalModel",
    "NWPForecast",
    "Normalization",
    "Persistence",
    "TorchForecaster",
    "as_init_times",
    "as_lead_times",
    "build",
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
