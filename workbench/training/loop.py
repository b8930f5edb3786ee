"""The training loop that produces the shipped sample checkpoints.

One model, one time step: inputs are analysis states at ``t``, targets the states at ``t + dt`` (and,
with ``rollout_steps = K > 1``, at ``t + 2 dt ... t + K dt``, the model fed its own output: the
multi-step loss that keeps rollouts stable). The loss is the mean squared error in normalised units,
averaged over variables, grid and rollout steps. AdamW with a linear warm-up then a cosine decay; bf16
autocast on a GPU; gradient clipping.

The whole (normalised) training array lives on the device and batches are gathered there by index, so a
step costs no host transfer. Progress is saved atomically every ``checkpoint_every`` steps (weights,
optimiser, schedule, step and random state) so that a killed run resumes where it stopped; the final
weights are written through :func:`workbench.models.weights.save_checkpoint` as safetensors + JSON.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from workbench._io import atomic_write
from workbench.errors import DataError
from workbench.inference.device import autocast, check_precision, resolve_device
from workbench.models.inputs import attach_inputs
from workbench.training.data import TrainingData


@dataclass
class TrainConfig:
    """Optimisation settings.

    Attributes
    ----------
    steps
        Optimiser steps (the cosine schedule spans them), unless ``time_budget_s`` cuts them.
    batch_size
        Samples per step.
    lr, weight_decay, warmup, grad_clip
        AdamW learning rate and weight decay, warm-up steps, gradient-norm clip.
    rollout_steps
        Steps of the multi-step loss (1: plain one-step loss).
    dtype
        ``"bf16"`` autocast or ``"fp32"``.
    time_budget_s
        If set, the number of steps is fitted to this many seconds after timing the first steps (the
        schedule is then laid out over the fitted number).
    checkpoint_every
        Steps between resumable progress files.
    seed
        Seed of weights initialisation order and batch sampling.
    min_steps
        Fewest steps a time budget may cut the run to.
    lead_hours
        For lead-time conditioned networks (ClimaX-like): each sample's target lies a lead drawn at
        random from these hours ahead, and the network is told the lead.
    storage
        ``fp32`` or ``fp16`` weights in the saved checkpoint.
    init_from
        A checkpoint (stem or file) whose weights start the network: fine-tuning a pretrained network
        (ClimaX fine-tunes one network per lead time from its pretrained weights). Its architecture,
        variables and network shape must be the model's.
    """

    steps: int = 2000
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup: int = 50
    grad_clip: float = 1.0
    rollout_steps: int = 1
    dtype: str = "bf16"
    time_budget_s: float | None = None
    checkpoint_every: int = 200
    seed: int = 0
    min_steps: int = 20
    lead_hours: list[float] | None = None
    init_from: str | None = None
    storage: str = "fp32"


@dataclass
class TrainResult:
    """What a training run did."""

    name: str
    time_step_hours: float
    steps: int
    seconds: float
    train_loss: float
    heldout_loss: float
    resumed_from: int = 0
    losses: list[float] = field(default_factory=list)
    checkpoint: str = ""
    parameters: int = 0


def _atomic_torch_save(obj: Any, path: Path) -> None:
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def initialise_from(model, path: str | os.PathLike) -> None:
    """Copy the weights of checkpoint ``path`` into ``model.net`` (the start of a fine-tuning run).

    Raises
    ------
    CheckpointError
        When the checkpoint is unreadable or its architecture, variables or weight shapes differ.
    """
    from workbench.errors import CheckpointError
    from workbench.models.weights import check_state_dict, load_checkpoint

    source = load_checkpoint(path)
    mine, theirs = model.config, source.config
    for key in ("architecture", "variables", "forcings"):
        if json.dumps(theirs.get(key) or None) != json.dumps(mine.get(key) or None):
            raise CheckpointError(
                f"{path}: cannot start {model.name!r} from this checkpoint: its {key} is {theirs.get(key)!r}, "
                f"the model's {mine.get(key)!r}. Fine-tune from a checkpoint of the same network."
            )
    state = source.net.state_dict()
    check_state_dict(model.net, state, str(path))
    model.net.load_state_dict(state)


def _cosine(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / max(warmup, 1)
    progress = min(1.0, (step - warmup) / max(total - warmup, 1))
    return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress))


class _Batches:
    """Random training batches gathered on the device."""

    def __init__(self, data: TrainingData, model, device: torch.device, cfg: TrainConfig):
        self.device = device
        dh = data.hours_per_index
        leads = [float(h) for h in cfg.lead_hours] if cfg.lead_hours else [float(model.step_hours)]
        if cfg.lead_hours and cfg.rollout_steps != 1:
            raise DataError("a lead-conditioned model trains on single leads; use rollout_steps=1")
        ks = [int(round(h / dh)) for h in leads]
        if any(k < 1 or abs(k * dh - h) > 1e-6 for k, h in zip(ks, leads, strict=True)):
            raise DataError(f"lead times {leads} h are not multiples of the data's {dh} h spacing")
        self.leads = torch.as_tensor(leads, dtype=torch.float32, device=device)
        self.ks = torch.as_tensor(ks, device=device)
        self.k = ks[0] if len(ks) == 1 else None
        self.rollout = cfg.rollout_steps
        mean, std = model.normalization.arrays(data.variables)
        normed = (data.array - mean[None, :, None, None]) / std[None, :, None, None]
        self.array = torch.as_tensor(normed, dtype=torch.float32).to(device)
        # lateral boundaries: the global analysis at each time, physical (the model normalises it)
        need = tuple(getattr(model, "boundary_variables", ()) or ())
        self.boundary = None
        if need:
            if data.boundary is None or not set(need) <= set(data.boundary_variables):
                raise DataError(
                    f"{model.name} is conditioned on lateral boundaries {list(need)}, but the training data has "
                    f"{list(data.boundary_variables) or 'none'}; load it with boundary_variables="
                )
            idx = [data.boundary_variables.index(v) for v in need]
            self.boundary = torch.as_tensor(data.boundary[:, idx], dtype=torch.float32).to(device)
        seconds = data.times.values.astype("datetime64[s]").astype(np.int64)
        self.hours = torch.as_tensor(seconds / 3600.0, dtype=torch.float64, device=device)
        reach = max(leads) * cfg.rollout_steps
        self.train_starts = torch.as_tensor(data.pair_starts(reach, "train"), device=device)
        self.heldout_starts = torch.as_tensor(data.pair_starts(max(leads), "heldout"), device=device)
        self.gen = torch.Generator(device="cpu").manual_seed(cfg.seed)

    def sample(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        pick = torch.randint(len(self.train_starts), (batch,), generator=self.gen)
        which = torch.randint(len(self.ks), (batch,), generator=self.gen)
        return self.train_starts[pick.to(self.device)], which.to(self.device)

    def inputs(self, starts: torch.Tensor, which: torch.Tensor, rollout: int | None = None):
        """Input states, targets (one per rollout step), input valid hours, lead hours and the boundary
        at each target's valid time (None for a model without boundary)."""
        k = self.ks[which]
        x = self.array[starts]
        n = rollout or self.rollout
        targets = [self.array[starts + k * j] for j in range(1, n + 1)]
        bounds = [None if self.boundary is None else self.boundary[starts + k * j] for j in range(1, n + 1)]
        return x, targets, self.hours[starts], self.leads[which], bounds


def _step(model, x, hours, lead, conditioned: bool, boundary=None):
    kwargs = {"valid_time": hours} if (model.forcings or model.needs_static) else {}
    if conditioned:
        kwargs["lead_hours"] = lead
    if boundary is not None:
        kwargs["boundary"] = boundary
    return model.step(x, **kwargs)


def _loss(model, x, targets, hours, lead, conditioned: bool, dtype: str, device, bounds=None) -> torch.Tensor:
    total = 0.0
    state = x
    bounds = bounds or [None] * len(targets)
    for j, target in enumerate(targets):
        with autocast(device, dtype):
            pred = _step(model, state, hours + j * lead.double(), lead, conditioned, bounds[j])
        pred = pred.float()
        total = total + torch.mean((pred - target) ** 2)
        state = pred
    return total / len(targets)


def train_model(
    model,
    data: TrainingData,
    out: str | os.PathLike,
    *,
    config: TrainConfig | None = None,
    device: str | torch.device = "auto",
    work_dir: str | os.PathLike | None = None,
    progress: bool = True,
    metadata: dict | None = None,
) -> TrainResult:
    """Train ``model`` (a :class:`~workbench.models.TorchForecaster`) on ``data`` and save it to ``out``.

    Parameters
    ----------
    model
        An untrained (or partly trained) model whose normalisation is ``data.normalization``.
    data
        From :func:`workbench.training.data.load_training_data`.
    out
        Checkpoint stem: writes ``<out>.safetensors`` and ``<out>.json``.
    config
        Optimisation settings.
    device
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    work_dir
        Where the resumable progress file goes (default: beside ``out``); a rerun with the same
        ``out`` and settings resumes from it.
    metadata
        Extra JSON stored in the checkpoint (training period, ...).

    Returns
    -------
    TrainResult
    """
    from workbench.models.weights import save_checkpoint

    cfg = config or TrainConfig()
    check_precision(cfg.dtype)
    if cfg.rollout_steps < 1:
        raise DataError(f"rollout_steps must be at least 1, got {cfg.rollout_steps}")
    dev = resolve_device(device)
    torch.manual_seed(cfg.seed)
    out = Path(out)
    work = Path(work_dir) if work_dir is not None else out.parent
    work.mkdir(parents=True, exist_ok=True)
    state_path = work / f"{out.name}.progress.pt"
    if cfg.init_from:
        initialise_from(model, cfg.init_from)
    # static fields and insolation from the training grid: the function the inference engine calls
    attach_inputs(model, data.source)
    model.to(dev).train()
    batches = _Batches(data, model, dev, cfg)
    conditioned = bool(cfg.lead_hours)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "bias" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "bias" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(0.9, 0.95),
        fused=dev.type == "cuda",
    )
    run_key = json.dumps({"train": asdict(cfg), "model": model.config}, sort_keys=True, default=str)
    start, total, losses, resumed = 0, cfg.steps, [], 0
    if state_path.exists():
        saved = torch.load(state_path, map_location=dev, weights_only=True)
        if saved.get("key") == run_key:
            model.net.load_state_dict(saved["net"])
            opt.load_state_dict(saved["opt"])
            start = resumed = int(saved["step"])
            total = int(saved["total"])
            losses = list(saved["losses"])
            batches.gen.set_state(saved["gen"])

    def save_progress(step: int) -> None:
        _atomic_torch_save(
            {"key": run_key, "net": model.net.state_dict(), "opt": opt.state_dict(), "step": step, "total": total,
             "losses": losses, "gen": batches.gen.get_state()},
            state_path,
        )

    t0 = time.perf_counter()
    timed_from = None
    bar = tqdm(total=total, initial=start, disable=not progress, desc=f"train {model.name} {model.step_hours:g}h")
    step = start
    while step < total:
        for group in opt.param_groups:
            group["lr"] = cfg.lr * _cosine(step, total, cfg.warmup)
        x, targets, hours, lead, bounds = batches.inputs(*batches.sample(cfg.batch_size))
        loss = _loss(model, x, targets, hours, lead, conditioned, cfg.dtype, dev, bounds)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        step += 1
        if step % 10 == 0 or step == total:
            losses.append(float(loss.detach()))  # a host sync every 10 steps only
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
        bar.update(1)
        if cfg.time_budget_s is not None and step == start + 10:
            if dev.type == "cuda":
                torch.cuda.synchronize()
            timed_from = (step, time.perf_counter())
        if cfg.time_budget_s is not None and timed_from is not None and step == timed_from[0] + 20:
            if dev.type == "cuda":
                torch.cuda.synchronize()
            per_step = (time.perf_counter() - timed_from[1]) / 20
            remaining = cfg.time_budget_s - (time.perf_counter() - t0)
            total = max(cfg.min_steps, min(cfg.steps, step + int(remaining / per_step)))
            bar.total = total
        if step % cfg.checkpoint_every == 0 and step < total:
            save_progress(step)
    bar.close()
    seconds = time.perf_counter() - t0
    model.eval()
    heldout = _heldout_loss(model, batches, conditioned, cfg.dtype, dev)
    train_loss = float(np.mean(losses[-5:])) if losses else float("nan")
    meta = {
        "training": {
            "steps": step,
            "seconds": round(seconds, 1),
            "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
            "train_period": [str(t) for t in data.train_period],
            "train_periods": [[str(a), str(b)] for a, b in data.train_periods],
            "data": data.origin,
            "heldout_period": [str(t) for t in data.heldout_period],
            "train_loss": train_loss,
            "heldout_loss": heldout,
            "settings": asdict(cfg),
        },
        **(metadata or {}),
    }
    save_checkpoint(model, out, metadata=meta, storage=cfg.storage)
    state_path.unlink(missing_ok=True)
    return TrainResult(
        name=model.name,
        time_step_hours=model.step_hours,
        steps=step,
        seconds=seconds,
        train_loss=train_loss,
        heldout_loss=heldout,
        resumed_from=resumed,
        losses=losses,
        checkpoint=str(out),
        parameters=sum(p.numel() for p in model.parameters()),
    )


@torch.no_grad()
def _heldout_loss(model, batches: _Batches, conditioned: bool, dtype: str, device, max_batch: int = 16) -> float:
    """Normalised MSE over every held-out pair, for every trained lead (one step)."""
    starts = batches.heldout_starts
    if len(starts) > 64:  # an evenly spread subset keeps this quick on a CPU
        starts = starts[torch.linspace(0, len(starts) - 1, 64, device=starts.device).long()]
    total, count = 0.0, 0
    for which in range(len(batches.ks)):
        for i in range(0, len(starts), max_batch):
            s = starts[i : i + max_batch]
            w = torch.full_like(s, which)
            x, targets, hours, lead, bounds = batches.inputs(s, w, rollout=1)
            with autocast(device, dtype):
                pred = _step(model, x, hours, lead, conditioned, bounds[0]).float()
            total += float(torch.mean((pred - targets[0]) ** 2)) * len(s)
            count += len(s)
    return total / max(count, 1)
