"""Hierarchical temporal aggregation (HTA): reach a lead time with the fewest model steps.

Pangu-Weather trains one network per time step (1, 3, 6 and 24 h) and reaches a lead time by using
the longest steps first: 31 h = 24 + 6 + 1 (three calls instead of 31), which keeps the accumulated
error small. :func:`hta_schedule` computes that schedule; :class:`HierarchicalModel` holds the per-step
networks (a
:class:`~workbench.models.protocol.StepFamily`) and advances a state by any of its steps. The schedule
and the roll-out itself (batching, reuse of shared prefixes across lead times) are the inference
engine's job (:mod:`workbench.inference.plan`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
import torch
from torch import nn

from workbench.errors import CheckpointError, DataError
from workbench.models.torch_model import TorchForecaster

__all__ = ["HierarchicalModel", "fewest_steps", "hta_schedule"]


def _as_hours(value: Any) -> int:
    if isinstance(value, (pd.Timedelta,)) or hasattr(value, "dtype") and "timedelta" in str(value.dtype):
        hours = pd.Timedelta(value) / pd.Timedelta(hours=1)
    else:
        hours = float(value)
    if abs(hours - round(hours)) > 1e-9:
        raise DataError(f"HTA works on whole hours; got a lead time of {hours} h.")
    return int(round(hours))


def hta_schedule(lead_hours: Any, steps: Sequence[int] = (24, 6, 3, 1)) -> list[int]:
    """The steps that reach ``lead_hours`` in the fewest model calls, longest first.

    For Pangu's steps (each divides the next) this is the greedy schedule: take the longest step that
    fits, repeat. For other step sets the greedy choice can need more calls (steps 4, 3, 1 reach 6 h as
    4 + 1 + 1 but 3 + 3 is shorter), so the fewest-calls schedule is found exactly by dynamic
    programming, preferring longer steps among schedules of equal length.

    Parameters
    ----------
    lead_hours : int, float, or timedelta
        The lead time (whole hours, non-negative).
    steps : sequence of int
        Available model time steps in hours.

    Returns
    -------
    list of int
        Step lengths in the order to apply them (longest first); empty for a lead time of 0.

    Raises
    ------
    DataError
        If the lead time is negative, not whole hours, or cannot be made from the steps.

    Examples
    --------
    >>> hta_schedule(31)
    [24, 6, 1]
    >>> hta_schedule(6, steps=(4, 3, 1))
    [3, 3]
    """
    lead = _as_hours(lead_hours)
    if lead < 0:
        raise DataError(f"Lead time must not be negative; got {lead} h.")
    clean = tuple(sorted({int(s) for s in steps}, reverse=True))
    if not clean or clean[-1] <= 0:
        raise DataError(f"Steps must be positive whole hours; got {list(steps)}.")
    return list(fewest_steps(lead, clean))


@functools.lru_cache(maxsize=4096)
def fewest_steps(lead: int, steps: tuple[int, ...]) -> tuple[int, ...]:
    """The fewest steps (in whole units, longest first) that add up to ``lead`` units, by dynamic
    programming; ties keep the longer steps. Raises :class:`~workbench.errors.DataError` when none do."""
    # best[h] = fewest calls to reach h; ties keep the first (longest) step tried
    best: list[int | None] = [0] + [None] * lead
    choice = [0] * (lead + 1)
    for h in range(1, lead + 1):
        for s in steps:
            if s <= h and best[h - s] is not None and (best[h] is None or best[h - s] + 1 < best[h]):
                best[h], choice[h] = best[h - s] + 1, s
    if best[lead] is None:
        raise DataError(f"A lead time of {lead} h cannot be reached with steps {list(steps)} h.")
    out = []
    h = lead
    while h:
        out.append(choice[h])
        h -= choice[h]
    return tuple(sorted(out, reverse=True))


class HierarchicalModel(nn.Module):
    """Several networks with different time steps, used together by hierarchical temporal aggregation.

    Parameters
    ----------
    models : iterable of TorchForecaster
        One per time step; all must forecast the same variables.
    name : str, optional
        Registry name (default: the models' common name).
    """

    def __init__(self, models: Iterable[TorchForecaster], name: str | None = None) -> None:
        super().__init__()
        models = sorted(models, key=lambda m: m.step_hours, reverse=True)
        if not models:
            raise CheckpointError("A hierarchical model needs at least one network.")
        steps = [m.step_hours for m in models]
        if len(set(steps)) != len(steps):
            raise CheckpointError(f"Two networks share a time step: {steps} h.")
        if any(abs(s - round(s)) > 1e-9 for s in steps):
            raise CheckpointError(f"HTA needs whole-hour steps; got {steps} h.")
        variables = models[0].variables
        for m in models[1:]:
            if m.variables != variables:
                raise CheckpointError(
                    f"Networks of a hierarchical model must share variables: {list(variables)} vs {list(m.variables)}."
                )
        self.models = nn.ModuleDict({str(int(round(m.step_hours))): m for m in models})
        self.steps: tuple[int, ...] = tuple(int(round(s)) for s in steps)
        self.name = name or models[0].name
        self.variables = variables
        self.input_variables = variables
        self.forcings = models[-1].forcings
        self.grid = models[-1].grid
        #: States are exchanged in the shortest-step model's normalisation.
        self.normalization = models[-1].normalization
        self.time_step = pd.Timedelta(hours=min(self.steps))
        self.register_buffer("mean", models[-1].mean.clone(), persistent=False)
        self.register_buffer("std", models[-1].std.clone(), persistent=False)

    def __repr__(self) -> str:
        return f"HierarchicalModel(name={self.name!r}, steps={list(self.steps)} h, variables={list(self.variables)})"

    @property
    def needs_valid_time(self) -> bool:
        return any(m.needs_valid_time for m in self.models.values())

    @property
    def config(self) -> dict:
        return {
            "name": self.name,
            "hierarchical": True,
            "members": {k: m.config for k, m in self.models.items()},
        }

    def schedule(self, lead_hours: Any) -> list[int]:
        """The HTA schedule of this model's steps for one lead time."""
        return hta_schedule(lead_hours, self.steps)

    def step_models(self) -> dict[pd.Timedelta, TorchForecaster]:
        """The network of each time step (the :class:`~workbench.models.protocol.StepFamily` contract)."""
        return {pd.Timedelta(hours=int(k)): m for k, m in self.models.items()}

    def torch_module(self) -> nn.Module:
        """The module holding every network's parameters: the family itself."""
        return self

    def normalize(self, x: torch.Tensor, variables: Sequence[str] | None = None) -> torch.Tensor:
        return self.models[str(min(self.steps))].normalize(x, variables)

    def denormalize(self, x: torch.Tensor, variables: Sequence[str] | None = None) -> torch.Tensor:
        return self.models[str(min(self.steps))].denormalize(x, variables)

    def step(
        self, x: torch.Tensor, step_hours: int | None = None, valid_time: Any = None, **kw
    ) -> torch.Tensor:
        """Advance a normalised state by ``step_hours`` (default: the shortest step) with that network.

        If that network's normalisation differs from the shared one, the state is converted on the way
        in and out, so the caller always works in :attr:`normalization`.
        """
        hours = min(self.steps) if step_hours is None else int(step_hours)
        key = str(hours)
        if key not in self.models:
            raise DataError(f"No network with a {hours} h step; available: {list(self.steps)} h.")
        model = self.models[key]
        same = model.normalization == self.normalization
        if not same:
            x = model.normalize(self.denormalize(x))
        y = model.step(x, valid_time=valid_time, **kw)
        return y if same else self.normalize(model.denormalize(y))

    def forward(
        self, x: torch.Tensor, step_hours: int | None = None, valid_time: Any = None, **kw
    ) -> torch.Tensor:
        return self.step(x, step_hours, valid_time, **kw)
