"""Scoring: verification metrics, the overall-versus-extreme error decomposition and the
epistemic-versus-aleatoric spread split.

The metrics (:mod:`workbench.scoring.metrics`) follow the calling style of the ``scores`` package;
:func:`decompose` computes all of them for every region in one pass over the data.
"""

from __future__ import annotations

from workbench._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "ScoringWarning": "workbench.scoring.inputs",
        "acc": "workbench.scoring.metrics",
        "bias": "workbench.scoring.metrics",
        "crps_ensemble": "workbench.scoring.metrics",
        "decompose": "workbench.scoring.decompose",
        "mae": "workbench.scoring.metrics",
        "mean_error": "workbench.scoring.metrics",
        "open_scores": "workbench.scoring.io",
        "rank_histogram": "workbench.scoring.metrics",
        "rmse": "workbench.scoring.metrics",
        "spread": "workbench.scoring.metrics",
        "spread_skill_ratio": "workbench.scoring.metrics",
        "variance_split": "workbench.scoring.metrics",
        "write_scores": "workbench.scoring.io",
    },
)
