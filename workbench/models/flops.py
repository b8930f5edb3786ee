"""Floating-point operations of one forward pass, for model FLOP utilisation (MFU) figures."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_flops", "count_parameters"]


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_flops(
    model: nn.Module, input_shape: Sequence[int], by_module: bool = False
) -> int | dict[str, int]:
    """FLOPs of one forward pass on an input of ``input_shape`` (``(batch, channels, ny, nx)``).

    Counted with :class:`torch.utils.flop_counter.FlopCounterMode`, which records matrix products,
    convolutions and attention (2 FLOPs per multiply-add); element-wise work is not counted, as is
    usual for MFU. The pass runs on the ``meta`` device, so even a 3-km grid costs no memory or time.

    Parameters
    ----------
    model : torch.nn.Module
        A :class:`~workbench.models.TorchForecaster` (its ``step`` is counted, forcings included),
        a :class:`~workbench.models.HierarchicalModel` (its shortest step), or any module taking one
        tensor.
    input_shape : sequence of int
        Shape of the state tensor.
    by_module : bool
        Return a dict of FLOPs per top-level module instead of the total.

    Returns
    -------
    int or dict
        Total FLOPs, or per-module FLOPs.
    """
    from workbench.models.hta import HierarchicalModel
    from workbench.models.torch_model import TorchForecaster

    if isinstance(model, HierarchicalModel):
        model = model.models[str(min(model.steps))]
    try:
        meta_model = copy.deepcopy(model).to("meta")
        device = torch.device("meta")
    except (RuntimeError, NotImplementedError):
        meta_model, device = model, next(model.parameters()).device
    meta_model.eval()
    # no autograd state at all: the flop counter's module tracker trips over views of leaf parameters
    for param in meta_model.parameters():
        param.requires_grad_(False)
    for module in meta_model.modules():  # caches of window masks live on the original device
        if hasattr(module, "_cache"):
            module._cache = {}
    x = torch.zeros(tuple(int(s) for s in input_shape), device=device)
    counter = FlopCounterMode(display=False)
    with counter:
        if isinstance(meta_model, TorchForecaster):
            times = np.full(x.shape[0], np.datetime64("2020-06-01T00"), dtype="datetime64[ns]")
            times_t = torch.zeros(x.shape[0], device=device) if device.type == "meta" else times
            meta_model.step(x, valid_time=times_t if meta_model.forcings else None)
        else:
            meta_model(x)
    if not by_module:
        return int(counter.get_total_flops())
    counts = counter.get_flop_counts()
    return {k: int(sum(v.values())) for k, v in counts.items() if k.count(".") <= 1}
