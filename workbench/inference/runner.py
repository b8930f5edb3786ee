"""Running one block of initial times through a model: torch networks on the device, baselines as is.

Every runner meets :class:`Runner`: ``run_block(block)`` takes a :class:`Block` (its index, initial times
and the source) and returns a :class:`BlockResult` whose ``arrays()`` the run loop's writer thread
hands to the forecast sink. :class:`TorchRunner` rolls stepped models out (the contract of
:mod:`workbench.models.protocol`); :class:`BaselineRunner` calls a model's own ``forecast``.

The torch path keeps every state on the device from the first copy of the initial conditions to the last
output: the plan (:mod:`workbench.inference.plan`) is replayed without host decisions or host
synchronisations (whether the steps of a family share a normalisation is decided once, at start), the
clock that drives the models' time forcings is a device tensor, and each output lead is written on the
device straight into the forecast's layout, per variable ``(init, lead, weight, noise, y, x)``. At the
end of a block one contiguous copy on a side stream moves it to a page-locked host buffer (pooled, see
:class:`~workbench.inference.device.PinnedPool`) while the device goes on with the next block; the host
waits once per block, in the writer, on an event recorded after that copy. The per-variable arrays the
sink receives are then contiguous slices of that buffer: nothing is reordered on the host.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd
import torch
import xarray as xr

from workbench.errors import DataError
from workbench.inference.device import PINNED, attention_backends, autocast, host_buffer, to_device
from workbench.inference.ensemble import EnsembleError, EnsembleSpec, check_mc_dropout, mc_dropout
from workbench.inference.model_error import ar1_coefficient, centred, step_noise
from workbench.inference.perturb import amplitudes, perturbations
from workbench.inference.plan import Op, make_plan
from workbench.models.protocol import select_initial, step_models, torch_module

HOUR = pd.Timedelta(hours=1)


# --------------------------------------------------------------------------------------------------
# The runner contract
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Block:
    """One unit of work: a run of consecutive initial times, forecast together and written together.

    Attributes
    ----------
    index : int
        The block's number in the forecast's layout.
    init_times : pandas.DatetimeIndex
        Its initial times.
    source : xarray.Dataset
        The initial data (dims ``(time, <spatial dims>)``).
    weights, noise : slice, optional
        The weight and noise members to forecast (``None``: all of them; see
        :attr:`~workbench.inference.store.StoreLayout.member_batch`).
    """

    index: int
    init_times: pd.DatetimeIndex
    source: xr.Dataset
    weights: slice | None = None
    noise: slice | None = None


class BlockResult(Protocol):
    """A block's forecast, possibly still being copied off the device."""

    def arrays(self) -> dict[str, np.ndarray]:
        """Per variable ``(b, lead[, members], y, x)``; waits for the device first if need be. Called on
        the run loop's writer thread."""
        ...


@runtime_checkable
class Runner(Protocol):
    """Turns blocks of initial times into forecasts; one per kind of model.

    Attributes
    ----------
    variables : tuple of str
        What it forecasts, in the order of the output.
    model_calls : int
        Model calls made so far (steps of a network, ``forecast`` calls of a baseline).

    A runner may reuse the memory of the result before last: the run loop finishes writing block
    ``k - 2`` before it asks for block ``k``.
    """

    variables: tuple[str, ...]
    model_calls: int

    def run_block(self, block: Block) -> BlockResult:
        """Forecast one block."""
        ...


@dataclass(frozen=True)
class _Ready:
    """A result already on the host."""

    data: dict[str, np.ndarray]

    def arrays(self) -> dict[str, np.ndarray]:
        return self.data


def _takes_valid_time(fn) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "valid_time" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


@dataclass
class _Stepper:
    """One step model prepared for the device: its step function and its normalisation tensors."""

    model: object
    step: object
    takes_time: bool
    boundary: tuple[str, ...]
    mean: torch.Tensor
    std: torch.Tensor
    compiled: bool = False
    warm: bool = False
    same: bool = True  # normalised like the family's reference step (decided once, not per call)


def _norm_tensors(model, variables: Sequence[str], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation of ``variables`` from the model's ``normalization`` (the contract's)."""
    tensors = getattr(getattr(model, "normalization", None), "tensors", None)
    if not callable(tensors):
        raise DataError(
            f"{type(model).__name__}.normalization has no tensors(variables, device=...); a step forecaster "
            "declares its statistics that way (see workbench.models.protocol.StepForecaster)"
        )
    mean, std = tensors(list(variables), device=device)
    return mean.float(), std.float()


# --------------------------------------------------------------------------------------------------
# Torch runner
# --------------------------------------------------------------------------------------------------
class TorchRunner:
    """Rolls a torch model (or an HTA family, or a deep ensemble of either) out for blocks of inits.

    Parameters
    ----------
    models
        One model (MC dropout draws the weight members) or several (a deep ensemble: one per weight
        member). Each is a torch forecaster or an HTA family of them.
    spec
        Ensemble spec, or ``None`` for a deterministic forecast.
    lead_times
        Leads to produce.
    device, dtype
        Where and in what precision (``"bf16"`` autocast or ``"fp32"``).
    compile
        ``False``, ``True`` (default mode) or a ``torch.compile`` mode name.
    hta
        Hierarchical temporal aggregation (True) or a single-step rollout (False).
    single_step
        The step to repeat when ``hta`` is False.
    member_layout
        How the members are laid out in the output: ``"none"``, ``"member"`` or ``"split"`` (see
        :func:`workbench.inference.ensemble.as_spec`).
    batch_size
        Initial times per block; with ``compile`` a shorter last block is padded to it, so the compiled
        step functions keep one shape.
    """

    def __init__(
        self,
        models: Sequence,
        spec: EnsembleSpec | None,
        lead_times: pd.TimedeltaIndex,
        *,
        device: torch.device,
        dtype: str,
        compile: bool | str = False,
        hta: bool = True,
        single_step=None,
        member_layout: str = "none",
        batch_size: int = 8,
        boundary=None,
    ):
        self.member_layout = member_layout
        self.boundary = boundary
        self.pad_to = int(batch_size) if compile else 0
        # Two slots of (device output, host output, pooled host base, input staging): the device fills
        # one while the writer thread drains the other.
        self._slots: list[dict] = [{}, {}]
        self._copy_stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        # (start, steps done, copy done) CUDA events per block, for :meth:`device_seconds`; recording
        # an event costs no synchronisation.
        self._events: list[tuple] = []
        self._blocks_run = 0
        self.device = device
        self.dtype = dtype
        self.spec = spec
        self.lead_times = lead_times
        families = [step_models(m) for m in models]
        first = families[0]
        self.variables = tuple(_variables(next(iter(first.values()))))
        for fam in families:
            if set(fam) != set(first):
                raise EnsembleError("every model of a deep ensemble must have the same time steps")
            for m in fam.values():
                if tuple(_variables(m)) != self.variables:
                    raise DataError(
                        f"models disagree on their variables: {tuple(_variables(m))} vs {self.variables}; an "
                        "HTA family or ensemble must forecast the same variables in the same order"
                    )
        self.input_variables = tuple(getattr(next(iter(first.values())), "input_variables", self.variables))
        missing = set(self.input_variables) - set(self.variables)
        if missing:
            raise DataError(
                f"the model needs inputs {sorted(missing)} that it does not forecast, so it cannot be rolled out"
            )
        self.plan: list[Op] = make_plan(lead_times, list(first), hta=hta, single_step=single_step)
        used = {op.dt for op in self.plan if op.kind == "step"}
        self.n_weight = len(models) if len(models) > 1 else ((spec.weight_members or 1) if spec else 1)
        if len(models) > 1 and spec is not None and spec.weight_members not in (None, len(models)):
            raise EnsembleError(
                f"a deep ensemble of {len(models)} models gives {len(models)} weight members, but "
                f"weight_members={spec.weight_members} was asked for"
            )
        self.mc_dropout = len(models) == 1 and self.n_weight > 1
        if self.mc_dropout:  # refuse before a store is created, not at the first block
            for dt, m in first.items():
                if dt in used:
                    check_mc_dropout(torch_module(m), spec.dropout, name=getattr(m, "name", None))
        self.n_noise = spec.noise_members if spec else 1
        self.families: list[dict[pd.Timedelta, _Stepper]] = []
        for fam in families:
            prepared = {}
            for dt, m in fam.items():
                if dt not in used:
                    continue
                module = torch_module(m)
                module.to(device).eval()
                step = m.step
                if compile:
                    mode = None if compile is True else str(compile)
                    step = torch.compile(step, mode=mode, dynamic=False)
                mean, std = _norm_tensors(m, self.variables, device)
                bvars = tuple(getattr(m, "boundary_variables", ()) or ())
                if bvars and boundary is None:
                    raise DataError(
                        f"{getattr(m, 'name', type(m).__name__)} is conditioned on lateral boundaries {list(bvars)}; "
                        "pass boundary= (the global analysis or the driving forecast on its grid)"
                    )
                prepared[dt] = _Stepper(m, step, _takes_valid_time(m.step), bvars, mean, std, compiled=bool(compile))
            self.families.append(prepared)
        ref = next(iter(self.families[0].values()))
        self.mean, self.std = ref.mean, ref.std
        for fam in self.families:
            for st in fam.values():
                # One comparison here instead of a host synchronisation at every step of every block.
                st.same = st.mean is self.mean or (torch.equal(st.mean, self.mean) and torch.equal(st.std, self.std))
        self.model_calls = 0

    # ------------------------------------------------------------------------------------------
    def out_shape(self, b: int, ny: int, nx: int, n_weight: int | None = None,
                  n_noise: int | None = None) -> tuple[int, ...]:
        """Layout of a block's output: ``(channel, init, lead, weight, noise, y, x)`` (every member, or
        ``n_weight`` x ``n_noise`` of them).

        Channel by channel it is the forecast's own layout, so the sink gets contiguous arrays.
        """
        n_weight = self.n_weight if n_weight is None else n_weight
        n_noise = self.n_noise if n_noise is None else n_noise
        return (len(self.variables), b, len(self.lead_times), n_weight, n_noise, ny, nx)

    def run_block(self, block: Block) -> BlockResult:
        """Forecast one block on the device; the result is copied to a host buffer asynchronously."""
        inits = block.init_times
        initial = _initial_array(block.source, inits, self.variables)
        real = len(inits)
        if real < self.pad_to:
            # Pad the last block to the compiled batch shape instead of recompiling.
            pad = self.pad_to - real
            initial = np.concatenate([initial, np.repeat(initial[-1:], pad, axis=0)])
            inits = inits.append(pd.DatetimeIndex([inits[-1]] * pad))
        slot = self._slots[self._blocks_run % 2]
        self._blocks_run += 1
        buf, event = self._forecast_block(list(inits.values), initial, slot, block.weights, block.noise)
        return _Pending(buf, event, real, self.variables, self.member_layout)

    def release(self) -> None:
        """Give the page-locked buffers back to the process's pool (the run is over)."""
        for slot in self._slots:
            for key in ("base", "staging"):
                if slot.get(key) is not None:
                    PINNED.put(slot[key])
            slot.clear()

    def _buffers_for(self, slot: dict, shape: tuple[int, ...], n_in: int) -> None:
        if slot.get("shape") == shape and slot.get("n_in", -1) >= n_in:
            return
        for key in ("base", "staging"):
            if slot.get(key) is not None:
                PINNED.put(slot[key])
        slot.clear()
        slot["host"], slot["base"] = host_buffer(shape, self.device)
        if self.device.type == "cuda":
            slot["out"] = torch.empty(shape, dtype=torch.float32, device=self.device)
            slot["staging"] = PINNED.take(n_in)
        else:
            slot["out"] = slot["host"]  # on a CPU the steps write straight into the host buffer
        slot["shape"], slot["n_in"] = shape, n_in

    def _forecast_block(
        self,
        init_times: Sequence[np.datetime64],
        initial: np.ndarray,
        slot: dict | None = None,
        weights: slice | None = None,
        noise: slice | None = None,
    ) -> tuple[torch.Tensor, object]:
        """Forecast one block into a host buffer.

        Parameters
        ----------
        init_times
            The block's initial times.
        initial
            ``(b, C, ny, nx)`` initial states in physical units, channels in :attr:`variables` order.
        slot
            The buffers to use (a dict the runner keeps; fresh ones when None).
        weights, noise
            The members to forecast (default: all). Each weight member is the same computation
            whichever others run beside it, and each noise member's perturbation is drawn from its own
            seed, so a part of the members gives exactly those members of the whole ensemble.

        Returns
        -------
        (buffer, event)
            The host buffer ``(C, b, L, W, N, ny, nx)`` and an object with ``synchronize()`` that
            returns once the copy into it has landed.
        """
        slot = {} if slot is None else slot
        b = len(init_times)
        ny, nx = initial.shape[-2:]
        wr = range(self.n_weight)[weights or slice(None)]
        nr = range(self.n_noise)[noise or slice(None)]
        if not wr or not nr:
            raise DataError(f"no members in weights {weights} x noise {noise} of {self.n_weight} x {self.n_noise}")
        self._buffers_for(slot, self.out_shape(b, ny, nx, len(wr), len(nr)), initial.size)
        out = slot["out"]
        c = len(self.variables)
        n = len(nr)
        if self.device.type == "cuda":
            start = torch.cuda.Event(enable_timing=True)
            start.record()
        with torch.inference_mode():
            x = to_device(initial, self.device, slot.get("staging"))
            xn = (x - self.mean) / self.std
            amp = amplitudes(self.variables, self.spec.noise_scale) if self.spec is not None else None
            if amp is not None and (amp != 0).any():
                # Centring needs every noise member (the mean of all perturbed starts is the analysis),
                # so a block holding a part of them draws all and keeps its own: the same numbers whatever
                # the split.
                centre = bool(self.spec.centred) and self.n_noise > 1
                noise = perturbations(
                    [np.datetime64(t) for t in init_times],
                    self.n_noise if centre else n,
                    (c, ny, nx),
                    scale=amp,
                    length_scale=self.spec.length_scale,
                    seed=self.spec.seed,
                    device=self.device,
                    first_member=0 if centre else nr.start,
                )
                if centre:
                    noise = (noise - noise.mean(dim=1, keepdim=True))[:, nr.start:nr.stop]
                xn = (xn[:, None] + noise).reshape(b * n, c, ny, nx)
            elif n > 1:
                xn = xn.repeat_interleave(n, dim=0)
            seconds = np.asarray(pd.DatetimeIndex(init_times).values.astype("datetime64[s]"), dtype=np.int64)
            hours0 = torch.as_tensor(seconds / 3600.0, device=self.device).repeat_interleave(n)
            innovations: dict[int, torch.Tensor] = {}  # model-error draws, shared by the weight members
            for slot_w, w in enumerate(wr):
                family = self.families[w] if len(self.families) > 1 else self.families[0]
                with contextlib.ExitStack() as stack:
                    if self.mc_dropout:
                        # Once per network: the steppers of a lead-conditioned family share one.
                        modules = {id(m): m for m in (torch_module(st.model) for st in family.values())}
                        for module in modules.values():
                            stack.enter_context(mc_dropout(module, w, seed=self.spec.seed, p=self.spec.dropout))
                    self._replay(family, xn, hours0, out, slot_w, b, n, init_times, innovations, nr)
        if self.device.type != "cuda":
            return slot["host"], _Done()
        # One contiguous copy per block, on a side stream, so the next block's steps overlap it.
        stream = self._copy_stream
        steps_done = torch.cuda.Event(enable_timing=True)
        steps_done.record()
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            slot["host"].copy_(out, non_blocking=True)
            event = torch.cuda.Event(enable_timing=True)
            event.record(stream)
        self._events.append((start, steps_done, event))
        return slot["host"], event

    def device_seconds(self) -> dict[str, float]:
        """Device time of the blocks run so far: ``compute`` (input copy and steps) and ``transfer``
        (the copy of the outputs to the host, which overlaps the next block's steps). Waits for the
        device; zeros on a CPU."""
        compute = transfer = 0.0
        for start, steps_done, copied in self._events:
            copied.synchronize()
            compute += start.elapsed_time(steps_done) / 1e3
            transfer += steps_done.elapsed_time(copied) / 1e3
        return {"compute": compute, "transfer": transfer}

    def _boundary(self, stepper: _Stepper, init_times, valid_offset: pd.Timedelta, n: int) -> torch.Tensor | None:
        """The boundary fields at each member's output valid time, ``(b * n, K, ny, nx)``, physical."""
        if not stepper.boundary:
            return None
        valid = [np.datetime64(pd.Timestamp(t) + valid_offset) for t in init_times]
        fields = self.boundary.fields(init_times, valid, stepper.boundary)
        return to_device(fields, self.device).repeat_interleave(n, dim=0)

    def _model_error(self, op, y, eta, init_times, innovations, nr: range | None = None) -> torch.Tensor:
        """``y`` plus this step's stochastic model error (AR(1) in the steps of one path); see
        :mod:`workbench.inference.model_error`."""
        me = self.spec.model_error if self.spec is not None else None
        dt_h = op.dt / HOUR
        amp = me.amplitudes(dt_h, self.variables) if me is not None else None
        if amp is None:
            return y
        end_s = int(sum(op.dst, pd.Timedelta(0)).total_seconds())
        if end_s not in innovations:
            # Every noise member is drawn and centred, then the block keeps its part (``nr``), so the
            # numbers do not depend on how the members are split over blocks or processes.
            xi = step_noise([np.datetime64(t) for t in init_times], self.n_noise, tuple(y.shape[1:]),
                            end_s, length_scale=me.length_scale, seed=self.spec.seed, device=y.device)
            xi = centred(xi, self.n_noise)  # spread, not noise in the mean
            if nr is not None and len(nr) != self.n_noise:
                xi = xi.view(len(init_times), self.n_noise, *xi.shape[1:])[:, nr.start:nr.stop]
                xi = xi.reshape(-1, *xi.shape[2:])
            innovations[end_s] = xi
        xi = innovations[end_s]
        phi = ar1_coefficient(dt_h, me.time_scale_h)
        prev = eta.get(op.src)
        eta[op.dst] = xi if prev is None or phi == 0 else phi * prev + float(np.sqrt(1 - phi**2)) * xi
        return y + torch.as_tensor(amp, device=y.device)[:, None, None] * eta[op.dst]

    def _replay(self, family, xn, hours0, out, w, b, n, init_times=(), innovations=None, nr=None) -> None:
        states: dict[tuple, torch.Tensor] = {(): xn}
        eta: dict[tuple, torch.Tensor] = {}  # model-error noise state per path
        innovations = {} if innovations is None else innovations
        bcache: dict[tuple, torch.Tensor | None] = {}
        c = len(self.variables)
        for op in self.plan:
            if op.kind == "step":
                stepper = family[op.dt]
                x = states[op.src]
                if stepper.compiled and not stepper.warm:
                    # An eager call fills the network's host-built caches (window masks) before the
                    # compiled function is traced, so that their construction is not compiled.
                    kwargs = {"valid_time": hours0[:1]} if stepper.takes_time else {}
                    stepper.model.step(x[:1], **kwargs)
                    stepper.warm = True
                same = stepper.same
                if not same:  # models of one family normalised differently: map between their spaces
                    x = (x * self.std + self.mean - stepper.mean) / stepper.std
                offset = sum(op.src, pd.Timedelta(0)) / HOUR
                with autocast(self.device, self.dtype), attention_backends(self.device):
                    kwargs = {"valid_time": hours0 + offset} if stepper.takes_time else {}
                    if stepper.boundary:
                        key = (op.dst, stepper.boundary)
                        if key not in bcache:  # one host read per valid time and block, shared by members
                            bcache[key] = self._boundary(stepper, init_times, sum(op.dst, pd.Timedelta(0)), n)
                        kwargs["boundary"] = bcache[key]
                    y = stepper.step(x, **kwargs)
                # The state between steps stays float32 whatever precision the step ran in.
                y = y.float()
                if not same:
                    y = (y * stepper.std + stepper.mean - self.mean) / self.std
                y = self._model_error(op, y, eta, init_times, innovations, nr)
                states[op.dst] = y
                self.model_calls += 1
            elif op.kind == "emit":
                phys = states[op.src] * self.std + self.mean
                # Straight into the layout: (C, b, N, y, x) at this lead and weight member.
                out[:, :, op.lead, w].copy_(phys.view(b, n, c, *phys.shape[-2:]).permute(2, 0, 1, 3, 4))
            else:
                states.pop(op.src, None)
                eta.pop(op.src, None)


class _Done:
    def synchronize(self) -> None:
        return None


@dataclass
class _Pending:
    """A block's host buffer, filled once ``event`` is reached; :meth:`arrays` waits for it."""

    buffer: torch.Tensor
    event: object
    real: int
    variables: tuple[str, ...]
    member_layout: str

    def arrays(self) -> dict[str, np.ndarray]:
        self.event.synchronize()
        return _block_arrays(self.buffer.numpy()[:, : self.real], self.variables, self.member_layout)


def _initial_array(source: xr.Dataset, init_times: pd.DatetimeIndex, variables: Sequence[str]) -> np.ndarray:
    sel = select_initial(source, init_times, variables)
    arr = np.stack([np.asarray(sel[v].values, dtype=np.float32) for v in variables], axis=1)
    if not np.isfinite(arr).all():
        bad = [v for i, v in enumerate(variables) if not np.isfinite(arr[:, i]).all()]
        raise DataError(f"initial conditions have NaN or infinite values in {bad}; fill or mask them first")
    return arr


def _block_arrays(buf: np.ndarray, variables: Sequence[str], layout: str) -> dict[str, np.ndarray]:
    """Host buffer ``(C, b, L, W, N, y, x)`` -> per variable ``(b, L[, members], y, x)``, contiguous views."""
    out = {}
    for c, v in enumerate(variables):
        arr = buf[c]  # (b, L, W, N, y, x)
        if layout == "none":
            arr = arr[:, :, 0, 0]
        elif layout == "member":
            arr = arr[:, :, 0]
        out[v] = arr  # a contiguous view of the reused buffer: the sink copies it once
    return out


def _variables(model) -> tuple[str, ...]:
    names = getattr(model, "variables", None)
    if not names:
        raise DataError(f"{type(model).__name__} does not declare its variables")
    return tuple(names)


# --------------------------------------------------------------------------------------------------
# Baseline runner
# --------------------------------------------------------------------------------------------------
class BaselineRunner:
    """Persistence, climatology, NWP and any other model with ``forecast(initial, inits, leads)``."""

    def __init__(self, model, lead_times: pd.TimedeltaIndex, source: xr.Dataset | None = None):
        if not callable(getattr(model, "forecast", None)):
            raise DataError(f"{type(model).__name__} has neither step() nor forecast(); it is not a model")
        self.model = model
        self.lead_times = lead_times
        names = tuple(getattr(model, "variables", None) or ())
        if not names and source is not None:
            # A baseline that forecasts whatever it is given (persistence): every time-dependent variable.
            names = tuple(str(v) for v in source.data_vars if "time" in source[v].dims)
        if not names:
            raise DataError(f"{type(model).__name__} does not declare its variables")
        self.variables = names
        self.input_variables = tuple(getattr(model, "input_variables", self.variables))
        self.model_calls = 0

    def run_block(self, block: Block) -> BlockResult:
        """Forecast one block with the model's own ``forecast``."""
        fc = self.model.forecast(block.source, block.init_times, self.lead_times)
        self.model_calls += 1
        out = {}
        for v in self.variables:
            if v not in fc:
                raise DataError(f"{type(self.model).__name__}.forecast did not return {v!r}")
            da = fc[v].transpose("init_time", "lead_time", ...)
            got = pd.TimedeltaIndex(da.lead_time.values)
            if not got.equals(self.lead_times):
                da = da.sel(lead_time=self.lead_times.values)
            out[v] = np.asarray(da.values, dtype=np.float32)
        return _Ready(out)
