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

import numpy as np
import pandas as pd
import torch
from torch import nn

from workbench.errors import CheckpointError, DataError
from workbench.models.inputs import INSOLATION, STATIC, boundary_mask, toa_insolation
from workbench.models.layers import forcing_fields
from workbench.models.normalization import Normalization

__all__ = ["ARCHITECTURES", "LeadStep", "TorchForecaster", "architecture"]

#: Architecture name -> (module path, class name, default hyper-parameters attribute).
#: When the forcings (time of day, insolation) are computed: at the input's valid time (the shipped
#: checkpoints) or at the output's (input time + lead), see ``docs/models.md``.
FORCING_TIMES = ("input", "output")

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
        # "input" (the shipped checkpoints): forcings at the valid time of the input; "output": at the input
        # time plus the lead asked for, so a lead-conditioned network sees the time of day it must predict
        self.forcing_time: str = str(config.get("forcing_time", "input"))
        if self.forcing_time not in FORCING_TIMES:
            raise CheckpointError(f"config forcing_time must be one of {FORCING_TIMES}, not {self.forcing_time!r}")
        self.static: tuple[str, ...] = tuple(config.get("static", ()))
        bnd = config.get("boundary") or {}
        self.boundary_variables: tuple[str, ...] = tuple(bnd.get("variables", ()))
        self.boundary_width: int = int(bnd.get("width", 0))
        # the lead-time conditioned network's ClimaX tokens keep every extra channel by name
        self.extra_channels: tuple[str, ...] = input_channels(config)
        self._static_ready = False
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

    @property
    def needs_static(self) -> bool:
        """Whether the network needs its grid's static fields (static channels or insolation)."""
        return bool(self.static) or INSOLATION in self.forcings

    def set_static(self, fields: np.ndarray, lat_rad: np.ndarray, lon_rad: np.ndarray) -> None:
        """Hold the grid's static channels ``(len(static), ny, nx)`` and coordinates (radians).

        They are buffers that move with the module but are not saved: a checkpoint stays small and the
        engine and the training both compute them with :func:`workbench.models.inputs.static_fields`.
        """
        dev = next(self.parameters()).device
        self.register_buffer("static_fields", torch.as_tensor(fields, dtype=torch.float32, device=dev),
                             persistent=False)
        self.register_buffer("lat_rad", torch.as_tensor(lat_rad, dtype=torch.float64, device=dev), persistent=False)
        self.register_buffer("lon_rad", torch.as_tensor(lon_rad, dtype=torch.float64, device=dev), persistent=False)
        if self.boundary_variables:
            mask = boundary_mask(tuple(lat_rad.shape), self.boundary_width)
            self.register_buffer("boundary_strip", torch.as_tensor(mask, device=dev), persistent=False)
        self._static_ready = True

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
        boundary: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Advance a normalised state by one time step.

        Parameters
        ----------
        x : torch.Tensor
            ``(B, C, ny, nx)`` normalised state in the order of ``self.variables`` (or of
            ``variables``, for models that accept a subset: the ClimaX-like one).
        valid_time : array-like of datetime64 or torch.Tensor, optional
            Valid time of the input per batch element (a tensor: hours since 1970-01-01). Required
            when ``self.forcings`` is not empty. The forcings are computed at this time, or, when the
            config says ``"forcing_time": "output"``, at this time plus ``lead_hours`` (the output's).
        lead_hours : float or tensor (B,), optional
            Lead time the network is asked for; defaults to the time step. Only lead-time
            conditioned networks (ClimaX-like) use it.
        variables : sequence of str, optional
            Names of the channels of ``x`` when they are not ``self.variables``.
        boundary : torch.Tensor, optional
            ``(B, len(boundary_variables), ny, nx)`` coarse state in physical units at the valid time of
            the *output*; required when the config declares a ``boundary`` (see
            :mod:`workbench.models.inputs`).

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
        if lead_hours is None:
            lead_hours = self.step_hours
        lead = torch.as_tensor(lead_hours, device=x.device, dtype=torch.float32).reshape(-1).expand(b)
        if self.forcing_time == "output" and valid_time is not None and self.forcings:
            if not isinstance(valid_time, torch.Tensor):
                valid_time = _hours(valid_time, b, x.device)
            valid_time = valid_time.to(device=x.device, dtype=torch.float64).reshape(-1) + lead.to(torch.float64)
        x = torch.cat([x, *self._extra(x, valid_time, boundary)], dim=1)
        call_vars = None if variables is None else names + self.extra_channels
        return self.net(x, lead_hours=lead, variables=call_vars)

    def _extra(self, x: torch.Tensor, valid_time: Any, boundary: torch.Tensor | None) -> list[torch.Tensor]:
        """The channels after the state, in :func:`input_channels` order."""
        b, _, ny, nx = x.shape
        if self.needs_static and not self._static_ready:
            raise DataError(
                f"model {self.name!r} takes static inputs {list(self.static)} / insolation; give it its grid "
                "first with workbench.models.inputs.attach_inputs(model, data)"
            )
        if self.needs_static and tuple(self.lat_rad.shape) != (ny, nx):
            raise DataError(f"model {self.name!r} holds static fields of a {tuple(self.lat_rad.shape)} grid, "
                            f"the input is {(ny, nx)}")
        out = []
        times = [f for f in self.forcings if f != INSOLATION]
        if times:
            out.append(forcing_fields(times, valid_time, b, (ny, nx), device=x.device, dtype=x.dtype))
        if INSOLATION in self.forcings:
            if not isinstance(valid_time, torch.Tensor):
                valid_time = _hours(valid_time, b, x.device)
            hours = valid_time.to(device=x.device, dtype=torch.float64).reshape(-1)
            hours = hours.expand(b) if hours.numel() == 1 else hours
            out.append(toa_insolation(hours, self.lat_rad, self.lon_rad).to(x.dtype))
        if self.static:
            out.append(self.static_fields.to(x.dtype)[None].expand(b, -1, -1, -1))
        if self.boundary_variables:
            if boundary is None:
                raise DataError(
                    f"model {self.name!r} is conditioned on lateral boundaries {list(self.boundary_variables)}; "
                    "pass boundary= (a global analysis or driving forecast on its grid) to run_forecast"
                )
            if tuple(boundary.shape) != (b, len(self.boundary_variables), ny, nx):
                raise DataError(f"boundary has shape {tuple(boundary.shape)}, expected "
                                f"{(b, len(self.boundary_variables), ny, nx)}")
            strip = self.boundary_strip.to(x.dtype)
            normed = self.normalize(boundary.to(x.dtype), self.boundary_variables)
            out.append(normed * strip)
            out.append(strip[None, None].expand(b, 1, ny, nx))
        return out

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

    @property
    def boundary_variables(self) -> tuple[str, ...]:
        return self.model.boundary_variables

    def step(self, x: torch.Tensor, valid_time: Any = None, boundary: torch.Tensor | None = None) -> torch.Tensor:
        return self.model.step(x, valid_time=valid_time, lead_hours=self.hours, boundary=boundary)

    def torch_module(self) -> nn.Module:
        return self.model.torch_module()


def input_channels(config: dict) -> tuple[str, ...]:
    """Names of the channels a network reads after its state, in order: the uniform time forcings,
    ``toa_insolation``, the static fields, then the boundary fields and the strip mask."""
    for key in ("forcings", "static"):
        if not isinstance(config.get(key) or [], list | tuple):
            raise CheckpointError(f"config {key} must be a list of names, not {config.get(key)!r}")
    forcings = [str(f) for f in config.get("forcings") or ()]
    static = [str(s) for s in config.get("static") or ()]
    unknown = [s for s in static if s not in STATIC]
    if unknown:
        raise CheckpointError(f"unknown static inputs {unknown}; known: {list(STATIC)}")
    names = [f for f in forcings if f != INSOLATION] + [f for f in forcings if f == INSOLATION] + static
    bnd = config.get("boundary") or {}
    if not isinstance(bnd, dict) or not isinstance(bnd.get("variables", []), list | tuple):
        raise CheckpointError(f"config boundary must be a mapping with a list of variables, not {bnd!r}")
    bvars = [str(v) for v in bnd.get("variables", ())]
    if bvars:
        if not isinstance(bnd.get("width"), int) or bnd["width"] < 1:
            raise CheckpointError(f"config boundary width must be a positive number of cells, not {bnd.get('width')!r}")
        if not set(bvars) <= set(config.get("variables") or ()):
            raise CheckpointError(f"config boundary variables {bvars} must be among the model's variables")
        names += [f"boundary_{v}" for v in bvars] + ["boundary_mask"]
    return tuple(names)


def _hours(valid_time: Any, batch: int, device) -> torch.Tensor:
    if valid_time is None:
        raise DataError("this model takes insolation at the valid time of its input; pass valid_time= to step()")
    stamps = pd.DatetimeIndex(pd.to_datetime(np.atleast_1d(np.asarray(valid_time))))
    hours = torch.as_tensor(stamps.asi8.astype(np.float64) / 3.6e12, device=device, dtype=torch.float64)
    return hours.expand(batch) if hours.numel() == 1 else hours
