"""The inference engine: roll models out on a GPU or CPU, with ensembles, into resumable zarr stores.

``run_forecast(model, source, init_times, lead_times, ...)`` is the entry point; see
:mod:`workbench.inference.engine`.
"""

from __future__ import annotations

from workbench.inference.engine import run_forecast
from workbench.inference.ensemble import EnsembleSpec
from workbench.inference.store import open_forecast

__all__ = ["EnsembleSpec", "open_forecast", "rollout", "run_forecast"]


def rollout(model, initial, init_times, lead_times, **kwargs):
    """In-memory forecast of a torch model (what ``TorchForecaster.forecast`` delegates to).

    Same arguments as :func:`run_forecast`; defaults to no progress bar, no store and ``dtype="auto"``
    (bf16 on a GPU, fp32 on a CPU).
    """
    kwargs.setdefault("progress", False)
    kwargs.setdefault("dtype", "auto")
    return run_forecast(model, initial, init_times, lead_times, **kwargs)
