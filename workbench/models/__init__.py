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

from workbench._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "CheckpointError": "workbench.errors",
        "Climatology": "workbench.models.baselines",
        "EnsembleMember": "workbench.models.protocol",
        "Forecaster": "workbench.models.protocol",
        "HierarchicalModel": "workbench.models.hta",
        "NWPForecast": "workbench.models.baselines",
        "Normalization": "workbench.models.normalization",
        "Persistence": "workbench.models.baselines",
        "StepFamily": "workbench.models.protocol",
        "StepForecaster": "workbench.models.protocol",
        "TorchForecaster": "workbench.models.torch_model",
        "as_init_times": "workbench.models.protocol",
        "as_lead_times": "workbench.models.protocol",
        "build": "workbench.models.registry",
        "check_model": "workbench.models.protocol",
        "count_flops": "workbench.models.flops",
        "count_parameters": "workbench.models.flops",
        "default_config": "workbench.models.registry",
        "describe_models": "workbench.models.registry",
        "find_checkpoints": "workbench.models.registry",
        "ensemble_members": "workbench.models.registry",
        "load_ensemble": "workbench.models.registry",
        "member_dir": "workbench.models.registry",
        "forecast_dataset": "workbench.models.protocol",
        "hta_schedule": "workbench.models.hta",
        "list_models": "workbench.models.registry",
        "load": "workbench.models.registry",
        "load_checkpoint": "workbench.models.weights",
        "load_foreign_state_dict": "workbench.models.weights",
        "register_model": "workbench.models.registry",
        "save_checkpoint": "workbench.models.weights",
        "select_initial": "workbench.models.protocol",
        "spatial_dims": "workbench.models.protocol",
    },
)
