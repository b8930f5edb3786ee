"""Ensembles of models that forecast from initial data by themselves: one perturbed start per member.

A model with its own ``forecast(initial, init_times, lead_times)`` (an Earth2Studio model through
:class:`~workbench.models.earth2.Earth2Forecaster`) has no normalised state on the device for
:class:`~workbench.inference.runner.TorchRunner` to perturb. When such a model declares
``perturbable = True``, :class:`PerturbedRunner` makes its noise members instead: for each initial time
and member it perturbs the states the model starts from (the initial time and the model's history) and
calls the model once.

The perturbation is the model's own when it has one (``model.perturb(states, seed)`` returning the
perturbed states: the adapter's Earth2Studio perturbation method) and otherwise the workbench's
spatially correlated noise (:mod:`workbench.inference.perturb`), with amplitude ``noise_scale`` in units
of each variable's spatial standard deviation at the initial time, the same field added at every
history time. Either way the seed of one (initial time, member) pair is
:func:`~workbench.inference.perturb.noise_key` of the run's seed, so a resumed or re-batched run draws
the same members.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import xarray as xr

from workbench.errors import DataError
from workbench.inference.ensemble import EnsembleError, EnsembleSpec
from workbench.inference.perturb import amplitudes, correlated_noise, noise_key
from workbench.inference.runner import BaselineRunner, Block, BlockResult, _Ready

__all__ = ["PerturbedRunner", "is_perturbable"]


def is_perturbable(model) -> bool:
    """Whether ``model`` forecasts from initial data that may be perturbed member by member."""
    return bool(getattr(model, "perturbable", False)) and callable(getattr(model, "forecast", None))


class PerturbedRunner:
    """Noise members of a self-forecasting model: one ``forecast`` call per initial time and member.

    Parameters
    ----------
    model
        A model with ``forecast``, ``perturbable = True`` and optionally ``history`` (offsets of the
        states it starts from, default ``[0]``) and ``perturb(states, seed)``.
    lead_times : pandas.TimedeltaIndex
    source : xarray.Dataset
        The initial data.
    spec : EnsembleSpec
        Its ``noise_members``, ``noise_scale``, ``length_scale`` and ``seed`` are used.
    member_layout : str
        ``"member"`` or ``"split"`` (one weight member).

    Raises
    ------
    EnsembleError
        Weight members or dropout asked of a model that has neither.
    """

    def __init__(
        self,
        model,
        lead_times: pd.TimedeltaIndex,
        source: xr.Dataset,
        spec: EnsembleSpec,
        member_layout: str,
    ):
        name = getattr(model, "name", None) or type(model).__name__
        if (spec.weight_members or 1) > 1 or spec.dropout is not None:
            raise EnsembleError(
                f"{name} makes noise members only (perturbed initial conditions); weight members and "
                "dropout need a workbench network."
            )
        if spec.model_error is not None:
            raise EnsembleError(
                f"{name} forecasts by itself, so no step is exposed to add model error to; stochastic "
                "model error needs a workbench network (drop EnsembleSpec.model_error)."
            )
        self._base = BaselineRunner(model, lead_times, source)
        self.model = model
        self.variables = self._base.variables
        self.input_variables = tuple(getattr(model, "input_variables", self.variables))
        self.lead_times = lead_times
        self.spec = spec
        self.member_layout = member_layout
        history = getattr(model, "history", None)
        self.history = pd.TimedeltaIndex([pd.Timedelta(0)] if history is None else history)
        try:
            self.scale = amplitudes(self.input_variables, spec.noise_scale)
        except KeyError as exc:
            raise EnsembleError(f"{name}: {exc.args[0]}") from None
        self.model_calls = 0

    def _workbench_noise(self, states: xr.Dataset, seed: int) -> xr.Dataset:
        """``states`` plus correlated noise of ``noise_scale`` x each variable's spatial std at init."""
        grid = [d for d in states[self.input_variables[0]].dims if d != "time"]
        shape = tuple(states.sizes[d] for d in grid)
        if len(shape) != 2:
            raise DataError(f"perturbed members need 2-D fields; the initial data have dims {grid}.")
        gen = torch.Generator().manual_seed(seed)
        noise = correlated_noise((len(self.input_variables), *shape), self.spec.length_scale, gen).numpy()
        out = states.copy()
        for c, v in enumerate(self.input_variables):
            now = states[v].isel(time=-1)  # the state at the initial time itself
            amp = float(self.scale[c]) * float(now.std())
            field = xr.DataArray(noise[c], dims=grid)
            out[v] = (states[v] + amp * field).astype(states[v].dtype).transpose(*states[v].dims)
        return out

    def run_block(self, block: Block) -> BlockResult:
        """Forecast every member of every initial time of ``block``."""
        # This block's noise members (all, or a part: see StoreLayout.member_batch), seeded by their number.
        noise = range(self.spec.noise_members)[block.noise or slice(None)]
        n = len(noise)
        out: dict[str, np.ndarray] = {}
        for i, init in enumerate(block.init_times):
            times = init + self.history
            have = pd.DatetimeIndex(block.source["time"].values)
            absent = [str(t) for t in times if t not in have]
            if absent:
                raise DataError(f"the model starts from the states at {absent}; the initial data lack them.")
            states = block.source[list(self.input_variables)].sel(time=times)
            for slot, m in enumerate(noise):
                seed = noise_key(self.spec.seed, np.datetime64(init), m)
                own = getattr(self.model, "perturb", None)
                perturbed = own(states, seed) if callable(own) else None
                if perturbed is None:
                    perturbed = self._workbench_noise(states, seed)
                one = self._base.run_block(Block(block.index, pd.DatetimeIndex([init]), perturbed))
                self.model_calls += 1
                for v, arr in one.arrays().items():
                    if v not in out:
                        out[v] = np.empty((len(block.init_times), arr.shape[1], n, *arr.shape[2:]), np.float32)
                    out[v][i, :, slot] = arr[0]
        if self.member_layout == "split":
            out = {v: a[:, :, None] for v, a in out.items()}  # (b, L, weight_member=1, noise_member, ...)
        return _Ready(out)
