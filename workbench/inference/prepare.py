"""Preparing a forecast run: arguments read and checked, the runner chosen, the layout and signature fixed.

:func:`prepare` does everything :func:`~workbench.inference.run_forecast` needs before the first block:
it reads the times, the ensemble and the device settings, picks the :class:`~workbench.inference.runner.Runner`
for the kind of model (a network rolled out on the device, or a model that forecasts by itself), lays out
the output (:class:`~workbench.inference.store.StoreLayout`) and writes the run signature that a zarr
store keeps so that it is never resumed by a different run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr

from workbench.errors import DataError
from workbench.inference.device import resolve_device, resolve_precision
from workbench.inference.ensemble import EnsembleError, EnsembleSpec, as_spec
from workbench.inference.horizon import check_leads
from workbench.inference.members import PerturbedRunner, is_perturbable
from workbench.inference.runner import BaselineRunner, Block, Runner, TorchRunner
from workbench.inference.store import StoreLayout
from workbench.models.inputs import as_boundary, attach_inputs
from workbench.models.protocol import (
    as_init_times,
    as_lead_times,
    is_stepped,
    spatial_dims,
    step_models,
    torch_module,
)

__all__ = ["PreparedRun", "prepare"]


@dataclass(frozen=True)
class PreparedRun:
    """A forecast ready to run: its runner, the output layout and the run signature."""

    runner: Runner
    layout: StoreLayout
    signature: dict[str, Any]
    init_times: pd.DatetimeIndex
    label: str

    def blocks(self, source: xr.Dataset, skip: set[int]) -> list[Block]:
        """The blocks still to forecast (those not in ``skip``), in order: initial times first, then
        member parts (:attr:`~workbench.inference.store.StoreLayout.member_batch`)."""
        whole = self.layout.member_batch is None
        return [
            Block(k, self.init_times[self.layout.block_slice(k)], source,
                  *((None, None) if whole else self.layout.block_members(k)))
            for k in range(self.layout.n_blocks)
            if k not in skip
        ]


def _model_name(model) -> str:
    return str(getattr(model, "name", None) or type(model).__name__)


def _weights_digest(models: Sequence) -> str:
    """A short hash of every parameter of every model, so a store is never resumed with other weights."""
    h = hashlib.sha256()
    for model in models:
        for dt, m in sorted(step_models(model).items()):
            h.update(str(dt).encode())
            for key, tensor in sorted(torch_module(m).state_dict().items()):
                h.update(key.encode())
                h.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _member_dims(spec: EnsembleSpec | None, layout: str, n_weight: int) -> dict[str, int]:
    if layout == "none":
        return {}
    if layout == "member":
        return {"member": spec.noise_members}
    return {"weight_member": n_weight, "noise_member": spec.noise_members}


def _check_member_batch(member_batch: Any, member_dims: dict[str, int]) -> int | None:
    """``member_batch`` checked against the run's members (see :attr:`StoreLayout.member_batch`)."""
    if member_batch is None:
        return None
    if isinstance(member_batch, bool) or not isinstance(member_batch, (int, np.integer)):
        raise DataError(f"member_batch must be a whole number of noise members, got {member_batch!r}")
    if not member_dims:
        raise DataError("member_batch splits the members of an ensemble; this run has none (members=None)")
    n_noise = member_dims.get("noise_member", member_dims.get("member", 1))
    if not 1 <= member_batch <= n_noise:
        raise DataError(f"member_batch must be between 1 and the {n_noise} noise members, got {member_batch}")
    return int(member_batch)


def _layout(source, runner, inits, leads, member_dims, batch_size, member_batch=None) -> StoreLayout:
    sdims = tuple(spatial_dims(source))
    spatial: dict[str, Any] = {d: (d, np.asarray(source[d].values)) for d in sdims if d in source.coords}
    for d in sdims:
        spatial.setdefault(d, (d, np.arange(source.sizes[d])))
    for name, coord in source.coords.items():
        if name not in spatial and coord.dims and set(coord.dims) <= set(sdims):
            spatial[name] = (coord.dims, np.asarray(coord.values), dict(coord.attrs))
    attrs = {
        v: {k: a for k, a in source[v].attrs.items() if k in ("units", "long_name")}
        for v in runner.variables
        if v in source
    }
    return StoreLayout(
        variables=tuple(runner.variables),
        init_times=np.asarray(inits.values, dtype="datetime64[ns]"),
        lead_times=np.asarray(leads.values, dtype="timedelta64[ns]"),
        member_dims=member_dims,
        spatial=spatial,
        block_size=int(batch_size),
        attrs=attrs,
        spatial_dims=sdims,
        member_batch=member_batch,
    )


def prepare(
    model,
    source: xr.Dataset,
    init_times,
    lead_times,
    *,
    members: None | int | tuple[int, int] | EnsembleSpec = None,
    device: str | torch.device = "auto",
    dtype: str = "auto",
    compile: bool | str = False,
    batch_size: int | None = None,
    hta: bool = True,
    single_step=None,
    boundary=None,
    member_batch: int | None = None,
) -> PreparedRun:
    """Read and check the arguments of :func:`~workbench.inference.run_forecast` and set the run up.

    The parameters are those of :func:`~workbench.inference.run_forecast` (less the sink and progress
    reporting).

    Raises
    ------
    DataError
        On unreadable times, a ``batch_size`` below 1, or models that disagree.
    EnsembleError
        On an ensemble a model cannot make (a baseline, or members that disagree).
    DataError
        On a ``member_batch`` without members, or outside 1 .. noise members.
    """
    models = list(model) if isinstance(model, (list, tuple)) else [model]
    if not models:
        raise DataError("no model given")
    inits, leads = as_init_times(init_times), as_lead_times(lead_times)
    spec, member_layout = as_spec(members)
    dev = resolve_device(device)
    dtype = resolve_precision(dtype, dev, models)
    batch_size = 8 if batch_size is None else batch_size
    if batch_size < 1:
        raise DataError(f"batch_size must be at least 1, got {batch_size}")
    runner: Runner
    bnd = as_boundary(boundary)
    if is_stepped(models[0]):
        # static fields and insolation come from the data's grid: the same function feeds training
        attach_inputs(models, source)
        if len(models) > 1 and spec is None:
            spec, member_layout = EnsembleSpec(weight_members=len(models), noise_scale=0.0), "split"
        runner = TorchRunner(
            models, spec, leads, device=dev, dtype=dtype, compile=compile, hta=hta, single_step=single_step,
            member_layout=member_layout, batch_size=batch_size, boundary=bnd,
        )
        n_weight, weights = runner.n_weight, _weights_digest(models)
        check_leads(models, leads.values)
    else:
        if len(models) > 1 or (spec is not None and not is_perturbable(models[0])):
            raise EnsembleError(
                f"{_model_name(models[0])} is a baseline; ensembles need a torch model (members=None here)"
            )
        if spec is None:
            runner = BaselineRunner(models[0], leads, source)
        else:  # a model that forecasts by itself from perturbed starts (an Earth2Studio model)
            runner = PerturbedRunner(models[0], leads, source, spec, member_layout)
        n_weight, weights = 1, repr(getattr(models[0], "config", None))
    member_dims = _member_dims(spec, member_layout, n_weight)
    member_batch = _check_member_batch(member_batch, member_dims)
    layout = _layout(source, runner, inits, leads, member_dims, batch_size, member_batch)
    signature = {
        "model": [_model_name(m) for m in models],
        "weights": weights,
        "variables": list(runner.variables),
        "init_times": [str(t) for t in layout.init_times],
        "lead_times": [str(pd.Timedelta(t)) for t in layout.lead_times],
        "members": {"layout": member_layout, **(spec.signature() if spec else {})},
        "dtype": dtype,
        "hta": bool(hta),
        "single_step": None if single_step is None else str(pd.Timedelta(single_step)),
        "block_size": int(batch_size),
        "boundary": None if bnd is None else bnd.kind,
    }
    if member_batch is not None:  # absent otherwise, so the stores written before it still resume
        signature["member_batch"] = member_batch
    label = "+".join(sorted({_model_name(m) for m in models}))
    return PreparedRun(runner, layout, signature, inits, label)
