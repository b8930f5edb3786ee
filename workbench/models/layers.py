"""Building blocks shared by the torch architectures: padding, MLPs, drop-path, embeddings, forcings."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from workbench.errors import DataError

__all__ = [
    "FORCINGS",
    "DropPath",
    "Mlp",
    "crop_2d",
    "forcing_fields",
    "pad_to_multiple_2d",
    "sincos_1d",
    "sincos_2d",
]

#: Forcing channels a model may take besides its state: functions of the valid time of the input.
FORCINGS = ("hour_sin", "hour_cos", "doy_sin", "doy_cos")


def pad_to_multiple_2d(x: torch.Tensor, multiple: Sequence[int]) -> tuple[torch.Tensor, tuple[int, int]]:
    """Zero-pad the last two dims of ``x`` at the end up to multiples of ``multiple``.

    Returns the padded tensor and the original ``(ny, nx)`` for :func:`crop_2d`.
    """
    ny, nx = x.shape[-2:]
    py = (-ny) % int(multiple[0])
    px = (-nx) % int(multiple[1])
    if py or px:
        x = F.pad(x, (0, px, 0, py))
    return x, (ny, nx)


def crop_2d(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Undo :func:`pad_to_multiple_2d`."""
    return x[..., : size[0], : size[1]]


class DropPath(nn.Module):
    """Stochastic depth: drop a residual branch per sample during training (identity at inference)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class Mlp(nn.Module):
    """Two linear layers with a GELU between them (the transformer feed-forward block)."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


def sincos_1d(dim: int, positions: np.ndarray) -> np.ndarray:
    """Fixed sine-cosine embedding of 1-D positions, shape ``(len(positions), dim)`` (as in MAE/ClimaX)."""
    if dim % 2:
        raise ValueError(f"Embedding dimension must be even, got {dim}.")
    omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))
    out = np.asarray(positions, dtype=np.float64).reshape(-1)[:, None] * omega[None, :]
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def sincos_2d(dim: int, ny: int, nx: int) -> np.ndarray:
    """Fixed 2-D sine-cosine embedding of a ``ny x nx`` token grid, shape ``(ny * nx, dim)``."""
    if dim % 4:
        raise ValueError(f"2-D sine-cosine embedding needs a dimension divisible by 4, got {dim}.")
    gy, gx = np.meshgrid(np.arange(ny, dtype=np.float64), np.arange(nx, dtype=np.float64), indexing="ij")
    return np.concatenate([sincos_1d(dim // 2, gy), sincos_1d(dim // 2, gx)], axis=1)


def forcing_fields(
    names: Sequence[str], valid_time, batch: int, shape: tuple[int, int], device=None, dtype=torch.float32
) -> torch.Tensor:
    """Spatially uniform forcing channels ``(batch, len(names), ny, nx)`` from the input's valid time.

    Parameters
    ----------
    names : sequence of str
        Forcing names from :data:`FORCINGS`.
    valid_time : array-like of datetime64, or torch.Tensor
        One time per batch element (or a single one for all). A tensor is read as hours since
        1970-01-01 (float), which lets an engine keep the clock on the device.
    """
    if not names:
        return torch.zeros((batch, 0) + tuple(shape), device=device, dtype=dtype)
    unknown = [n for n in names if n not in FORCINGS]
    if unknown:
        raise DataError(f"Unknown forcings {unknown}; known: {list(FORCINGS)}.")
    if valid_time is None:
        raise DataError(
            f"This model takes forcings {list(names)} computed from the valid time of its input; pass "
            "valid_time= (one datetime per batch element) to step()."
        )
    if isinstance(valid_time, torch.Tensor):
        hours = valid_time.to(device=device, dtype=torch.float64).reshape(-1)
    else:
        stamps = pd.DatetimeIndex(pd.to_datetime(np.atleast_1d(np.asarray(valid_time))))
        seconds = stamps.asi8.astype(np.float64) / 1e9
        hours = torch.as_tensor(seconds / 3600.0, device=device, dtype=torch.float64)
    if hours.numel() == 1 and batch > 1:
        hours = hours.expand(batch)
    if hours.numel() != batch:
        raise DataError(f"Got {hours.numel()} valid times for a batch of {batch}.")
    hour_angle = 2 * math.pi * torch.remainder(hours, 24.0) / 24.0
    day_angle = 2 * math.pi * torch.remainder(hours / 24.0, 365.2425) / 365.2425
    table = {
        "hour_sin": torch.sin(hour_angle),
        "hour_cos": torch.cos(hour_angle),
        "doy_sin": torch.sin(day_angle),
        "doy_cos": torch.cos(day_angle),
    }
    values = torch.stack([table[n] for n in names], dim=1).to(dtype)
    return values[:, :, None, None].expand(batch, len(names), *shape)
