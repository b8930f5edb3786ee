"""``run_forecast``: the one entry point that turns a model, initial data and times into a forecast.

The run has three parts. :func:`~workbench.inference.prepare.prepare` reads the arguments, picks the
runner and fixes the output layout and run signature. A :class:`~workbench.inference.runner.Runner`
forecasts *blocks* of consecutive initial times (``batch_size`` of them): for a network one batch on the
device (initial times x noise members; weight members one after another), for a baseline one call of
its ``forecast``. A :class:`~workbench.inference.sinks.ForecastSink` keeps each block, on a writer thread
so that the device computes the next block while the host encodes and writes this one. A zarr sink
resumes: rerunning the same call skips the blocks already written.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch
import xarray as xr
from tqdm.auto import tqdm

from workbench.inference.ensemble import EnsembleSpec
from workbench.inference.prepare import prepare
from workbench.inference.runner import Block, Runner
from workbench.inference.sinks import ForecastSink, MemorySink

__all__ = ["run_forecast"]


def run_forecast(
    model,
    source: xr.Dataset,
    init_times,
    lead_times,
    *,
    sink: ForecastSink | None = None,
    members: None | int | tuple[int, int] | EnsembleSpec = None,
    device: str | torch.device = "auto",
    dtype: str = "auto",
    compile: bool | str = False,
    batch_size: int | None = None,
    hta: bool = True,
    single_step=None,
    progress: bool = True,
    callback: Callable[[int], Any] | None = None,
    boundary=None,
) -> xr.Dataset:
    """Forecast from the states of ``source`` at ``init_times`` for ``lead_times``.

    Parameters
    ----------
    model
        A model of :mod:`workbench.models` (a step forecaster, a step family, a baseline) or a list of
        step forecasters or families (a deep ensemble, one weight member each).
    source : xarray.Dataset
        Initial data, dims ``(time, y, x)`` (or lat-lon), with the model's variables.
    init_times, lead_times
        Initial times (datetime-likes, each in ``source.time``); lead times (timedelta-likes or hours).
    sink : ForecastSink, optional
        Where the forecast goes: :class:`~workbench.inference.sinks.ZarrSink` (a resumable store;
        ``ZarrSink.catalog(name)`` is the catalog's) or, by default, a
        :class:`~workbench.inference.sinks.MemorySink`.
    members
        ``None``: deterministic. ``n``: ``n`` perturbed initial conditions on a ``member`` dim. ``(w, n)``
        or an :class:`EnsembleSpec`: ``w`` weight members x ``n`` noise members.
    device, dtype, compile
        ``"auto"``/``"cpu"``/``"cuda[:N]"``; ``"auto"`` (bf16 on a GPU, fp32 on a CPU), ``"bf16"`` or
        ``"fp32"``; ``torch.compile`` the steps (True or a mode name).
    batch_size
        Initial times per block (one device batch, one atomic write). Default 8.
    hta, single_step
        Hierarchical temporal aggregation over a family's steps, or (False) repeat ``single_step``.
    progress, callback
        A tqdm bar; a function called with each block's index once it is written.
    boundary
        For networks conditioned on lateral boundaries: the global analysis or driving forecast on the
        model grid (see :class:`workbench.models.inputs.BoundarySource`).

    Returns
    -------
    xarray.Dataset
        Dims ``(init_time, lead_time[, member | weight_member, noise_member], y, x)`` with ``valid_time``.
    """
    run = prepare(model, source, init_times, lead_times, members=members, device=device, dtype=dtype,
                  compile=compile, batch_size=batch_size, hta=hta, single_step=single_step, boundary=boundary)
    sink = MemorySink() if sink is None else sink
    done = sink.open(run.layout, run.signature, source)
    with tqdm(total=run.layout.n_blocks, initial=len(done), disable=not progress, unit="block",
              desc=f"{run.label} forecast") as bar:
        _drive(run.runner, run.blocks(source, done), sink, bar, callback)
    return sink.close()


def _drive(runner: Runner, blocks: list[Block], sink: ForecastSink, bar, callback) -> None:
    """Run every block and hand it to the sink on one writer thread, at most two blocks in flight."""
    pending: list[tuple[int, Future]] = []

    def settle(limit: int) -> None:
        while len(pending) > limit:
            k, fut = pending.pop(0)
            fut.result()  # re-raises a writer error here, in the caller's thread
            bar.update(1)
            if callback is not None:
                callback(k)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="forecast-writer") as writer:
        try:
            for block in blocks:
                settle(1)  # a runner may reuse the memory of the block before last: that one is written
                result = runner.run_block(block)
                write = writer.submit(lambda k=block.index, r=result: sink.write(k, r.arrays()))
                pending.append((block.index, write))
            settle(0)
        except BaseException:
            for _, fut in pending:
                fut.exception()
            sink.abort()  # a failed run frees a store for the next attempt at once
            raise
        finally:
            # Let the writes already handed over finish (each is atomic anyway), then stop.
            for _, fut in pending:
                fut.exception()
