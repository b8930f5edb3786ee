"""Training the workbench's torch models on the embedded sample (``workbench train <model>``).

>>> from workbench.training import train
>>> results = train("pangu", out="my_checkpoints", time_budget_s=120)   # 1/6/24 h networks

:func:`train` follows the recipes of :mod:`workbench.training.recipes` (the shipped checkpoints in
``workbench/checkpoints`` were made by them); :func:`train_model` trains any one model on any
:class:`TrainingData`.
"""

from __future__ import annotations

from workbench._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "EXTRA_TRAINING": "workbench.training.recipes",
        "RECIPES": "workbench.training.recipes",
        "SAMPLE_VARIABLES": "workbench.training.data",
        "Recipe": "workbench.training.recipes",
        "TrainConfig": "workbench.training.loop",
        "TrainResult": "workbench.training.loop",
        "TrainingData": "workbench.training.data",
        "build_for": "workbench.training.run",
        "default_training_data": "workbench.training.run",
        "resolve_extra_size": "workbench.training.run",
        "load_training_data": "workbench.training.data",
        "train": "workbench.training.run",
        "train_model": "workbench.training.loop",
    },
)
