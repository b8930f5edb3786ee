"""Small models whose forecasts are known exactly, for testing the inference engine and training loop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import xarray as xr
from torch import nn

from workbench.models.normalization import Normalization

VARIABLES = ("t2m", "u10m", "z500")
UNITS = {"t2m": "K", "u10m": "m s-1", "z500": "m2 s-2"}
MEAN = {"t2m": 290.0, "u10m": 2.0, "z500": 55000.0}
STD = {"t2m": 5.0, "u10m": 3.0, "z500": 800.0}


class LinearNet(nn.Module):
    """``y = A x`` over channels at every grid point (a 1x1 convolution without bias), then dropout."""

    def __init__(self, matrix: np.ndarray, dropout: float = 0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.as_tensor(matrix, dtype=torch.float32))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.einsum("ij,bjyx->biyx", self.weight, x)
        return self.drop(y.movedim(1, -1)).movedim(-1, 1)


class LinearForecaster:
    """A torch forecaster with the workbench protocol whose step is an exactly known linear map.

    It counts its calls, and adds ``clock_gain * hour_of_day`` of the input's valid time when asked,
    so that tests can check the clock the engine feeds it.
    """

    def __init__(self, matrix: np.ndarray, hours: float = 1.0, dropout: float = 0.0, name: str = "linear",
                 clock_gain: float = 0.0):
        self.name = name
        self.variables = VARIABLES
        self.input_variables = VARIABLES
        self.time_step = pd.Timedelta(hours=hours)
        self.grid = None
        self.net = LinearNet(matrix, dropout)
        self.normalization = Normalization(dict(MEAN), dict(STD))
        self.calls = 0
        self.clock_gain = clock_gain

    def step(self, x: torch.Tensor, valid_time: torch.Tensor | None = None) -> torch.Tensor:
        self.calls += 1
        y = self.net(x)
        if self.clock_gain and valid_time is not None:
            hour = torch.remainder(valid_time, 24.0).to(y.dtype)
            y = y + self.clock_gain * hour.view(-1, 1, 1, 1)
        return y

    def forecast(self, *args, **kwargs):  # the engine must roll torch models out itself
        raise AssertionError("run_forecast called forecast() on a torch model")


class LinearFamily:
    """Models for several step sizes: the ``k``-hour model applies ``A^k`` (so HTA == single-step)."""

    def __init__(self, matrix: np.ndarray, steps=(1, 6, 24)):
        self.name = "linear-hta"
        self.variables = VARIABLES
        self.input_variables = VARIABLES
        self.step_models = {
            pd.Timedelta(hours=k): LinearForecaster(np.linalg.matrix_power(matrix, k), hours=k) for k in steps
        }
        self.time_step = min(self.step_models)
        self.grid = None

    def calls(self) -> dict[int, int]:
        return {int(dt / pd.Timedelta(hours=1)): m.calls for dt, m in self.step_models.items()}


def rotation_matrix(seed: int = 0, scale: float = 0.99) -> np.ndarray:
    """A well-conditioned 3x3 map (orthogonal times ``scale``) whose powers stay of order one."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    return (q * scale).astype(np.float64)


def synthetic_source(n_times: int = 72, ny: int = 6, nx: int = 8, seed: int = 0) -> xr.Dataset:
    """An hourly (time, y, x) analysis with the stand-in variables, starting 2020-06-01T00."""
    rng = np.random.default_rng(seed)
    times = pd.date_range("2020-06-01", periods=n_times, freq="h")
    y = np.arange(ny) * 24000.0
    x = np.arange(nx) * 24000.0
    data = {}
    for v in VARIABLES:
        values = MEAN[v] + STD[v] * rng.normal(size=(n_times, ny, nx))
        data[v] = (("time", "y", "x"), values.astype(np.float32), {"units": UNITS[v]})
    lat = 30 + np.arange(ny)[:, None] * 0.2 + 0 * x[None, :]
    lon = -100 + np.arange(nx)[None, :] * 0.3 + 0 * y[:, None]
    return xr.Dataset(
        data,
        coords={"time": times, "y": y, "x": x, "latitude": (("y", "x"), lat), "longitude": (("y", "x"), lon)},
    )


def apply_linear(matrix: np.ndarray, source: xr.Dataset, init: pd.Timestamp, steps: int) -> np.ndarray:
    """The exact forecast of ``steps`` applications of ``matrix`` in normalised space (float64)."""
    mean = np.array([MEAN[v] for v in VARIABLES])[:, None, None]
    std = np.array([STD[v] for v in VARIABLES])[:, None, None]
    x = np.stack([source[v].sel(time=init).values.astype(np.float64) for v in VARIABLES])
    xn = (x - mean) / std
    yn = np.einsum("ij,jyx->iyx", np.linalg.matrix_power(matrix, steps), xn)
    return yn * std + mean
