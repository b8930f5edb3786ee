"""``run_forecast``: the one entry point that turns a model, initial data and times into a forecast.

Work is split into *blocks* of consecutive initial times (``batch_size`` of them). For a torch model a
block is one batch on the device (initial times x noise members; weight members one after another); for a
baseline it is one call of its ``forecast``. With a ``store`` each block is written atomically and
recorded as done (:mod:`workbench.inference.store`), on a writer thread so that the device computes the
next block while the host encodes and writes this one. Rerunning the same call resumes: finished blocks
are skipped.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr
from tqdm.auto import tqdm

from workbench.errors import DataError
from workbench.inference.device import resolve_device, resolve_precision
from workbench.inference.ensemble import EnsembleError, EnsembleSpec, as_spec
from workbench.inference.horizon import check_leads
from workbench.inference.runner import BaselineRunner, TorchRunner, is_torch_model, step_models, torch_module
from workbench.inference.store import (
    ForecastStore,
    StoreLayout,
    layout_dataset,
    open_forecast,
    source_fingerprint,
)

__all__ = ["run_forecast"]


def _as_init_times(values) -> pd.DatetimeIndex:
    from workbench.models.protocol import as_init_times

    return as_init_times(values)


def _as_lead_times(values) -> pd.TimedeltaIndex:
    from workbench.models.protocol import as_lead_times

    return as_lead_times(values)


def _spatial_dims(source: xr.Dataset) -> tuple[str, str]:
    from workbench.models.protocol import spatial_dims

    return tuple(spatial_dims(source))  # type: ignore[return-value]


def _model_name(model) -> str:
    return str(getattr(model, "name", None) or type(model).__name__)


def _catalog_store(models: Sequence) -> os.PathLike:
    """The catalog's store for the forecasts of ``models`` (one name, the registry name)."""
    from workbench.catalog import forecast_store_path

    names = sorted({_model_name(m) for m in models})
    if len(names) != 1:
        raise DataError(
            f"store=True names the store after the model, but these models have the names {names}; pass "
            "a store path, e.g. workbench.catalog.forecast_store_path('my-ensemble')"
        )
    return forecast_store_path(names[0])


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


def _initial_array(source: xr.Dataset, init_times: pd.DatetimeIndex, variables: Sequence[str]) -> np.ndarray:
    from workbench.models.protocol import select_initial

    sel = select_initial(source, init_times, variables)
    arr = np.stack([np.asarray(sel[v].values, dtype=np.float32) for v in variables], axis=1)
    if not np.isfinite(arr).all():
        bad = [v for i, v in enumerate(variables) if not np.isfinite(arr[:, i]).all()]
        raise DataError(f"initial conditions have NaN or infinite values in {bad}; fill or mask them first")
    return arr


def _block_arrays(buf: np.ndarray, variables: Sequence[str], layout: str) -> dict[str, np.ndarray]:
    """Host buffer ``(L, W, b, N, C, y, x)`` -> per variable ``(b, L[, members], y, x)``."""
    out = {}
    for c, v in enumerate(variables):
        arr = np.moveaxis(buf[:, :, :, :, c], 2, 0)  # (b, L, W, N, y, x)
        if layout == "none":
            arr = arr[:, :, 0, 0]
        elif layout == "member":
            arr = arr[:, :, 0]
        out[v] = arr  # a view: the store (or the in-memory array) copies it once, into its own layout
    return out


def run_forecast(
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
    store: str | os.PathLike | bool | None = None,
    overwrite: bool = False,
    hta: bool = True,
    single_step=None,
    progress: bool = True,
    callback: Callable[[int], Any] | None = None,
) -> xr.Dataset:
    """Forecast from the states of ``source`` at ``init_times`` for ``lead_times``.

    Parameters
    ----------
    model
        A model from :mod:`workbench.models`: a torch forecaster, an HTA family (Pangu-like), a baseline
        (persistence, climatology, nwp), or a list of torch forecasters (a deep ensemble, one weight
        member each).
    source
        Initial data: dims ``(time, y, x)`` (or lat-lon) with the model's variables.
    init_times
        Initial times (datetime-likes), each in ``source.time``.
    lead_times
        Lead times (timedelta-likes, or numbers meaning hours).
    members
        ``None``: deterministic. An int ``n``: ``n`` perturbed initial conditions on a ``member`` dim.
        ``(w, n)`` or an :class:`EnsembleSpec`: ``w`` weight members (MC dropout, or one per model of a
        deep ensemble) times ``n`` noise members, on dims ``weight_member`` x ``noise_member``.
    device
        ``"auto"`` (GPU if present), ``"cpu"`` or ``"cuda[:N]"``.
    dtype
        ``"auto"`` (default: bf16 autocast on a GPU, fp32 on a CPU), ``"bf16"`` (autocast, CPU
        included) or ``"fp32"``. The resolved precision is recorded in a store's signature.
    compile
        ``torch.compile`` the step functions (True, or a mode such as ``"max-autotune"``).
    batch_size
        Initial times per block (per device batch and per atomic write). Default 8.
    store
        Zarr store to write (and resume). ``True``: the catalog's store of this model,
        :func:`workbench.catalog.forecast_store_path` of its name (``<cache>/forecasts/<name>.zarr``),
        which ``open_catalog()["forecasts"](model=name)`` reads. Without it (``None`` or ``False``) the
        forecast is returned in memory.
    overwrite
        Replace an existing store instead of resuming it.
    hta
        Hierarchical temporal aggregation for families of several step sizes; False rolls out with one
        step size (``single_step``, by default the smallest).
    progress
        Show a tqdm progress bar.
    callback
        Called with the block index after each block is written (e.g. to report progress elsewhere).

    Returns
    -------
    xarray.Dataset
        Dims ``(init_time, lead_time[, member | weight_member, noise_member], y, x)`` with coordinate
        ``valid_time``; lazily opened from the store when one is given.
    """
    models = list(model) if isinstance(model, (list, tuple)) else [model]
    if not models:
        raise DataError("no model given")
    inits = _as_init_times(init_times)
    leads = _as_lead_times(lead_times)
    spec, member_layout = as_spec(members)
    if store is True:
        store = _catalog_store(models)
    elif store is False:
        store = None
    dev = resolve_device(device)
    dtype = resolve_precision(dtype, dev)
    if batch_size is None:
        batch_size = 8
    if batch_size < 1:
        raise DataError(f"batch_size must be at least 1, got {batch_size}")
    torch_path = is_torch_model(models[0])
    if torch_path:
        if len(models) > 1 and spec is None:
            spec, member_layout = EnsembleSpec(weight_members=len(models), noise_scale=0.0), "split"
        runner: TorchRunner | BaselineRunner = TorchRunner(
            models, spec, leads, device=dev, dtype=dtype, compile=compile, hta=hta, single_step=single_step
        )
        n_weight = runner.n_weight
        weights = _weights_digest(models)
        check_leads(models, leads.values)
    else:
        if len(models) > 1 or spec is not None:
            raise EnsembleError(
                f"{_model_name(models[0])} is a baseline; ensembles need a torch model (members=None here)"
            )
        runner = BaselineRunner(models[0], leads, source)
        n_weight = 1
        weights = repr(getattr(models[0], "config", None))
    variables = runner.variables
    sdims = _spatial_dims(source)
    spatial: dict[str, Any] = {d: (d, np.asarray(source[d].values)) for d in sdims if d in source.coords}
    for d in sdims:
        spatial.setdefault(d, (d, np.arange(source.sizes[d])))
    for name, coord in source.coords.items():
        if name not in spatial and coord.dims and set(coord.dims) <= set(sdims):
            spatial[name] = (coord.dims, np.asarray(coord.values), dict(coord.attrs))
    attrs = {
        v: {k: a for k, a in source[v].attrs.items() if k in ("units", "long_name")}
        for v in variables
        if v in source
    }
    layout = StoreLayout(
        variables=tuple(variables),
        init_times=np.asarray(inits.values, dtype="datetime64[ns]"),
        lead_times=np.asarray(leads.values, dtype="timedelta64[ns]"),
        member_dims=_member_dims(spec, member_layout, n_weight),
        spatial=spatial,
        block_size=int(batch_size),
        attrs=attrs,
        spatial_dims=sdims,
    )
    signature = {
        "model": [_model_name(m) for m in models],
        "weights": weights,
        "variables": list(variables),
        "init_times": [str(t) for t in layout.init_times],
        "lead_times": [str(pd.Timedelta(t)) for t in layout.lead_times],
        "members": {"layout": member_layout, **(spec.signature() if spec else {})},
        "dtype": dtype,
        "hta": bool(hta),
        "single_step": None if single_step is None else str(pd.Timedelta(single_step)),
        "block_size": int(batch_size),
    }
    if store:
        # The input is part of the run: resuming on changed initial data would mix two forecasts.
        signature["source"] = source_fingerprint(source, layout.init_times, variables)

    fstore = ForecastStore.open_or_create(store, layout, signature, overwrite=overwrite) if store else None
    done = fstore.done_blocks() if fstore else set()
    memory: dict[str, np.ndarray] | None = None
    if fstore is None:
        shape = (len(inits), len(leads), *layout.member_dims.values(), *layout.grid_shape)
        memory = {v: np.full(shape, np.nan, dtype=np.float32) for v in variables}

    def commit(block: int, data: dict[str, np.ndarray]) -> None:
        if fstore is not None:
            fstore.write_block(block, data)
        else:
            for v, arr in data.items():
                memory[v][layout.block_slice(block)] = arr

    todo = [k for k in range(layout.n_blocks) if k not in done]
    bar = tqdm(
        total=layout.n_blocks,
        initial=len(done),
        disable=not progress,
        unit="block",
        desc=f"{'+'.join(sorted({_model_name(m) for m in models}))} forecast",
    )
    # Two host buffers: the device fills one while the writer thread drains the other.
    buffers: list[torch.Tensor | None] = [None, None]
    pending: list[tuple[int, Future]] = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="forecast-writer") as writer:

        def settle(limit: int) -> None:
            while len(pending) > limit:
                k, fut = pending.pop(0)
                fut.result()  # re-raises a writer error here, in the caller's thread
                bar.update(1)
                if callback is not None:
                    callback(k)

        try:
            for i, k in enumerate(todo):
                sl = layout.block_slice(k)
                block_inits = inits[sl]
                if isinstance(runner, TorchRunner):
                    initial = _initial_array(source, block_inits, variables)
                    real = len(block_inits)
                    if compile and real < batch_size:
                        # Pad the last block to the compiled batch shape instead of recompiling.
                        pad = batch_size - real
                        initial = np.concatenate([initial, np.repeat(initial[-1:], pad, axis=0)])
                        block_inits = block_inits.append(pd.DatetimeIndex([block_inits[-1]] * pad))
                    settle(1)  # the buffer about to be refilled must be written out first
                    buf, event = runner.run_block(list(block_inits.values), initial, buffers[i % 2])
                    buffers[i % 2] = buf

                    def drain(k=k, buf=buf, event=event, real=real):
                        event.synchronize()
                        data = _block_arrays(buf.numpy()[:, :, :real], variables, member_layout)
                        commit(k, data)

                    pending.append((k, writer.submit(drain)))
                else:
                    data = runner.run_block(list(block_inits.values), source)
                    shaped = {v: data[v] for v in variables}
                    pending.append((k, writer.submit(commit, k, shaped)))
                    settle(1)
            settle(0)
        finally:
            # Let the writes already handed over finish (each is atomic anyway), then stop.
            for _, fut in pending:
                fut.exception()
            bar.close()
            if fstore is not None and sys.exc_info()[0] is not None:
                fstore.release()  # a failed run frees the store for the next attempt at once
    if fstore is not None:
        fstore.finish()
        return open_forecast(fstore.path)
    ds = layout_dataset(layout, memory)
    ds.attrs["model"] = "+".join(_model_name(m) for m in models)
    return ds
