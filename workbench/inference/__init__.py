"""The inference engine: roll models out on a GPU or CPU, with ensembles, into memory or resumable zarr stores.

``run_forecast(model, source, init_times, lead_times, sink=..., ...)`` is the entry point; see
:mod:`workbench.inference.engine`. The public names load their modules on first use, so importing
this package (or :func:`open_forecast` alone, e.g. in a process that only reads stores) does not
import torch.
"""

from __future__ import annotations

from workbench._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "EnsembleSpec": "workbench.inference.ensemble",
        "ForecastSink": "workbench.inference.sinks",
        "MemorySink": "workbench.inference.sinks",
        "ZarrSink": "workbench.inference.sinks",
        "open_forecast": "workbench.inference.store",
        "run_forecast": "workbench.inference.engine",
    },
)
