"""Lead times far beyond what a network was trained for: a warning that names the trained range.

An autoregressive network is routinely rolled out well past its training leads (a 6-hour step to 10
days), so ordinary medium-range leads stay silent. A lead beyond :data:`FACTOR` times the longest
trained lead, and beyond :data:`MEDIUM_RANGE_HOURS`, is almost surely a typo (``5000`` for ``500``) or
a forecast whose numbers mean little; it gets a :class:`LeadTimeWarning`. ``strict=True`` makes it an
error instead.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import numpy as np
import pandas as pd

from workbench.errors import DataError
from workbench.models.protocol import is_stepped, step_models

FACTOR = 40
MEDIUM_RANGE_HOURS = 240.0


class LeadTimeWarning(UserWarning):
    """A lead time far beyond the range a model was trained for."""


def _members(model) -> list:
    # a family's networks carry the configs and training records; the family itself may too
    if is_stepped(model):
        return [model, *step_models(model).values()]
    return [model]


def trained_range(model) -> tuple[float, float] | None:
    """``(step_hours, longest_trained_lead_hours)`` from a checkpointed model's config and metadata.

    The longest trained lead is the largest of the training leads (``lead_hours``) or the step times
    the rollout length (``rollout_steps``); None for a model that records neither (a baseline).
    """
    steps, longest = [], []
    for m in _members(model):
        config = getattr(m, "config", None)
        if not isinstance(config, dict) or not config.get("time_step_hours"):
            continue
        step = float(config["time_step_hours"])
        settings = (getattr(m, "checkpoint_metadata", None) or {}).get("training", {}).get("settings", {})
        leads = settings.get("lead_hours") or []
        rollout = int(settings.get("rollout_steps") or 1)
        steps.append(step)
        longest.append(max([step * rollout, *map(float, leads)]))
    if not steps:
        return None
    return min(steps), max(longest)


def check_leads(models: Iterable, lead_times, *, strict: bool = False) -> None:
    """Warn (or, with ``strict``, raise :class:`DataError`) on leads far beyond the trained range."""
    leads_h = np.asarray(pd.to_timedelta(np.asarray(lead_times)) / pd.Timedelta(hours=1), dtype=float)
    if leads_h.size == 0:
        return
    for model in models:
        rng = trained_range(model)
        if rng is None:
            continue
        step, longest = rng
        limit = max(MEDIUM_RANGE_HOURS, FACTOR * longest)
        worst = float(leads_h.max())
        if worst > limit:
            name = getattr(model, "name", type(model).__name__)
            text = (
                f"lead time {worst:g} h is far beyond what {name} was trained for (step {step:g} h, trained "
                f"leads up to {longest:g} h; leads above {limit:g} h are flagged): its numbers there are "
                "extrapolation"
            )
            if strict:
                raise DataError(text)
            warnings.warn(text, LeadTimeWarning, stacklevel=3)
