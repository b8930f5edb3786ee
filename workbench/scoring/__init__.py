"""Scoring: verification metrics, the overall-versus-extreme error decomposition and the
epistemic-versus-aleatoric spread split.

The metrics (:mod:`workbench.scoring.metrics`) follow the calling style of the ``scores`` package;
:func:`decompose` computes all of them for every region in one pass over the data.
"""

from __future__ import annotations

from workbench.scoring.decompose import decompose
from workbench.scoring.inputs import ScoringWarning
from workbench.scoring.io import open_scores, write_scores
from workbench.scoring.metrics import (
    acc,
    bias,
    crps_ensemble,
    mae,
    mean_error,
    rank_histogram,
    rmse,
    spread,
    spread_skill_ratio,
    variance_split,
)

__all__ = [
    "ScoringWarning",
    "acc",
    "bias",
    "crps_ensemble",
    "decompose",
    "mae",
    "mean_error",
    "open_scores",
    "rank_histogram",
    "rmse",
    "spread",
    "spread_skill_ratio",
    "variance_split",
    "write_scores",
]
