"""``run_forecast``: the one entry point that turns a model, initial data and times into a forecast.

The run has three parts. :func:`~workbench.inference.prepare.prepare` reads the arguments, picks the
runner and fixes the output layout and run signature. A :class:`~workbench.inference.runner.Runner`
forecasts *blocks* of consecutive initial times (``batch_size`` of them): for a network one batch on the
device (initial times x noise members; weight members one after another), for a baseline one call of
its ``forecast``. A :class:`~workbench.inference.sinks.ForecastSink` keeps each block, on a writer thread
so that the device computes the next block while the host encodes and writes this one. A zarr sink
resumes: rerunning the same call skips the blocks already written.

With ``devices=N`` (or under ``torchrun``) the blocks are shared out over N processes, one per GPU,
which write one store together (:mod:`workbench.inference.distributed`). With ``member_batch`` a block
holds one weight member and a batch of noise members of its initial times, so the members of an
ensemble are shared out too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch
import xarray as xr
from tqdm.auto import tqdm

from workbench.errors import DataError
from workbench.inference import distributed
from workbench.inference.device import precision
from workbench.inference.ensemble import EnsembleSpec
from workbench.inference.prepare import PreparedRun, prepare
from workbench.inference.runner import Block, Runner
from workbench.inference.sinks import ForecastSink, MemorySink, ZarrSink
from workbench.inference.store import open_forecast

__all__ = ["run_forecast"]

#: Where this process's last run spent its time (seconds): ``wall``; ``wait`` (the writer waiting for
#: a block's result to reach the host), ``write`` (the sink keeping it), ``collective`` (waiting for the
#: other processes), and the device's ``compute``/``transfer`` (:meth:`TorchRunner.device_seconds`).
#: Filled at the end of :func:`run_forecast`, for benchmarks.
LAST_RUN: dict[str, float] = {}


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
    devices: int | None = None,
    boundary=None,
    member_batch: int | None = None,
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
        ``"auto"``/``"cpu"``/``"cuda[:N]"``; ``"auto"`` (fp32, or bf16 on a GPU for models declared
        accurate in it: :func:`~workbench.inference.device.resolve_precision`), ``"bf16"``, ``"fp32"``
        (TF32 off) or ``"tf32"``; ``torch.compile`` the steps (True or a mode name).
    batch_size
        Initial times per block (one device batch, one atomic write). Default 8.
    hta, single_step
        Hierarchical temporal aggregation over a family's steps, or (False) repeat ``single_step``.
    progress, callback
        A tqdm bar; a function called with each block's index once it is written.
    devices
        Processes to share the blocks among, one per GPU (``device`` "auto" or "cuda") or all on the
        CPU (``device="cpu"``, gloo). Several need a :class:`~workbench.inference.sinks.ZarrSink`, and
        the model, source and sink must pickle (each process is a fresh interpreter). Under ``torchrun``
        the group it started is used whatever this says. The forecast is the same as from one process.
    boundary
        For networks conditioned on lateral boundaries: the global analysis or driving forecast on the
        model grid (see :class:`workbench.models.inputs.BoundarySource`).
    member_batch
        Noise members per block, each block then holding one weight member: the members of an initial
        time become several blocks, which ``devices`` shares out like blocks of initial times (an
        ensemble of one initial time spreads over the processes). ``None`` (default): every member of
        a block's initial times in the block. It sets the device batch (``batch_size`` x
        ``member_batch``), so a run is bit-identical to another only with the same value.

    Returns
    -------
    xarray.Dataset
        Dims ``(init_time, lead_time[, member | weight_member, noise_member], y, x)`` with ``valid_time``.
    """
    LAST_RUN.clear()
    t_start = time.perf_counter()
    try:
        return _run_forecast(model, source, init_times, lead_times, sink, members, device, dtype, compile,
                             batch_size, hta, single_step, progress, callback, devices, boundary, member_batch)
    finally:
        LAST_RUN["wall"] = time.perf_counter() - t_start


def _run_forecast(model, source, init_times, lead_times, sink, members, device, dtype, compile, batch_size, hta,
                  single_step, progress, callback, devices, boundary=None, member_batch=None) -> xr.Dataset:
    if devices is not None and (isinstance(devices, bool) or not isinstance(devices, int) or devices < 1):
        raise DataError(f"devices must be a whole number of at least 1, got {devices!r}")
    kwargs = dict(members=members, device=device, dtype=dtype, compile=compile, batch_size=batch_size, hta=hta,
                  single_step=single_step, boundary=boundary, member_batch=member_batch)
    group = distributed.current_group(device)
    if group is None and devices is not None and devices > 1:
        if not isinstance(sink, ZarrSink):
            raise DataError(
                f"devices={devices} writes one zarr store from {devices} processes: pass sink=ZarrSink(path)"
            )
        distributed.launch(devices, _rank_main, model, source, init_times, lead_times, sink, kwargs)
        return open_forecast(sink.path)
    if group is not None:
        return _run_in_group(group, model, source, init_times, lead_times, sink, progress, callback, kwargs)
    run = prepare(model, source, init_times, lead_times, **kwargs)
    sink = MemorySink() if sink is None else sink
    done = sink.open(run.layout, run.signature, source)
    with tqdm(total=run.layout.n_blocks, initial=len(done), disable=not progress, unit="block",
              desc=f"{run.label} forecast") as bar, precision(run.signature["dtype"]):
        try:
            _drive(run.runner, run.blocks(source, done), sink, bar, callback)
        finally:
            _release(run.runner)
    return sink.close()


def _release(runner: Runner) -> None:
    """Hand a runner's pooled host buffers back (the sink has copied everything it keeps)."""
    device_seconds = getattr(runner, "device_seconds", None)
    if callable(device_seconds):
        LAST_RUN.update(device_seconds())
    release = getattr(runner, "release", None)
    if callable(release):
        release()


def _rank_main(model, source, init_times, lead_times, sink, kwargs) -> None:
    """One process of a group started by :func:`run_forecast`'s ``devices``."""
    group = distributed.current_group(kwargs["device"])
    _run_in_group(group, model, source, init_times, lead_times, sink, False, None, kwargs)


def _run_in_group(group, model, source, init_times, lead_times, sink, progress, callback, kwargs) -> xr.Dataset:
    """This process's share of a multi-process run (see :mod:`workbench.inference.distributed`).

    Rank 0 opens the store (lock, create or resume) and hands it to the others; every rank forecasts
    every ``world``-th block still to do; once all have reported, rank 0 finishes the store, or on any
    failure releases it for a resume, and every rank raises.
    """
    if not isinstance(sink, ZarrSink):
        raise DataError(f"a run on {group.world} processes writes one zarr store: pass sink=ZarrSink(path)")
    kwargs = {**kwargs, "device": distributed.device_for_rank(kwargs["device"], group)}
    run: PreparedRun | None = None
    failure: str | None = None
    opened: tuple[str, Any] = ("error", "")
    try:
        run = prepare(model, source, init_times, lead_times, **kwargs)
        if group.rank == 0:
            done = sink.open(run.layout, run.signature, source)
            opened = ("ok", (sorted(done), sink.handoff()))
    except Exception as err:
        failure = f"{type(err).__name__}: {err}"
        opened = ("error", failure)
    # Every process takes part in every collective, failed or not, so that none waits for ever.
    shared = group.broadcast(opened)
    if shared[0] != "ok":
        raise DataError(f"the forecast could not start on process 0: {shared[1]}")
    done_list, handoff = shared[1]
    if failure is None:
        try:
            if group.rank != 0:
                sink.join(run.layout, handoff)
            mine = distributed.shard(run.blocks(source, set(done_list)), group.rank, group.world)
            with tqdm(total=len(mine), disable=not progress or group.rank != 0, unit="block",
                      desc=f"{run.label} forecast (process 0 of {group.world})") as bar, \
                    precision(run.signature["dtype"]):
                try:
                    _drive(run.runner, mine, sink, bar, callback, abort=group.rank == 0)
                finally:
                    _release(run.runner)
        except Exception as err:
            failure = f"{type(err).__name__}: {err}"
    failures = group.gather(failure)
    bad = [(r, f) for r, f in enumerate(failures) if f is not None]
    if bad:
        if group.rank == 0:
            sink.abort()  # finished blocks stay for a resume
        r, f = bad[0]
        raise DataError(f"forecast process {r} of {group.world} failed: {f}; rerun the same call to resume")
    closed = None
    if group.rank == 0:
        try:
            sink.close()
        except Exception as err:
            closed = f"{type(err).__name__}: {err}"
            sink.abort()
    # The store is complete (and swapped in) before anyone opens it, or everyone learns why not.
    closed = group.broadcast(closed)
    if closed is not None:
        raise DataError(f"the forecast store could not be finished: {closed}")
    LAST_RUN["collective"] = group.waited
    return open_forecast(handoff["target"])


def _drive(runner: Runner, blocks: list[Block], sink: ForecastSink, bar, callback, abort: bool = True) -> None:
    """Run every block and hand it to the sink on one writer thread, at most two blocks in flight.

    On a failure the sink is aborted (its lock released) unless ``abort`` is False: in a multi-process
    run only the coordinator does that, once every process has stopped.
    """
    pending: list[tuple[int, Future]] = []
    clock = {"wait": 0.0, "write": 0.0}

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
                write = writer.submit(_timed_write, sink, block.index, result, clock)
                pending.append((block.index, write))
            settle(0)
        except BaseException:
            for _, fut in pending:
                fut.exception()
            if abort:
                sink.abort()  # a failed run frees a store for the next attempt at once
            raise
        finally:
            # Let the writes already handed over finish (each is atomic anyway), then stop.
            for _, fut in pending:
                fut.exception()
    LAST_RUN.update(clock)


def _timed_write(sink: ForecastSink, index: int, result, clock: dict[str, float]) -> None:
    t0 = time.perf_counter()
    data = result.arrays()  # waits for the device's copy
    t1 = time.perf_counter()
    sink.write(index, data)
    clock["wait"] += t1 - t0
    clock["write"] += time.perf_counter() - t1
