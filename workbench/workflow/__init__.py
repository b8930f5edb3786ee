"""The workflow: sample -> events -> inference -> scoring, and the :class:`Results` the views read.

* :mod:`~workbench.workflow.pipeline` builds the dashboard's results for a sample size (baselines at
  once, learned models in a background process) under a manifest;
* :mod:`~workbench.workflow.results` holds :class:`Results` (scores, truth, forecasts, events, masks
  and a public view cache);
* :mod:`~workbench.workflow.build` has :func:`build_results`, the one way every :class:`Results` is
  made (scoring with :func:`score_forecasts` what comes without scores);
* :mod:`~workbench.workflow.load` has :func:`load_results`, what the dashboard calls;
* :mod:`~workbench.workflow.synthetic` makes synthetic fields of any grid size and bundles them through
  :func:`build_results` (for load tests);
* :mod:`~workbench.workflow.derive` computes the data the views draw: a field's grid, the ensemble
  spread split, each event's error.

The plot builders (:mod:`workbench.viz`) sit above this package and read only :class:`Results`.
"""

from __future__ import annotations

from workbench._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "Results": "workbench.workflow.results",
        "build_results": "workbench.workflow.build",
        "score_forecasts": "workbench.workflow.build",
        "load_results": "workbench.workflow.load",
        "open_catalog_scores": "workbench.workflow.load",
        "sample_results": "workbench.workflow.pipeline",
        "results_generation": "workbench.workflow.pipeline",
        "synthetic_results": "workbench.workflow.synthetic",
        "event_errors": "workbench.workflow.derive",
        "event_typical_errors": "workbench.workflow.derive",
        "event_error_tables": "workbench.workflow.derive",
        "grid_from_coords": "workbench.workflow.derive",
        "spread_split": "workbench.workflow.derive",
        "with_model_dim": "workbench.workflow.derive",
    },
)
