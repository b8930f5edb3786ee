"""The wrapper that turns a torch network into a workbench forecaster.

A :class:`TorchForecaster` holds the network (``.net``), the normalisation statistics as device
buffers, and the configuration that rebuilds it. The inference engine works on normalised tensors:

>>> x = model.normalize(physical)                      # (batch, C, ny, nx)
>>> x = model.step(x, valid_time=times)               # next normalised state, time_step later
>>> physical_next = model.denormalize(x)

``valid_time`` is the valid time of the *input* state (one per batch element); models whose
``forcings`` are not empty (time-of-day channels) need it. A forecaster meets the
:class:`~workbench.models.protocol.StepForecaster` and :class:`~workbench.models.protocol.StepFamily`
contracts; :func:`workbench.inference.run_forecast` rolls it out.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import pandas as pd
import torch
from torch import nn

from workbench.errors import CheckpointError, DataError
from workbench.models.layers import forcing_fields
from workbench.models.normalization import Normalization

__all__ = ["ARCHITECTURES", "LeadStep", "TorchForecaster", "architecture"]

#: Architecture name -> (module path, class name, default hyper-parameters attribute).
ARCHITECTURES = {
    "pangu": ("workbench.models.pangu", "PanguNet"),
    "climax": ("workbench.models.climax", "ClimaXNet"),
    "hrheim": ("workbench.models.hrheim", "HRHeimNet"),
}


def architecture(name: str) -> tuple[type[nn.Module], dict]:
    """The network class and its default hyper-parameters for an architecture name."""
    import importlib

    if name not in ARCHITECTURES:
        raise CheckpointError(f"Unknown architecture {name!r}; known: {sorted(ARCHITECTURES)}.")
    module_name, class_name = ARCHITECTURES[name]
    module = importlib.import_module(module_name)
    return getattr(module, class_name), copy.deepcopy(module.DEFAULT_CONFIG)


class TorchForecaster(nn.Module):
    """A torch prognostic network with its variables, time step and normalisation.

    Parameters
    ----------
    net : torch.nn.Module
        Maps ``(B, C + F, ny, nx)`` (state then forcings, normalised) to ``(B, C, ny, nx)``; called as
        ``net(x, lead_hours=..., variables=...)``.
    config : dict
        ``name``, ``architecture``, ``variables``, ``forcings``, ``time_step_hours``, ``grid`` and
        ``net`` (the network's hyper-parameters); see :func:`workbench.models.build`.
    normalization : Normalization, optional
        Statistics of every state variable (identity when omitted: an untrained model).
    """

    def __init__(self, net: nn.Module, config: dict, normalization: Normalization | None = None) -> None:
        super().__init__()
        self.net = net
        self._config = copy.deepcopy(config)
        self.name: str = str(config["name"])
        self.architecture: str = str(config["architecture"])
        self.variables: tuple[str, ...] = tuple(config["variables"])
        self.input_variables: tuple[str, ...] = self.variables
        self.forcings: tuple[str, ...] = tuple(config.get("forcings", ()))
        hours = float(config["time_step_hours"])
        if hours <= 0:
            raise CheckpointError(f"time_step_hours must be positive, got {hours}.")
        self.time_step: pd.Timedelta = pd.Timedelta(hours=hours)
        self.grid: dict | None = config.get("grid")
        self.normalization = normalization or Normalization.identity(self.variables)
        mean, std = self.normalization.tensors(self.variables)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    # -- metadata -----------------------------------------------------------------------------------
    @property
    def config(self) -> dict:
        """The full configuration (JSON-ready), normalisation included."""
        cfg = copy.deepcopy(self._config)
        cfg["normalization"] = self.normalization.to_json()
        return cfg

    @property
    def step_hours(self) -> float:
        """The time step in hours."""
        return self.time_step / pd.Timedelta(hours=1)

    @property
    def steps(self) -> tuple[float, ...]:
        """Lead times (hours, longest first) the network was trained for: the ``lead_hours`` of a
        lead-time conditioned network (ClimaX-like), else just its time step. An engine may chain them
        by hierarchical temporal aggregation."""
        leads = self._config.get("lead_hours") or [self.step_hours]
        return tuple(sorted({float(h) for h in leads}, reverse=True))

    @property
    def needs_valid_time(self) -> bool:
        """Whether ``step`` needs ``valid_time`` (the model takes time-of-day forcings)."""
        return bool(self.forcings)

    def __repr__(self) -> str:
        n = sum(p.numel() for p in self.parameters())
        return (
            f"TorchForecaster(name={self.name!r}, architecture={self.architecture!r}, "
            f"time_step={self.time_step}, variables={list(self.variables)}, parameters={n:,})"
        )

    # -- tensors ------------------------------------------------------------------------------------
    def _stats(self, variables: Sequence[str] | None) -> tuple[torch.Tensor, torch.Tensor]:
        if variables is None or tuple(variables) == self.variables:
            return self.mean, self.std
        idx = [self.variables.index(v) for v in variables if v in self.variables]
        if len(idx) != len(variables):
            unknown = [v for v in variables if v not in self.variables]
            raise DataError(f"Model {self.name!r} has no variables {unknown}.")
        return self.mean[:, idx], self.std[:, idx]

    def normalize(self, x: torch.Tensor, variables: Sequence[str] | None = None) -> torch.Tensor:
        """Physical units -> normalised, ``(B, C, ny, nx)`` in the order of ``variables``."""
        mean, std = self._stats(variables)
        return (x - mean.to(x.dtype)) / std.to(x.dtype)

    def denormalize(self, x: torch.Tensor, variables: Sequence[str] | None = None) -> torch.Tensor:
        """Normalised -> physical units."""
        mean, std = self._stats(variables)
        return x * std.to(x.dtype) + mean.to(x.dtype)

    def step(
        self,
        x: torch.Tensor,
        valid_time: Any = None,
        lead_hours: torch.Tensor | float | None = None,
        variables: Sequence[str] | None = None,
    ) -> torch.Tensor:
        """Advance a normalised state by one time step.

        Parameters
        ----------
        x : torch.Tensor
            ``(B, C, ny, nx)`` normalised state in the order of ``self.variables`` (or of
            ``variables``, for models that accept a subset: the ClimaX-like one).
        valid_time : array-like of datetime64 or torch.Tensor, optional
            Valid time of the input per batch element (a tensor: hours since 1970-01-01). Required
            when ``self.forcings`` is not empty.
        lead_hours : float or tensor (B,), optional
            Lead time the network is asked for; defaults to the time step. Only lead-time
            conditioned networks (ClimaX-like) use it.
        variables : sequence of str, optional
            Names of the channels of ``x`` when they are not ``self.variables``.

        Returns
        -------
        torch.Tensor
            ``(B, len(self.variables), ny, nx)`` normalised state one step later.
        """
        if x.ndim != 4:
            raise DataError(
                f"step() expects (batch, channels, ny, nx); got a tensor of shape {tuple(x.shape)}."
            )
        names = self.variables if variables is None else tuple(variables)
        if x.shape[1] != len(names):
            raise DataError(
                f"Input has {x.shape[1]} channels; model {self.name!r} expects {len(names)} ({list(names)})."
            )
        b, _, ny, nx = x.shape
        if self.forcings:
            forcing = forcing_fields(self.forcings, valid_time, b, (ny, nx), device=x.device, dtype=x.dtype)
            x = torch.cat([x, forcing], dim=1)
        if lead_hours is None:
            lead_hours = self.step_hours
        lead = torch.as_tensor(lead_hours, device=x.device, dtype=torch.float32).reshape(-1).expand(b)
        call_vars = None if variables is None else names + self.forcings
        return self.net(x, lead_hours=lead, variables=call_vars)

    def forward(self, x: torch.Tensor, valid_time: Any = None, **kw) -> torch.Tensor:
        """Same as :meth:`step`."""
        return self.step(x, valid_time=valid_time, **kw)

    # -- the contract -------------------------------------------------------------------------------
    def step_models(self) -> dict[pd.Timedelta, Any]:
        """The network as a step family: one :class:`LeadStep` per trained lead when it is lead-time
        conditioned for several leads (ClimaX-like, chained by hierarchical temporal aggregation), else
        itself at its time step."""
        leads = sorted({float(h) for h in self._config.get("lead_hours") or ()})
        if len(leads) > 1:
            return {pd.Timedelta(hours=h): LeadStep(self, h) for h in leads}
        return {self.time_step: self}

    def torch_module(self) -> nn.Module:
        """The module holding every parameter: the forecaster itself."""
        return self


class LeadStep:
    """A lead-time conditioned network used at one fixed lead, so it can join an HTA family.

    It shares the network's weights; :meth:`step` asks the network for ``hours`` ahead.
    """

    def __init__(self, model: TorchForecaster, hours: float) -> None:
        self.model = model
        self.hours = float(hours)
        self.name = model.name
        self.variables = tuple(model.variables)
        self.input_variables = tuple(model.input_variables)
        self.grid = model.grid
        self.normalization = model.normalization
        self.time_step = pd.Timedelta(hours=self.hours)

    def __repr__(self) -> str:
        return f"LeadStep({self.model.name!r}, {self.hours:g} h)"

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.normalize(x)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.denormalize(x)

    def step(self, x: torch.Tensor, valid_time: Any = None) -> torch.Tensor:
        return self.model.step(x, valid_time=valid_time, lead_hours=self.hours)

    def torch_module(self) -> nn.Module:
        return self.model.torch_module()
