"""The inference engine: roll models out on a GPU or CPU, with ensembles, into resumable zarr stores.

``run_forecast(model, source, init_times, lead_times, ...)`` is the entry point; see
:mod:`workbench.inference.engine`. The public names load their modules on first use, so importing
this package (or :func:`open_forecast` alone, e.g. in a process that only reads stores) does not
import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.inference.engine import run_forecast
    from workbench.inference.ensemble import EnsembleSpec
    from workbench.inference.store import open_forecast

__all__ = ["EnsembleSpec", "open_forecast", "rollout", "run_forecast"]

_LAZY = {
    "EnsembleSpec": "workbench.inference.ensemble",
    "open_forecast": "workbench.inference.store",
    "run_forecast": "workbench.inference.engine",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def rollout(model, initial, init_times, lead_times, **kwargs):
    """In-memory forecast of a torch model (what ``TorchForecaster.forecast`` delegates to).

    Same arguments as :func:`run_forecast`; defaults to no progress bar, no store and ``dtype="auto"``
    (bf16 on a GPU, fp32 on a CPU).
    """
    from workbench.inference.engine import run_forecast

    kwargs.setdefault("progress", False)
    kwargs.setdefault("dtype", "auto")
    return run_forecast(model, initial, init_times, lead_times, **kwargs)
